import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { defaultSettings } from "../../src/domain/Config.ts"
import { HubClient } from "../../src/services/HubClient.ts"
import { SidecarConfig } from "../../src/services/SidecarConfig.ts"
import { fakeNetwork, type FakeSocket, noJitter } from "../support/FakeWebSocket.ts"

const settings = defaultSettings("/tmp/unused", { heartbeatIntervalMs: 30_000, heartbeatTimeoutMs: 10_000 })

/** Builds a HubClient over the fake network; lets its fibers run. */
const setup = (onConnect?: (socket: FakeSocket) => void, config = settings) => Effect.gen(function*() {
  const { network, layer } = yield* fakeNetwork(onConnect)
  const context = yield* Layer.build(HubClient.layer.pipe(Layer.provide([layer, SidecarConfig.layer(config)])))
  const hub = context.mapUnsafe.get(HubClient.key) as HubClient["Service"]
  yield* Effect.yieldNow
  return { network, hub }
})

const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

describe("HubClient (TestClock, fake WebSocket)", () => {
  it.effect("reconnect delays double from 1 s to a 60 s cap, and reset once identified", () => Effect.gen(function*() {
    // every dial fails at once, as a refused connection does
    // (heartbeats out of the way: this test is about dialling)
    const { network } = yield* setup((s) => queueMicrotask(() => s.drop(1006)), { ...settings, heartbeatIntervalMs: 3_600_000 })
    yield* settle
    yield* TestClock.adjust("400 seconds")
    yield* settle
    const times = network.sockets.map((s) => s.createdAt)
    const delays = times.slice(1).map((t, i) => t - times[i]!)
    assert.deepStrictEqual(delays.slice(0, 9), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000])

    // now a connection that is identified, then dropped: the next dial is immediate, then 1 s, 2 s again
    network.onConnect = (s) => queueMicrotask(() => { s.open(); s.receive({ type: "identified", agent_id: "agent-1" }) })
    yield* TestClock.adjust("60 seconds")
    yield* settle
    const identified = network.sockets.at(-1)!
    assert.strictEqual(identified.readyState, 1)
    network.onConnect = (s) => queueMicrotask(() => s.drop(1006))
    const before = network.sockets.length
    yield* TestClock.adjust("5 seconds")
    const droppedAt = yield* Clock.currentTimeMillis
    identified.drop(1006)
    yield* settle
    yield* TestClock.adjust("3 seconds")
    yield* settle
    const after = network.sockets.slice(before).map((s) => s.createdAt - droppedAt)
    assert.deepStrictEqual(after, [0, 1000, 3000])
  }).pipe(Effect.provide(noJitter)))

  it.effect("identify is the first frame; a missing pong drops the connection exactly heartbeat_timeout_ms after the ping", () => Effect.gen(function*() {
    const { network } = yield* setup((s) => queueMicrotask(() => { s.open(); s.receive({ type: "identified" }) }))
    yield* settle
    const socket = network.sockets[0]!
    assert.deepStrictEqual(socket.sent[0], {
      type: "identify", agent_id: "agent-1", token: "test-token", name: "agent-1", status: "idle",
      capabilities: [], client_type: "sidecar", protocol_version: 1
    })
    yield* TestClock.adjust("30 seconds") // first ping
    yield* settle
    assert.deepStrictEqual(socket.sentTypes(), ["identify", "ping"])
    yield* TestClock.adjust("9999 millis")
    yield* settle
    assert.strictEqual(socket.readyState, 1, "still connected 1 ms before the timeout")
    yield* TestClock.adjust("1 millis")
    yield* settle
    assert.strictEqual(socket.closedWith, 1000, "dropped at exactly 10 s")
    assert.strictEqual(network.sockets.length, 2, "and dialled again at once")
  }))

  it.effect("a pong keeps the connection; pings come every heartbeat_interval_ms", () => Effect.gen(function*() {
    const { network } = yield* setup((s) => {
      queueMicrotask(() => { s.open(); s.receive({ type: "identified" }) })
      const send = s.send.bind(s)
      s.send = (data) => { send(data); if (JSON.parse(String(data)).type === "ping") queueMicrotask(() => s.receive({ type: "pong" })) }
    })
    yield* settle
    yield* TestClock.adjust("95 seconds")
    yield* settle
    const socket = network.sockets[0]!
    assert.strictEqual(socket.readyState, 1)
    assert.deepStrictEqual(socket.sentTypes(), ["identify", "ping", "ping", "ping"])
    assert.strictEqual(network.sockets.length, 1)
  }))

  it.effect("sends made while disconnected wait for the next identified connection; bad frames are dropped", () => Effect.gen(function*() {
    const { network, hub } = yield* setup()
    yield* hub.send({ type: "task_accepted", task_id: "t-1" })
    yield* settle
    const first = network.sockets[0]!
    first.open()
    yield* settle
    assert.deepStrictEqual(first.sentTypes(), ["identify"], "nothing but identify before identified")
    const received: Array<string> = []
    yield* hub.messages.pipe(Stream.runForEach((m) => Effect.sync(() => received.push(m.type))), Effect.forkScoped)
    for (const garbage of ["{bad", "[]", "42", "{}", `{"type":7}`, `{"type":"task_ack","task_id":5}`, `{"type":"brand_new_thing"}`, JSON.stringify({ type: "error", error: "x".repeat(settings.maxMessageBytes) })]) {
      first.receive(garbage)
    }
    first.receive({ type: "identified" })
    yield* settle
    assert.deepStrictEqual(first.sentTypes(), ["identify", "task_accepted"])
    assert.deepStrictEqual(received, ["identified"], "only the valid frame came through")
    assert.strictEqual(first.readyState, 1, "garbage did not break the connection")
    assert.strictEqual((yield* hub.state).status, "identified")
  }))
})

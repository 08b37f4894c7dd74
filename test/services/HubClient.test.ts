import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Layer, Logger, Stream } from "effect"
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

/** Advances the TestClock in small steps, letting the fake sockets' events (microtasks, which the TestClock does
 *  not wait for) land before time moves on, so each next sleep starts when it would in real time. */
const advance = (ms: number, stepMs = 100) => Effect.gen(function*() {
  for (let t = 0; t < ms; t += stepMs) {
    yield* TestClock.adjust(Duration.millis(stepMs))
    yield* settle
  }
})

/** Collects every log line (level and text) the HubClient writes. */
const captureLogs = () => {
  const lines: Array<{ readonly level: string; readonly text: string }> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push({ level: logLevel, text: (Array.isArray(message) ? message : [message]).map((m) => typeof m === "string" ? m : JSON.stringify(m)).join(" ") })
  })
  return { lines, layer: Logger.layer([logger]) }
}

/** Delays between consecutive dials. */
const dialGaps = (sockets: ReadonlyArray<FakeSocket>) => sockets.slice(1).map((s, i) => s.createdAt - sockets[i]!.createdAt)

describe("HubClient (TestClock, fake WebSocket)", () => {
  it.effect("reconnect delays double from 1 s to a 60 s cap, and reset once a connection answered a heartbeat", () => Effect.gen(function*() {
    // every dial fails at once, as a refused connection does
    const { network } = yield* setup((s) => queueMicrotask(() => s.drop(1006)))
    yield* settle
    yield* TestClock.adjust("400 seconds")
    yield* settle
    assert.deepStrictEqual(dialGaps(network.sockets).slice(0, 9), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000])

    // now a connection that is identified and answers the heartbeat (a pong came back), then dropped:
    // the next dial is immediate, then 1 s, 2 s again
    network.onConnect = (s) => queueMicrotask(() => { s.answerPings().open(); s.receive({ type: "identified", agent_id: "agent-1" }) })
    yield* TestClock.adjust("60 seconds")
    yield* settle
    const healthy = network.sockets.at(-1)!
    assert.strictEqual(healthy.readyState, 1)
    network.onConnect = (s) => queueMicrotask(() => s.drop(1006))
    yield* TestClock.adjust("35 seconds") // at least one ping, answered
    yield* settle
    assert.include(healthy.sentTypes(), "ping")
    assert.strictEqual(healthy.readyState, 1)
    const before = network.sockets.length
    const droppedAt = yield* Clock.currentTimeMillis
    healthy.drop(1006)
    yield* settle
    yield* TestClock.adjust("3 seconds")
    yield* settle
    const after = network.sockets.slice(before).map((s) => s.createdAt - droppedAt)
    assert.deepStrictEqual(after, [0, 1000, 3000])
  }).pipe(Effect.provide(noJitter)))

  it.effect("a hub that closes right after identified: dial delays still grow 1 s, 2 s, 4 s… and each close is logged with its code and reason (issue 12)", () => Effect.gen(function*() {
    const logs = captureLogs()
    const { network } = yield* setup((s) => queueMicrotask(() => {
      s.open()
      s.receive({ type: "identified", agent_id: "agent-1" })
      s.drop(1008, "too many validation errors")
    })).pipe(Effect.provide(logs.layer))
    yield* settle
    yield* advance(70_000)
    assert.deepStrictEqual(dialGaps(network.sockets), [1000, 2000, 4000, 8000, 16000, 32000])
    const closes = logs.lines.filter((l) => l.text.includes("1008") && l.text.includes("too many validation errors"))
    assert.strictEqual(closes.length, network.sockets.length, logs.lines.map((l) => l.text).join("\n"))
  }).pipe(Effect.provide(noJitter)))

  it.effect("a connection identified but closed before it answered a ping counts as a failure; a pong makes it healthy", () => Effect.gen(function*() {
    // the first two connections are identified and live 20 s without a ping (heartbeat at 30 s), then drop;
    // the third answers a ping and then drops: the dial after it is immediate
    let n = 0
    const { network } = yield* setup((s) => queueMicrotask(() => {
      n++
      if (n === 3) s.answerPings()
      s.open()
      s.receive({ type: "identified" })
    }))
    yield* settle
    yield* TestClock.adjust("20 seconds")
    network.sockets[0]!.drop(1000, "")
    yield* settle
    yield* TestClock.adjust("1 second") // backoff 1 s
    yield* settle
    yield* TestClock.adjust("20 seconds")
    network.sockets[1]!.drop(1000, "")
    yield* settle
    yield* TestClock.adjust("1999 millis")
    yield* settle
    assert.strictEqual(network.sockets.length, 2, "backoff has grown to 2 s")
    yield* TestClock.adjust("1 millis")
    yield* settle
    assert.strictEqual(network.sockets.length, 3)
    yield* TestClock.adjust("31 seconds")
    yield* settle
    assert.deepStrictEqual(network.sockets[2]!.sentTypes(), ["identify", "ping"])
    network.sockets[2]!.drop(1001, "going away")
    yield* settle
    assert.strictEqual(network.sockets.length, 4, "a healthy connection resets the backoff: redialled at once")
  }).pipe(Effect.provide(noJitter)))

  it.effect("close 1008 `cooldown active: retry in 30s`: the next dial waits at least 30 s, past the backoff cap", () => Effect.gen(function*() {
    const logs = captureLogs()
    const { network } = yield* setup((s) => queueMicrotask(() => { s.open(); s.drop(1008, "cooldown active: retry in 30s") }),
      { ...settings, reconnectMaxMs: 10_000 }).pipe(Effect.provide(logs.layer))
    yield* settle
    yield* TestClock.adjust("100 seconds")
    yield* settle
    assert.deepStrictEqual(dialGaps(network.sockets), [30_000, 30_000, 30_000])
    assert.isTrue(logs.lines.some((l) => l.text.includes("1008") && l.text.includes("cooldown active: retry in 30s")))
  }).pipe(Effect.provide(noJitter)))

  it.effect("10,000 bad frames: a bounded number of log lines, then a summary; droppedFrames counts every one", () => Effect.gen(function*() {
    const logs = captureLogs()
    const { network, hub } = yield* setup((s) => queueMicrotask(() => { s.answerPings().open(); s.receive({ type: "identified" }) })).pipe(Effect.provide(logs.layer))
    yield* settle
    const socket = network.sockets[0]!
    const garbage = ["{bad", "[]", "42", `{"type":7}`, `{"type":"task_ack","task_id":5}`]
    for (let i = 0; i < 10_000; i++) socket.receive(garbage[i % garbage.length]!)
    for (let i = 0; i < 100; i++) yield* settle
    assert.strictEqual(yield* hub.droppedFrames!, 10_000)
    yield* advance(60_000, 1000)
    const dropLines = logs.lines.filter((l) => l.text.includes("dropped"))
    assert.isAtMost(dropLines.length, 25, dropLines.slice(0, 30).map((l) => l.text).join("\n"))
    const summary = dropLines.filter((l) => /\d+ more frames dropped in the last \d+ s/.test(l.text))
    assert.strictEqual(summary.length, 1, dropLines.map((l) => l.text).join("\n"))
    const logged = dropLines.length - summary.length
    assert.include(summary[0]!.text, `${10_000 - logged} more frames dropped`)
    assert.include(summary[0]!.text, "frame is not JSON")
    assert.strictEqual(socket.readyState, 1, "the connection stays up")
    assert.strictEqual(yield* hub.droppedFrames!, 10_000)
  }))

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
    assert.strictEqual(network.sockets.length, 1, "never healthy: the backoff is not reset")
    const droppedAt = yield* Clock.currentTimeMillis
    yield* advance(900)
    assert.strictEqual(network.sockets.length, 1, "not redialled at once")
    yield* advance(300)
    assert.strictEqual(network.sockets.length, 2, "dialled again after the first backoff step")
    const redial = network.sockets[1]!.createdAt - droppedAt
    assert.isTrue(redial >= 1000 && redial <= 1100, `redialled ${redial} ms after the drop`)
  }).pipe(Effect.provide(noJitter)))

  it.effect("a pong keeps the connection; pings come every heartbeat_interval_ms", () => Effect.gen(function*() {
    const { network } = yield* setup((s) => queueMicrotask(() => { s.answerPings().open(); s.receive({ type: "identified" }) }))
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

/**
 * Issue 12, oversized frames: the `ws` client kept its 100 MiB default `maxPayload`, so a 90 MB frame was buffered
 * whole (RSS 78 → 443 MB) before `max_message_bytes` was applied. The HubClient now dials with `maxPayload` just
 * over `max_message_bytes`: `ws` refuses the frame as it arrives (and, since it cannot skip a frame, closes the
 * connection with 1009); the sidecar logs one line naming the limit, reconnects with backoff, and goes on.
 *
 * The hub here streams the frame from one reused 64 KiB buffer over the raw TCP socket, so the test process
 * (which also runs the HubClient) never holds it: any RSS growth is the client's.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger, Option, Stream } from "effect"
import type { AddressInfo, Socket as NetSocket } from "node:net"
import { type WebSocket, WebSocketServer } from "ws"
import { defaultSettings } from "../../src/domain/Config.ts"
import type { HubMessage } from "../../src/domain/Protocol.ts"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { HubClient } from "../../src/services/HubClient.ts"
import { SidecarConfig } from "../../src/services/SidecarConfig.ts"

const MiB = 1024 * 1024
const chunk = Buffer.alloc(64 * 1024, "a")

/** A server-to-client (unmasked) frame header. */
const frameHeader = (opcode: number, fin: boolean, length: number): Buffer => {
  const header = Buffer.alloc(10)
  header[0] = (fin ? 0x80 : 0) | opcode
  header[1] = 127
  header.writeBigUInt64BE(BigInt(length), 2)
  return header
}

/** Writes a `total`-byte text message in frames of `frameBytes`, with back-pressure, until done or the socket goes. */
const streamTextMessage = async (socket: NetSocket, total: number, frameBytes: number): Promise<number> => {
  let sent = 0
  const write = (data: Buffer) => new Promise<boolean>((resolve) => {
    if (socket.destroyed || !socket.writable) return resolve(false)
    if (socket.write(data)) return resolve(true)
    const done = (ok: boolean) => () => { socket.off("drain", onDrain); socket.off("close", onClose); resolve(ok) }
    const onDrain = done(true)
    const onClose = done(false)
    socket.once("drain", onDrain)
    socket.once("close", onClose)
  })
  for (let offset = 0; offset < total; offset += frameBytes) {
    const length = Math.min(frameBytes, total - offset)
    if (!(await write(frameHeader(offset === 0 ? 0x1 : 0x0, offset + length >= total, length)))) return sent
    for (let left = length; left > 0; left -= chunk.length) {
      if (!(await write(left >= chunk.length ? chunk : chunk.subarray(0, left)))) return sent
      sent += Math.min(left, chunk.length)
    }
  }
  return sent
}

interface BigFrameHub {
  readonly url: string
  readonly connections: () => number
  /** Bytes of the big message written before the client went away. */
  readonly bigSent: () => number
}

/** 1st connection: `identified`, then one oversized text message. Later ones: `identified`, then a task. */
const bigFrameHub = (total: number, frameBytes: number) => Effect.acquireRelease(
  Effect.callback<{ readonly server: WebSocketServer; readonly hub: BigFrameHub }, Error>((resume) => {
    let connections = 0
    let bigSent = 0
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    server.on("connection", (ws: WebSocket) => {
      const n = ++connections
      ws.on("error", () => {})
      ws.on("message", (data) => {
        if ((JSON.parse(String(data)) as { type?: unknown }).type !== "identify") return
        ws.send(JSON.stringify({ type: "identified", agent_id: "agent-1" }), () => {
          if (n > 1) return ws.send(JSON.stringify({ type: "task_assign", task_id: "after-big", description: "d" }))
          const raw = (ws as unknown as { _socket: NetSocket })._socket
          raw.on("error", () => {})
          void streamTextMessage(raw, total, frameBytes).then((sent) => { bigSent = sent })
        })
      })
    })
    server.once("listening", () => resume(Effect.succeed({
      server,
      hub: {
        url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`,
        connections: () => connections,
        bigSent: () => bigSent
      }
    })))
    server.once("error", (e) => resume(Effect.fail(e)))
  }),
  ({ server }) => Effect.callback<void>((resume) => {
    for (const ws of server.clients) ws.terminate()
    server.close(() => resume(Effect.void))
  })
)

const oversized = (name: string, total: number, frameBytes: number) =>
  it.live(name, () => Effect.gen(function*() {
    const { hub } = yield* bigFrameHub(total, frameBytes)
    const lines: Array<string> = []
    const logger = Logger.make(({ message }) => {
      lines.push((Array.isArray(message) ? message : [message]).map((m) => typeof m === "string" ? m : JSON.stringify(m)).join(" "))
    })
    const settings = defaultSettings("/tmp/unused", { hubUrl: hub.url, reconnectInitialMs: 200 }) // max_message_bytes: 1 MiB
    const rss = () => process.memoryUsage().rss
    const before = rss()
    let peak = before
    const sampler = setInterval(() => { peak = Math.max(peak, rss()) }, 2)
    yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(sampler)))

    const client = yield* Layer.build(HubClient.layer.pipe(Layer.provide([PlatformLayer, SidecarConfig.layer(settings)]))).pipe(
      Effect.provide(Logger.layer([logger])),
      Effect.map((context) => context.mapUnsafe.get(HubClient.key) as HubClient["Service"])
    )
    // the tasks go on: after the refusal the client reconnects and the next connection's task arrives
    const next = yield* client.messages.pipe(
      Stream.filter((m: HubMessage) => m.type === "task_assign"),
      Stream.runHead,
      Effect.timeoutOption("10 seconds"),
      Effect.map(Option.flatten)
    )
    clearInterval(sampler)
    peak = Math.max(peak, rss())
    const growthMb = (peak - before) / 1e6
    const limitLines = lines.filter((l) => l.includes(`max_message_bytes (${settings.maxMessageBytes} bytes)`))
    console.log(`hubclient-maxpayload [${name}]: RSS ${(before / 1e6).toFixed(0)} MB → peak ${(peak / 1e6).toFixed(0)} MB (+${growthMb.toFixed(1)} MB); hub wrote ${(hub.bigSent() / 1e6).toFixed(1)} MB of ${(total / 1e6).toFixed(0)} MB; ${hub.connections()} connections; size-limit log lines: ${limitLines.length}`)

    assert.isBelow(growthMb, 40, "the frame was not buffered whole")
    assert.strictEqual(next._tag, "Some", "a task arrived after the oversized frame")
    assert.isBelow(hub.bigSent(), 50 * MiB, "the client stopped reading soon after the limit")
    assert.strictEqual(limitLines.length, 1, lines.join("\n"))
    assert.strictEqual(yield* client.droppedFrames!, 1)
    assert.strictEqual(hub.connections(), 2, "reconnected once")
  }), 60_000)

describe("HubClient refuses an oversized frame at the socket, before it is buffered (issue 12)", () => {
  oversized("one 200 MB text message, streamed in 1 MiB fragments", 200 * 1000 * 1000, MiB)
  oversized("one 90 MB text frame", 90 * 1000 * 1000, 90 * 1000 * 1000)
})

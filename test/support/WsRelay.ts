/**
 * A WebSocket relay between a sidecar and a hub, for integration tests: every sidecar connection gets its own
 * upstream connection to the hub, frames are passed both ways unchanged and recorded (the wire as both ends saw
 * it), closes are passed on with their code. `cut` drops every connection without a close handshake (both sides
 * see an abrupt loss, as with a network failure) and refuses new ones for a while.
 */
import { Effect, type Scope } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { type RawData, WebSocket, WebSocketServer } from "ws"

export interface WireFrame {
  readonly from: "sidecar" | "hub"
  /** The relay's connection number (one per sidecar connection). */
  readonly conn: number
  readonly at: number
  readonly json: { readonly type?: unknown; readonly [k: string]: unknown }
}

export interface Relay {
  /** Where the sidecar connects. */
  readonly url: string
  /** Every frame so far, in the order the relay saw them. */
  frames(): ReadonlyArray<WireFrame>
  /** Drops every connection abruptly and refuses new ones for `refuseMs` (until `allow()` when omitted). */
  cut(refuseMs?: number): void
  /** Accepts connections again. */
  allow(): void
  /** Open sidecar connections. */
  readonly open: () => number
}

const MAX_FRAME_BYTES = 16 * 1024 * 1024
/** Codes a peer may send in a close frame (1005/1006/1015 are only ever reported, never sent). */
const sendable = (code: number): boolean => (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)

const passClose = (to: WebSocket, code: number, reason: Buffer): void => {
  if (to.readyState === WebSocket.CLOSED) return
  if (to.readyState === WebSocket.OPEN && sendable(code)) to.close(code, reason.toString("utf8"))
  else to.terminate()
}

const text = (data: RawData): string =>
  (Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString("utf8")

const parse = (raw: string): WireFrame["json"] => {
  try {
    const v: unknown = JSON.parse(raw)
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as WireFrame["json"]) : { type: undefined, raw }
  } catch {
    return { type: undefined, raw }
  }
}

/** Starts a relay on 127.0.0.1 (free port) to `target` (a `ws://` URL); it stops with the scope. */
export const makeRelay = (target: string): Effect.Effect<Relay, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ relay: Relay; stop: () => Promise<void> }>((resume) => {
      const frames: Array<WireFrame> = []
      const pairs = new Set<{ down: WebSocket; up: WebSocket }>()
      let refuseUntil = 0
      let nextConn = 1
      const server = createServer((_req, res) => {
        res.writeHead(404).end()
      })
      const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES })
      server.on("upgrade", (req, socket, head) => {
        if (Date.now() < refuseUntil) return socket.destroy()
        wss.handleUpgrade(req, socket, head, (down) => {
          const conn = nextConn++
          const up = new WebSocket(target, { maxPayload: MAX_FRAME_BYTES })
          const pair = { down, up }
          pairs.add(pair)
          const early: Array<{ data: RawData; binary: boolean }> = []
          const record = (from: WireFrame["from"], data: RawData) => frames.push({ from, conn, at: Date.now(), json: parse(text(data)) })
          down.on("message", (data, binary) => {
            record("sidecar", data)
            if (up.readyState === WebSocket.OPEN) up.send(data, { binary })
            else early.push({ data, binary })
          })
          up.on("open", () => {
            for (const m of early.splice(0)) up.send(m.data, { binary: m.binary })
          })
          up.on("message", (data, binary) => {
            record("hub", data)
            if (down.readyState === WebSocket.OPEN) down.send(data, { binary })
          })
          up.on("close", (code, reason) => {
            pairs.delete(pair)
            passClose(down, code, reason)
          })
          down.on("close", (code, reason) => {
            pairs.delete(pair)
            if (up.readyState === WebSocket.CONNECTING) up.terminate()
            else passClose(up, code, reason)
          })
          up.on("error", () => down.terminate())
          down.on("error", () => up.terminate())
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        const relay: Relay = {
          url: `ws://127.0.0.1:${port}/ws`,
          frames: () => frames,
          cut: (refuseMs = Number.POSITIVE_INFINITY) => {
            refuseUntil = Date.now() + refuseMs
            for (const { down, up } of pairs) {
              down.terminate()
              up.terminate()
            }
            pairs.clear()
          },
          allow: () => {
            refuseUntil = 0
          },
          open: () => pairs.size
        }
        const stop = () => new Promise<void>((done) => {
          for (const { down, up } of pairs) {
            down.terminate()
            up.terminate()
          }
          wss.close()
          server.close(() => done())
          server.closeAllConnections()
        })
        resume(Effect.succeed({ relay, stop }))
      })
    }),
    ({ stop }) => Effect.promise(stop)
  ).pipe(Effect.map(({ relay }) => relay))

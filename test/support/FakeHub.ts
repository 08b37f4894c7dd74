/**
 * A scriptable hub for integration tests: a real `ws` server on 127.0.0.1 that records every frame the
 * sidecar sends, answers the protocol's basics (identify, ping, terminal reports, recovery) as configured,
 * and lets a test push any frame — including garbage — or restart the server on the same port.
 */
import { Effect, Scope } from "effect"
import type { AddressInfo } from "node:net"
import { WebSocket, WebSocketServer } from "ws"

export interface HubFrame {
  readonly type: string
  readonly [key: string]: unknown
}

export interface FakeHubOptions {
  /** Answer `identify` with `identified` (default true). */
  readonly identify?: boolean
  /** Answer `ping` with `pong` (default true). */
  readonly pong?: boolean
  /** Ack `task_complete`/`task_failed` with a terminal `task_ack` (default true). */
  readonly ackReports?: boolean
  /** Answer `task_recovering` with `task_continue` (default true). */
  readonly continueRecovering?: boolean
}

export interface FakeHub {
  readonly url: string
  readonly port: number
  /** Every frame received, in order, across connections. */
  readonly frames: Array<HubFrame>
  readonly closeCodes: Array<number>
  readonly connections: () => number
  readonly options: { -readonly [K in keyof FakeHubOptions]-?: boolean }
  /** Sends raw text (or an object as JSON) to every connected sidecar. */
  send(frame: string | Record<string, unknown>): void
  /** Sends a binary WebSocket frame to every connected sidecar. */
  sendBinary(bytes: Uint8Array): void
  /** Sends these bytes as a *text* frame, unchecked (e.g. invalid UTF-8). */
  sendRawText(bytes: Uint8Array): void
  /** Waits for the n-th (1-based) frame matching `predicate`. */
  waitFor(predicate: (f: HubFrame) => boolean, options?: { readonly count?: number; readonly timeoutMs?: number }): Effect.Effect<HubFrame, Error>
  count(predicate: (f: HubFrame) => boolean): number
  stop: Effect.Effect<void>
  start: Effect.Effect<void, Error>
  /** Kills connections abruptly (no close frame), like a network loss. */
  dropConnections(): void
}

const listen = (port: number) => Effect.callback<WebSocketServer, Error>((resume) => {
  const server = new WebSocketServer({ host: "127.0.0.1", port })
  server.once("listening", () => resume(Effect.succeed(server)))
  server.once("error", (e) => resume(Effect.fail(e)))
})

export const makeFakeHub = (options: FakeHubOptions = {}): Effect.Effect<FakeHub, Error, Scope.Scope> => Effect.gen(function*() {
  const opts = { identify: true, pong: true, ackReports: true, continueRecovering: true, ...options }
  const frames: Array<HubFrame> = []
  const closeCodes: Array<number> = []
  const sockets = new Set<WebSocket>()
  let server: WebSocketServer | undefined
  let port = 0

  const attach = (s: WebSocketServer) => {
    s.on("connection", (ws) => {
      sockets.add(ws)
      ws.on("close", (code) => { closeCodes.push(code); sockets.delete(ws) })
      ws.on("message", (data) => {
        let frame: HubFrame
        try {
          frame = JSON.parse(String(data)) as HubFrame
        } catch {
          return
        }
        frames.push(frame)
        const reply = (m: Record<string, unknown>) => ws.send(JSON.stringify({ ...m, protocol_version: 1 }))
        if (frame.type === "identify" && opts.identify) reply({ type: "identified", agent_id: frame["agent_id"] })
        if (frame.type === "ping" && opts.pong) reply({ type: "pong", timestamp: 1 })
        if ((frame.type === "task_complete" || frame.type === "task_failed") && opts.ackReports) {
          reply({ type: "task_ack", task_id: frame["task_id"], status: frame.type === "task_complete" ? "complete" : "failed" })
        }
        if (frame.type === "task_recovering" && opts.continueRecovering) reply({ type: "task_continue", task_id: frame["task_id"] })
        // as AgentCom does for a task still assigned to the agent under that generation
        if (frame.type === "state_report") reply({ type: "state_report_ack", task_id: frame["task_id"], action: "continue" })
      })
    })
  }

  const start = Effect.gen(function*() {
    const s = yield* listen(port)
    port = (s.address() as AddressInfo).port
    attach(s)
    server = s
  })
  const stop = Effect.callback<void>((resume) => {
    const s = server
    server = undefined
    if (s === undefined) return resume(Effect.void)
    for (const ws of sockets) ws.terminate()
    s.close(() => resume(Effect.void))
  })
  yield* start
  yield* Effect.addFinalizer(() => stop)

  const count = (predicate: (f: HubFrame) => boolean) => frames.filter(predicate).length
  const waitFor = (predicate: (f: HubFrame) => boolean, o: { readonly count?: number; readonly timeoutMs?: number } = {}) =>
    Effect.gen(function*() {
      const n = o.count ?? 1
      while (true) {
        const matching = frames.filter(predicate)
        if (matching.length >= n) return matching[n - 1]!
        yield* Effect.sleep(5)
      }
    }).pipe(
      Effect.timeoutOrElse({
        duration: o.timeoutMs ?? 10_000,
        orElse: () => Effect.fail(new Error(`timed out waiting for a frame; got: ${frames.map((f) => f.type).join(",")}`))
      })
    )

  return {
    get url() { return `ws://127.0.0.1:${port}/ws` },
    get port() { return port },
    frames,
    closeCodes,
    connections: () => sockets.size,
    options: opts,
    send: (frame) => {
      const text = typeof frame === "string" ? frame : JSON.stringify(frame)
      for (const ws of sockets) ws.send(text)
    },
    sendBinary: (bytes) => { for (const ws of sockets) ws.send(bytes, { binary: true }) },
    sendRawText: (bytes) => { for (const ws of sockets) ws.send(bytes, { binary: false }) },
    waitFor,
    count,
    stop,
    start,
    dropConnections: () => { for (const ws of sockets) ws.terminate() }
  } satisfies FakeHub
})

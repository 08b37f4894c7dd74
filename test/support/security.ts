/**
 * Helpers for the hostile-input tests (test/security): a FakeHub that can also send binary frames, a live
 * sidecar with the real file logger and a capturing console, and file-tree tools (list without following
 * symlinks, grep every byte written).
 */
import { Console, Effect, Layer, Scope } from "effect"
import { TestConsole } from "effect/testing"
import * as NFS from "node:fs"
import type { AddressInfo } from "node:net"
import * as NPath from "node:path"
import { WebSocket, WebSocketServer } from "ws"
import type { Settings } from "../../src/domain/Config.ts"
import { LoggingLayer } from "../../src/layers/Logging.ts"
import { SidecarLive } from "../../src/program.ts"
import type { FakeHub, FakeHubOptions, HubFrame } from "./FakeHub.ts"

// ---- a FakeHub that can send binary frames ------------------------------------------------------------

export interface HostileHub extends FakeHub {
  /** Sends a binary WebSocket frame to every connected sidecar. */
  sendBinary(bytes: Uint8Array): void
  /** Sends these bytes as a *text* frame, unchecked (e.g. invalid UTF-8). */
  sendRawText(bytes: Uint8Array): void
}

/** Same behaviour as `makeFakeHub` (identify → identified, ping → pong, reports acked), plus `sendBinary`. */
export const makeHostileHub = (options: FakeHubOptions = {}): Effect.Effect<HostileHub, Error, Scope.Scope> => Effect.gen(function*() {
  const opts = { identify: true, pong: true, ackReports: true, continueRecovering: true, ...options }
  const frames: Array<HubFrame> = []
  const closeCodes: Array<number> = []
  const sockets = new Set<WebSocket>()
  let server: WebSocketServer | undefined
  let port = 0

  const listen = (p: number) => Effect.callback<WebSocketServer, Error>((resume) => {
    const s = new WebSocketServer({ host: "127.0.0.1", port: p })
    s.once("listening", () => resume(Effect.succeed(s)))
    s.once("error", (e) => resume(Effect.fail(e)))
  })
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

  const waitFor = (predicate: (f: HubFrame) => boolean, o: { readonly count?: number; readonly timeoutMs?: number } = {}) =>
    Effect.gen(function*() {
      const n = o.count ?? 1
      while (true) {
        const matching = frames.filter(predicate)
        if (matching.length >= n) return matching[n - 1]!
        yield* Effect.sleep(5)
      }
    }).pipe(Effect.timeoutOrElse({
      duration: o.timeoutMs ?? 10_000,
      orElse: () => Effect.fail(new Error(`timed out waiting for a frame; got: ${frames.map((f) => f.type).join(",")}`))
    }))

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
    sendBinary: (bytes) => {
      for (const ws of sockets) ws.send(bytes, { binary: true })
    },
    sendRawText: (bytes) => {
      for (const ws of sockets) ws.send(bytes, { binary: false })
    },
    waitFor,
    count: (predicate) => frames.filter(predicate).length,
    stop,
    start,
    dropConnections: () => { for (const ws of sockets) ws.terminate() }
  } satisfies HostileHub
})

// ---- a live sidecar with real logging ----------------------------------------------------------------

export interface LoggedSidecar {
  /** Every line the stdout (logfmt) logger printed, already scrubbed as the daemon would print it. */
  readonly consoleLines: Effect.Effect<ReadonlyArray<string>>
}

/**
 * Starts a whole live sidecar with `LoggingLayer(settings)` (stdout logfmt + JSON `log_file`), its console
 * captured. It stops (and the log file is flushed) when the surrounding scope closes.
 */
export const startLoggedSidecar = (settings: Settings): Effect.Effect<LoggedSidecar, unknown, Scope.Scope> => Effect.gen(function*() {
  const console = yield* TestConsole.make
  const consoleLayer = Layer.succeed(Console.Console, console)
  yield* Layer.build(SidecarLive(settings).pipe(Layer.provide(LoggingLayer(settings)), Layer.provide(consoleLayer)))
  return { consoleLines: console.logLines.pipe(Effect.map((lines) => lines.map(String))) }
})

// ---- file trees ---------------------------------------------------------------------------------------

export type EntryType = "file" | "dir" | "symlink" | "other"

/** Every path under `root` (relative, sorted) with its type; symlinks are listed, never followed. */
export const listTree = (root: string): Array<string> => {
  const out: Array<string> = []
  const walk = (dir: string) => {
    for (const name of NFS.readdirSync(dir)) {
      const full = NPath.join(dir, name)
      const st = NFS.lstatSync(full)
      const type: EntryType = st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other"
      out.push(`${NPath.relative(root, full)} (${type})`)
      if (type === "dir") walk(full)
    }
  }
  walk(root)
  return out.sort()
}

/** Regular files under `root` (symlinks not followed), with their bytes. */
export const readTree = (root: string): Array<{ readonly path: string; readonly bytes: Buffer }> => {
  const out: Array<{ path: string; bytes: Buffer }> = []
  const walk = (dir: string) => {
    for (const name of NFS.readdirSync(dir)) {
      const full = NPath.join(dir, name)
      const st = NFS.lstatSync(full)
      if (st.isDirectory()) walk(full)
      else if (st.isFile()) out.push({ path: full, bytes: NFS.readFileSync(full) })
    }
  }
  walk(root)
  return out
}

/** Files under `root` whose bytes contain `needle` (UTF-8), as "path: needle". */
export const grepTree = (root: string, needles: ReadonlyArray<string>): Array<string> =>
  readTree(root).flatMap(({ path, bytes }) => needles.filter((n) => bytes.includes(Buffer.from(n, "utf8"))).map((n) => `${path}: ${n}`))

/** Polls `check` every 10 ms until it holds, failing with `what` after `timeoutMs`. */
export const waitUntil = (what: string, check: () => boolean, timeoutMs = 5_000): Effect.Effect<void, Error> =>
  Effect.gen(function*() {
    while (!check()) yield* Effect.sleep(10)
  }).pipe(Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(new Error(`timed out waiting until ${what}`)) }))

/** The JSON lines of a log file written by `LoggingLayer`. */
export const readJsonLog = (file: string): Array<Record<string, unknown>> =>
  NFS.existsSync(file)
    ? NFS.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Record<string, unknown>)
    : []

export const mode = (path: string): number => NFS.lstatSync(path).mode & 0o777

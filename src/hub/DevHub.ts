/**
 * The development hub (`agent-sidecar hub`, SPEC §7): speaks AgentCom's hub protocol to sidecars at `/ws` (the
 * rules are in `state.ts`/`frames.ts`/`validation.ts`, each citing the AgentCom file it follows), serves a JSON API
 * and a live page on the same port, for local use, the zero-config `dev` mode and the project's tests.
 *
 * Its state lives in memory only: tasks, agents and timelines are gone when the process stops. `restart` simulates
 * a restart of the real hub, which keeps its tasks on disk. This layer owns the sockets, the clock and the timers
 * (acceptance timers, stuck sweep, reaper, idle timeout), and runs every transition under one lock so frames, API
 * calls and timers see a single order.
 */
import { randomBytes } from "node:crypto"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { Clock, Context, Effect, FiberSet, Layer, Queue, Redacted, Result, Semaphore, Stream, SubscriptionRef } from "effect"
import { type RawData, WebSocket, WebSocketServer } from "ws"
import { DevHubError, InvalidTask, TaskFinished, TaskNotFound } from "./errors.ts"
import { onFrame } from "./frames.ts"
import { type Api, handleRequest, type HubSnapshot, hostGuard, sameOrigin, settingsView } from "./http.ts"
import { encodeHubFrame, MAX_JSON_DEPTH, nestsDeeperThan } from "./inbound.ts"
import { cancel, submit, type TaskInput } from "./requests.ts"
import { agentView, type AgentView, defaultSettings, emptyState, type HubState, type Out, type Settings, type Step, taskView, type TaskView } from "./state.ts"
import { disconnect, reap, restart, type RestartMode, sweepStuck, tick } from "./timers.ts"

export type { AgentView, HubSnapshot, RestartMode, TaskInput, TaskView }

export interface DevHubOptions {
  /** 0 picks a free port. */
  readonly port: number
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** When set, `identify` must carry it, or is answered `invalid_token`; none: any token is accepted. */
  readonly token?: string | Redacted.Redacted<string> | undefined
  /** A task assigned and not accepted within this is taken back. AgentCom: 60 s. */
  readonly acceptanceTimeoutMs?: number | undefined
  /** A held task with no sign of life this long is taken back (twice this while its agent works). AgentCom: 10 min. */
  readonly stuckThresholdMs?: number | undefined
  /** How often the stuck sweep runs. AgentCom: 30 s. */
  readonly stuckSweepMs?: number | undefined
  /** Agents that have not sent `ping` for this long are cut off. AgentCom: 60 s. */
  readonly reaperTtlMs?: number | undefined
  /** How often the reaper runs. AgentCom: 30 s. */
  readonly reaperSweepMs?: number | undefined
  /** A connection that sends nothing for this long is closed (the real hub's WebSocket `timeout`). AgentCom: 60 s. */
  readonly idleTimeoutMs?: number | undefined
  /** `task_failed` reports a task takes before it is dead-lettered, unless submitted with `max_retries`. AgentCom: 3. */
  readonly maxRetries?: number | undefined
  /** Test hook: tasks are offered to an agent only this long after it identified (checked every 100 ms). Default 0. */
  readonly assignDelayMs?: number | undefined
}

/** Frames up to 16 MiB: a `task_complete` carries the agent's whole result (a sidecar allows 10 MiB). */
const MAX_FRAME_BYTES = 16 * 1024 * 1024
/** A task must fit in a sidecar's default `max_message_bytes` (1 MiB) once wrapped in `task_assign`. */
const MAX_TASK_BYTES = 1_000_000
/** How often acceptance timers and the idle timeout are checked. */
const TICK_MS = 100
const AgentIdPattern = /^[A-Za-z0-9._-]{1,64}$/

/** Text and binary frames alike are read as UTF-8 JSON, as existing hubs do. */
const toText = (data: RawData): string =>
  (Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString("utf8")

type WsEvent =
  | { readonly _tag: "opened"; readonly conn: number }
  | { readonly _tag: "frame"; readonly conn: number; readonly raw: string }
  | { readonly _tag: "closed"; readonly conn: number }

export class DevHub extends Context.Service<DevHub, {
  /** HTTP base, e.g. `http://127.0.0.1:8787`; the live page is at `${url}/`. */
  readonly url: string
  /** Where sidecars connect, e.g. `ws://127.0.0.1:8787/ws`. */
  readonly wsUrl: string
  readonly port: number
  /** Queues a task and returns its id (`t-<hex>`); it is offered to an agent at once if one may take it. */
  submit(input: TaskInput): Effect.Effect<string, InvalidTask>
  /** Every task, oldest first. */
  readonly tasks: Effect.Effect<ReadonlyArray<TaskView>>
  task(taskId: string): Effect.Effect<TaskView, TaskNotFound>
  /** Cancels an unfinished task; its holder, if connected, gets `task_cancelled`. */
  cancel(taskId: string): Effect.Effect<void, TaskNotFound | TaskFinished>
  /** Identified, connected agents. */
  readonly agents: Effect.Effect<ReadonlyArray<AgentView>>
  /** The current snapshot, then one per change. */
  readonly changes: Stream.Stream<HubSnapshot>
  /**
   * Simulates a restart of the hub: tasks are kept, every connection is dropped. `graceful` (a normal stop) takes
   * each connected agent's current task back first, so it is offered again with a new generation when the agent
   * returns; `crash` leaves held tasks assigned (the acceptance timer then decides).
   */
  restart(mode: RestartMode): Effect.Effect<void>
}>()("agent-sidecar/DevHub") {
  static readonly layer = (options: DevHubOptions): Layer.Layer<DevHub, DevHubError> => Layer.effect(DevHub, make(options))
}

const make = (options: DevHubOptions) => Effect.gen(function*() {
  const host = options.host ?? "127.0.0.1"
  const or = <K extends Exclude<keyof Settings, "token">>(key: K): Settings[K] => options[key] ?? defaultSettings[key]
  const settings: Settings = {
    token: options.token === undefined ? undefined : Redacted.isRedacted(options.token) ? Redacted.value(options.token) : options.token,
    acceptanceTimeoutMs: or("acceptanceTimeoutMs"), stuckThresholdMs: or("stuckThresholdMs"), stuckSweepMs: or("stuckSweepMs"),
    reaperTtlMs: or("reaperTtlMs"), reaperSweepMs: or("reaperSweepMs"), maxRetries: or("maxRetries"), assignDelayMs: or("assignDelayMs")
  }
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000
  const state = yield* SubscriptionRef.make<HubState>(emptyState)
  const lock = yield* Semaphore.make(1)
  const sockets = new Map<number, WebSocket>()
  /** When each connection last sent a frame (for the idle timeout). */
  const lastFrame = new Map<number, number>()
  let nextConn = 1
  const inbound = yield* Queue.unbounded<WsEvent>()
  const run = yield* FiberSet.makeRuntime<never>()

  const perform = (out: ReadonlyArray<Out>) => Effect.forEach(out, (o) => {
    switch (o._tag) {
      case "send":
        return Effect.sync(() => {
          const ws = sockets.get(o.conn)
          if (ws?.readyState === WebSocket.OPEN) ws.send(encodeHubFrame(o.frame))
        })
      case "close":
        return Effect.sync(() => sockets.get(o.conn)?.close(o.code, o.reason))
      case "terminate":
        return Effect.sync(() => sockets.get(o.conn)?.terminate())
      case "log":
        return o.level === "warn" ? Effect.logWarning(o.message) : o.level === "info" ? Effect.logInfo(o.message) : Effect.logDebug(o.message)
    }
  }, { discard: true })

  /** Runs one transition: state and sends change together, in one order for every source of events. */
  const transact = <E>(f: (s: HubState, now: number) => Result.Result<Step, E>): Effect.Effect<void, E> =>
    lock.withPermits(1)(Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const before = yield* SubscriptionRef.get(state)
      const step = f(before, now)
      if (Result.isFailure(step)) return yield* Effect.fail(step.failure)
      if (step.success.state !== before) yield* SubscriptionRef.set(state, step.success.state)
      yield* perform(step.success.out)
    }))
  const always = (f: (s: HubState, now: number) => Step) => transact<never>((s, now) => Result.succeed(f(s, now)))

  const api: Api = {
    submit: Effect.fn("DevHub.submit")(function*(input: TaskInput) {
      if (input.description.trim() === "") return yield* new InvalidTask({ reason: "description must be a non-empty string" })
      if (input.max_retries !== undefined && (!Number.isInteger(input.max_retries) || input.max_retries < 0)) {
        return yield* new InvalidTask({ reason: "max_retries must be an integer >= 0" })
      }
      if (input.agent_id !== undefined && !AgentIdPattern.test(input.agent_id)) {
        return yield* new InvalidTask({ reason: "agent_id must match [A-Za-z0-9._-]{1,64}" })
      }
      if (nestsDeeperThan(input.metadata ?? {}, MAX_JSON_DEPTH)) {
        return yield* new InvalidTask({ reason: `metadata is nested deeper than ${MAX_JSON_DEPTH} levels` })
      }
      const bytes = Buffer.byteLength(JSON.stringify({ description: input.description, metadata: input.metadata ?? {} }))
      if (bytes > MAX_TASK_BYTES) return yield* new InvalidTask({ reason: `task is ${bytes} bytes; the limit is ${MAX_TASK_BYTES}` })
      const taskId = `t-${randomBytes(8).toString("hex")}`
      yield* Effect.annotateCurrentSpan({ taskId })
      yield* always((s, now) => submit(s, taskId, input, now, settings))
      return taskId
    }),
    cancel: Effect.fn("DevHub.cancel")(function*(taskId: string) {
      yield* Effect.annotateCurrentSpan({ taskId })
      yield* transact((s, now) =>
        Result.mapError(cancel(s, taskId, now, settings), (r) =>
          r.kind === "not_found" ? new TaskNotFound({ taskId }) : new TaskFinished({ taskId, state: r.state })))
    }),
    tasks: Effect.map(SubscriptionRef.get(state), (s) => [...s.tasks.values()].map(taskView)),
    agents: Effect.map(SubscriptionRef.get(state), (s) => [...s.agents.values()].map((a) => agentView(a, s.tasks))),
    restart: Effect.fn("DevHub.restart")(function*(mode: RestartMode) {
      yield* always((s, now) => restart(s, now, settings, mode))
      // Connections that never identified go too.
      yield* Effect.sync(() => {
        for (const ws of sockets.values()) {
          if (mode === "graceful") ws.close(1001, "hub shutting down")
          else ws.terminate()
        }
      })
    }),
    changes: SubscriptionRef.changes(state).pipe(Stream.map((s): HubSnapshot => ({
      settings: settingsView(settings, idleTimeoutMs),
      agents: [...s.agents.values()].map((a) => agentView(a, s.tasks)),
      tasks: [...s.tasks.values()].map(taskView)
    })))
  }
  const handle = handleRequest(api, hostGuard(host))

  const { port } = yield* Effect.acquireRelease(
    Effect.callback<{ server: Server; wss: WebSocketServer; port: number }, DevHubError>((resume) => {
      const server = createServer((req, res) => {
        run(handle(req, res))
      })
      const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES })
      const hostAllowed = hostGuard(host)
      server.on("upgrade", (req, socket, head) => {
        const path = new URL(req.url ?? "/", "http://hub").pathname
        if (path !== "/ws" || !hostAllowed(req.headers.host) || !sameOrigin(req)) {
          socket.end(`HTTP/1.1 ${path === "/ws" ? "403 Forbidden" : "404 Not Found"}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
          return
        }
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req))
      })
      wss.on("connection", (ws: WebSocket) => {
        const conn = nextConn++
        sockets.set(conn, ws)
        Queue.offerUnsafe(inbound, { _tag: "opened", conn })
        ws.on("message", (data) => {
          Queue.offerUnsafe(inbound, { _tag: "frame", conn, raw: toText(data) })
        })
        // A socket error is followed by `close`, which is where the agent is let go.
        ws.on("error", () => {})
        ws.on("close", () => {
          sockets.delete(conn)
          Queue.offerUnsafe(inbound, { _tag: "closed", conn })
        })
      })
      const address = `${host}:${options.port}`
      server.once("error", (cause) => resume(Effect.fail(new DevHubError({ op: "listen", address, cause }))))
      server.listen(options.port, host, () => {
        server.removeAllListeners("error")
        server.on("error", () => {})
        resume(Effect.succeed({ server, wss, port: (server.address() as AddressInfo).port }))
      })
    }),
    ({ server, wss }) => Effect.gen(function*() {
      // Sidecars get a proper close (1001, going away) when they answer in time, and are cut off otherwise.
      yield* Effect.callback<void>((resume) => {
        let open = wss.clients.size
        if (open === 0) return resume(Effect.void)
        for (const ws of wss.clients) {
          ws.once("close", () => --open === 0 && resume(Effect.void))
          ws.close(1001, "hub shutting down")
        }
      }).pipe(Effect.timeoutOption("1 second"))
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      yield* Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
    })
  )

  const hostForUrl = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host
  const url = `http://${hostForUrl}:${port}`
  const wsUrl = `ws://${hostForUrl}:${port}/ws`

  // Frames are handled one at a time in arrival order: `identify` must be seen before what follows it. A bug in
  // one transition is logged and skipped so that it cannot stop the hub.
  yield* Queue.take(inbound).pipe(
    Effect.tap((ev) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => {
      if (ev._tag === "closed") lastFrame.delete(ev.conn)
      else lastFrame.set(ev.conn, now)
    }))),
    Effect.flatMap((ev) =>
      ev._tag === "opened" ? Effect.void : always((s, now) =>
        ev._tag === "frame" ? onFrame(s, ev.conn, ev.raw, now, settings) : disconnect(s, ev.conn, now, settings)).pipe(
        Effect.catchCause((cause) => Effect.logError(`${ev._tag} event on connection #${ev.conn} failed`, cause))
      )),
    Effect.forever,
    Effect.annotateLogs({ service: "DevHub", fiber: "frames" }),
    Effect.forkScoped
  )
  const every = (ms: number, name: string, f: (s: HubState, now: number) => Step) =>
    Effect.sleep(ms).pipe(
      Effect.andThen(always(f)),
      Effect.catchCause((cause) => Effect.logError(`${name} failed`, cause)),
      Effect.forever,
      Effect.annotateLogs({ service: "DevHub", fiber: name }),
      Effect.forkScoped
    )
  yield* every(TICK_MS, "acceptance timers", (s, now) => tick(s, now, settings))
  yield* every(settings.stuckSweepMs, "stuck sweep", (s, now) => sweepStuck(s, now, settings))
  yield* every(settings.reaperSweepMs, "reaper", (s, now) => reap(s, now, settings))
  // The real hub's WebSocket handler closes a connection that sends nothing for its `timeout` (endpoint.ex).
  yield* Effect.sleep(TICK_MS).pipe(
    Effect.andThen(Clock.currentTimeMillis),
    Effect.flatMap((now) => Effect.sync(() => {
      for (const [conn, at] of lastFrame) if (now - at >= idleTimeoutMs) sockets.get(conn)?.close(1001, "idle timeout")
    })),
    Effect.forever,
    Effect.forkScoped
  )
  yield* Effect.logInfo(`dev hub listening on ${url} (sidecars: ${wsUrl})`).pipe(Effect.annotateLogs({ service: "DevHub" }))
  return DevHub.of({
    ...api,
    url,
    wsUrl,
    port,
    task: Effect.fn("DevHub.task")(function*(taskId: string) {
      const t = (yield* SubscriptionRef.get(state)).tasks.get(taskId)
      return t === undefined ? yield* new TaskNotFound({ taskId }) : taskView(t)
    })
  })
})

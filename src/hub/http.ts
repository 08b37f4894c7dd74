/**
 * The hub's HTTP side on node:http: the JSON API, the Server-Sent Events stream and the live page. Each request
 * is one Effect (run by the DevHub layer in its FiberSet, so shutdown interrupts them all).
 *
 * The API has no authentication: it is a local development tool and listens on 127.0.0.1 by default. What it
 * does guard against is a web page in the developer's browser driving it (a submitted task is an instruction to
 * a coding agent): requests must name this host (no DNS rebinding), mutations must be `application/json` (so
 * a cross-site form or no-cors fetch cannot send one without a preflight, which is never granted) and must not
 * come from another origin. The WebSocket upgrade checks the same host and origin.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Cause, Effect, Schema, Stream } from "effect"
import type { InvalidTask, TaskFinished, TaskNotFound } from "./errors.ts"
import { MAX_JSON_DEPTH, nestsDeeperThan } from "./inbound.ts"
import { pageCsp, pageHtml } from "./page.ts"
import type { TaskInput } from "./requests.ts"
import type { AgentView, Settings, TaskView } from "./state.ts"
import type { RestartMode } from "./timers.ts"

export const MAX_BODY_BYTES = 1024 * 1024

export interface HubSnapshot {
  /** The hub's timers and limits (settings), so the page and tests can see what this hub runs with. */
  readonly settings: Readonly<Record<string, number>>
  readonly agents: ReadonlyArray<AgentView>
  readonly tasks: ReadonlyArray<TaskView>
}

/** The snapshot's `settings`: the hub's timers, snake_case as the API writes them. */
export const settingsView = (s: Settings, idleTimeoutMs: number): HubSnapshot["settings"] => ({
  acceptance_timeout_ms: s.acceptanceTimeoutMs,
  stuck_threshold_ms: s.stuckThresholdMs,
  stuck_sweep_ms: s.stuckSweepMs,
  reaper_ttl_ms: s.reaperTtlMs,
  reaper_sweep_ms: s.reaperSweepMs,
  idle_timeout_ms: idleTimeoutMs,
  max_retries: s.maxRetries,
  assign_delay_ms: s.assignDelayMs
})

export interface Api {
  submit(input: TaskInput): Effect.Effect<string, InvalidTask>
  cancel(taskId: string): Effect.Effect<void, TaskNotFound | TaskFinished>
  readonly tasks: Effect.Effect<ReadonlyArray<TaskView>>
  readonly agents: Effect.Effect<ReadonlyArray<AgentView>>
  readonly changes: Stream.Stream<HubSnapshot>
  /** Simulates a hub restart (tasks kept, every connection dropped); see `restart` in timers.ts. */
  restart(mode: RestartMode): Effect.Effect<void>
}

class HttpFailure extends Schema.TaggedError<HttpFailure>()("HttpFailure", { status: Schema.Number, error: Schema.String }) {}

const SubmitBody = Schema.Struct({
  description: Schema.String,
  metadata: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
  agent_id: Schema.optionalKey(Schema.String),
  max_retries: Schema.optionalKey(Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0))))
})
const RestartBody = Schema.Struct({ mode: Schema.optionalKey(Schema.Literals(["graceful", "crash"])) })

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"])

/** Which `Host` names the hub answers to: loopback names, plus the bound address; anything when bound to all. */
export const hostGuard = (boundHost: string): (hostHeader: string | undefined) => boolean => {
  if (boundHost === "0.0.0.0" || boundHost === "::") return () => true
  const allowed = new Set([...LOOPBACK, boundHost.includes(":") ? `[${boundHost}]` : boundHost])
  return (hostHeader) => {
    if (hostHeader === undefined) return false
    try {
      return allowed.has(new URL(`http://${hostHeader}`).hostname)
    } catch {
      return false
    }
  }
}

/** A browser always sends `Origin` cross-site; same-origin page requests and non-browser clients pass. */
export const sameOrigin = (req: IncomingMessage): boolean => {
  const origin = req.headers.origin
  return origin === undefined || origin === `http://${req.headers.host ?? ""}`
}

const sendJson = (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void => {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    ...extra
  })
  res.end(text)
}

const readBody = (req: IncomingMessage): Effect.Effect<string, HttpFailure> =>
  Effect.callback<string, HttpFailure>((resume) => {
    const tooLarge = () => new HttpFailure({ status: 413, error: `request body over ${MAX_BODY_BYTES} bytes` })
    if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) return resume(Effect.fail(tooLarge()))
    const chunks: Array<Buffer> = []
    let size = 0
    const cleanup = () => {
      req.off("data", onData).off("end", onEnd).off("error", onError)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        cleanup()
        resume(Effect.fail(tooLarge()))
      } else chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
    }
    const onError = () => {
      cleanup()
      resume(Effect.fail(new HttpFailure({ status: 400, error: "request aborted" })))
    }
    req.on("data", onData).on("end", onEnd).on("error", onError)
    return Effect.sync(cleanup)
  })

const readJson = <S extends Schema.Decoder<unknown>>(req: IncomingMessage, schema: S) => Effect.gen(function*() {
  if (!sameOrigin(req)) return yield* new HttpFailure({ status: 403, error: "cross-origin request refused" })
  if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) {
    return yield* new HttpFailure({ status: 415, error: "content-type must be application/json" })
  }
  const text = yield* readBody(req)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return yield* new HttpFailure({ status: 400, error: `invalid JSON: ${e instanceof Error ? e.message : String(e)}` })
  }
  if (nestsDeeperThan(json, MAX_JSON_DEPTH)) return yield* new HttpFailure({ status: 400, error: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` })
  return yield* Schema.decodeUnknownEffect(schema)(json).pipe(
    Effect.mapError((e) => new HttpFailure({ status: 400, error: `invalid body: ${e.message.replaceAll("\n", " ")}` }))
  )
})

/** Streams one snapshot now and one after each change, until the client goes away. */
const events = (api: Api, req: IncomingMessage, res: ServerResponse) => Effect.gen(function*() {
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" })
  res.write("retry: 1000\n\n")
  const gone = Effect.callback<void>((resume) => {
    const onClose = () => resume(Effect.void)
    req.once("close", onClose)
    return Effect.sync(() => req.off("close", onClose))
  })
  yield* api.changes.pipe(
    // Each snapshot is the whole state, so a slow client only needs the newest one.
    Stream.buffer({ capacity: 1, strategy: "sliding" }),
    Stream.runForEach((snapshot) => Effect.sync(() => res.write(`data: ${JSON.stringify(snapshot)}\n\n`))),
    Effect.raceFirst(gone)
  )
  res.end()
})

const route = (api: Api, req: IncomingMessage, res: ServerResponse): Effect.Effect<void, HttpFailure> => {
  const path = new URL(req.url ?? "/", "http://hub").pathname
  const method = req.method ?? "GET"
  const only = (allowed: string, then: () => Effect.Effect<void, HttpFailure>) =>
    method === allowed || (allowed === "GET" && method === "HEAD")
      ? then()
      : Effect.fail(new HttpFailure({ status: 405, error: `use ${allowed} for ${path}` }))
  if (path === "/") {
    return only("GET", () => Effect.sync(() => {
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": pageCsp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer"
      })
      res.end(method === "HEAD" ? undefined : pageHtml)
    }))
  }
  if (path === "/api/events") return only("GET", () => events(api, req, res))
  if (path === "/api/agents") return only("GET", () => Effect.map(api.agents, (agents) => sendJson(res, 200, agents)))
  if (path === "/api/tasks") {
    if (method === "POST") {
      return Effect.gen(function*() {
        const body = yield* readJson(req, SubmitBody)
        const taskId = yield* api.submit(body).pipe(Effect.mapError((e) => new HttpFailure({ status: 400, error: e.message })))
        sendJson(res, 201, { task_id: taskId })
      })
    }
    return only("GET", () => Effect.map(api.tasks, (tasks) => sendJson(res, 200, tasks)))
  }
  if (path === "/api/hub/restart") {
    return only("POST", () => Effect.gen(function*() {
      if (!sameOrigin(req)) return yield* new HttpFailure({ status: 403, error: "cross-origin request refused" })
      const { mode = "graceful" } = yield* readJson(req, RestartBody)
      yield* api.restart(mode)
      sendJson(res, 200, { restarted: mode })
    }))
  }
  const cancel = /^\/api\/tasks\/([^/]+)\/cancel$/.exec(path)
  if (cancel !== null) {
    return only("POST", () => Effect.gen(function*() {
      if (!sameOrigin(req)) return yield* new HttpFailure({ status: 403, error: "cross-origin request refused" })
      let taskId: string
      try {
        taskId = decodeURIComponent(cancel[1]!)
      } catch {
        return yield* new HttpFailure({ status: 400, error: "malformed task id" })
      }
      yield* api.cancel(taskId).pipe(Effect.mapError((e) =>
        new HttpFailure({ status: e._tag === "TaskNotFound" ? 404 : 409, error: e.message })))
      sendJson(res, 200, { task_id: taskId, state: "cancelled" })
    }))
  }
  return Effect.fail(new HttpFailure({ status: 404, error: `no route for ${method} ${path}` }))
}

/** The request handler; every failure becomes a JSON `{ error }` response. */
export const handleRequest = (api: Api, hostAllowed: (host: string | undefined) => boolean) =>
(req: IncomingMessage, res: ServerResponse): Effect.Effect<void> =>
  (hostAllowed(req.headers.host)
    ? route(api, req, res)
    : Effect.fail(new HttpFailure({ status: 421, error: "unexpected Host header" }))).pipe(
      Effect.catchTag("HttpFailure", (e) =>
        Effect.sync(() => sendJson(res, e.status, { error: e.error }, e.status === 413 ? { connection: "close" } : {}))),
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.sync(() => res.destroy())
          : Effect.logError("request failed", cause).pipe(Effect.andThen(Effect.sync(() => {
            if (res.headersSent) res.destroy()
            else sendJson(res, 500, { error: "internal error" })
          }))))
    )

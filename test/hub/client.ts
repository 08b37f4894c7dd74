/**
 * Test helpers for the dev hub: a fresh hub per test, a raw `ws` client that also checks every frame of a type the sidecar
 * knows against the sidecar's own decoder (`decodeFrame`), and a small JSON fetch wrapper.
 */
import { get } from "node:http"
import { assert } from "@effect/vitest"
import { Deferred, Effect, Queue, References, Result, type Scope } from "effect"
import { WebSocket } from "ws"
import { DevHub, type DevHubOptions, type TaskView } from "../../src/hub/DevHub.ts"
import { decodeFrame, describeRejection, encodeOutbound } from "../../src/domain/Protocol.ts"
import type { HubFrame } from "../../src/hub/inbound.ts"

export type Hub = DevHub["Service"]

/** Runs `body` against a fresh hub on a free port (token "secret", AgentCom's timers unless given), logs quiet. */
export const withHub = <A, E>(body: (hub: Hub) => Effect.Effect<A, E, Scope.Scope>, options: Partial<DevHubOptions> = {}) =>
  Effect.gen(function*() {
    return yield* body(yield* DevHub)
  }).pipe(
    Effect.provide(DevHub.layer({ port: 0, token: "secret", ...options })),
    Effect.provideService(References.MinimumLogLevel, "Error")
  )

type Of<T extends HubFrame["type"]> = Extract<HubFrame, { type: T }>

export interface RawClient {
  /** Sends a JSON frame (with the sidecar's `protocol_version: 1`, which the hub ignores). */
  send(message: { readonly type: string; readonly [k: string]: unknown }): Effect.Effect<void>
  sendText(text: string): Effect.Effect<void>
  /** The next frame (fails the test after 5 s). */
  readonly next: Effect.Effect<HubFrame>
  /** The next frame, however long it takes (for long-running fake sidecars). */
  readonly take: Effect.Effect<HubFrame>
  /** The next frame, which must be of this type. */
  expect<T extends HubFrame["type"]>(type: T): Effect.Effect<Of<T>>
  /** Asserts that no frame arrives within `ms`. */
  expectSilence(ms: number): Effect.Effect<void>
  /** Resolves with the close code and reason once the hub closes the connection. */
  readonly closed: Effect.Effect<{ readonly code: number; readonly reason: string }>
  /** Drops the connection without a close handshake, like a crashed sidecar. */
  readonly kill: Effect.Effect<void>
}

const parse = (raw: string): HubFrame => {
  const json = JSON.parse(raw) as HubFrame
  const decoded = decodeFrame(raw, 16 * 1024 * 1024)
  // Types the sidecar does not know yet (state_report_ack) are the sidecar's business; known ones must decode.
  if (Result.isFailure(decoded) && decoded.failure.kind !== "unknown_type") {
    assert.fail(`the sidecar's decoder refuses ${raw}: ${describeRejection(decoded.failure)}`)
  }
  return json
}

export const connect = (wsUrl: string, options: { readonly origin?: string } = {}): Effect.Effect<RawClient, Error, Scope.Scope> => Effect.gen(function*() {
  const frames = yield* Queue.unbounded<string>()
  const closed = yield* Deferred.make<{ readonly code: number; readonly reason: string }>()
  const ws = yield* Effect.acquireRelease(
    Effect.callback<WebSocket, Error>((resume) => {
      const ws = new WebSocket(wsUrl, options)
      ws.on("message", (data) => Queue.offerUnsafe(frames, String(data)))
      ws.on("close", (code, reason) => Deferred.doneUnsafe(closed, Effect.succeed({ code, reason: reason.toString() })))
      ws.once("open", () => resume(Effect.succeed(ws)))
      ws.once("error", (e) => resume(Effect.fail(e)))
    }),
    (ws) => Effect.sync(() => ws.terminate())
  )
  const next = Queue.take(frames).pipe(
    Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die(new Error("no frame from the hub within 5 s")) }),
    Effect.map(parse)
  )
  return {
    send: (message) => Effect.sync(() => ws.send(encodeOutbound(message as never))),
    sendText: (text) => Effect.sync(() => ws.send(text)),
    next,
    take: Effect.map(Queue.take(frames), parse),
    expect: <T extends HubFrame["type"]>(type: T) => Effect.map(next, (m) => {
      assert.strictEqual(m.type, type, `expected ${type}, got ${JSON.stringify(m)}`)
      return m as Of<T>
    }),
    expectSilence: (ms) => Queue.take(frames).pipe(
      Effect.timeoutOption(ms),
      Effect.map((frame) => assert.isTrue(frame._tag === "None", `unexpected frame: ${frame._tag === "Some" ? frame.value : ""}`))
    ),
    closed: Deferred.await(closed).pipe(
      Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die(new Error("the hub did not close the connection")) })
    ),
    kill: Effect.sync(() => ws.terminate())
  }
})

/** Connects and identifies as `agentId`; returns once `identified` came back. */
export const agent = (wsUrl: string, agentId: string, token = "secret") => Effect.gen(function*() {
  const client = yield* connect(wsUrl)
  yield* client.send({ type: "identify", agent_id: agentId, token, name: `Agent ${agentId}`, status: "idle", capabilities: ["code"], client_type: "sidecar" })
  const identified = yield* client.expect("identified")
  assert.strictEqual(identified.agent_id, agentId)
  return client
})

export interface JsonResponse {
  readonly status: number
  readonly headers: Headers
  readonly body: unknown
}

/** One HTTP request; `body` objects are sent as JSON. A network failure fails the test. */
export const request = (url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
  Effect.promise(async (): Promise<JsonResponse> => {
    const body = init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body)
    const res = await fetch(url, {
      method: init.method ?? (body === undefined ? "GET" : "POST"),
      headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...init.headers },
      ...(body === undefined ? {} : { body })
    })
    const text = await res.text()
    const isJson = (res.headers.get("content-type") ?? "").startsWith("application/json")
    return { status: res.status, headers: res.headers, body: isJson ? JSON.parse(text) : text }
  })

/** A GET with a chosen `Host` header, which fetch does not allow to set. */
export const getWithHost = (url: string, host: string) =>
  Effect.callback<{ status: number; body: unknown }>((resume) => {
    const req = get(url, { headers: { host } }, (res) => {
      let text = ""
      res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk)).on("end", () =>
        resume(Effect.succeed({ status: res.statusCode ?? 0, body: JSON.parse(text) })))
    })
    req.on("error", (e) => resume(Effect.die(e)))
  })

/** Polls `effect` until `done` holds (fails the test after 5 s): for state the hub reaches asynchronously. */
export const eventually = <A>(effect: Effect.Effect<A>, done: (a: A) => boolean, what: string): Effect.Effect<A> =>
  Effect.gen(function*() {
    for (let i = 0; i < 250; i++) {
      const a = yield* effect
      if (done(a)) return a
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(new Error(`still not ${what} after 5 s`))
  })

/** A task as the hub's API shows it (it exists: the test made it). */
export const taskOf = (hub: Hub, id: string): Effect.Effect<TaskView> => Effect.orDie(hub.task(id))

/** The names of a task's timeline events, in order. */
export const events = (t: TaskView) => t.timeline.map((e) => e.event)

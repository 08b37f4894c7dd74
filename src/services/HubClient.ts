/**
 * The one WebSocket to the hub (SPEC §3). It owns the connection and nothing about tasks: `identify` first on
 * every connection, an app-level `ping` every `heartbeat_interval_ms` (no `pong` within
 * `heartbeat_timeout_ms` drops the connection), reconnects with jittered exponential backoff that resets only
 * once a connection has proven healthy (identified, and a `pong` came back on it; hub/reconnect.ts), decodes
 * inbound frames (a bad frame is counted, logged within limits and dropped, never fatal; hub/droppedFrames.ts),
 * and queues outbound messages until the next identified connection so a send never fails for lack of a
 * connection. Inbound frames far over `max_message_bytes` are refused by the socket before they are buffered.
 *
 * What it does not do: remember what the hub has acknowledged. Terminal reports are guarded by TaskFlow's
 * persisted outbox; a message queued here is lost only if the process dies before it is written.
 */
import { Clock, Context, Deferred, Duration, Effect, Layer, Queue, Redacted, Ref, Result, Stream, SubscriptionRef } from "effect"
import { Socket } from "effect/socket"
import { decodeFrame, describeRejection, encodeOutbound, type HubMessage, type Outbound } from "../domain/Protocol.ts"
import { makeDroppedFrames, rejectionLabel } from "./hub/droppedFrames.ts"
import { type ConnectionEnded, connectionEnded, HeartbeatTimeout, reconnectSchedule } from "./hub/reconnect.ts"
import { configure, PAYLOAD_SLACK_BYTES } from "./hub/socketOptions.ts"
import { SidecarConfig } from "./SidecarConfig.ts"

export { HeartbeatTimeout } from "./hub/reconnect.ts"

export type ConnectionStatus = "connecting" | "connected" | "identified" | "disconnected"

export interface ConnectionState {
  readonly status: ConnectionStatus
  /** Increments with every connection attempt, so a waiter can tell "this connection dropped" apart. */
  readonly session: number
  readonly since: number
  readonly lastError?: string
  /** Delay before the next attempt, while `disconnected`. */
  readonly retryInMs?: number
}

const closeFields = (ended: ConnectionEnded) =>
  ended.code === undefined ? { why: ended.why } : { code: ended.code, reason: ended.reason ?? "" }

export class HubClient extends Context.Service<HubClient, {
  /** Decoded hub messages in arrival order (`pong` is consumed here). One consumer: the daemon's TaskFlow. */
  readonly messages: Stream.Stream<HubMessage>
  /** Queues a message; it goes out on the current or next identified connection. */
  send(message: Outbound): Effect.Effect<void>
  /** Writes a message on the current identified connection, or drops it (false): nothing waits for a later
   *  connection, so a frame about a moment that has passed never reaches the hub late. */
  sendNow(message: Outbound): Effect.Effect<boolean>
  readonly state: Effect.Effect<ConnectionState>
  readonly changes: Stream.Stream<ConnectionState>
  /** The `status` to put in the next `identify`. */
  setStatus(status: "idle" | "busy"): Effect.Effect<void>
  /** Inbound frames dropped since start (bad, too large, binary; not unknown types, which are ignored). */
  readonly droppedFrames: Effect.Effect<number>
}>()("agent-sidecar/HubClient") {
  /** In memory, with its `HubClientMemory` control (see below). */
  static get layerMemory() { return layerMemory }

  static readonly layer = Layer.effect(HubClient, Effect.gen(function*() {
    const config = yield* SidecarConfig
    // maxPayload: a frame far over max_message_bytes is refused as its header arrives, never buffered whole
    const makeSocket = configure(yield* Socket.WebSocketConstructor, { maxPayload: config.maxMessageBytes + PAYLOAD_SLACK_BYTES })
    const inbound = yield* Queue.unbounded<HubMessage>()
    const outbound = yield* Queue.unbounded<Outbound>()
    const status = yield* Ref.make<"idle" | "busy">("idle")
    const state = yield* SubscriptionRef.make<ConnectionState>({ status: "connecting", session: 0, since: yield* Clock.currentTimeMillis })
    const dropped = yield* makeDroppedFrames()
    // The identified connection's writer, for sending without a hop through the queue when nothing is queued.
    let direct: ((frame: string) => Effect.Effect<void, unknown>) | undefined
    const setState = (s: Omit<ConnectionState, "since">) =>
      Effect.flatMap(Clock.currentTimeMillis, (since) => SubscriptionRef.set(state, { ...s, since }))

    /** One connection, from dial to drop. Succeeds only if it proved healthy before it dropped. */
    const connection = (session: number) => Effect.scoped(Effect.gen(function*() {
      yield* setState({ status: "connecting", session })
      const socket = yield* Socket.fromWebSocket(
        Effect.acquireRelease(
          Effect.sync(() => makeSocket(config.hubUrl)),
          (ws) => Effect.sync(() => ws.close(1000))
        ),
        { openTimeout: Duration.seconds(10) }
      ).pipe(Effect.provideService(Socket.WebSocketConstructor, makeSocket))
      const reader = yield* socket.reader.pipe(Effect.mapError(connectionEnded))
      const { write } = yield* socket.writer
      yield* setState({ status: "connected", session })
      const identified = yield* Deferred.make<void>()
      const healthy = yield* Ref.make(false)
      const lastPong = yield* Ref.make(0)

      yield* write(encodeOutbound({
        type: "identify",
        agent_id: config.agentId,
        token: Redacted.value(config.token),
        name: config.name,
        status: yield* Ref.get(status),
        capabilities: config.capabilities,
        client_type: "sidecar"
      })).pipe(Effect.mapError(connectionEnded))

      const onFrame = (raw: string | Uint8Array) => Effect.gen(function*() {
        if (typeof raw !== "string") {
          return yield* dropped.record("binary frame dropped; the protocol is JSON text", "binary frame", { bytes: raw.byteLength })
        }
        const decoded = decodeFrame(raw, config.maxMessageBytes)
        if (Result.isFailure(decoded)) {
          const reason = describeRejection(decoded.failure)
          return yield* decoded.failure.kind === "unknown_type"
            ? Effect.logDebug("frame ignored", { reason })
            : dropped.record("frame dropped", rejectionLabel(decoded.failure), { reason })
        }
        const message = decoded.success
        switch (message.type) {
          case "pong":
            // a heartbeat answered on an identified connection: it has proven healthy, the backoff may reset
            if (yield* Deferred.isDone(identified)) yield* Ref.set(healthy, true)
            return yield* Ref.set(lastPong, yield* Clock.currentTimeMillis)
          case "identified":
            yield* setState({ status: "identified", session })
            yield* Deferred.succeed(identified, undefined)
            yield* Effect.logInfo("identified by the hub")
            break
          case "error":
            if (!(yield* Deferred.isDone(identified))) {
              yield* Effect.logError("hub refused identify (check token and agent_id)", { error: message.error ?? "" })
            }
            break
        }
        yield* Queue.offer(inbound, message)
      })
      const readLoop = Effect.forever(Effect.flatMap(reader.pull, (batch) => Effect.forEach(batch, onFrame, { discard: true })))

      const writeLoop = Deferred.await(identified).pipe(
        Effect.andThen(Effect.acquireRelease(Effect.sync(() => { direct = write }), () => Effect.sync(() => { direct = undefined }))),
        Effect.andThen(Effect.forever(Effect.gen(function*() {
          const message = yield* Queue.take(outbound)
          yield* write(encodeOutbound(message)).pipe(Effect.tapError(() => Queue.offer(outbound, message)))
        })))
      )

      const heartbeat = Effect.gen(function*() {
        yield* Effect.sleep(config.heartbeatIntervalMs)
        yield* Effect.forever(Effect.gen(function*() {
          const sentAt = yield* Clock.currentTimeMillis
          yield* write(encodeOutbound({ type: "ping" }))
          yield* Effect.sleep(config.heartbeatTimeoutMs)
          if ((yield* Ref.get(lastPong)) < sentAt) return yield* new HeartbeatTimeout({ timeoutMs: config.heartbeatTimeoutMs })
          yield* Effect.sleep(Math.max(0, config.heartbeatIntervalMs - config.heartbeatTimeoutMs))
        }))
      })

      const ended = yield* Effect.all([readLoop, writeLoop, heartbeat], { concurrency: "unbounded", discard: true }).pipe(
        Effect.andThen(Effect.never),
        Effect.flip,
        Effect.map(connectionEnded)
      )
      if (ended.frameTooLarge === true) {
        // `ws` cannot skip a frame: refusing it before it is buffered means losing the connection (1009)
        yield* dropped.record(
          `the hub sent a frame over max_message_bytes (${config.maxMessageBytes} bytes): refused at the socket before it was buffered, which closes the connection`,
          "over max_message_bytes", { limit: config.maxMessageBytes })
      }
      if (!(yield* Ref.get(healthy))) return yield* Effect.fail(ended)
      yield* Effect.logWarning(`connection to the hub ended (${ended.why}); reconnecting`, closeFields(ended))
    }))

    const reconnect = reconnectSchedule(config.reconnectInitialMs, config.reconnectMaxMs, (ended, retryInMs) => Effect.gen(function*() {
      const current = yield* SubscriptionRef.get(state)
      yield* setState({ status: "disconnected", session: current.session, lastError: ended.why, retryInMs })
      const what = !ended.opened ? "cannot reach the hub" : ended.code === undefined ? "connection to the hub lost" : "connection to the hub closed"
      yield* Effect.logWarning(`${what} (${ended.why}); retry in ${retryInMs} ms`, closeFields(ended))
    }))

    const sessions = Effect.gen(function*() {
      let session = 0
      // A connection that proved healthy and then dropped returns normally, and the outer loop starts a fresh
      // backoff schedule: the "reset once a connection has proven healthy" of SPEC §2. Anything less (refused,
      // closed right after `identified`, as AgentCom does during its cooldowns) is a failure and backs off.
      // Closing the layer's scope interrupts this loop, which closes the open socket with 1000.
      return yield* Effect.suspend(() => connection(++session)).pipe(Effect.retry(reconnect), Effect.forever)
    }).pipe(Effect.annotateLogs({ service: "HubClient" }))

    yield* Effect.forkScoped(sessions)

    return HubClient.of({
      messages: Stream.fromQueue(inbound),
      send: (message) => Effect.suspend(() => {
        const writeNow = direct
        // order is kept: the direct path is only taken when nothing is waiting in the queue
        return writeNow !== undefined && Queue.sizeUnsafe(outbound) === 0
          ? writeNow(encodeOutbound(message)).pipe(Effect.catch(() => Queue.offer(outbound, message)), Effect.asVoid)
          : Queue.offer(outbound, message).pipe(Effect.asVoid)
      }),
      sendNow: (message) => Effect.suspend(() => {
        const writeNow = direct
        return writeNow === undefined
          ? Effect.succeed(false)
          : writeNow(encodeOutbound(message)).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
      }),
      state: SubscriptionRef.get(state),
      changes: SubscriptionRef.changes(state),
      setStatus: (s) => Ref.set(status, s),
      droppedFrames: dropped.count
    })
  }))
}

/** Drives an in-memory HubClient in tests: push hub messages, read what the sidecar sent, flip the connection. */
export class HubClientMemory extends Context.Service<HubClientMemory, {
  /** Delivers a message as if the hub had sent it (`identified` also marks the connection identified). */
  receive(message: HubMessage): Effect.Effect<void>
  /** Everything the sidecar sent while identified, in order. */
  readonly sent: Ref.Ref<ReadonlyArray<Outbound>>
  /** Drops the connection: sends wait again until the next `receive({ type: "identified" })`. */
  readonly disconnect: Effect.Effect<void>
}>()("agent-sidecar/HubClientMemory") {}

/** An in-memory HubClient (plus its `HubClientMemory` control), driven from a Queue; starts disconnected. */
const layerMemory = Layer.effectContext(Effect.gen(function*() {
  const inbound = yield* Queue.unbounded<HubMessage>()
  const pending = yield* Ref.make<ReadonlyArray<Outbound>>([])
  const sent = yield* Ref.make<ReadonlyArray<Outbound>>([])
  const state = yield* SubscriptionRef.make<ConnectionState>({ status: "connecting", session: 0, since: yield* Clock.currentTimeMillis })
  const set = (status: ConnectionStatus) => Effect.gen(function*() {
    const current = yield* SubscriptionRef.get(state)
    const session = status === "identified" && current.status !== "identified" ? current.session + 1 : current.session
    yield* SubscriptionRef.set(state, { status, session, since: yield* Clock.currentTimeMillis })
  })
  const flush = Effect.gen(function*() {
    const queued = yield* Ref.getAndSet(pending, [])
    yield* Ref.update(sent, (s) => [...s, ...queued])
  })
  const control = HubClientMemory.of({
    receive: (message) => Effect.gen(function*() {
      if (message.type === "identified") {
        yield* set("identified")
        yield* flush
      }
      yield* Queue.offer(inbound, message)
    }),
    sent,
    disconnect: set("disconnected")
  })
  const client = HubClient.of({
    messages: Stream.fromQueue(inbound),
    send: (message) => Effect.gen(function*() {
      yield* Ref.update(pending, (p) => [...p, message])
      if ((yield* SubscriptionRef.get(state)).status === "identified") yield* flush
    }),
    sendNow: (message) => Effect.gen(function*() {
      if ((yield* SubscriptionRef.get(state)).status !== "identified") return false
      yield* flush
      yield* Ref.update(sent, (s) => [...s, message])
      return true
    }),
    state: SubscriptionRef.get(state),
    changes: SubscriptionRef.changes(state),
    setStatus: () => Effect.void,
    droppedFrames: Effect.succeed(0)
  })
  return Context.make(HubClient, client).pipe(Context.add(HubClientMemory, control))
}))

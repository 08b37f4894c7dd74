/**
 * How a connection to the hub ended, and when to dial again (SPEC §2, §3; issue 12). A connection counts as a
 * failure for the backoff unless it proved healthy (identified, and a `pong` came back on it); the hub's own
 * `cooldown active: retry in Ns` is waited out in full, even past `reconnect_max_ms`.
 */
import { Duration, Effect, Schedule, Schema } from "effect"
import type { Socket } from "effect/socket"

export class HeartbeatTimeout extends Schema.TaggedError<HeartbeatTimeout>()("HeartbeatTimeout", { timeoutMs: Schema.Number }) {
  override get message() {
    return `no pong within ${this.timeoutMs} ms`
  }
}

export interface ConnectionEnded {
  /** One line for the log and `ConnectionState.lastError`. */
  readonly why: string
  /** False when the hub could not be reached at all (refused, timed out, handshake failed). */
  readonly opened: boolean
  /** The close frame's code and reason, when the connection was closed (not refused or timed out). */
  readonly code?: number
  readonly reason?: string
  /** The hub asked not to be dialled again for this long. */
  readonly cooldownMs?: number
  /** `ws` refused an inbound frame over its `maxPayload` (and closed the connection with 1009). */
  readonly frameTooLarge?: boolean
}

/** AgentCom's close reason during a validation cooldown: `cooldown active: retry in 30s`. */
export const cooldownMs = (reason: string): number | undefined => {
  const match = /cooldown active: retry in (\d+)\s*s/i.exec(reason)
  return match === null ? undefined : Number(match[1]) * 1000
}

const causeOf = (e: Socket.SocketError): unknown => "cause" in e.reason ? e.reason.cause : undefined

/** "An error occurred during Open" alone helps nobody: add the underlying reason (ECONNREFUSED, 401, …). */
export const describeSocketError = (e: Socket.SocketError): string => {
  const cause = causeOf(e)
  const inner = typeof cause === "object" && cause !== null
    ? ((cause as { error?: { message?: unknown } }).error?.message ?? (cause as { message?: unknown }).message)
    : cause
  return typeof inner === "string" && inner !== "" && inner !== e.message ? `${e.message}: ${inner}` : e.message
}

/** `ws` reports a frame over `maxPayload` as an error event carrying `WS_ERR_UNSUPPORTED_MESSAGE_LENGTH`. */
const isFrameTooLarge = (e: Socket.SocketError): boolean => {
  const cause = causeOf(e)
  const error = typeof cause === "object" && cause !== null ? (cause as { error?: { code?: unknown } }).error ?? cause : undefined
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"
}

export const connectionEnded = (e: Socket.SocketError | HeartbeatTimeout): ConnectionEnded => {
  if (e._tag === "HeartbeatTimeout") return { why: e.message, opened: true }
  if (e.reason._tag === "SocketCloseError") {
    const code = e.reason.code
    const reason = e.reason.closeReason ?? ""
    const cooldown = cooldownMs(reason)
    const why = reason === "" ? `closed with ${code}` : `closed with ${code}: ${reason}`
    return { why, opened: true, code, reason, ...(cooldown === undefined ? {} : { cooldownMs: cooldown }) }
  }
  return { why: describeSocketError(e), opened: e.reason._tag !== "SocketOpenError", ...(isFrameTooLarge(e) ? { frameTooLarge: true } : {}) }
}

/**
 * Exponential from `initialMs` (doubling), jittered, capped at `maxMs`, but never shorter than a cooldown the
 * hub asked for. `onRetry` sees each failure with the delay chosen for it.
 */
export const reconnectSchedule = (
  initialMs: number,
  maxMs: number,
  onRetry: (ended: ConnectionEnded, delayMs: number) => Effect.Effect<void>
): Schedule.Schedule<Duration.Duration, ConnectionEnded> =>
  Schedule.exponential(Duration.millis(initialMs), 2).pipe(
    Schedule.jittered, // before the cap, so the cap stays hard
    Schedule.modifyDelay(({ duration, input }) => Effect.succeed(Duration.max(
      Duration.min(duration, Duration.millis(maxMs)),
      Duration.millis((input as ConnectionEnded).cooldownMs ?? 0)
    ))),
    Schedule.tap(({ input, duration }) => onRetry(input as ConnectionEnded, Math.round(Duration.toMillis(duration))))
  )

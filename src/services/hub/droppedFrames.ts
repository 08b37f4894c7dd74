/**
 * Dropped inbound frames (SPEC §3: logged with the reason, and dropped): an exact count for /metrics, and logs
 * that stay small under a flood (issue 12: 100,000 bad frames wrote 28 MB). In each window the first
 * `fullPerWindow` drops are logged in full; the rest are folded into one summary line at the window's end. A
 * window opens at a drop and lasts `windowMs`.
 */
import { Effect, Ref } from "effect"
import type { FrameRejection } from "../../domain/Protocol.ts"

export interface DropOptions {
  readonly fullPerWindow: number
  readonly windowMs: number
}
export const defaultDropOptions: DropOptions = { fullPerWindow: 20, windowMs: 10_000 }

/** A short, bounded label per kind of rejection, for the summary line (the full reason has variable details). */
export const rejectionLabel = (r: FrameRejection): string => {
  switch (r.kind) {
    case "too_large": return "over max_message_bytes"
    case "not_json": return "frame is not JSON"
    case "not_an_object": return "frame is not a JSON object"
    case "no_type": return "frame has no string \"type\""
    case "unknown_type": return "unknown message type"
    case "bad_fields": return `"${r.type}" frame has fields of the wrong type`
  }
}

interface Window {
  /** A window is open from a drop until `windowMs` later; no timer runs while nothing is dropped. */
  readonly open: boolean
  readonly logged: number
  readonly folded: number
  readonly labels: Readonly<Record<string, number>>
}
const closedWindow: Window = { open: false, logged: 0, folded: 0, labels: {} }

export interface DroppedFrames {
  /** Counts one dropped frame; logs `message` with `fields` unless this window's full lines are used up. */
  record(message: string, label: string, fields: Record<string, unknown>): Effect.Effect<void>
  /** Every frame dropped since start. */
  readonly count: Effect.Effect<number>
}

/** The window's timer runs in the caller's scope (the HubClient layer's), so it outlives the connection. */
export const makeDroppedFrames = (options: DropOptions = defaultDropOptions) => Effect.gen(function*() {
  const scope = yield* Effect.scope
  const total = yield* Ref.make(0)
  const window = yield* Ref.make<Window>(closedWindow)
  const endWindow = Effect.gen(function*() {
    const w = yield* Ref.getAndSet(window, closedWindow)
    if (w.folded === 0) return
    const reasons = Object.entries(w.labels).sort(([, a], [, b]) => b - a).map(([label, n]) => `${label} ×${n}`).join(", ")
    yield* Effect.logWarning(`${w.folded} more frames dropped in the last ${Math.round(options.windowMs / 1000)} s: ${reasons}`)
  })
  const record = (message: string, label: string, fields: Record<string, unknown>) => Effect.gen(function*() {
    yield* Ref.update(total, (n) => n + 1)
    const [logNow, opened] = yield* Ref.modify(window, (w): [[boolean, boolean], Window] =>
      w.logged < options.fullPerWindow
        ? [[true, !w.open], { ...w, open: true, logged: w.logged + 1 }]
        : [[false, !w.open], { ...w, open: true, folded: w.folded + 1, labels: { ...w.labels, [label]: (w.labels[label] ?? 0) + 1 } }])
    if (opened) yield* Effect.forkIn(Effect.sleep(options.windowMs).pipe(Effect.andThen(endWindow)), scope)
    if (logNow) yield* Effect.logWarning(message, fields)
  })
  return { record, count: Ref.get(total) } satisfies DroppedFrames
})

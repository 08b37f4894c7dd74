/**
 * What is wrong with the machine right now, by part (the queue file, `results_dir`, the hub link), for the log,
 * `/readyz`, `/metrics` and `status`. A fault is logged once when it starts (and again only if its cause
 * changes), counted while it lasts, and its end is logged with how long it lasted: one line per episode, not
 * one per failed write.
 */
import { Clock, Context, Effect, Layer, Stream, SubscriptionRef } from "effect"

export type Part = "queue" | "results_dir" | "hub"

export interface Fault {
  readonly part: Part
  readonly cause: string
  readonly since: number
  /** Failures seen in this episode. */
  readonly count: number
}

export class Health extends Context.Service<Health, {
  /** `part` failed with `cause` (a description naming the real reason, e.g. "no space left on device (ENOSPC)"). */
  fault(part: Part, cause: string): Effect.Effect<void>
  /** `part` works again. */
  ok(part: Part): Effect.Effect<void>
  readonly faults: Effect.Effect<ReadonlyArray<Fault>>
  readonly changes: Stream.Stream<ReadonlyArray<Fault>>
}>()("agent-sidecar/Health") {
  static readonly layer = Layer.effect(Health, Effect.gen(function*() {
    const state = yield* SubscriptionRef.make<ReadonlyArray<Fault>>([])
    return Health.of({
      fault: (part, cause) => Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const current = (yield* SubscriptionRef.get(state)).find((f) => f.part === part)
        const next: Fault = current === undefined || current.cause !== cause
          ? { part, cause, since: current?.since ?? now, count: (current?.count ?? 0) + 1 }
          : { ...current, count: current.count + 1 }
        yield* SubscriptionRef.update(state, (fs) => [...fs.filter((f) => f.part !== part), next])
        if (current === undefined || current.cause !== cause) yield* Effect.logError(`degraded: ${part}: ${cause}`, { part, cause })
      }),
      ok: (part) => Effect.gen(function*() {
        const current = (yield* SubscriptionRef.get(state)).find((f) => f.part === part)
        if (current === undefined) return
        yield* SubscriptionRef.update(state, (fs) => fs.filter((f) => f.part !== part))
        const lasted = Math.round(((yield* Clock.currentTimeMillis) - current.since) / 1000)
        yield* Effect.logInfo(`recovered: ${part} works again after ${lasted} s (${current.count} failures)`, { part, cause: current.cause })
      }),
      faults: SubscriptionRef.get(state),
      changes: SubscriptionRef.changes(state)
    })
  }))

  /** The same, in memory (it has no dependencies: the live layer is already one). */
  static get layerMemory() { return Health.layer }
}

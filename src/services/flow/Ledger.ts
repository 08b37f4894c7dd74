/**
 * Decides an input and makes the decision durable before anyone hears of it: the new queue is saved (temp
 * file, fsync, rename) first, and only a saved decision is published and carried out. A save that fails turns
 * into the decider's `SaveFailed` input, whose answer is to try again on `saveRetrySchedule`.
 */
import { Clock, Duration, Effect, Ref, Schedule, SubscriptionRef } from "effect"
import type { Input } from "../../domain/flow/Messages.ts"
import type { DeciderConfig, Model } from "../../domain/flow/Model.ts"
import { busyOrIdle } from "../../domain/QueueOps.ts"
import { decide, type Decision } from "../../domain/TaskDecider.ts"
import type { HubClient } from "../HubClient.ts"
import type { Health } from "../Health.ts"
import type { QueueStore } from "../QueueStore.ts"
import { publishQueueMetrics } from "./Telemetry.ts"

/** A decision that could not be saved is tried again after 0.5 s, doubling to at most 30 s, until it is. */
export const saveRetrySchedule = Schedule.exponential(Duration.millis(500), 2).pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(30))))
)

export interface LedgerDeps {
  readonly store: QueueStore["Service"]
  readonly hub: HubClient["Service"]
  readonly model: SubscriptionRef.SubscriptionRef<Model>
  readonly config: DeciderConfig
  readonly health: Health["Service"]
}

/** How long a lazily decided change may wait for the next durable save before it is flushed on its own. */
export const FLUSH_AFTER_MS = 250

export interface Committed {
  readonly decision: Decision
  readonly saved: boolean
  /** Lazy changes are pending and no flush is due yet: the caller arms one (`Flush` after FLUSH_AFTER_MS). */
  readonly armFlush: boolean
}

export const makeLedger = ({ store, hub, model, config, health }: LedgerDeps) => Effect.gen(function*() {
  // the last queue known to be on disk, and whether a flush is already due for what came after it
  const onDisk = yield* Ref.make((yield* SubscriptionRef.get(model)).queue)
  const flushDue = yield* Ref.make(false)

  const commit = (input: Input, retrying: boolean): Effect.Effect<Committed> => Effect.gen(function*() {
    const before = yield* SubscriptionRef.get(model)
    const now = yield* Clock.currentTimeMillis
    let decision = decide(before, input, now, config)
    let saved = true
    const pending = decision.model.queue !== (yield* Ref.get(onDisk))
    if (pending && decision.durable) {
      const result = yield* Effect.result(store.save(decision.model.queue))
      if (result._tag === "Failure") {
        saved = false
        // the cause is named once per episode by Health; the decider's own lines stay at debug after the first
        yield* health.fault("queue", result.failure.message)
        decision = decide(before, { _tag: "SaveFailed", input, error: result.failure.message, retrying }, now, config)
        if (input._tag === "Flush") yield* Ref.set(flushDue, false) // try the flush again later
      } else {
        yield* Ref.set(onDisk, decision.model.queue)
        yield* Ref.set(flushDue, false)
        yield* health.ok("queue")
      }
    }
    yield* SubscriptionRef.set(model, decision.model)
    if (decision.model.queue !== before.queue) {
      yield* hub.setStatus(busyOrIdle(decision.model.queue))
      yield* publishQueueMetrics(decision.model.queue)
    }
    const armFlush = decision.model.queue !== (yield* Ref.get(onDisk)) && !(yield* Ref.getAndSet(flushDue, true))
    return { decision, saved, armFlush }
  })
  return { commit }
})

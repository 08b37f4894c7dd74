/**
 * Decides an input and makes the decision durable before anyone hears of it: the new queue is saved (temp
 * file, fsync, rename) first, and only a saved decision is published and carried out. A save that fails turns
 * into the decider's `SaveFailed` input, whose answer is to try again on `saveRetrySchedule`.
 */
import { Clock, Duration, Effect, Schedule, SubscriptionRef } from "effect"
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

export const makeLedger = ({ store, hub, model, config, health }: LedgerDeps) => ({
  commit: (input: Input, retrying: boolean): Effect.Effect<{ readonly decision: Decision; readonly saved: boolean }> => Effect.gen(function*() {
    const before = yield* SubscriptionRef.get(model)
    const now = yield* Clock.currentTimeMillis
    let decision = decide(before, input, now, config)
    let saved = true
    if (decision.model.queue !== before.queue) {
      const result = yield* Effect.result(store.save(decision.model.queue))
      if (result._tag === "Failure") {
        saved = false
        // the cause is named once per episode by Health; the decider's own lines stay at debug after the first
        yield* health.fault("queue", result.failure.message)
        decision = decide(before, { _tag: "SaveFailed", input, error: result.failure.message, retrying }, now, config)
      } else {
        yield* health.ok("queue")
      }
    }
    yield* SubscriptionRef.set(model, decision.model)
    if (decision.model.queue !== before.queue) {
      yield* hub.setStatus(busyOrIdle(decision.model.queue))
      yield* publishQueueMetrics(decision.model.queue)
    }
    return { decision, saved }
  })
})

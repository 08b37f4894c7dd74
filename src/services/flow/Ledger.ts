/**
 * Decides an input and makes the decision durable before anyone hears of it: the new queue is saved (temp
 * file, fsync, rename) first, and only a saved decision is published and carried out. A save that fails turns
 * into the decider's `SaveFailed` input, whose answer is to try again on `saveRetrySchedule`.
 *
 * Group commit (`commitBatch`): inputs that waited together in the mailbox are decided one after the other and
 * their last queue is saved once; that queue holds every one of their changes, so each decision's commands still
 * run only once what implies them is on disk. If that save fails, nothing of the batch happened: the caller
 * commits the inputs one at a time, each with its own failure handling.
 */
import { Clock, Duration, Effect, Ref, Schedule, SubscriptionRef } from "effect"
import type { Input } from "../../domain/flow/Messages.ts"
import type { DeciderConfig, Model } from "../../domain/flow/Model.ts"
import { busyOrIdle, findTask } from "../../domain/QueueOps.ts"
import type { QueueFile } from "../../domain/Task.ts"
import { decide, type Decision } from "../../domain/TaskDecider.ts"
import type { HubClient } from "../HubClient.ts"
import type { Health } from "../Health.ts"
import type { QueueStore } from "../QueueStore.ts"
import { makeQueueMetrics } from "./Telemetry.ts"

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
  // the last queue known to be on disk, and whether a flush is already due (its timer armed, its `Flush` not yet
  // decided). A durable save does not disarm it: re-arming the timer for the next lazy change would cost a fiber
  // forked and one interrupted, twice a task (issue 14); the armed one comes within FLUSH_AFTER_MS anyway.
  const onDisk = yield* Ref.make((yield* SubscriptionRef.get(model)).queue)
  const flushDue = yield* Ref.make(false)
  const publishQueueMetrics = makeQueueMetrics()
  // tasks whose files wait for the save that takes their lazy removal along (`CleanupOnceSaved`), and those a save
  // has freed (only the dispatcher's one fiber touches them)
  let waiting: Array<string> = []
  const released: Array<string> = []

  /** Makes a decided model the current one; true when a flush must be armed for lazy changes. */
  const publish = (before: Model, next: Model): Effect.Effect<boolean> => Effect.gen(function*() {
    yield* SubscriptionRef.set(model, next)
    if (next.queue !== before.queue) {
      yield* hub.setStatus(busyOrIdle(next.queue))
      yield* publishQueueMetrics(next.queue)
    }
    return next.queue !== (yield* Ref.get(onDisk)) && !(yield* Ref.getAndSet(flushDue, true))
  })

  /** Saves `queue` durably; on success it is what is on disk, and the task files that waited for it are freed. */
  const save = (queue: QueueFile) => Effect.result(store.save(queue)).pipe(Effect.tap((result) => {
    if (result._tag === "Failure") return Effect.void
    released.push(...waiting)
    waiting = []
    return Effect.andThen(Ref.set(onDisk, queue), health.ok("queue"))
  }))

  /** True: the queue as decided is on disk, remove `taskId`'s files now; false: they wait for the next save. */
  const cleanupNow = (taskId: string): Effect.Effect<boolean> => Effect.gen(function*() {
    if ((yield* SubscriptionRef.get(model)).queue === (yield* Ref.get(onDisk))) return true
    waiting.push(taskId)
    return false
  })

  /** The tasks whose files the saves since the last call freed for removal, less those held again meanwhile. */
  const takeReleased = Effect.map(SubscriptionRef.get(model), (m) => released.splice(0).filter((id) => findTask(m.queue, id) === undefined))

  /** Saves the current queue (shutdown); its failure is the caller's to log. */
  const saveCurrent = Effect.flatMap(SubscriptionRef.get(model), (m) => save(m.queue))

  /**
   * Decides `inputs` in order and saves the last queue once if any of them must be durable. Returns the
   * decisions, each to be published (`publish`) just before its commands run, or undefined when the save failed
   * (nothing is published then).
   */
  const commitBatch = (inputs: ReadonlyArray<Input>): Effect.Effect<ReadonlyArray<Decision> | undefined> => Effect.gen(function*() {
    if (inputs.some((input) => input._tag === "Flush")) yield* Ref.set(flushDue, false)
    const before = yield* SubscriptionRef.get(model)
    const now = yield* Clock.currentTimeMillis
    const decisions: Array<Decision> = []
    let last = before
    for (const input of inputs) {
      const decision = decide(last, input, now, config)
      decisions.push(decision)
      last = decision.model
    }
    if (last.queue !== (yield* Ref.get(onDisk)) && decisions.some((d) => d.durable)) {
      if ((yield* save(last.queue))._tag === "Failure") return undefined
    }
    return decisions
  })

  const commit = (input: Input, retrying: boolean): Effect.Effect<Committed> => Effect.gen(function*() {
    // the due flush is here: a lazy change decided from now on needs a timer of its own
    if (input._tag === "Flush") yield* Ref.set(flushDue, false)
    const before = yield* SubscriptionRef.get(model)
    const now = yield* Clock.currentTimeMillis
    let decision = decide(before, input, now, config)
    let saved = true
    const pending = decision.model.queue !== (yield* Ref.get(onDisk))
    if (pending && decision.durable) {
      const result = yield* save(decision.model.queue)
      if (result._tag === "Failure") {
        saved = false
        // the cause is named once per episode by Health; the decider's own lines stay at debug after the first
        yield* health.fault("queue", result.failure.message)
        decision = decide(before, { _tag: "SaveFailed", input, error: result.failure.message, retrying }, now, config)
      }
    }
    const armFlush = yield* publish(before, decision.model)
    return { decision, saved, armFlush }
  })
  return { commit, commitBatch, publish, cleanupNow, takeReleased, saveCurrent }
})

export type Ledger = Effect.Success<ReturnType<typeof makeLedger>>

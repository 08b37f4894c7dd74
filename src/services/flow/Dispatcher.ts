/**
 * Takes what waited in the mailbox and handles it: each input decided and saved by the Ledger, then its commands
 * carried out in order (facts learned on the way are decided at once), the answer given to whoever submitted it.
 * Inputs that waited together are saved once (group commit). A defect while handling one input is logged and
 * the next is handled (SPEC §6.6).
 */
import { Cause, Deferred, Effect, SubscriptionRef } from "effect"
import type { Command, Input } from "../../domain/flow/Messages.ts"
import type { Model } from "../../domain/flow/Model.ts"
import type { Decision } from "../../domain/TaskDecider.ts"
import type { Carried, Commands } from "./Commands.ts"
import { FLUSH_AFTER_MS, type Ledger } from "./Ledger.ts"
import type { Outcome } from "./TaskRunner.ts"

export interface Envelope { readonly input: Input; readonly retrying: boolean; readonly done: Deferred.Deferred<Outcome> }

export interface DispatcherDeps {
  readonly ledger: Ledger
  readonly commands: Commands
  readonly model: SubscriptionRef.SubscriptionRef<Model>
}

export const makeDispatcher = ({ ledger, commands, model }: DispatcherDeps) => {
  const cleanup = (taskId: string) => commands.execute({ _tag: "Cleanup", taskId })
  /** The files a save freed (`CleanupOnceSaved` of decisions it took along): removed after the decision's own
   *  commands, so they never delay what the hub waits for (a `task_accepted`). */
  const releasedBySave = Effect.flatMap(ledger.takeReleased, (ids) => Effect.forEach(ids, cleanup, { discard: true }))
  const run = (command: Command): Effect.Effect<Carried> => command._tag === "CleanupOnceSaved"
    ? Effect.flatMap(ledger.cleanupNow(command.taskId), (now) => now ? cleanup(command.taskId) : Effect.succeed({}))
    : commands.execute(command)
  /** A saved decision's commands, in order; facts learned on the way are decided at once (`learned`). */
  const carryOut = (decision: Decision, armFlush: boolean) => Effect.gen(function*() {
    if (armFlush) yield* commands.execute({ _tag: "Later", key: "flush", afterMs: FLUSH_AFTER_MS, input: { _tag: "Flush" } })
    let ok = true
    let learned = false
    for (const command of decision.commands) {
      const carried = yield* run(command)
      if (carried.reply !== undefined) ok = carried.reply
      if (carried.next !== undefined) {
        learned = true
        yield* step(carried.next, false)
      }
    }
    yield* releasedBySave
    return { ok, learned }
  })
  /** One input: decided and saved, then carried out. */
  const step = (input: Input, retrying: boolean): Effect.Effect<Outcome> => Effect.gen(function*() {
    const { decision, saved, armFlush } = yield* ledger.commit(input, retrying)
    return { saved, ok: (yield* carryOut(decision, armFlush)).ok }
  })
  // SPEC §6.6: a defect (a bug) while handling one input is logged and the next input is handled.
  const answer = (envelope: Envelope, handling: Effect.Effect<Outcome>, onDefect: () => void = () => {}) => handling.pipe(
    Effect.catchCause((cause) => Effect.as(Effect.logError("handling an input failed; carrying on", { input: envelope.input._tag, cause: Cause.pretty(cause) }).pipe(
      Effect.tap(() => Effect.sync(onDefect))), { saved: false, ok: false })),
    Effect.flatMap((outcome) => Deferred.succeed(envelope.done, outcome))
  )
  const survive = (envelope: Envelope) => answer(envelope, step(envelope.input, envelope.retrying))
  /**
   * The inputs that waited in the mailbox together: decided in order and saved once (group commit), then each
   * decision is published and carried out in turn. Once carrying one out teaches a fact (decided at once, as
   * always) or fails, the rest no longer follow from the current state: they are decided again one by one. A
   * failed save leaves nothing decided: then each input goes alone, with its own failure handling.
   */
  const handleBatch = (envelopes: ReadonlyArray<Envelope>) => Effect.gen(function*() {
    if (envelopes.length === 1) return yield* survive(envelopes[0]!)
    // a defect here is met again, and logged, when the inputs go one by one
    const decisions = yield* ledger.commitBatch(envelopes.map((e) => e.input)).pipe(Effect.catchCause(() => Effect.undefined))
    let current = decisions !== undefined
    for (const [i, envelope] of envelopes.entries()) {
      const decision = decisions?.[i]
      if (!current || decision === undefined) {
        yield* survive(envelope)
        continue
      }
      yield* answer(envelope, Effect.gen(function*() {
        const armFlush = yield* ledger.publish(yield* SubscriptionRef.get(model), decision.model)
        const { ok, learned } = yield* carryOut(decision, armFlush)
        if (learned) current = false
        return { saved: true, ok }
      }), () => { current = false })
    }
  }).pipe(Effect.uninterruptible)
  return { dispatch: handleBatch, releasedBySave }
}

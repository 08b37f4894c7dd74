/**
 * The per-task fibers: the wake loop (attempts retried on the `wake_retry_delays_ms` Schedule), the
 * confirmation wait (`Effect.timeout` on `.started`), and the working phase's task and idle clocks. They
 * decide nothing: each reports what happened as an input to the decider and carries on only if told to.
 *
 * Wake loops live beside the watchers, not inside them: when the agent's result ends a task mid-wake, the
 * command's current attempt may finish and be reported; cancel and shutdown still interrupt (and kill) it.
 */
import { Clock, Effect, FiberMap, Ref, Schema, SubscriptionRef } from "effect"
import type { Input } from "../../domain/flow/Messages.ts"
import type { Model } from "../../domain/flow/Model.ts"
import { findTask } from "../../domain/QueueOps.ts"
import { retryDelays } from "../../domain/Retry.ts"
import type { Settings } from "../../domain/Config.ts"
import type { ResultWatcher } from "../ResultWatcher.ts"
import type { Waker } from "../Waker.ts"
import type { TaskSpans } from "./Telemetry.ts"

/** What the decider made of an input: whether it was saved, and its answer to the one who asked. */
export interface Outcome {
  readonly saved: boolean
  readonly ok: boolean
}
export type Submit = (input: Input) => Effect.Effect<Outcome>

class WakeAttemptFailed extends Schema.TaggedError<WakeAttemptFailed>()("WakeAttemptFailed", { attempt: Schema.Number }) {}
class NotWaking extends Schema.TaggedError<NotWaking>()("NotWaking", {}) {}

export interface RunnerDeps {
  readonly config: Settings
  readonly waker: Waker["Service"]
  readonly files: ResultWatcher["Service"]
  readonly model: SubscriptionRef.SubscriptionRef<Model>
  readonly submit: Submit
  readonly keepAliveMs: number
  readonly spans: TaskSpans
}

export const makeTaskRunner = Effect.fn("makeTaskRunner")(function*({ config, waker, files, model, submit, keepAliveMs, spans }: RunnerDeps) {
  const wakes = yield* FiberMap.make<string>()
  const watches = yield* FiberMap.make<string>()
  // tasks whose wake command is running right now (or reporting its outcome)
  const attempting = yield* Ref.make<ReadonlySet<string>>(new Set())
  const statusOf = (id: string) => Effect.map(SubscriptionRef.get(model), (m) => findTask(m.queue, id)?.status)
  const stillWaking = (id: string) => Effect.map(statusOf(id), (s) => s === "accepted" || s === "waking")
  const setAttempting = (id: string, on: boolean) => Ref.update(attempting, (s) => {
    const next = new Set(s)
    if (on) next.add(id)
    else next.delete(id)
    return next
  })

  const wakeLoop = (id: string) => Effect.gen(function*() {
    const task = findTask((yield* SubscriptionRef.get(model)).queue, id)
    if (task === undefined) return
    const paths = files.paths(id)
    const attempts = yield* Ref.make(0)
    const attempt = Effect.gen(function*() {
      const n = yield* Ref.updateAndGet(attempts, (k) => k + 1)
      if (!(yield* submit({ _tag: "WakeAttemptStarted", taskId: id, attempt: n })).ok) return yield* new NotWaking()
      yield* setAttempting(id, true)
      const outcome = yield* spans.within(id, `wake attempt ${n}`, waker.wake({
        taskId: id, description: task.description, taskJson: JSON.stringify(task.assignment), taskFile: paths.taskFile,
        resultsDir: config.resultsDir, startedFile: paths.startedFile, resultFile: paths.resultFile, attempt: n
      }).pipe(Effect.tap((o) => Effect.annotateCurrentSpan({ status: o.status, exit_code: o.exitCode ?? null }))))
      yield* submit({ _tag: "WakeAttemptEnded", taskId: id, attempt: n, outcome })
      if (outcome.status !== "success") return yield* new WakeAttemptFailed({ attempt: n })
    }).pipe(Effect.ensuring(setAttempting(id, false)))
    const result = yield* attempt.pipe(
      Effect.retry({ schedule: retryDelays(config.wakeRetryDelaysMs), while: (e) => e._tag === "WakeAttemptFailed" && stillWaking(id) }),
      Effect.result
    )
    if (result._tag === "Success") return yield* submit({ _tag: "WakeSucceeded", taskId: id })
    if (result.failure._tag === "WakeAttemptFailed") yield* submit({ _tag: "WakeExhausted", taskId: id, attempts: yield* Ref.get(attempts) })
  }).pipe(Effect.annotateLogs({ task_id: id }))

  /**
   * The confirmation clock: `confirmation_timeout_ms` after the wake, unless the decider replaces this watch first
   * (`.started` starts the work clock) or drops it (the task ended). A timeout that lost a race is ignored by the
   * decider, which checks the task is still `waking_confirmation`: so no subscription to every model change.
   */
  const confirm = (id: string) => Effect.sleep(config.confirmationTimeoutMs).pipe(
    Effect.andThen(submit({ _tag: "PhaseTimedOut", taskId: id, failure: { kind: "confirmation_timeout" } }))
  )

  /**
   * `working` until the result ends it (the decider stops this) or a clock does: the task clock (once), the idle
   * clock (from the last sign of life the decider recorded; the decider checks it again), and the keep-alive, which
   * the decider turns into a `task_progress` when the hub has heard nothing of the task for a while. One fiber
   * sleeping until the earliest of them (issue 14: three concurrent fibers, forked and interrupted per task, before).
   */
  const work = (id: string) => Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    let taskDue = config.taskTimeoutMs > 0 ? start + config.taskTimeoutMs : Infinity
    let keepAliveDue = start + keepAliveMs
    // after a stalled report the decider ignored (a sign of life raced it), look again a second later
    let idleNotBefore = -Infinity
    while (true) {
      const now = yield* Clock.currentTimeMillis
      if (now >= taskDue) {
        taskDue = Infinity
        yield* submit({ _tag: "PhaseTimedOut", taskId: id, failure: { kind: "task_timeout" } })
        continue
      }
      if (now >= keepAliveDue) {
        yield* submit({ _tag: "KeepAlive", taskId: id })
        keepAliveDue = (yield* Clock.currentTimeMillis) + keepAliveMs
        continue
      }
      let idleDue = Infinity
      if (config.agentIdleTimeoutMs > 0) {
        const lastSign = (yield* SubscriptionRef.get(model)).life.get(id)?.lastSign ?? now
        idleDue = Math.max(lastSign + config.agentIdleTimeoutMs, idleNotBefore)
        if (now >= idleDue) {
          yield* submit({ _tag: "PhaseTimedOut", taskId: id, failure: { kind: "agent_stalled" } })
          idleNotBefore = (yield* Clock.currentTimeMillis) + 1000
          continue
        }
      }
      yield* Effect.sleep(Math.min(taskDue, keepAliveDue, idleDue) - now)
    }
  })

  return {
    // a new loop replaces any old one still finishing an attempt for an earlier task of the same id
    runWake: (id: string) => FiberMap.run(wakes, id, wakeLoop(id)).pipe(Effect.asVoid),
    stopWake: (id: string, graceful: boolean) => Effect.gen(function*() {
      // a running attempt may be the agent's launcher: let it finish; the loop then sees the task has moved on
      if (graceful && (yield* Ref.get(attempting)).has(id)) return
      yield* FiberMap.remove(wakes, id)
    }),
    watch: (id: string, phase: "confirm" | "work") =>
      FiberMap.run(watches, id, spans.within(id, phase === "confirm" ? "confirmation" : "working", phase === "confirm" ? confirm(id) : work(id))
        .pipe(Effect.annotateLogs({ task_id: id }))).pipe(Effect.asVoid),
    unwatch: (id: string) => FiberMap.remove(watches, id),
    /** Shutdown: every fiber stops, and with them any running wake command's process group. */
    stopAll: Effect.andThen(FiberMap.clear(watches), FiberMap.clear(wakes))
  }
})

export type TaskRunner = Effect.Success<ReturnType<typeof makeTaskRunner>>

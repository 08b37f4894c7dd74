/**
 * Everything between a `task_assign` and the hub's terminal `task_ack` (SPEC §3–§6): accepting (persist
 * before acknowledge), one supervised fiber per task (wake with retries, confirmation wait, working with
 * task/idle timeouts), the persisted outbox of terminal reports sent one at a time, crash recovery, cancel
 * and graceful shutdown.
 *
 * State lives in one in-memory `QueueFile` mirrored to `QueueStore` under a lock: every step is decided,
 * persisted, and only then made visible to the hub or the agent. Per-task fibers live in a `FiberMap`, so
 * cancel and shutdown interrupt them (and with them any running wake command's process group).
 */
import { Cause, Clock, Context, Deferred, Effect, Fiber, FiberMap, Layer, Option, Ref, Result, Schema, Semaphore, Stream, SubscriptionRef } from "effect"
import type { AgentEvent } from "./ResultWatcher.ts"
import { ResultWatcher } from "./ResultWatcher.ts"
import { HubClient } from "./HubClient.ts"
import { QueueStore, type QueueStoreError } from "./QueueStore.ts"
import { SidecarConfig } from "./SidecarConfig.ts"
import { Waker } from "./Waker.ts"
import type { HubMessage } from "../domain/Protocol.ts"
import { activeCount, addTask, busyOrIdle, enqueueReport, findTask, removeTask, setStatus, toRecovering, updateTask, withEntry } from "../domain/QueueOps.ts"
import { isPrintableId, isValidTaskId, type QueueFile, type Report, type TaskRecord, validateAssignment } from "../domain/Task.ts"
import { resumeFrom, type TaskEvent, transition } from "../domain/TaskState.ts"
import { retryDelays } from "../domain/Retry.ts"

/** How a task ended, before it becomes a report. */
export type Ending = { readonly kind: "complete"; readonly result: unknown } | { readonly kind: "failed"; readonly reason: string }

export const REPORT_ANSWER_TIMEOUT_MS = 10_000
export const PROGRESS_RELAY_INTERVAL_MS = 5_000

interface Signals {
  readonly started: Deferred.Deferred<void>
  /** Last sign of life from the agent (`.started`, `.progress`), for `agent_idle_timeout_ms`. */
  readonly lastSign: Ref.Ref<number>
  readonly lastProgressRelay: Ref.Ref<number>
}

type Answer = { readonly kind: "ack" } | { readonly kind: "refused"; readonly error: string }

class WakeAttemptFailed extends Schema.TaggedError<WakeAttemptFailed>()("WakeAttemptFailed", { attempt: Schema.Number }) {}

/** SPEC §6.6: nothing a hub or an agent sends may stop the daemon. A failure or even a defect (a bug) while
 *  handling one message is logged and the next message is handled; only interruption passes through. */
const survive = (what: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<void, never, R> =>
  effect.pipe(
    Effect.asVoid,
    Effect.catchCause((cause) => Cause.hasInterruptsOnly(cause)
      ? Effect.failCause(cause as Cause.Cause<never>)
      : Effect.logError(`${what} failed; carrying on`, { cause: Cause.pretty(cause) }))
  )

export class TaskFlow extends Context.Service<TaskFlow, {
  onHub(message: HubMessage): Effect.Effect<void>
  onFile(event: AgentEvent): Effect.Effect<void>
  /** The current state, as persisted. */
  readonly snapshot: Effect.Effect<QueueFile>
  readonly changes: Stream.Stream<QueueFile>
  /** Stop taking tasks (`task_rejected` `shutting_down` from now on). */
  readonly stopAccepting: Effect.Effect<void>
  /** Waits until no task is active and the outbox is empty. */
  readonly awaitIdle: Effect.Effect<void>
  /** Operator controls (SPEC §7). */
  cancel(taskId: string): Effect.Effect<boolean, QueueStoreError>
  forget(taskId: string): Effect.Effect<boolean, QueueStoreError>
  resend(taskId: string): Effect.Effect<boolean>
  /** Completes once the hub has settled `count` reports since start (for `run --once`). */
  awaitSettled(count: number): Effect.Effect<void>
}>()("agent-sidecar/TaskFlow") {
  static readonly layer = Layer.effect(TaskFlow, Effect.gen(function*() {
    const config = yield* SidecarConfig
    const store = yield* QueueStore
    const hub = yield* HubClient
    const waker = yield* Waker
    const files = yield* ResultWatcher

    const loaded = yield* store.load
    const state = yield* SubscriptionRef.make(toRecovering(loaded, yield* Clock.currentTimeMillis))
    const lock = yield* Semaphore.make(1)
    const flows = yield* FiberMap.make<string>()
    // Wake loops live beside the flows, not inside them: when the agent's result ends a task mid-wake, the
    // command's current attempt may finish and be reported; cancel and shutdown still interrupt (and kill) it.
    const wakes = yield* FiberMap.make<string>()
    const signals = new Map<string, Signals>()
    const accepting = yield* Ref.make(true)
    const inFlight = yield* Ref.make<Option.Option<{ readonly taskId: string; readonly answer: Deferred.Deferred<Answer> }>>(Option.none())
    const outboxWake = yield* Deferred.make<void>().pipe(Effect.flatMap(Ref.make))
    const settledCount = yield* SubscriptionRef.make(0)
    const now = Clock.currentTimeMillis

    // ---- state: decide, persist, publish -------------------------------------------------------------

    /** Applies `f` and persists the result before anyone sees it. A failed save keeps the old state. */
    const commit = <A>(f: (q: QueueFile, at: number) => readonly [A, QueueFile]) =>
      lock.withPermit(Effect.gen(function*() {
        const before = yield* SubscriptionRef.get(state)
        const [out, after] = f(before, yield* now)
        if (after !== before) {
          yield* store.save(after)
          yield* SubscriptionRef.set(state, after)
          yield* hub.setStatus(busyOrIdle(after))
          if (after.outbox.length > 0) yield* Effect.flatMap(Ref.get(outboxWake), (d) => Deferred.succeed(d, undefined))
        }
        return out
      })).pipe(Effect.uninterruptible)

    const logged = <A>(what: string, e: Effect.Effect<A, unknown>) =>
      e.pipe(Effect.asVoid, Effect.catch((error) => Effect.logError(`${what} failed`, { error: String(error) })))

    /** Moves a task along the state machine; an illegal step (a race already decided) changes nothing. */
    const advance = (id: string, event: TaskEvent, detail?: string) => commit((q, at) => {
      const task = findTask(q, id)
      if (task === undefined) return [false, q] as const
      const next = transition(task.status, event)
      if (Result.isFailure(next)) return [false, q] as const
      if (next.success === task.status && detail === undefined) return [true, q] as const
      return [true, updateTask(q, id, (t) => setStatus(t, next.success, at, detail))] as const
    })

    const note = (id: string, event: string, detail: string) =>
      commit((q, at) => findTask(q, id) === undefined ? [undefined, q] as const : [undefined, updateTask(q, id, (t) => withEntry(t, { at, event, detail }))] as const)

    const signalsFor = (id: string) => Effect.gen(function*() {
      const existing = signals.get(id)
      if (existing !== undefined) return existing
      const created: Signals = { started: yield* Deferred.make<void>(), lastSign: yield* Ref.make(yield* now), lastProgressRelay: yield* Ref.make(-Infinity) }
      signals.set(id, created)
      return created
    })

    // ---- ending a task: into the persisted outbox, then out ------------------------------------------

    /** Ends a task: its report is persisted in the outbox before anything is sent. Idempotent. */
    const finish = (id: string, ending: Ending) => commit((q, at) => {
      const task = findTask(q, id)
      if (task === undefined || task.status === "reporting") return [false, q] as const
      const next = transition(task.status, ending.kind === "complete" ? "result_seen" : "failed")
      if (Result.isFailure(next)) return [false, q] as const
      const generation = task.generation !== undefined ? { generation: task.generation } : {}
      const report: Report = ending.kind === "complete"
        ? { type: "task_complete", task_id: id, result: ending.result, ...generation }
        : { type: "task_failed", task_id: id, reason: ending.reason, ...generation }
      const detail = ending.kind === "complete" ? "agent reported success" : ending.reason
      return [true, enqueueReport(updateTask(q, id, (t) => setStatus(t, "reporting", at, detail)), report)] as const
    }).pipe(Effect.tap((ended) => ended ? Effect.logInfo("task ended; report queued", { outcome: ending.kind, ...(ending.kind === "failed" ? { reason: ending.reason } : {}) }) : Effect.void),
      Effect.annotateLogs({ task_id: id }))

    /** Forgets a task entirely: its flow, its record, its outbox entry. */
    const drop = (id: string) => Effect.gen(function*() {
      yield* FiberMap.remove(flows, id)
      yield* FiberMap.remove(wakes, id)
      signals.delete(id)
      return yield* commit((q) => findTask(q, id) === undefined ? [false, q] as const : [true, removeTask(q, id)] as const)
    })

    const settle = (id: string, answer: Answer) => Effect.gen(function*() {
      if (answer.kind === "refused") yield* Effect.logError("hub refused the report; dropping it", { task_id: id, hub_said: answer.error })
      const dropped = yield* drop(id)
      if (answer.kind === "ack") yield* logged("removing task files", files.cleanup(id))
      if (dropped) yield* SubscriptionRef.update(settledCount, (n) => n + 1)
    })

    /** Sends the outbox one report at a time; the next goes when the hub answered the one in flight. */
    const outboxLoop = Effect.gen(function*() {
      const q = yield* SubscriptionRef.get(state)
      const report = q.outbox[0]
      if (report === undefined) {
        const wake = yield* Deferred.make<void>()
        yield* Ref.set(outboxWake, wake)
        // re-check after arming, so a report queued in between is not missed
        if ((yield* SubscriptionRef.get(state)).outbox.length === 0) yield* Deferred.await(wake)
        return
      }
      const identified = yield* hub.changes.pipe(Stream.filter((s) => s.status === "identified"), Stream.runHead)
      const session = Option.getOrThrow(identified).session
      const answer = yield* Deferred.make<Answer>()
      yield* Ref.set(inFlight, Option.some({ taskId: report.task_id, answer }))
      yield* hub.send(report)
      const outcome = yield* Effect.raceAll([
        Deferred.await(answer),
        Effect.sleep(REPORT_ANSWER_TIMEOUT_MS).pipe(Effect.as("timeout" as const)),
        hub.changes.pipe(Stream.filter((s) => s.session !== session || s.status !== "identified"), Stream.runHead, Effect.as("disconnected" as const))
      ])
      yield* Ref.set(inFlight, Option.none())
      if (outcome === "timeout" || outcome === "disconnected") {
        return yield* Effect.logWarning("report not answered; will send it again once identified", { task_id: report.task_id, why: outcome })
      }
      yield* settle(report.task_id, outcome)
    }).pipe(
      // a failing disk must not end the outbox: log, pause, try again
      Effect.catch((error) => Effect.logError("outbox step failed; retrying", { error: error.message }).pipe(Effect.andThen(Effect.sleep(1000)))),
      Effect.forever,
      Effect.annotateLogs({ service: "TaskFlow", fiber: "outbox" })
    )

    // ---- one task's flow ----------------------------------------------------------------------------

    const wakePhase = (task: TaskRecord, s: Signals) => Effect.gen(function*() {
      const id = task.task_id
      const attempts = yield* Ref.make(0)
      const running = yield* Ref.make(false)
      const paths = files.paths(id)
      const attempt = Effect.gen(function*() {
        yield* Ref.set(running, true)
        const n = yield* Ref.updateAndGet(attempts, (k) => k + 1)
        yield* advance(id, "wake_started", `attempt ${n}`)
        const outcome = yield* waker.wake({
          taskId: id, description: task.description, taskJson: JSON.stringify(task.assignment),
          taskFile: paths.taskFile, resultsDir: config.resultsDir, startedFile: paths.startedFile, resultFile: paths.resultFile, attempt: n
        })
        const detail = `attempt ${n}: ${outcome.status}${outcome.exitCode !== undefined ? ` (exit ${outcome.exitCode})` : ""}${outcome.error !== undefined ? ` ${outcome.error}` : ""}`
        yield* note(id, "wake_attempt", detail)
        yield* hub.send({ type: "wake_result", task_id: id, status: outcome.status, attempt: n, ...(outcome.error !== undefined ? { error: outcome.error } : {}) })
        const log = outcome.status === "success" ? Effect.logInfo : Effect.logWarning
        yield* log("wake attempt", { attempt: n, status: outcome.status, exit_code: outcome.exitCode ?? null, stderr_tail: outcome.stderrTail })
        if (outcome.status !== "success") return yield* new WakeAttemptFailed({ attempt: n })
      }).pipe(Effect.ensuring(Ref.set(running, false))) // "running" covers reporting the outcome too
      const wakeLoop = attempt.pipe(
        Effect.retry({ schedule: retryDelays(config.wakeRetryDelaysMs), while: () => !Deferred.isDoneUnsafe(s.started) }),
        Effect.as(Option.none<Ending>()),
        Effect.catch(() => Ref.get(attempts).pipe(Effect.map((n) => Option.some<Ending>({ kind: "failed", reason: `wake_failed_after_${n}_attempts` }))))
      )
      const wakeFiber = yield* FiberMap.run(wakes, id, wakeLoop)
      const first = yield* Effect.raceFirst(Fiber.join(wakeFiber).pipe(Effect.map((r) => ({ wake: r }))), Deferred.await(s.started).pipe(Effect.as("started" as const)))
      if (first === "started") {
        // The agent is up: no more attempts. A command still running may finish (it may be the agent's
        // launcher); one waiting for its next retry is stopped.
        if (!(yield* Ref.get(running))) yield* Fiber.interrupt(wakeFiber)
        return { next: "work" as const }
      }
      if (Option.isSome(first.wake)) return { next: "end" as const, ending: first.wake.value }
      yield* advance(id, "wake_ok")
      return { next: "confirm" as const }
    })

    const confirmPhase = (s: Signals) => Deferred.await(s.started).pipe(
      Effect.timeout(config.confirmationTimeoutMs),
      Effect.as(Option.none<Ending>()),
      Effect.catchTag("TimeoutError", () => Effect.succeed(Option.some<Ending>({ kind: "failed", reason: "confirmation_timeout" })))
    )

    /** `working` until the result arrives (onFile ends the flow) or a timeout ends it here. */
    const workPhase = (s: Signals): Effect.Effect<Ending> => {
      const taskTimeout = config.taskTimeoutMs > 0
        ? [Effect.sleep(config.taskTimeoutMs).pipe(Effect.as<Ending>({ kind: "failed", reason: "task_timeout" }))]
        : []
      const idle = config.agentIdleTimeoutMs > 0
        ? [Effect.gen(function*() {
            yield* Ref.set(s.lastSign, yield* now)
            while (true) {
              const remaining = (yield* Ref.get(s.lastSign)) + config.agentIdleTimeoutMs - (yield* now)
              if (remaining <= 0) return { kind: "failed", reason: "agent_stalled" } satisfies Ending
              yield* Effect.sleep(remaining)
            }
          })]
        : []
      return Effect.raceAll([Effect.never, ...taskTimeout, ...idle])
    }

    const flow = (id: string, from: "wake" | "confirm" | "work") => Effect.gen(function*() {
      const s = yield* signalsFor(id)
      const task = findTask(yield* SubscriptionRef.get(state), id)
      if (task === undefined) return
      let stage: "wake" | "confirm" | "work" = Deferred.isDoneUnsafe(s.started) ? "work" : from
      if (stage === "wake") {
        yield* files.writeTask(id, task.assignment)
        if (!waker.wakes) {
          yield* advance(id, "self_start", "no wake_command: the agent starts itself")
          stage = "work"
        } else {
          const woke = yield* wakePhase(task, s)
          if (woke.next === "end") return yield* finish(id, woke.ending)
          stage = woke.next
        }
      }
      if (stage === "confirm") {
        const timedOut = yield* confirmPhase(s)
        if (Option.isSome(timedOut)) return yield* finish(id, timedOut.value)
      }
      yield* advance(id, "started_seen")
      yield* finish(id, yield* workPhase(s))
    }).pipe(
      Effect.scoped,
      Effect.catch((error) => Effect.logError("task flow failed; the task stays held and is recovered on restart", { error: String(error) })),
      Effect.annotateLogs({ task_id: id })
    )

    const startFlow = (id: string, from: "wake" | "confirm" | "work") => FiberMap.run(flows, id, flow(id, from), { onlyIfMissing: true }).pipe(Effect.asVoid)

    // ---- hub messages -----------------------------------------------------------------------------

    const onAssign = (message: Extract<HubMessage, { type: "task_assign" }>) => Effect.gen(function*() {
      const id = message.task_id
      if (!isValidTaskId(id)) {
        if (!isPrintableId(id)) return yield* Effect.logWarning("task_assign with an unprintable task_id dropped")
        yield* Effect.logWarning("task_assign rejected: invalid task_id", { task_id: id })
        return yield* hub.send({ type: "task_rejected", task_id: id, reason: "invalid_task" })
      }
      const q = yield* SubscriptionRef.get(state)
      if (findTask(q, id) !== undefined) {
        // already held: the hub missed our answer; say it again and change nothing
        return yield* hub.send({ type: "task_accepted", task_id: id })
      }
      if (!(yield* Ref.get(accepting))) return yield* hub.send({ type: "task_rejected", task_id: id, reason: "shutting_down" })
      const valid = validateAssignment(message)
      if (Result.isFailure(valid)) {
        yield* Effect.logWarning("task_assign rejected: invalid task", { task_id: id, reason: valid.failure.reason })
        return yield* hub.send({ type: "task_rejected", task_id: id, reason: "invalid_task" })
      }
      const accepted = yield* commit((q, at) => {
        if (activeCount(q) >= config.maxActiveTasks) return [false, q] as const
        const task: TaskRecord = {
          task_id: id, description: valid.success.description, metadata: valid.success.metadata,
          ...(valid.success.generation !== undefined ? { generation: valid.success.generation } : {}),
          assignment: valid.success.assignment, status: "accepted", accepted_at: at, updated_at: at,
          timeline: [{ at, event: "accepted" }]
        }
        return [true, addTask(q, task)] as const
      }).pipe(Effect.catch((error) => Effect.as(Effect.logError("cannot persist the task; rejecting it", { task_id: id, error: error.message }), "unsaved" as const)))
      if (accepted !== true) return yield* hub.send({ type: "task_rejected", task_id: id, reason: "busy" })
      // persisted (fsync'd) above: only now may the hub hear that we have it
      yield* hub.send({ type: "task_accepted", task_id: id })
      yield* Effect.logInfo("task accepted", { task_id: id })
      yield* startFlow(id, "wake")
    })

    const onAck = (message: Extract<HubMessage, { type: "task_ack" }>) => Effect.gen(function*() {
      const status = message.status
      if (status === "accepted") return
      const current = yield* Ref.get(inFlight)
      const isInFlight = Option.isSome(current) && current.value.taskId === message.task_id
      const terminal = status === undefined ? isInFlight : ["complete", "completed", "failed", "retried", "dead_letter"].includes(status)
      if (!terminal) return yield* Effect.logDebug("task_ack ignored", { task_id: message.task_id, status: status ?? "" })
      const q = yield* SubscriptionRef.get(state)
      if (!q.outbox.some((r) => r.task_id === message.task_id)) {
        return yield* Effect.logWarning("terminal task_ack for a task with no report pending; ignored", { task_id: message.task_id, status: status ?? "" })
      }
      if (isInFlight) yield* Deferred.succeed(current.value.answer, { kind: "ack" })
      else yield* settle(message.task_id, { kind: "ack" })
    })

    const onRecoveryAnswer = (message: Extract<HubMessage, { type: "task_continue" | "task_reassign" }>) => Effect.gen(function*() {
      const id = message.task_id
      const task = findTask(yield* SubscriptionRef.get(state), id)
      if (task === undefined) return yield* Effect.logWarning(`${message.type} for a task not held; ignored`, { task_id: id })
      if (message.type === "task_reassign") {
        if (task.status !== "recovering") return yield* Effect.logWarning("task_reassign for an active task; ignored", { task_id: id })
        yield* drop(id)
        yield* logged("removing task files", files.cleanup(id))
        return yield* Effect.logInfo("recovering task reassigned by the hub; forgotten", { task_id: id })
      }
      const generation = message.generation
      if (task.status !== "recovering") {
        if (generation !== undefined) yield* commit((q) => [undefined, updateTask(q, id, (t) => ({ ...t, generation }))] as const)
        return
      }
      // What the agent did while we were down decides where to resume: never wake an agent that has started.
      const onDisk = yield* files.inspect(id)
      if (generation !== undefined) yield* commit((q) => [undefined, updateTask(q, id, (t) => ({ ...t, generation }))] as const)
      if (Option.isSome(onDisk.result)) {
        const event = onDisk.result.value
        yield* Effect.logInfo("recovering task already has a result; reporting it", { task_id: id })
        return yield* finish(id, event._tag === "Succeeded" ? { kind: "complete", result: event.result } : { kind: "failed", reason: event._tag === "Failed" ? event.reason : "unknown" })
      }
      const resume = onDisk.started ? "work" : resumeFrom(task.last_status)
      yield* commit((q, at) => [undefined, updateTask(q, id, (t) => withEntry({
        ...t,
        status: resume === "wake" ? "accepted" : resume === "confirm" ? "waking_confirmation" : "working"
      }, { at, event: "resumed", detail: `task_continue; resuming at ${resume}${onDisk.started ? " (.started found)" : ""}` }))] as const)
      const s = yield* signalsFor(id)
      if (onDisk.started) yield* Deferred.succeed(s.started, undefined)
      yield* startFlow(id, resume === "report" ? "work" : resume)
      // a result still being written (or unusable) gets the watcher's settle logic now that the task is active
      yield* files.rescan(id)
      yield* Effect.logInfo("recovering task resumed", { task_id: id, at: resume })
    })

    const cancel = (id: string) => Effect.gen(function*() {
      const task = findTask(yield* SubscriptionRef.get(state), id)
      if (task === undefined) return false
      yield* drop(id)
      yield* logged("writing the .cancelled file", files.writeCancelled(id))
      yield* Effect.logInfo("task cancelled", { task_id: id, was: task.status })
      return true
    })

    const onHub = (message: HubMessage): Effect.Effect<void, QueueStoreError> => {
      switch (message.type) {
        case "task_assign": return onAssign(message)
        case "task_ack": return onAck(message)
        case "task_continue":
        case "task_reassign": return onRecoveryAnswer(message)
        case "task_cancelled": return Effect.flatMap(cancel(message.task_id), (found) => found ? Effect.void : Effect.logWarning("task_cancelled for a task not held", { task_id: message.task_id }))
        case "identified": return Effect.gen(function*() {
          const q = yield* SubscriptionRef.get(state)
          for (const t of q.tasks.filter((t) => t.status === "recovering")) {
            yield* hub.send({ type: "task_recovering", task_id: t.task_id, description: t.description, metadata: t.metadata, last_status: t.last_status ?? "accepted" })
          }
        })
        case "error": return Effect.gen(function*() {
          const error = message.error ?? ""
          const current = yield* Ref.get(inFlight)
          if (Option.isSome(current) && /^task_(complete|fail)_failed/.test(error)) return yield* Deferred.succeed(current.value.answer, { kind: "refused", error })
          yield* Effect.logWarning("hub sent an error", { error })
        })
        case "pong": return Effect.void
      }
    }

    // ---- agent files ------------------------------------------------------------------------------

    const onFile = (event: AgentEvent): Effect.Effect<void> => Effect.gen(function*() {
      const id = event.taskId
      const task = findTask(yield* SubscriptionRef.get(state), id)
      // recovering tasks wait for the hub's answer; their files are rescanned on task_continue
      if (task === undefined || task.status === "recovering" || task.status === "reporting") return
      const s = yield* signalsFor(id)
      switch (event._tag) {
        case "Started":
          yield* Ref.set(s.lastSign, yield* now)
          if (!Deferred.isDoneUnsafe(s.started)) {
            yield* Deferred.succeed(s.started, undefined)
            yield* advance(id, "started_seen", "agent wrote .started")
          }
          return
        case "Progress": {
          yield* Ref.set(s.lastSign, yield* now)
          const at = yield* now
          if (at - (yield* Ref.get(s.lastProgressRelay)) < PROGRESS_RELAY_INTERVAL_MS) return
          yield* Ref.set(s.lastProgressRelay, at)
          return yield* hub.send({ type: "task_progress", task_id: id, ...(event.percent !== undefined ? { progress: event.percent } : {}), ...(event.message !== undefined ? { message: event.message } : {}) })
        }
        case "Invalid":
          yield* logged("moving the result aside", files.reject(id))
          yield* Effect.logWarning("agent result unusable", { reason: event.reason })
          break
      }
      // a result implies started: no further wake attempts
      yield* Deferred.succeed(s.started, undefined)
      const ending: Ending = event._tag === "Succeeded" ? { kind: "complete", result: event.result } : { kind: "failed", reason: event.reason }
      if (yield* finish(id, ending)) {
        yield* FiberMap.remove(flows, id)
        signals.delete(id)
      }
    }).pipe(
      survive("handling an agent file"),
      Effect.annotateLogs({ task_id: event.taskId })
    )

    // ---- start and stop ---------------------------------------------------------------------------

    yield* store.save(yield* SubscriptionRef.get(state))
    yield* hub.setStatus(busyOrIdle(yield* SubscriptionRef.get(state)))
    yield* Effect.forkScoped(outboxLoop)
    yield* Effect.addFinalizer(() => Effect.gen(function*() {
      yield* Ref.set(accepting, false)
      yield* FiberMap.clear(flows)
      yield* FiberMap.clear(wakes) // running wake commands' process groups are stopped
      yield* logged("final queue save", Effect.flatMap(SubscriptionRef.get(state), store.save))
    }))

    const awaitIdle = state.pipe(
      SubscriptionRef.changes,
      Stream.filter((q) => activeCount(q) === 0 && q.outbox.length === 0),
      Stream.runHead,
      Effect.asVoid
    )

    return TaskFlow.of({
      onHub: (m) => onHub(m).pipe(
        survive(`handling a ${m.type} message`),
        Effect.annotateLogs({ service: "TaskFlow" })
      ),
      onFile,
      snapshot: SubscriptionRef.get(state),
      changes: SubscriptionRef.changes(state),
      stopAccepting: Ref.set(accepting, false),
      awaitIdle,
      cancel,
      forget: (id) => Effect.gen(function*() {
        const found = yield* drop(id)
        if (found) yield* Effect.logInfo("task forgotten by the operator", { task_id: id })
        return found
      }),
      resend: (id) => Effect.gen(function*() {
        const q = yield* SubscriptionRef.get(state)
        const report = q.outbox.find((r) => r.task_id === id)
        if (report === undefined) return false
        yield* hub.send(report)
        return true
      }),
      awaitSettled: (count) => SubscriptionRef.changes(settledCount).pipe(Stream.filter((n) => n >= count), Stream.runHead, Effect.asVoid)
    })
  }).pipe(Effect.annotateLogs({ service: "TaskFlow" })))
}

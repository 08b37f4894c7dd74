/**
 * Everything between a `task_assign` and the hub's terminal `task_ack` (SPEC §3–§6), as a thin interpreter of
 * the pure decider (`domain/TaskDecider.ts`). Every input (hub message, agent file, phase end, operator
 * command, connection drop) goes through one mailbox, so inputs are decided one at a time, in order
 * (`flow/Dispatcher.ts`): the Ledger decides and saves (inputs that waited together are saved once), then the
 * commands are carried out (`flow/Commands.ts`); per-task fibers run in the TaskRunner.
 */
import { Clock, Context, Deferred, Effect, Layer, Queue, Stream, SubscriptionRef } from "effect"
import type { AgentEvent } from "../domain/AgentFiles.ts"
import type { Input } from "../domain/flow/Messages.ts"
import { type DeciderConfig, initialModel } from "../domain/flow/Model.ts"
import type { HubMessage } from "../domain/Protocol.ts"
import { activeCount, toRecovering } from "../domain/QueueOps.ts"
import type { QueueFile } from "../domain/Task.ts"
import { makeCommands } from "./flow/Commands.ts"
import { type Envelope, makeDispatcher } from "./flow/Dispatcher.ts"
import { makeLedger } from "./flow/Ledger.ts"
import { makeTaskSpans } from "./flow/Telemetry.ts"
import { makeTaskRunner, type Outcome } from "./flow/TaskRunner.ts"
import { Health } from "./Health.ts"
import { HubClient } from "./HubClient.ts"
import { QueueStore, type QueueStoreError } from "./QueueStore.ts"
import { ResultWatcher } from "./ResultWatcher.ts"
import { SidecarConfig } from "./SidecarConfig.ts"
import { Waker } from "./Waker.ts"

export type { Ending } from "../domain/flow/Messages.ts"
export const PROGRESS_RELAY_INTERVAL_MS = 5_000
export const CLEANUP_GRACE_MS = 60_000
export const MAX_REPORT_TRIES = 5
export const ABORT_GRACE_MS = 15_000
export const RECONCILE_WAIT_MS = 2_000
export const STALE_RETAIN_MS = 5 * 60_000
export const KEEP_ALIVE_MS = 60_000

export class TaskFlow extends Context.Service<TaskFlow, {
  onHub(message: HubMessage): Effect.Effect<void>
  onFile(event: AgentEvent): Effect.Effect<void>
  /** The current state, as persisted. */
  readonly snapshot: Effect.Effect<QueueFile>
  readonly changes: Stream.Stream<QueueFile>
  /** Stop taking tasks (`task_rejected` `shutting_down` from now on). */
  readonly stopAccepting: Effect.Effect<void>
  /** Waits until no task is active and no report waits (parked ones aside). */
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
    const decider: DeciderConfig = {
      maxActiveTasks: config.maxActiveTasks, maxPendingReports: config.maxPendingReports, wakes: waker.wakes, agentIdleTimeoutMs: config.agentIdleTimeoutMs,
      progressRelayIntervalMs: PROGRESS_RELAY_INTERVAL_MS, cleanupGraceMs: CLEANUP_GRACE_MS, maxReportTries: MAX_REPORT_TRIES,
      abortGraceMs: ABORT_GRACE_MS, reconcileWaitMs: RECONCILE_WAIT_MS, staleRetainMs: STALE_RETAIN_MS, keepAliveMs: KEEP_ALIVE_MS
    }

    const start = initialModel(toRecovering(yield* store.load, yield* Clock.currentTimeMillis))
    yield* store.save(start.queue)
    yield* hub.setStatus(activeCount(start.queue) > 0 ? "busy" : "idle")
    const model = yield* SubscriptionRef.make(start)
    const mailbox = yield* Queue.unbounded<Envelope>()
    const enqueue = (retrying: boolean) => (input: Input) => Effect.flatMap(Deferred.make<Outcome>(), (done) =>
      Queue.offer(mailbox, { input, retrying, done }).pipe(Effect.andThen(Deferred.await(done))))
    const submit = enqueue(false)
    const ledger = yield* makeLedger({ store, hub, model, config: decider, health: yield* Health })
    const spans = makeTaskSpans(config.agentId)
    const runner = yield* makeTaskRunner({ config, waker, files, model, submit, keepAliveMs: KEEP_ALIVE_MS, spans })
    const commands = yield* makeCommands({ hub, files, runner, submit, submitRetry: enqueue(true), spans })

    const dispatcher = makeDispatcher({ ledger, commands, model })
    yield* Queue.takeAll(mailbox).pipe(Effect.flatMap(dispatcher.dispatch), Effect.forever, Effect.forkScoped)
    yield* submit({ _tag: "Boot" })
    // The connection as the HubClient sees it (a drop is announced by no message).
    yield* hub.changes.pipe(
      Stream.map((s) => s.status === "identified"),
      Stream.changes,
      Stream.runForEach((up) => submit({ _tag: "Link", up })),
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() => Effect.gen(function*() {
      yield* submit({ _tag: "StopAccepting" })
      yield* commands.stopTimers
      yield* runner.stopAll // running wake commands' process groups are stopped
      const saved = yield* ledger.saveCurrent
      if (saved._tag === "Failure") yield* Effect.logError("final queue save failed", { error: saved.failure.message })
      // the files that waited for that save (of tasks the hub acknowledged) go now
      yield* dispatcher.releasedBySave
    }))

    const queue = SubscriptionRef.changes(model).pipe(Stream.map((m) => m.queue), Stream.changes)
    const operator = (op: "cancel" | "forget" | "resend") => (taskId: string) =>
      Effect.map(submit({ _tag: "Operator", op, taskId }), (o) => o.ok)
    return TaskFlow.of({
      onHub: (message) => Effect.asVoid(submit({ _tag: "Hub", message })),
      onFile: (event) => Effect.asVoid(submit({ _tag: "Agent", event })),
      snapshot: Effect.map(SubscriptionRef.get(model), (m) => m.queue),
      changes: queue,
      stopAccepting: Effect.asVoid(submit({ _tag: "StopAccepting" })),
      awaitIdle: queue.pipe(
        Stream.filter((q) => activeCount(q) === 0 && q.outbox.every((r) => r.parked_at !== undefined)),
        Stream.runHead,
        Effect.asVoid
      ),
      cancel: operator("cancel"),
      forget: operator("forget"),
      resend: operator("resend"),
      awaitSettled: (count) => SubscriptionRef.changes(model).pipe(Stream.filter((m) => m.settled >= count), Stream.runHead, Effect.asVoid)
    })
  }).pipe(Effect.annotateLogs({ service: "TaskFlow" })))
}

/**
 * A sidecar on in-memory layers for TaskFlow unit tests under TestClock: no sockets, no files, no processes.
 *
 * - `startSidecar` builds `sidecarLayerMemory(settings, { waker, store, initialQueue })` in the test's Scope and
 *   hands back the controls.
 * - `scriptedWaker` is a Waker whose outcomes the test scripts, recording the TestClock time of every call
 *   and every interruption; a `"hang"` outcome runs until interrupted or `release`d.
 * - `settle` lets every forked fiber run until it blocks; `advanceTo` moves the TestClock to an absolute time.
 */
import { Clock, Context, Deferred, Effect, Layer, Option, Ref, type Scope } from "effect"
import { TestClock } from "effect/testing"
import { defaultSettings, type Settings } from "../../src/domain/Config.ts"
import type { HubMessage, Outbound } from "../../src/domain/Protocol.ts"
import { emptyQueue, type QueueFile, type TaskRecord } from "../../src/domain/Task.ts"
import type { WakeRequest } from "../../src/domain/WakeEnv.ts"
import { sidecarLayerMemory } from "../../src/layers/Sidecar.ts"
import { Health } from "../../src/services/Health.ts"
import { HubClientMemory } from "../../src/services/HubClient.ts"
import { QueueStore, QueueStoreError } from "../../src/services/QueueStore.ts"
import { type AgentEvent, AgentFilesMemory } from "../../src/services/ResultWatcher.ts"
import { TaskFlow } from "../../src/services/TaskFlow.ts"
import { Waker, type WakeOutcome } from "../../src/services/Waker.ts"

/** Settings for unit tests: defaults (wake delays 5/15/30 s, confirmation 30 s, max 1 task), a wake command, no log file. */
export const testSettings = (overrides: Partial<Settings> = {}): Settings =>
  defaultSettings("/tmp/sidecar-unit", { wakeCommand: ["wake"], logFile: undefined, ...overrides })

/** Lets every runnable fiber run until it blocks (on a message, a Deferred or a TestClock sleep). */
export const settle = Effect.gen(function*() {
  for (let i = 0; i < 200; i++) yield* Effect.yieldNow
})

/** Moves the TestClock to the absolute time `ms` (running every sleep due on the way), then settles. */
export const advanceTo = (ms: number) => Effect.gen(function*() {
  const now = yield* Clock.currentTimeMillis
  if (ms < now) throw new Error(`advanceTo(${ms}) is in the past (now ${now})`)
  yield* TestClock.adjust(ms - now)
  yield* settle
})

// ---- the scriptable Waker ------------------------------------------------------------------------------

/** What one wake call does: answer at once, or hang until interrupted (or until `release`d). */
export type WakeStep = "success" | "failed" | "timeout" | "hang"

export interface WakeCall {
  readonly taskId: string
  readonly attempt: number
  /** TestClock time of the call (or of the interruption, in `interrupted`). */
  readonly at: number
}

export interface ScriptedWaker {
  readonly layer: Layer.Layer<Waker>
  readonly calls: Effect.Effect<ReadonlyArray<WakeCall>>
  /** Calls for one task. */
  readonly callsFor: (taskId: string) => Effect.Effect<ReadonlyArray<WakeCall>>
  /** Hanging calls that were interrupted (cancel, shutdown), with the time of the interruption. */
  readonly interrupted: Effect.Effect<ReadonlyArray<WakeCall>>
  /** Ends every call hanging now with this outcome (as if the command exited). */
  readonly release: (step: Exclude<WakeStep, "hang">) => Effect.Effect<void>
}

const outcomeOf = (step: Exclude<WakeStep, "hang">): WakeOutcome =>
  step === "success" ? { status: "success", exitCode: 0, stderrTail: "" }
    : step === "failed" ? { status: "failed", exitCode: 1, stderrTail: "boom", error: "exit code 1" }
    : { status: "timeout", stderrTail: "", error: "still running" }

/** A Waker answering call n with `steps[n]` (over all tasks, in call order), then `otherwise` forever. */
export const scriptedWaker = (steps: ReadonlyArray<WakeStep>, otherwise: WakeStep = "success") => Effect.gen(function*() {
  const script = yield* Ref.make<ReadonlyArray<WakeStep>>(steps)
  const calls = yield* Ref.make<ReadonlyArray<WakeCall>>([])
  const interrupted = yield* Ref.make<ReadonlyArray<WakeCall>>([])
  const hanging = yield* Ref.make<ReadonlyArray<Deferred.Deferred<WakeOutcome>>>([])
  const wake = (request: WakeRequest) => Effect.gen(function*() {
    const call: WakeCall = { taskId: request.taskId, attempt: request.attempt, at: yield* Clock.currentTimeMillis }
    yield* Ref.update(calls, (c) => [...c, call])
    const step = yield* Ref.modify(script, (s) => [s[0] ?? otherwise, s.slice(1)] as const)
    if (step !== "hang") return outcomeOf(step)
    const done = yield* Deferred.make<WakeOutcome>()
    yield* Ref.update(hanging, (h) => [...h, done])
    return yield* Deferred.await(done).pipe(
      Effect.onInterrupt(() => Effect.flatMap(Clock.currentTimeMillis, (at) => Ref.update(interrupted, (i) => [...i, { ...call, at }])))
    )
  })
  return {
    layer: Waker.layerFrom(wake),
    calls: Ref.get(calls),
    callsFor: (taskId) => Ref.get(calls).pipe(Effect.map((c) => c.filter((x) => x.taskId === taskId))),
    interrupted: Ref.get(interrupted),
    release: (step) => Effect.flatMap(Ref.getAndSet(hanging, []), (h) => Effect.forEach(h, (d) => Deferred.succeed(d, outcomeOf(step)), { discard: true }))
  } satisfies ScriptedWaker
})

// ---- the sidecar ---------------------------------------------------------------------------------------

export interface Sidecar {
  readonly hub: HubClientMemory["Service"]
  readonly agent: AgentFilesMemory["Service"]
  readonly flow: TaskFlow["Service"]
  /** Everything sent to the hub (while identified), in order. */
  readonly sent: Effect.Effect<ReadonlyArray<Outbound>>
  /** The `type` of everything sent, in order. */
  readonly types: Effect.Effect<ReadonlyArray<string>>
  /** The sent messages of one type. */
  readonly sentOf: <T extends Outbound["type"]>(type: T) => Effect.Effect<ReadonlyArray<Extract<Outbound, { type: T }>>>
  /** Delivers a hub message, then settles. */
  readonly receive: (message: HubMessage) => Effect.Effect<void>
  /** Delivers an agent file event, then settles. */
  readonly emit: (event: AgentEvent) => Effect.Effect<void>
  /** One held task, or undefined. */
  readonly task: (taskId: string) => Effect.Effect<TaskRecord | undefined>
  /** Files in the in-memory results dir (`<id>.task.json`, `<id>.cancelled`, …). */
  readonly files: Effect.Effect<ReadonlyMap<string, string>>
  /** What is degraded (queue file, results_dir, hub). */
  readonly health: Health["Service"]
}

export interface SidecarOptions {
  readonly settings?: Settings
  readonly waker?: Layer.Layer<Waker>
  readonly initialQueue?: QueueFile
  /** Replaces the in-memory QueueStore (e.g. one whose save blocks or fails). */
  readonly store?: Layer.Layer<QueueStore>
}

/** Builds the whole sidecar on in-memory layers in the current Scope (closed when the test ends). */
export const startSidecar = (options: SidecarOptions = {}): Effect.Effect<Sidecar, never, Scope.Scope> => Effect.gen(function*() {
  const settings = options.settings ?? testSettings()
  const ctx = yield* Layer.build(sidecarLayerMemory(settings, {
    ...(options.waker !== undefined ? { waker: options.waker } : {}),
    ...(options.store !== undefined ? { store: options.store } : {}),
    initialQueue: options.initialQueue ?? emptyQueue
  })).pipe(Effect.orDie)
  const hub = Context.get(ctx, HubClientMemory)
  const agent = Context.get(ctx, AgentFilesMemory)
  const flow = Context.get(ctx, TaskFlow)
  yield* settle
  const sent = Ref.get(hub.sent)
  return {
    hub,
    agent,
    flow,
    sent,
    types: Effect.map(sent, (s) => s.map((m) => m.type)),
    sentOf: <T extends Outbound["type"]>(type: T) =>
      Effect.map(sent, (s) => s.filter((m): m is Extract<Outbound, { type: T }> => m.type === type)),
    receive: (message) => Effect.andThen(hub.receive(message), settle),
    emit: (event) => Effect.andThen(agent.emit(event), settle),
    task: (taskId) => Effect.map(flow.snapshot, (q) => q.tasks.find((t) => t.task_id === taskId)),
    files: Ref.get(agent.files),
    health: Context.get(ctx, Health)
  } satisfies Sidecar
})

/** A task record as it would have been persisted by an earlier run (for recovery tests). */
export const persistedTask = (taskId: string, status: TaskRecord["status"], extra: Partial<TaskRecord> = {}): TaskRecord => ({
  task_id: taskId,
  description: `task ${taskId}`,
  metadata: { origin: "test" },
  assignment: { task_id: taskId, description: `task ${taskId}` },
  status,
  accepted_at: 0,
  updated_at: 0,
  timeline: [{ at: 0, event: "accepted" }],
  ...extra
})

/** A QueueStore whose saves can be held (until `release`) or made to fail. */
export const controllableStore = Effect.gen(function*() {
  const saved = yield* Ref.make<QueueFile>(emptyQueue)
  const gate = yield* Ref.make(Option.none<Deferred.Deferred<void>>())
  const failing = yield* Ref.make(false)
  const layer = Layer.succeed(QueueStore, QueueStore.of({
    load: Ref.get(saved),
    save: (queue) => Effect.gen(function*() {
      const held = yield* Ref.get(gate)
      if (Option.isSome(held)) yield* Deferred.await(held.value)
      if (yield* Ref.get(failing)) return yield* new QueueStoreError({ op: "save", path: "/memory/queue.json", cause: new Error("disk full") })
      yield* Ref.set(saved, queue)
    })
  }))
  return {
    layer,
    saved: Ref.get(saved),
    hold: Effect.flatMap(Deferred.make<void>(), (d) => Ref.set(gate, Option.some(d))),
    release: Effect.flatMap(Ref.getAndSet(gate, Option.none()), (d) => Option.isSome(d) ? Deferred.succeed(d.value, undefined) : Effect.void),
    setFailing: (on: boolean) => Ref.set(failing, on)
  }
})

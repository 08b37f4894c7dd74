/**
 * The daemon: the sidecar (`layers/Sidecar.ts`) plus its local control socket and the optional `http_addr`
 * endpoint; `run` adds drain (SIGUSR2) and `--once`. Nothing else lives here.
 */
import { Effect, Layer } from "effect"
import type { Settings } from "./domain/Config.ts"
import { holdsNothing } from "./domain/QueueOps.ts"
import { sidecarLayer } from "./layers/Sidecar.ts"
import { TaskFlow } from "./services/TaskFlow.ts"
import { collectWhenIdle } from "./platform/idleGc.ts"
import { awaitSignal } from "./platform/signals.ts"
import { ControlServerLayer } from "./control/server.ts"
import { HttpStatusLayer } from "./control/http.ts"

/** The daemon: the sidecar plus its local control socket (live `status`, `task cancel|forget|resend`) and the
 *  optional `http_addr` endpoint. */
export const SidecarLive = (settings: Settings) =>
  Layer.mergeAll(ControlServerLayer, HttpStatusLayer).pipe(Layer.provideMerge(sidecarLayer(settings)))

export interface RunOptions {
  /** Exit after one task has been reported and acknowledged (`run --once`). */
  readonly once?: boolean
}

/** Drain: take no new tasks, let the active ones finish and their reports settle, then return. */
export const drain = Effect.gen(function*() {
  const flow = yield* TaskFlow
  yield* flow.stopAccepting
  yield* Effect.logInfo("draining: no new tasks; waiting for active tasks to finish and be acknowledged")
  yield* flow.awaitIdle
  yield* Effect.logInfo("drained; exiting")
})

/** Runs the daemon until interrupted, drained (SIGUSR2) or, with `once`, until one report is settled. */
export const run = (settings: Settings, options: RunOptions = {}) =>
  Effect.gen(function*() {
    const flow = yield* TaskFlow
    // the memory a burst of tasks used goes back within seconds of the last one (platform/idleGc.ts)
    yield* collectWhenIdle({ idle: Effect.map(flow.snapshot, holdsNothing), every: "2 seconds", slackBytes: 4 * 1024 * 1024 }).pipe(Effect.forkChild({ startImmediately: true }))
    const once = options.once === true
      ? flow.awaitSettled(1).pipe(Effect.andThen(Effect.logInfo("--once: one task reported and acknowledged; exiting")))
      : Effect.never
    yield* Effect.raceFirst(once, awaitSignal("SIGUSR2").pipe(Effect.andThen(drain)))
  }).pipe(Effect.provide(SidecarLive(settings)), Effect.annotateLogs({ agent_id: settings.agentId }))

/**
 * The daemon, wired: recovered state is loaded when TaskFlow is built; here the hub's messages and the
 * agent's file events are fed into TaskFlow, each by its own supervised fiber. Nothing else lives here.
 */
import { Effect, Layer, Stream } from "effect"
import type { Settings } from "./domain/Config.ts"
import { ServicesLayer, ServicesLayerWith } from "./layers/Live.ts"
import { HubClient } from "./services/HubClient.ts"
import { ResultWatcher } from "./services/ResultWatcher.ts"
import { TaskFlow } from "./services/TaskFlow.ts"
import type { Waker } from "./services/Waker.ts"
import { awaitSignal } from "./platform/signals.ts"
import { ControlServerLayer } from "./control/server.ts"
import { HttpStatusLayer } from "./control/http.ts"

export const SidecarLayer = Layer.effectDiscard(Effect.gen(function*() {
  const flow = yield* TaskFlow
  const hub = yield* HubClient
  const files = yield* ResultWatcher
  yield* hub.messages.pipe(Stream.runForEach(flow.onHub), Effect.annotateLogs({ fiber: "hub messages" }), Effect.forkScoped)
  yield* files.events.pipe(Stream.runForEach(flow.onFile), Effect.annotateLogs({ fiber: "agent files" }), Effect.forkScoped)
  // Registered after the forks, so it runs before they are interrupted: from here on, assigns are refused.
  yield* Effect.addFinalizer(() => flow.stopAccepting.pipe(Effect.andThen(Effect.logInfo("shutting down"))))
  yield* Effect.logInfo("sidecar started", { hub: (yield* hub.state).status })
}).pipe(Effect.annotateLogs({ service: "Sidecar" })))

/** The whole sidecar as one layer, for embedding; `waker` lets the host bring its own (e.g. in-process) agent. */
export const SidecarWithWaker = <E, R>(settings: Settings, waker: Layer.Layer<Waker, E, R>) =>
  SidecarLayer.pipe(Layer.provideMerge(ServicesLayerWith(settings, waker)))

/** The daemon: the sidecar plus its local control socket (live `status`, `task cancel|forget|resend`) and the
 *  optional `http_addr` endpoint. */
export const SidecarLive = (settings: Settings) =>
  Layer.mergeAll(SidecarLayer, ControlServerLayer, HttpStatusLayer).pipe(Layer.provideMerge(ServicesLayer(settings)))

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
    const once = options.once === true
      ? flow.awaitSettled(1).pipe(Effect.andThen(Effect.logInfo("--once: one task reported and acknowledged; exiting")))
      : Effect.never
    yield* Effect.raceFirst(once, awaitSignal("SIGUSR2").pipe(Effect.andThen(drain)))
  }).pipe(Effect.provide(SidecarLive(settings)), Effect.annotateLogs({ agent_id: settings.agentId }))

/**
 * The one way the sidecar is put together, live or in memory: `wire` feeds the hub's messages and the agent's
 * file events into TaskFlow and gives TaskFlow its siblings (provideMerge keeps them visible to the host, so
 * tests and embedding applications can reach `HubClientMemory`, `AgentFilesMemory` or the live services).
 *
 * - `sidecarLayer(settings, { waker? })`: sockets, files, processes on Node; the state lock is taken first, so
 *   a second sidecar on the same state fails before it reads or writes anything.
 * - `sidecarLayerMemory(settings, { waker?, store?, initialQueue? })`: every service's `layerMemory`: no
 *   sockets, no files, no processes, so everything time-based runs under TestClock.
 * Either takes the host's own `Waker` (e.g. one that starts an in-process agent).
 */
import { Effect, Layer, Stream } from "effect"
import type { Settings } from "../domain/Config.ts"
import { emptyQueue, type QueueFile } from "../domain/Task.ts"
import { Health } from "../services/Health.ts"
import { HubClient } from "../services/HubClient.ts"
import { QueueStore } from "../services/QueueStore.ts"
import { ResultWatcher } from "../services/ResultWatcher.ts"
import { SidecarConfig } from "../services/SidecarConfig.ts"
import { StateLock } from "../services/StateLock.ts"
import { TaskFlow } from "../services/TaskFlow.ts"
import { Waker } from "../services/Waker.ts"
import { PlatformLayer } from "./Platform.ts"

/** The hub's messages and the agent's file events go to TaskFlow, each through its own supervised fiber. */
const Feeds = Layer.effectDiscard(Effect.gen(function*() {
  const flow = yield* TaskFlow
  const hub = yield* HubClient
  const files = yield* ResultWatcher
  yield* hub.messages.pipe(Stream.runForEach(flow.onHub), Effect.annotateLogs({ fiber: "hub messages" }), Effect.forkScoped)
  yield* files.events.pipe(Stream.runForEach(flow.onFile), Effect.annotateLogs({ fiber: "agent files" }), Effect.forkScoped)
  // Registered after the forks, so it runs before they are interrupted: from here on, assigns are refused.
  yield* Effect.addFinalizer(() => flow.stopAccepting.pipe(Effect.andThen(Effect.logInfo("shutting down"))))
  yield* Effect.logInfo("sidecar started", { hub: (yield* hub.state).status })
}).pipe(Effect.annotateLogs({ service: "Sidecar" })))

const wire = <A, E, R>(settings: Settings, parts: Layer.Layer<A, E, R>) =>
  Feeds.pipe(
    Layer.provideMerge(TaskFlow.layer),
    Layer.provideMerge(parts),
    Layer.provideMerge(Layer.merge(SidecarConfig.layer(settings), Health.layer))
  )

export interface SidecarOptions<E, R> {
  /** Replaces the Waker (default: the configured `wake_command`, or the always-successful memory one). */
  readonly waker?: Layer.Layer<Waker, E, R>
}

export interface MemoryOptions<E, R> extends SidecarOptions<E, R> {
  readonly store?: Layer.Layer<QueueStore>
  /** What an earlier run left in `queue.json` (recovery tests). */
  readonly initialQueue?: QueueFile
}

export const sidecarLayer = <E = never, R = never>(settings: Settings, options: SidecarOptions<E, R> = {}) =>
  wire(settings, Layer.mergeAll(HubClient.layer, QueueStore.layer, ResultWatcher.layer, options.waker ?? Waker.layer).pipe(
    Layer.provideMerge(StateLock.layer)
  )).pipe(Layer.provide(PlatformLayer))

export const sidecarLayerMemory = <E = never, R = never>(settings: Settings, options: MemoryOptions<E, R> = {}) =>
  // the memory ResultWatcher sits below the Waker, so a host's in-process agent can use `AgentFilesMemory`
  wire(settings, Layer.mergeAll(
    HubClient.layerMemory,
    options.store ?? QueueStore.layerMemory(options.initialQueue ?? emptyQueue),
    options.waker ?? Waker.layerMemory
  ).pipe(Layer.provideMerge(ResultWatcher.layerMemory)))

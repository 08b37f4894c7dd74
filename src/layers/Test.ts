/**
 * In-memory services for tests and for embedding experiments: no sockets, no files, no processes, so
 * everything time-based runs under TestClock. Controls: `HubClientMemory` (push hub messages, read what was
 * sent), `AgentFilesMemory` (emit agent file events, read written files); the QueueStore is in memory too.
 */
import { Layer } from "effect"
import type { Settings } from "../domain/Config.ts"
import { emptyQueue, type QueueFile } from "../domain/Task.ts"
import { layerHubClientMemory } from "../services/HubClient.ts"
import { QueueStore } from "../services/QueueStore.ts"
import { layerResultWatcherMemory } from "../services/ResultWatcher.ts"
import { SidecarConfig } from "../services/SidecarConfig.ts"
import { TaskFlow } from "../services/TaskFlow.ts"
import type { Waker } from "../services/Waker.ts"

export const TestServicesLayer = <E, R>(settings: Settings, waker: Layer.Layer<Waker, E, R>, initialQueue: QueueFile = emptyQueue) =>
  TaskFlow.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(layerHubClientMemory, QueueStore.layerMemory(initialQueue), layerResultWatcherMemory, waker)),
    Layer.provideMerge(SidecarConfig.layer(settings))
  )

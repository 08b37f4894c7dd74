/** The live services wired together: TaskFlow gets its siblings (provideMerge keeps them visible too). */
import { Layer } from "effect"
import type { Settings } from "../domain/Config.ts"
import { HubClient } from "../services/HubClient.ts"
import { QueueStore } from "../services/QueueStore.ts"
import { ResultWatcher } from "../services/ResultWatcher.ts"
import { SidecarConfig } from "../services/SidecarConfig.ts"
import { StateLock } from "../services/StateLock.ts"
import { TaskFlow } from "../services/TaskFlow.ts"
import { Waker } from "../services/Waker.ts"
import { PlatformLayer } from "./Platform.ts"

/** Every live service except the Waker, which an embedding application may replace. The state lock is taken
 *  first, so a second sidecar on the same state fails before it reads or writes anything. */
export const ServicesLayerWith = <E, R>(settings: Settings, waker: Layer.Layer<Waker, E, R>) =>
  TaskFlow.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(HubClient.layer, QueueStore.layer, ResultWatcher.layer, waker)),
    Layer.provideMerge(StateLock.layer),
    Layer.provideMerge(SidecarConfig.layer(settings))
  )

export const ServicesLayer = (settings: Settings) =>
  ServicesLayerWith(settings, Waker.layer).pipe(Layer.provide(PlatformLayer))

/**
 * agent-sidecar as a library (SPEC §8): the services, their live and in-memory layers, the config schema, and
 * layers that run the whole sidecar, so an Effect application can embed it — e.g. with its own `Waker` that
 * starts an in-process agent — without spawning a process.
 */
export { ConfigFile, decodeConfigFile, defaultSettings, type Settings, toSettings, type WakeCommand } from "./domain/Config.ts"
export { decodeFrame, encodeOutbound, type HubMessage, type Outbound } from "./domain/Protocol.ts"
export { emptyQueue, QueueFile, Report, TaskRecord, TaskStatus } from "./domain/Task.ts"
export { transition } from "./domain/TaskState.ts"
export type { WakeRequest } from "./domain/WakeEnv.ts"
export { type ConnectionState, HubClient, HubClientMemory } from "./services/HubClient.ts"
export { QueueStore, QueueStoreError } from "./services/QueueStore.ts"
export { type AgentEvent, AgentFilesMemory, ResultWatcher } from "./services/ResultWatcher.ts"
export { ConfigInvalid, SidecarConfig } from "./services/SidecarConfig.ts"
export { type Fault, Health, type Part } from "./services/Health.ts"
export { StateLock, StateLocked } from "./services/StateLock.ts"
export { type Ending, TaskFlow } from "./services/TaskFlow.ts"
export { Waker, type WakeOutcome } from "./services/Waker.ts"
export { LoggingLayer } from "./layers/Logging.ts"
export { type MemoryOptions, type SidecarOptions, sidecarLayer, sidecarLayerMemory } from "./layers/Sidecar.ts"
export { PlatformLayer } from "./layers/Platform.ts"
export { drain, run, SidecarLive } from "./program.ts"
export { decide } from "./domain/TaskDecider.ts"
export type { Command, Input } from "./domain/flow/Messages.ts"
export { initialModel, type Model } from "./domain/flow/Model.ts"

/** The Node platform the live services run on: file system, paths, child processes, and `ws` WebSockets. */
import { NodeServices, NodeWS } from "@effect/platform-node"
import { Layer } from "effect"

export const PlatformLayer = Layer.mergeAll(NodeServices.layer, NodeWS.layerWebSocketConstructor)

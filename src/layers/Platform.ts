/**
 * The Node platform the live services run on: file system, paths, child processes, stdio, terminal, and `ws`
 * WebSockets. From `@effect/platform-node-shared`, which has all of them without what `@effect/platform-node`
 * adds on top (an undici HTTP stack and a Redis peer): the installed package stays small.
 */
import * as NodeChildProcessSpawner from "@effect/platform-node-shared/NodeChildProcessSpawner"
import * as NodeFileSystem from "@effect/platform-node-shared/NodeFileSystem"
import * as NodePath from "@effect/platform-node-shared/NodePath"
import * as NodeStdio from "@effect/platform-node-shared/NodeStdio"
import * as NodeTerminal from "@effect/platform-node-shared/NodeTerminal"
import * as NodeWS from "@effect/platform-node-shared/NodeWS"
import { Layer } from "effect"
import { Socket } from "effect/socket"
import { type HubSocketOptions, type WebSocketConstructorWithOptions, withHubSocketOptions } from "../services/hub/socketOptions.ts"

/** As `NodeWS.layerWebSocketConstructor` builds it (protocols, handshake headers), plus `ws` options. */
const wsConstructor = (extra: Partial<HubSocketOptions>): WebSocketConstructorWithOptions => {
  const make = (url: string, options?: Socket.WebSocketConstructorOptions): Socket.WebSocketLike =>
    options === undefined || typeof options === "string" || Array.isArray(options)
      ? new NodeWS.WebSocket(url, options, extra)
      : new NodeWS.WebSocket(url, options.protocols, { ...extra, ...(options.headers === undefined ? {} : { headers: options.headers }) })
  return Object.assign(make, { [withHubSocketOptions]: (options: HubSocketOptions) => wsConstructor({ ...extra, ...options }) })
}

/** `ws` WebSockets; the HubClient dials with `maxPayload` set from `max_message_bytes` (see hub/socketOptions.ts). */
export const layerWebSocketConstructor = Layer.succeed(Socket.WebSocketConstructor, wsConstructor({}))

/** File system, paths, child processes, stdio and terminal: what `@effect/platform-node`'s NodeServices holds. */
export const NodeServicesLayer = NodeChildProcessSpawner.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeStdio.layer, NodeTerminal.layer))
)

export const PlatformLayer = Layer.mergeAll(NodeServicesLayer, layerWebSocketConstructor)

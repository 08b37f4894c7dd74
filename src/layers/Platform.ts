/** The Node platform the live services run on: file system, paths, child processes, and `ws` WebSockets. */
import { NodeServices, NodeWS } from "@effect/platform-node"
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

export const PlatformLayer = Layer.mergeAll(NodeServices.layer, layerWebSocketConstructor)

/**
 * The hub connection needs `ws` options that effect's `WebSocketConstructor` cannot carry (issue 12: `maxPayload`,
 * so an oversized frame is refused as its header arrives, not buffered whole). A constructor that can build
 * sockets with them (Platform.ts's) says so with this key; any other constructor (a test's fake, the global
 * WebSocket) is used as it is, and `max_message_bytes` is then enforced only after receipt.
 */
import type { Socket } from "effect/socket"

export interface HubSocketOptions {
  /** Largest inbound message, in bytes; a larger one closes the connection with 1009. */
  readonly maxPayload: number
}

export const withHubSocketOptions: unique symbol = Symbol.for("agent-sidecar/WebSocketConstructor/withOptions")

export type WebSocketConstructorWithOptions = Socket.WebSocketConstructor["Service"] & {
  readonly [withHubSocketOptions]: (options: HubSocketOptions) => Socket.WebSocketConstructor["Service"]
}

/** The constructor to dial the hub with: `make` configured with `options` when it supports them. */
export const configure = (make: Socket.WebSocketConstructor["Service"], options: HubSocketOptions): Socket.WebSocketConstructor["Service"] =>
  withHubSocketOptions in make ? (make as WebSocketConstructorWithOptions)[withHubSocketOptions](options) : make

/** Slack above `max_message_bytes` before the socket refuses a frame: frames a little over the limit are still
 *  received, logged and dropped with the connection kept (SPEC §3); only beyond this does `ws` close it. */
export const PAYLOAD_SLACK_BYTES = 64 * 1024

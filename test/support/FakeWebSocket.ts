/**
 * An in-memory WebSocket for HubClient unit tests under TestClock: the real HubClient code runs against it
 * through effect's `Socket.WebSocketConstructor`, and the test decides when each socket opens, what the
 * "hub" says, and when it drops.
 */
import { Clock, Effect, Layer, Random } from "effect"
import { Socket } from "effect/socket"

type Listener = (event: Socket.WebSocketEvent) => void

export class FakeSocket implements Socket.WebSocketLike {
  readyState = 0
  readonly sent: Array<Record<string, unknown>> = []
  closedWith: number | undefined
  private readonly listeners = new Map<string, Set<Listener>>()
  readonly url: string
  readonly createdAt: number
  constructor(url: string, createdAt: number) {
    this.url = url
    this.createdAt = createdAt
  }
  addEventListener(type: string, listener: Listener) {
    const set = this.listeners.get(type) ?? new Set()
    set.add(listener)
    this.listeners.set(type, set)
  }
  removeEventListener(type: string, listener: Listener) {
    this.listeners.get(type)?.delete(listener)
  }
  private fire(type: string, event: Socket.WebSocketEvent) {
    for (const l of [...(this.listeners.get(type) ?? [])]) l(event)
  }
  send(data: string | Uint8Array) {
    this.sent.push(JSON.parse(String(data)) as Record<string, unknown>)
  }
  close(code?: number) {
    if (this.readyState >= 2) return
    this.closedWith = code ?? 1005
    this.readyState = 3
    this.fire("close", { code: code ?? 1005, reason: "" })
  }
  // ---- driven by the test ----
  open() {
    this.readyState = 1
    this.fire("open", {})
  }
  receive(frame: string | Record<string, unknown>) {
    this.fire("message", { data: typeof frame === "string" ? frame : JSON.stringify(frame) })
  }
  drop(code = 1006, reason = "dropped") {
    this.readyState = 3
    this.fire("close", { code, reason })
  }
  /** Answers every `ping` the client sends with a `pong`, as a healthy hub does. */
  answerPings() {
    const send = this.send.bind(this)
    this.send = (data) => {
      send(data)
      if (JSON.parse(String(data)).type === "ping") queueMicrotask(() => this.receive({ type: "pong" }))
    }
    return this
  }
  sentTypes() {
    return this.sent.map((m) => m["type"])
  }
}

export interface FakeNetwork {
  readonly sockets: Array<FakeSocket>
  /** What to do with each new socket (default: nothing; the test opens it). */
  onConnect: (socket: FakeSocket) => void
}

/** A WebSocketConstructor whose sockets the test controls; `createdAt` uses the (Test)Clock. */
export const fakeNetwork = (onConnect: (socket: FakeSocket) => void = () => {}) => Effect.gen(function*() {
  const clock = yield* Clock.Clock
  const network: FakeNetwork = { sockets: [], onConnect }
  const layer = Layer.succeed(Socket.WebSocketConstructor, (url: string) => {
    const socket = new FakeSocket(url, clock.currentTimeMillisUnsafe())
    network.sockets.push(socket)
    network.onConnect(socket)
    return socket
  })
  return { network, layer }
})

/** Random fixed at 0.5, which makes `Schedule.jittered` multiply by exactly 1.0. */
export const noJitter = Layer.succeed(Random.Random, {
  nextIntUnsafe: () => 2 ** 30,
  nextDoubleUnsafe: () => 0.5
})

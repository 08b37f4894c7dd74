/**
 * The bench hub: a `ws` server on 127.0.0.1 that answers what a hub must (identify → identified,
 * ping → pong, task_complete/task_failed → terminal task_ack) and timestamps every frame on arrival, so a
 * latency is measured hub-side: from just before `send` to the `message` event of the answer.
 */
import type { AddressInfo } from "node:net"
import { performance } from "node:perf_hooks"
import { WebSocket, WebSocketServer } from "ws"

export interface Frame {
  readonly type: string
  readonly [key: string]: unknown
}

export interface Received {
  readonly frame: Frame
  /** performance.now() when the frame arrived. */
  readonly at: number
}

interface Waiter {
  readonly from: number
  readonly predicate: (f: Frame) => boolean
  readonly resolve: (r: Received) => void
}

export class BenchHub {
  readonly received: Array<Received> = []
  private readonly sockets = new Set<WebSocket>()
  private waiters: Array<Waiter> = []
  private readonly server: WebSocketServer

  private constructor(server: WebSocketServer) {
    this.server = server
    server.on("connection", (ws) => {
      this.sockets.add(ws)
      ws.on("close", () => this.sockets.delete(ws))
      ws.on("message", (data) => this.onMessage(ws, String(data)))
    })
  }

  static start(): Promise<BenchHub> {
    return new Promise((resolve, reject) => {
      const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
      server.once("listening", () => resolve(new BenchHub(server)))
      server.once("error", reject)
    })
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/ws`
  }

  /** Index of the next frame to arrive: pass it to `waitFor` to ignore earlier frames. */
  mark(): number {
    return this.received.length
  }

  /** Sends to every connected sidecar; returns the time taken just before sending. */
  send(frame: Record<string, unknown>): number {
    const text = JSON.stringify({ ...frame, protocol_version: 1 })
    const at = performance.now()
    for (const ws of this.sockets) ws.send(text)
    return at
  }

  /** Sends text as it is (no JSON, no protocol_version) to every connected sidecar. */
  sendRaw(text: string): void {
    for (const ws of this.sockets) ws.send(text)
  }

  /** The first frame at index >= `from` matching `predicate`. */
  waitFor(predicate: (f: Frame) => boolean, from: number, timeoutMs = 10_000): Promise<Received> {
    for (let i = from; i < this.received.length; i++) {
      if (predicate(this.received[i]!.frame)) return Promise.resolve(this.received[i]!)
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        const seen = this.received.slice(from).map((r) => `${r.frame.type}${typeof r.frame["task_id"] === "string" ? `(${r.frame["task_id"]})` : ""}`)
        reject(new Error(`bench hub: timed out after ${timeoutMs} ms; frames since mark: ${seen.join(", ") || "none"}`))
      }, timeoutMs)
      const waiter: Waiter = { from, predicate, resolve: (r) => { clearTimeout(timer); resolve(r) } }
      this.waiters.push(waiter)
    })
  }

  close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  private onMessage(ws: WebSocket, text: string): void {
    const at = performance.now()
    let frame: Frame
    try {
      frame = JSON.parse(text) as Frame
    } catch {
      return
    }
    const index = this.received.length
    this.received.push({ frame, at })
    const reply = (m: Record<string, unknown>) => ws.send(JSON.stringify({ ...m, protocol_version: 1 }))
    switch (frame.type) {
      case "identify":
        reply({ type: "identified", agent_id: frame["agent_id"] })
        break
      case "ping":
        reply({ type: "pong", timestamp: Date.now() })
        break
      case "task_complete":
      case "task_failed":
        reply({ type: "task_ack", task_id: frame["task_id"], status: frame.type === "task_complete" ? "complete" : "failed" })
        break
    }
    const matched = this.waiters.filter((w) => index >= w.from && w.predicate(frame))
    if (matched.length > 0) {
      this.waiters = this.waiters.filter((w) => !matched.includes(w))
      for (const w of matched) w.resolve({ frame, at })
    }
  }
}

/**
 * Serves the control socket for a running daemon: the live view for `status` (connection state, every task
 * with its timeline) and `task cancel|forget|resend`. Started with the daemon, removed on shutdown.
 */
import { Effect, FiberSet, Layer, Schema } from "effect"
import * as NFS from "node:fs"
import * as Net from "node:net"
import { Health } from "../services/Health.ts"
import { HubClient } from "../services/HubClient.ts"
import { SidecarConfig } from "../services/SidecarConfig.ts"
import { TaskFlow } from "../services/TaskFlow.ts"
import { ControlRequest, type ControlResponse, socketPathFor } from "./protocol.ts"

const decodeRequest = Schema.decodeUnknownOption(Schema.fromJsonString(ControlRequest))

export const ControlServerLayer = Layer.effectDiscard(Effect.gen(function*() {
  const config = yield* SidecarConfig
  const flow = yield* TaskFlow
  const hub = yield* HubClient
  const health = yield* Health
  const path = socketPathFor(config.queuePath)
  const runFork = yield* FiberSet.makeRuntime<TaskFlow>()

  const answer = (request: ControlRequest): Effect.Effect<ControlResponse, never, TaskFlow> => Effect.gen(function*() {
    switch (request.op) {
      case "status":
        return { ok: true, pid: process.pid, agent_id: config.agentId, connection: yield* hub.state, degraded: yield* health.faults, queue: yield* flow.snapshot }
      case "cancel":
      case "forget":
      case "resend": {
        const done = yield* (request.op === "resend" ? flow.resend(request.task_id) : flow[request.op](request.task_id))
        return done ? { ok: true } : { ok: false, error: `no such task${request.op === "resend" ? " report" : ""}: ${request.task_id}` }
      }
    }
  }).pipe(Effect.catch((e) => Effect.succeed<ControlResponse>({ ok: false, error: e.message })))

  // One request per connection: the first line is answered and the socket ended; whatever else arrives on it
  // is ignored (it must never run the first request a second time).
  const handle = (socket: Net.Socket) => {
    let buffer = ""
    let answered = false
    socket.setEncoding("utf8")
    socket.on("error", () => socket.destroy())
    socket.on("data", (chunk: string) => {
      if (answered) return
      buffer += chunk
      if (buffer.length > 65536) return socket.destroy()
      const newline = buffer.indexOf("\n")
      if (newline < 0) return
      answered = true
      const request = decodeRequest(buffer.slice(0, newline))
      const reply = (r: ControlResponse) => socket.end(`${JSON.stringify(r)}\n`)
      if (request._tag === "None") return reply({ ok: false, error: "bad request" })
      runFork(answer(request.value).pipe(Effect.tap((r) => Effect.sync(() => reply(r)))))
    })
  }

  yield* Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      // we hold the state lock, so a socket file left here is a dead daemon's
      try { NFS.rmSync(path, { force: true }) } catch { /* listen reports it */ }
      const server = Net.createServer(handle)
      server.once("error", (e) => resume(Effect.die(e)))
      server.listen(path, () => {
        NFS.chmodSync(path, 0o600)
        resume(Effect.succeed(server))
      })
    }),
    (server) => Effect.callback<void>((resume) => { server.close(() => resume(Effect.void)) })
  ).pipe(
    Effect.catchCause((cause) => Effect.logWarning("control socket unavailable; status falls back to queue.json", { path, cause: String(cause) }))
  )
}))

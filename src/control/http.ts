/**
 * The optional HTTP endpoint (`http_addr`, SPEC §2): `/healthz` (the process serves), `/readyz` (identified by
 * the hub and nothing degraded: the queue file saves, `results_dir` is watched), `/status` (the live view as JSON, no secrets) and Prometheus `/metrics`. Meant for a local
 * supervisor or scraper: bind it to loopback unless you mean otherwise.
 */
import { Clock, Effect, FiberSet, Layer } from "effect"
import * as Http from "node:http"
import type { QueueFile } from "../domain/Task.ts"
import type { ConnectionState } from "../services/HubClient.ts"
import { type Fault, Health, type Part } from "../services/Health.ts"
import { HubClient } from "../services/HubClient.ts"
import { SidecarConfig } from "../services/SidecarConfig.ts"
import { TaskFlow } from "../services/TaskFlow.ts"

const STATUSES = ["accepted", "waking", "waking_confirmation", "working", "reporting", "recovering"] as const

const PARTS: ReadonlyArray<Part> = ["queue", "results_dir", "hub"]

export const prometheusText = (q: QueueFile, hub: ConnectionState, uptimeSeconds: number, faults: ReadonlyArray<Fault> = [], droppedFrames = 0): string => {
  const lines = [
    "# HELP agent_sidecar_tasks Tasks held, by status.",
    "# TYPE agent_sidecar_tasks gauge",
    ...STATUSES.map((s) => `agent_sidecar_tasks{status="${s}"} ${q.tasks.filter((t) => t.status === s).length}`),
    "# HELP agent_sidecar_outbox_reports Terminal reports waiting for the hub's answer.",
    "# TYPE agent_sidecar_outbox_reports gauge",
    `agent_sidecar_outbox_reports ${q.outbox.length}`,
    "# HELP agent_sidecar_outbox_parked_reports Reports the hub never answered, set aside until `agent-sidecar task resend`.",
    "# TYPE agent_sidecar_outbox_parked_reports gauge",
    `agent_sidecar_outbox_parked_reports ${q.outbox.filter((r) => r.parked_at !== undefined).length}`,
    "# HELP agent_sidecar_outbox_stale_reports Reports refused as stale, kept for the hub to hand their task back.",
    "# TYPE agent_sidecar_outbox_stale_reports gauge",
    `agent_sidecar_outbox_stale_reports ${q.outbox.filter((r) => r.stale_at !== undefined).length}`,
    "# HELP agent_sidecar_hub_identified 1 when the hub connection is identified.",
    "# TYPE agent_sidecar_hub_identified gauge",
    `agent_sidecar_hub_identified ${hub.status === "identified" ? 1 : 0}`,
    "# HELP agent_sidecar_hub_connection_attempts_total Connection attempts since start.",
    "# TYPE agent_sidecar_hub_connection_attempts_total counter",
    `agent_sidecar_hub_connection_attempts_total ${hub.session}`,
    "# HELP agent_sidecar_degraded 1 while a part of the machine fails (queue: the state file cannot be saved; results_dir: not watched or not writable).",
    "# TYPE agent_sidecar_degraded gauge",
    ...PARTS.map((p) => `agent_sidecar_degraded{part="${p}"} ${faults.some((f) => f.part === p) ? 1 : 0}`),
    "# HELP agent_sidecar_hub_frames_dropped_total Frames from the hub dropped as malformed, too large or of a wrong shape.",
    "# TYPE agent_sidecar_hub_frames_dropped_total counter",
    `agent_sidecar_hub_frames_dropped_total ${droppedFrames}`,
    "# HELP agent_sidecar_uptime_seconds Seconds since the daemon started.",
    "# TYPE agent_sidecar_uptime_seconds gauge",
    `agent_sidecar_uptime_seconds ${uptimeSeconds}`
  ]
  return `${lines.join("\n")}\n`
}

export const HttpStatusLayer = Layer.effectDiscard(Effect.gen(function*() {
  const config = yield* SidecarConfig
  if (config.httpAddr === undefined) return
  const flow = yield* TaskFlow
  const hub = yield* HubClient
  const health = yield* Health
  const startedAt = yield* Clock.currentTimeMillis
  const runFork = yield* FiberSet.makeRuntime<never>()
  const split = config.httpAddr.lastIndexOf(":")
  const host = config.httpAddr.slice(0, split).replace(/^\[|\]$/g, "")
  const port = Number(config.httpAddr.slice(split + 1))

  const respond = (req: Http.IncomingMessage, res: Http.ServerResponse) => runFork(Effect.gen(function*() {
    const send = (code: number, type: string, body: string) => Effect.sync(() => res.writeHead(code, { "content-type": type, "cache-control": "no-store" }).end(body))
    const json = (code: number, body: unknown) => send(code, "application/json", JSON.stringify(body))
    const path = (req.url ?? "/").split("?")[0]
    if (req.method !== "GET") return yield* json(405, { error: "GET only" })
    const state = yield* hub.state
    const faults = yield* health.faults
    switch (path) {
      case "/healthz": return yield* json(200, { ok: true })
      case "/readyz": {
        const ready = state.status === "identified" && faults.length === 0
        return yield* json(ready ? 200 : 503, { ready, hub: state.status, degraded: faults })
      }
      case "/status": return yield* json(200, { agent_id: config.agentId, pid: process.pid, connection: state, degraded: faults, queue: yield* flow.snapshot })
      case "/metrics": return yield* send(200, "text/plain; version=0.0.4", prometheusText(yield* flow.snapshot, state, Math.round(((yield* Clock.currentTimeMillis) - startedAt) / 1000), faults, yield* hub.droppedFrames))
      default: return yield* json(404, { error: "not found", paths: ["/healthz", "/readyz", "/status", "/metrics"] })
    }
  }))

  yield* Effect.acquireRelease(
    Effect.callback<Http.Server>((resume) => {
      const server = Http.createServer(respond)
      server.once("error", (e) => resume(Effect.die(e)))
      server.listen(port, host, () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  ).pipe(
    Effect.tap(() => Effect.logInfo(`status endpoint on http://${config.httpAddr}/ (healthz, readyz, status, metrics)`)),
    Effect.catchCause((cause) => Effect.logError("cannot serve http_addr; running without it", { http_addr: config.httpAddr, cause: String(cause) }))
  )
}))

/** `agent-sidecar status`: what the sidecar holds, from `queue.json`. */
import { Console, Effect, Option } from "effect"
import { askDaemon } from "../control/client.ts"
import { socketPathFor } from "../control/protocol.ts"
import type { Fault } from "../services/Health.ts"
import type { ConnectionState } from "../services/HubClient.ts"
import { Command } from "effect/cli"
import { PlatformLayer } from "../layers/Platform.ts"
import { QueueStore } from "../services/QueueStore.ts"
import { SidecarConfig } from "../services/SidecarConfig.ts"
import type { QueueFile } from "../domain/Task.ts"
import { configFlag, jsonFlag, loadConfig } from "./shared.ts"

const ago = (now: number, at: number) => {
  const s = Math.max(0, Math.round((now - at) / 1000))
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`
}

export const formatStatus = (q: QueueFile, now: number, source: string): string => {
  const parked = q.outbox.filter((r) => r.parked_at !== undefined)
  const stale = q.outbox.filter((r) => r.stale_at !== undefined)
  const lines = [`source: ${source}`, `tasks: ${q.tasks.length}   reports pending: ${q.outbox.length}` +
    (parked.length > 0 ? `   PARKED (the hub never answered; agent-sidecar task resend ID): ${parked.map((r) => r.task_id).join(", ")}` : "") +
    (stale.length > 0 ? `   kept after a stale refusal: ${stale.map((r) => r.task_id).join(", ")}` : "")]
  for (const t of q.tasks) {
    const last = t.last_status !== undefined ? ` (was ${t.last_status})` : ""
    lines.push(``, `${t.task_id}  ${t.status}${last}  accepted ${ago(now, t.accepted_at)}  ${JSON.stringify(t.description.slice(0, 60))}`)
    // each entry with the time since the task was accepted, so durations read straight off
    for (const e of t.timeline.slice(-12)) {
      const since = `+${((e.at - t.accepted_at) / 1000).toFixed(1)}s`.padStart(9)
      lines.push(`    ${new Date(e.at).toISOString()} ${since}  ${e.event}${e.detail !== undefined ? `  ${e.detail}` : ""}`)
    }
  }
  return lines.join("\n")
}

export const statusCommand = Command.make("status", { config: configFlag, json: jsonFlag }, ({ config, json }) =>
  Effect.gen(function*() {
    const settings = yield* loadConfig(config)
    // A running daemon answers on its control socket with the live view; otherwise read queue.json.
    const live = yield* askDaemon(socketPathFor(settings.queuePath), { op: "status" })
    if (Option.isSome(live) && live.value.ok) {
      const { queue, connection, pid, degraded } = live.value as unknown as { queue: QueueFile; connection: ConnectionState; pid: number; degraded?: ReadonlyArray<Fault> }
      if (json) return yield* Console.log(JSON.stringify({ source: "daemon", pid, connection, degraded: degraded ?? [], queue }, null, 2))
      const hub = `hub: ${connection.status}${connection.retryInMs !== undefined && connection.status === "disconnected" ? ` (retry in ${Math.round(connection.retryInMs / 1000)} s)` : ""}${connection.lastError !== undefined ? `, last error: ${connection.lastError}` : ""}`
      const faults = (degraded ?? []).map((f) => `\nDEGRADED ${f.part}: ${f.cause} (since ${new Date(f.since).toISOString()}, ${f.count} failures)`).join("")
      return yield* Console.log(`daemon pid ${pid}, ${hub}${faults}\n${formatStatus(queue, Date.now(), "live")}`)
    }
    const queue = yield* QueueStore.use((s) => s.load).pipe(
      Effect.provide(QueueStore.layer),
      Effect.provide(SidecarConfig.layer(settings)),
      Effect.provide(PlatformLayer)
    )
    // The token never appears here: it is not part of the queue, and settings are not printed.
    yield* Console.log(json ? JSON.stringify({ source: "queue.json", queue }, null, 2) : `daemon not running\n${formatStatus(queue, Date.now(), settings.queuePath)}`)
  })).pipe(Command.withDescription("Show the tasks the sidecar holds and their timelines (live from a running daemon, else from queue.json)"))

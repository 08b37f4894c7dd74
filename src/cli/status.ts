/** `agent-sidecar status`: what the sidecar holds, from `queue.json`. */
import { Console, Effect } from "effect"
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
  const lines = [`source: ${source}`, `tasks: ${q.tasks.length}   reports pending: ${q.outbox.length}`]
  for (const t of q.tasks) {
    const last = t.last_status !== undefined ? ` (was ${t.last_status})` : ""
    lines.push(``, `${t.task_id}  ${t.status}${last}  accepted ${ago(now, t.accepted_at)}  ${JSON.stringify(t.description.slice(0, 60))}`)
    for (const e of t.timeline.slice(-8)) lines.push(`    ${new Date(e.at).toISOString()}  ${e.event}${e.detail !== undefined ? `  ${e.detail}` : ""}`)
  }
  return lines.join("\n")
}

export const statusCommand = Command.make("status", { config: configFlag, json: jsonFlag }, ({ config, json }) =>
  Effect.gen(function*() {
    const settings = yield* loadConfig(config)
    const queue = yield* QueueStore.use((s) => s.load).pipe(
      Effect.provide(QueueStore.layer),
      Effect.provide(SidecarConfig.layer(settings)),
      Effect.provide(PlatformLayer)
    )
    // The token never appears here: it is not part of the queue, and settings are not printed.
    yield* Console.log(json ? JSON.stringify({ source: "queue.json", queue }, null, 2) : formatStatus(queue, Date.now(), settings.queuePath))
  })).pipe(Command.withDescription("Show the tasks the sidecar holds and their timelines"))

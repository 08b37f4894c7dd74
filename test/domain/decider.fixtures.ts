/** Builders for the pure decider's tests: models, tasks, and a short way to decide and look at the result. */
import type { Command, Input } from "../../src/domain/flow/Messages.ts"
import { type DeciderConfig, initialModel, type Model } from "../../src/domain/flow/Model.ts"
import type { HubMessage } from "../../src/domain/Protocol.ts"
import type { Report, TaskRecord, TaskStatus } from "../../src/domain/Task.ts"
import { decide } from "../../src/domain/TaskDecider.ts"

export const config: DeciderConfig = {
  maxActiveTasks: 1, maxPendingReports: 3, wakes: true, agentIdleTimeoutMs: 20_000, progressRelayIntervalMs: 5_000, cleanupGraceMs: 60_000, maxReportTries: 3,
  abortGraceMs: 15_000, reconcileWaitMs: 2_000, staleRetainMs: 300_000, keepAliveMs: 60_000
}

export const task = (id: string, status: TaskStatus, extra: Partial<TaskRecord> = {}): TaskRecord => ({
  task_id: id, description: `task ${id}`, metadata: {}, assignment: { task_id: id, description: `task ${id}` },
  status, accepted_at: 0, updated_at: 0, timeline: [], generation: 1, ...extra
})

export const complete = (id: string, generation = 1): Report => ({ type: "task_complete", task_id: id, result: { status: "success" }, generation })

export const model = (tasks: ReadonlyArray<TaskRecord>, outbox: ReadonlyArray<Report> = [], patch: Partial<Model> = {}): Model =>
  ({ ...initialModel({ version: 2, tasks, outbox }), identified: true, ...patch })

export const hub = (message: HubMessage): Input => ({ _tag: "Hub", message })

export const run = (m: Model, input: Input, cfg: DeciderConfig = config, now = 1_000) => {
  const d = decide(m, input, now, cfg)
  return {
    ...d,
    status: (id: string) => d.model.queue.tasks.find((t) => t.task_id === id)?.status,
    /** The commands without logs and trace marks, as `_tag` plus the interesting field. */
    tags: d.commands.filter((c) => c._tag !== "Log" && c._tag !== "TraceBegin" && c._tag !== "TraceEnd").map(describe),
    traces: d.commands.flatMap((c) => c._tag === "TraceBegin" ? ["begin"] : c._tag === "TraceEnd" ? [`end ${c.outcome}`] : []),
    sent: d.commands.flatMap((c) => c._tag === "Send" ? [c.frame] : c._tag === "SendReport" ? [c.report] : [])
  }
}

const describe = (c: Command): string => {
  switch (c._tag) {
    case "Send": return `Send ${c.frame.type}`
    case "SendReport": return `SendReport ${c.report.type} ${c.report.task_id}`
    case "StopWake": return `StopWake ${c.graceful ? "graceful" : "now"}`
    case "Watch": return `Watch ${c.phase}`
    case "Reply": return `Reply ${c.ok}`
    case "Later": return `Later ${c.input._tag}`
    case "Retry": return `Retry ${c.input._tag}`
    default: return c._tag
  }
}

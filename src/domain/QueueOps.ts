/** Pure edits of the queue snapshot. TaskFlow composes them under one lock and persists each result. */
import type { QueueFile, Report, TaskRecord, TaskStatus, TimelineEntry } from "./Task.ts"
import { isActive } from "./Task.ts"
import { transition } from "./TaskState.ts"
import { Result } from "effect"

const TIMELINE_LIMIT = 60

export const findTask = (q: QueueFile, id: string): TaskRecord | undefined => q.tasks.find((t) => t.task_id === id)

export const activeCount = (q: QueueFile): number => q.tasks.filter((t) => isActive(t) && t.status !== "reporting").length

export const addTask = (q: QueueFile, task: TaskRecord): QueueFile => ({ ...q, tasks: [...q.tasks, task] })

export const removeTask = (q: QueueFile, id: string): QueueFile => ({
  ...q,
  tasks: q.tasks.filter((t) => t.task_id !== id),
  outbox: q.outbox.filter((r) => r.task_id !== id)
})

export const withEntry = (task: TaskRecord, entry: TimelineEntry): TaskRecord => ({
  ...task,
  updated_at: entry.at,
  timeline: [...task.timeline, entry].slice(-TIMELINE_LIMIT)
})

export const updateTask = (q: QueueFile, id: string, f: (t: TaskRecord) => TaskRecord): QueueFile => ({
  ...q,
  tasks: q.tasks.map((t) => (t.task_id === id ? f(t) : t))
})

export const setStatus = (task: TaskRecord, status: TaskStatus, at: number, detail?: string): TaskRecord =>
  withEntry({ ...task, status }, { at, event: status, ...(detail !== undefined ? { detail } : {}) })

/** Queues a terminal report, replacing any earlier one for the same task. */
export const enqueueReport = (q: QueueFile, report: Report): QueueFile => ({
  ...q,
  outbox: [...q.outbox.filter((r) => r.task_id !== report.task_id), report]
})

/** Start-up: whatever was in flight becomes `recovering` through the transition table (reported tasks keep
 *  their outbox entry; a `reporting` task whose report is missing, which only a hand-edited file can hold, is
 *  recovered as if it had been working). */
export const toRecovering = (q: QueueFile, now: number): QueueFile => ({
  ...q,
  tasks: q.tasks.map((t) => {
    if (t.status === "recovering") return t
    const hasReport = q.outbox.some((r) => r.task_id === t.task_id)
    if (t.status === "reporting" && hasReport) return t
    const from = t.status === "reporting" ? "working" : t.status
    const next = transition(from, "restarted")
    if (Result.isFailure(next)) return t
    return withEntry({ ...t, status: next.success, last_status: from }, { at: now, event: "recovering", detail: `was ${t.status} when the sidecar stopped` })
  })
})

/** No task held and no report waiting for the hub's answer: the sidecar has nothing of its own in flight. */
export const holdsNothing = (q: QueueFile): boolean => q.tasks.length === 0 && q.outbox.length === 0

export const busyOrIdle = (q: QueueFile): "idle" | "busy" => (activeCount(q) > 0 ? "busy" : "idle")

/**
 * Each task is one trace: a root span from acceptance (or resumption after a restart) to its end, with the
 * phases as children: each wake attempt, the confirmation wait, working, the report until the hub's answer,
 * the ack. And the `/metrics` figures as Effect metrics, so an OTLP exporter (layers/Telemetry.ts) sends them
 * too. Without an exporter the spans and gauges are cheap in-memory objects. The phase spans skip Effect's call-site
 * stack trace (a `new Error()` per span): the site is always the task runner, so it tells nothing.
 */
import { Clock, Effect, Exit, Metric, type Tracer } from "effect"
import type { QueueFile, TaskStatus } from "../../domain/Task.ts"

interface Open {
  readonly root: Tracer.Span
  report: Tracer.Span | undefined
}

export const makeTaskSpans = (agentId: string) => {
  const open = new Map<string, Open>()
  const endSpan = (span: Tracer.Span) => Effect.map(Clock.currentTimeNanos, (now) => span.end(now, Exit.void))

  return {
    begin: (taskId: string, attributes: Readonly<Record<string, unknown>>) => Effect.gen(function*() {
      const existing = open.get(taskId)
      if (existing !== undefined) return existing.root.attribute("generation", attributes["generation"])
      const root = yield* Effect.makeSpan("task", { root: true, kind: "consumer", attributes: { task_id: taskId, agent_id: agentId, ...attributes } })
      open.set(taskId, { root, report: undefined })
    }),
    reportSent: (taskId: string, generation: number | undefined) => Effect.gen(function*() {
      const o = open.get(taskId)
      if (o === undefined || o.report !== undefined) return
      o.report = yield* Effect.makeSpan("report", { parent: o.root, attributes: { task_id: taskId, agent_id: agentId, generation } })
    }),
    end: (taskId: string, outcome: string) => Effect.gen(function*() {
      const o = open.get(taskId)
      if (o === undefined) return
      open.delete(taskId)
      if (o.report !== undefined) yield* endSpan(o.report)
      if (outcome === "acknowledged") yield* endSpan(yield* Effect.makeSpan("ack", { parent: o.root, attributes: { task_id: taskId, agent_id: agentId } }))
      o.root.attribute("outcome", outcome)
      yield* endSpan(o.root)
    }),
    /** Runs a phase of the task as a child span of its trace (as is, if the task has none). */
    within: <A, E, R>(taskId: string, name: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => Effect.suspend(() => {
      const o = open.get(taskId)
      return o === undefined ? effect : effect.pipe(Effect.withSpan(name, { parent: o.root, attributes: { task_id: taskId, agent_id: agentId } }, { captureStackTrace: false }))
    })
  }
}
export type TaskSpans = ReturnType<typeof makeTaskSpans>

const STATUSES: ReadonlyArray<TaskStatus> = ["accepted", "waking", "waking_confirmation", "working", "reporting", "recovering"]
const tasks = Metric.gauge("agent_sidecar_tasks", { description: "Tasks held, by status." })
const outbox = Metric.gauge("agent_sidecar_outbox_reports", { description: "Terminal reports waiting for the hub's answer." })
const parked = Metric.gauge("agent_sidecar_outbox_parked_reports", { description: "Reports the hub never answered, set aside." })
const stale = Metric.gauge("agent_sidecar_outbox_stale_reports", { description: "Reports refused as stale, kept for the hub to hand their task back." })
// One gauge per figure, attributes attached once: `withAttributes` builds a new metric key on every call.
const GAUGES = [...STATUSES.map((status) => Metric.withAttributes(tasks, { status })), outbox, parked, stale]

const STATUS_INDEX: ReadonlyMap<TaskStatus, number> = new Map(STATUSES.map((status, i) => [status, i]))
const OUTBOX = STATUSES.length

/** The gauges' figures, in GAUGES' order, counted in one pass over the queue. */
const figures = (q: QueueFile): Array<number> => {
  const counts = new Array<number>(GAUGES.length).fill(0)
  for (const t of q.tasks) counts[STATUS_INDEX.get(t.status)!]!++
  counts[OUTBOX] = q.outbox.length
  for (const r of q.outbox) {
    if (r.parked_at !== undefined) counts[OUTBOX + 1]!++
    if (r.stale_at !== undefined) counts[OUTBOX + 2]!++
  }
  return counts
}

/**
 * The queue's figures as gauges (the same as `/metrics`). A task changes the queue five or six times, most of them
 * moving no figure; only the figures that moved are updated.
 */
export const makeQueueMetrics = () => {
  let last: ReadonlyArray<number> = []
  return (q: QueueFile) => Effect.suspend(() => {
    const now = figures(q)
    const moved: Array<number> = []
    for (let i = 0; i < now.length; i++) if (now[i] !== last[i]) moved.push(i)
    last = now
    return moved.length === 0 ? Effect.void : Effect.forEach(moved, (i) => Metric.update(GAUGES[i]!, now[i]!), { discard: true })
  })
}

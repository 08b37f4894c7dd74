/**
 * A task as the sidecar holds it, and the durable queue file (`queue.json`) that holds them all plus the
 * outbox of terminal reports (SPEC §5, §6). Pure data and pure functions: no I/O, no clock.
 */
import { Option, Result, Schema } from "effect"
import { exceedsDepth, MAX_JSON_DEPTH } from "./JsonLimits.ts"

const TaskIdPattern = /^[A-Za-z0-9._-]{1,128}$/
/** A task id names files, so it is restricted (SPEC §3): no separators, no control bytes, and no leading `.`
 *  (dot-names are the agents' temporary files, never watched, so such a task could never be seen to start). */
export const isValidTaskId = (id: string): boolean => TaskIdPattern.test(id) && !id.startsWith(".")
/** Printable ids are answered `invalid_task`; the rest (control bytes, huge) are dropped without an answer. */
export const isPrintableId = (id: string): boolean => id.length <= 1024 && /^[\x20-\x7e]*$/.test(id)

export const TaskStatus = Schema.Literals(["accepted", "waking", "waking_confirmation", "working", "reporting", "recovering"])
export type TaskStatus = typeof TaskStatus.Type
export type ActiveStatus = Exclude<TaskStatus, "recovering">

export const TimelineEntry = Schema.Struct({
  at: Schema.Number,
  event: Schema.String,
  detail: Schema.optionalKey(Schema.String)
})
export type TimelineEntry = typeof TimelineEntry.Type

export const TaskRecord = Schema.Struct({
  task_id: Schema.String,
  description: Schema.String,
  metadata: Schema.Record(Schema.String, Schema.Unknown),
  generation: Schema.optionalKey(Schema.Number),
  /** The `task_assign` fields as they came (minus `type`), written to `<id>.task.json` for the agent. */
  assignment: Schema.Record(Schema.String, Schema.Unknown),
  status: TaskStatus,
  /** For `recovering` tasks: the status the task had when the sidecar stopped. */
  last_status: Schema.optionalKey(TaskStatus),
  accepted_at: Schema.Number,
  updated_at: Schema.Number,
  timeline: Schema.Array(TimelineEntry)
})
export type TaskRecord = typeof TaskRecord.Type

/** A terminal report in the outbox. `parked_at`: the hub never answered it; it waits for the operator's resend.
 *  `stale_at`: the hub refused its generation (it took the task back); it waits for the task to be handed back. */
export const Report = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("task_complete"), task_id: Schema.String, result: Schema.Unknown,
    tokens_used: Schema.optionalKey(Schema.Number), verification_report: Schema.optionalKey(Schema.Unknown),
    verification_history: Schema.optionalKey(Schema.Unknown),
    generation: Schema.optionalKey(Schema.Number), parked_at: Schema.optionalKey(Schema.Number), stale_at: Schema.optionalKey(Schema.Number)
  }),
  Schema.Struct({
    type: Schema.Literal("task_failed"), task_id: Schema.String, reason: Schema.String,
    generation: Schema.optionalKey(Schema.Number), parked_at: Schema.optionalKey(Schema.Number), stale_at: Schema.optionalKey(Schema.Number)
  })
])
export type Report = typeof Report.Type

export const QueueFile = Schema.Struct({
  version: Schema.Literal(2),
  tasks: Schema.Array(TaskRecord),
  outbox: Schema.Array(Report)
})
export type QueueFile = typeof QueueFile.Type
export const emptyQueue: QueueFile = { version: 2, tasks: [], outbox: [] }

/** A task that counts against `max_active_tasks`: held and not waiting for the hub's recovery answer. */
export const isActive = (task: TaskRecord) => task.status !== "recovering"

// ---- assignment ------------------------------------------------------------------------------------

export type InvalidAssignment = { readonly reason: string }

/** Validates the task fields of a `task_assign` (whose `task_id` is already known valid). */
export const validateAssignment = (
  fields: Readonly<Record<string, unknown>>
): Result.Result<{ description: string; metadata: Record<string, unknown>; generation: number | undefined; assignment: Record<string, unknown> }, InvalidAssignment> => {
  const { description, metadata, generation } = fields
  if (description !== undefined && typeof description !== "string") return Result.fail({ reason: "description is not a string" })
  if (metadata !== undefined && (typeof metadata !== "object" || metadata === null || Array.isArray(metadata))) {
    return Result.fail({ reason: "metadata is not an object" })
  }
  if (generation !== undefined && (typeof generation !== "number" || !Number.isFinite(generation))) {
    return Result.fail({ reason: "generation is not a number" })
  }
  if (exceedsDepth(fields)) return Result.fail({ reason: `task nests deeper than ${MAX_JSON_DEPTH} levels` })
  const { type: _type, protocol_version: _pv, ...assignment } = fields
  return Result.succeed({
    description: description ?? "",
    metadata: (metadata ?? {}) as Record<string, unknown>,
    generation,
    assignment
  })
}

// ---- the earlier sidecar's layout --------------------------------------------------------------------

/** The earlier sidecar kept `{"active": ..., "recovering": ...}`, each a task, a list or a map of tasks.
 *  Everything it held is unfinished by definition, so it all comes back as `recovering`. */
export const fromLegacy = (json: unknown, now: number): Option.Option<QueueFile> => {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return Option.none()
  const o = json as Record<string, unknown>
  if (!("active" in o) && !("recovering" in o)) return Option.none()
  const entries = [...legacyEntries(o["active"]), ...legacyEntries(o["recovering"])]
  const tasks: Array<TaskRecord> = []
  for (const [key, value] of entries) {
    const t = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>
    const idField = t["task_id"] ?? t["id"] ?? key
    const id = typeof idField === "string" ? idField : undefined
    if (id === undefined || !isValidTaskId(id) || tasks.some((x) => x.task_id === id)) continue
    const last = Option.getOrElse(Schema.decodeUnknownOption(TaskStatus)(t["status"] ?? t["last_status"]), () => "accepted" as const)
    const { task_id: _a, id: _b, status: _c, ...assignment } = t
    tasks.push({
      task_id: id,
      description: typeof t["description"] === "string" ? t["description"] : "",
      metadata: typeof t["metadata"] === "object" && t["metadata"] !== null ? t["metadata"] as Record<string, unknown> : {},
      ...(typeof t["generation"] === "number" ? { generation: t["generation"] } : {}),
      assignment: { task_id: id, ...assignment },
      status: "recovering",
      last_status: last === "recovering" ? "accepted" : last,
      accepted_at: now,
      updated_at: now,
      timeline: [{ at: now, event: "imported", detail: "from the earlier sidecar's queue layout" }]
    })
  }
  return Option.some({ version: 2, tasks, outbox: [] })
}

const legacyEntries = (v: unknown): Array<readonly [string | undefined, unknown]> => {
  if (v === null || v === undefined) return []
  if (Array.isArray(v)) return v.map((x) => [undefined, x] as const)
  if (typeof v !== "object") return []
  const o = v as Record<string, unknown>
  // a single task object, or a map keyed by task id
  if (typeof o["task_id"] === "string" || typeof o["id"] === "string") return [[undefined, o]]
  return Object.entries(o)
}

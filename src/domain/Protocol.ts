/**
 * Wire protocol version 1 (SPEC §3): the hub's messages as a tagged union decoded with Schema, and the
 * sidecar's messages as plain constructors that always stamp `protocol_version: 1`.
 *
 * Decoding is two-step on purpose: first the envelope (a JSON object with a string `type`), then the
 * known type's own schema. That lets every dropped frame be logged with a precise reason, and unknown
 * types (from newer hubs) be told apart from broken known ones.
 */
import { Result, Schema } from "effect"

export const PROTOCOL_VERSION = 1

const Fields = Schema.Record(Schema.String, Schema.Unknown)

export const Identified = Schema.Struct({ type: Schema.Literal("identified"), agent_id: Schema.optionalKey(Schema.String) })
/** AgentCom's refusals by validation also say which frame type they answer (`message_type`, echoed as sent) and
 *  why (`errors`); other errors are a bare string. */
export const HubError = Schema.Struct({
  type: Schema.Literal("error"),
  error: Schema.optionalKey(Schema.String),
  message_type: Schema.optionalKey(Schema.Unknown),
  errors: Schema.optionalKey(Schema.Unknown)
})
export const Pong = Schema.Struct({ type: Schema.Literal("pong"), timestamp: Schema.optionalKey(Schema.Union([Schema.Number, Schema.String])) })
/** Only the envelope is checked here; the task's own fields are validated by `Task.validateAssignment` so a bad
 *  task can be answered `invalid_task` instead of silently dropped. Other fields are kept as they came. */
export const TaskAssign = Schema.StructWithRest(
  Schema.Struct({ type: Schema.Literal("task_assign"), task_id: Schema.String }),
  [Fields]
)
export const TaskAck = Schema.Struct({ type: Schema.Literal("task_ack"), task_id: Schema.String, status: Schema.optionalKey(Schema.String) })
export const TaskCancelled = Schema.Struct({ type: Schema.Literal("task_cancelled"), task_id: Schema.String })
export const TaskReassign = Schema.Struct({ type: Schema.Literal("task_reassign"), task_id: Schema.String })
export const StateReportAck = Schema.Struct({ type: Schema.Literal("state_report_ack"), task_id: Schema.String, action: Schema.String })
export const TaskContinue = Schema.Struct({
  type: Schema.Literal("task_continue"),
  task_id: Schema.String,
  generation: Schema.optionalKey(Schema.Number)
})

export const HubMessage = Schema.Union([Identified, HubError, Pong, TaskAssign, TaskAck, TaskCancelled, TaskReassign, TaskContinue, StateReportAck])
  .pipe(Schema.toTaggedUnion("type"))
export type HubMessage = typeof HubMessage.Type
export type HubMessageType = HubMessage["type"]

const schemas: { readonly [K in HubMessageType]: Schema.Codec<Extract<HubMessage, { type: K }>, unknown> } = {
  identified: Identified,
  error: HubError,
  pong: Pong,
  task_assign: TaskAssign,
  task_ack: TaskAck,
  task_cancelled: TaskCancelled,
  task_reassign: TaskReassign,
  task_continue: TaskContinue,
  state_report_ack: StateReportAck
}
const isKnownType = (type: string): type is HubMessageType => Object.hasOwn(schemas, type)

/** Why a frame was dropped; `unknown_type` is normal for newer hubs and logged at debug level. */
export type FrameRejection =
  | { readonly kind: "too_large"; readonly bytes: number; readonly limit: number }
  | { readonly kind: "not_json"; readonly detail: string }
  | { readonly kind: "not_an_object" }
  | { readonly kind: "no_type" }
  | { readonly kind: "unknown_type"; readonly type: string }
  | { readonly kind: "bad_fields"; readonly type: string; readonly detail: string }

export const describeRejection = (r: FrameRejection): string => {
  switch (r.kind) {
    case "too_large": return `frame of ${r.bytes} bytes is over max_message_bytes (${r.limit})`
    case "not_json": return `frame is not JSON: ${r.detail}`
    case "not_an_object": return "frame is not a JSON object"
    case "no_type": return "frame has no string \"type\""
    case "unknown_type": return `unknown message type "${r.type}"`
    case "bad_fields": return `"${r.type}" frame has fields of the wrong type: ${r.detail.replaceAll("\n", " ")}`
  }
}

/** Decodes one text frame. Never throws: every failure is a `FrameRejection`. */
export const decodeFrame = (raw: string, maxBytes: number): Result.Result<HubMessage, FrameRejection> => {
  const bytes = Buffer.byteLength(raw, "utf8")
  if (bytes > maxBytes) return Result.fail({ kind: "too_large", bytes, limit: maxBytes })
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch (e) {
    return Result.fail({ kind: "not_json", detail: e instanceof Error ? e.message : String(e) })
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return Result.fail({ kind: "not_an_object" })
  const type: unknown = (json as Record<string, unknown>)["type"]
  if (typeof type !== "string") return Result.fail({ kind: "no_type" })
  if (!isKnownType(type)) return Result.fail({ kind: "unknown_type", type: type.slice(0, 64) })
  const decoded = Schema.decodeUnknownResult(schemas[type])(json)
  return Result.isSuccess(decoded)
    ? Result.succeed(decoded.success)
    : Result.fail({ kind: "bad_fields", type, detail: decoded.failure.message })
}

// ---- sidecar → hub ---------------------------------------------------------------------------------

export type RejectReason = "busy" | "invalid_task" | "shutting_down"
export type WakeStatus = "success" | "failed" | "timeout"

export type Outbound =
  | { readonly type: "identify"; readonly agent_id: string; readonly token: string; readonly name: string; readonly status: "idle" | "busy"; readonly capabilities: ReadonlyArray<string>; readonly client_type: "sidecar" }
  | { readonly type: "ping" }
  | { readonly type: "task_accepted"; readonly task_id: string }
  | { readonly type: "task_rejected"; readonly task_id: string; readonly reason: RejectReason }
  | { readonly type: "wake_result"; readonly task_id: string; readonly status: WakeStatus; readonly attempt: number; readonly error?: string }
  | {
    readonly type: "task_complete"; readonly task_id: string; readonly result: unknown; readonly generation?: number
    /** Lifted from the result: AgentCom reads these only at the top level. */
    readonly tokens_used?: number; readonly verification_report?: unknown; readonly verification_history?: unknown
  }
  | { readonly type: "task_failed"; readonly task_id: string; readonly reason: string; readonly generation?: number }
  | { readonly type: "task_recovering"; readonly task_id: string; readonly description: string; readonly metadata: Record<string, unknown>; readonly last_status: string }
  | { readonly type: "task_progress"; readonly task_id: string; readonly progress?: number; readonly message?: string }
  | { readonly type: "state_report"; readonly task_id: string; readonly status: string; readonly generation?: number }

/** The text frame for a sidecar message; every one carries `protocol_version: 1`. */
export const encodeOutbound = (message: Outbound): string => JSON.stringify({ ...message, protocol_version: PROTOCOL_VERSION })

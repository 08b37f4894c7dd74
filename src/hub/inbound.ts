/**
 * The hub's side of wire protocol v1 (SPEC §3): decoding what sidecars send, and encoding what the hub sends.
 *
 * Outbound frames are typed with the sidecar's own `HubMessage` (src/domain/Protocol.ts), so the dev hub can only
 * say what a sidecar can decode. Inbound decoding mirrors `decodeFrame`: envelope first, then the known type's
 * schema, so a bad frame gets a precise `invalid_message` answer and unknown types can be ignored.
 */
import { Result, Schema } from "effect"
import { type HubMessage, PROTOCOL_VERSION } from "../domain/Protocol.ts"

const Metadata = Schema.Record(Schema.String, Schema.Unknown)

export const Identify = Schema.Struct({
  type: Schema.Literal("identify"),
  agent_id: Schema.String,
  token: Schema.optionalKey(Schema.String),
  name: Schema.optionalKey(Schema.String),
  status: Schema.optionalKey(Schema.String),
  capabilities: Schema.optionalKey(Schema.Array(Schema.String)),
  client_type: Schema.optionalKey(Schema.String)
})
const Ping = Schema.Struct({ type: Schema.Literal("ping") })
const TaskAccepted = Schema.Struct({ type: Schema.Literal("task_accepted"), task_id: Schema.String })
const TaskRejected = Schema.Struct({ type: Schema.Literal("task_rejected"), task_id: Schema.String, reason: Schema.optionalKey(Schema.String) })
const WakeResult = Schema.Struct({
  type: Schema.Literal("wake_result"),
  task_id: Schema.String,
  status: Schema.optionalKey(Schema.String),
  attempt: Schema.optionalKey(Schema.Number),
  error: Schema.optionalKey(Schema.String)
})
const TaskComplete = Schema.Struct({
  type: Schema.Literal("task_complete"),
  task_id: Schema.String,
  result: Schema.optionalKey(Schema.Unknown),
  generation: Schema.optionalKey(Schema.Number)
})
const TaskFailed = Schema.Struct({
  type: Schema.Literal("task_failed"),
  task_id: Schema.String,
  reason: Schema.optionalKey(Schema.String),
  generation: Schema.optionalKey(Schema.Number)
})
const TaskRecovering = Schema.Struct({
  type: Schema.Literal("task_recovering"),
  task_id: Schema.String,
  description: Schema.optionalKey(Schema.String),
  metadata: Schema.optionalKey(Metadata),
  last_status: Schema.optionalKey(Schema.String)
})
const TaskProgress = Schema.Struct({
  type: Schema.Literal("task_progress"),
  task_id: Schema.String,
  progress: Schema.optionalKey(Schema.Number),
  message: Schema.optionalKey(Schema.String)
})

const SidecarMessage = Schema.Union([Identify, Ping, TaskAccepted, TaskRejected, WakeResult, TaskComplete, TaskFailed, TaskRecovering, TaskProgress])
export type SidecarMessage = typeof SidecarMessage.Type
export type Identify = typeof Identify.Type
type SidecarMessageType = SidecarMessage["type"]

const schemas: { readonly [K in SidecarMessageType]: Schema.Codec<Extract<SidecarMessage, { type: K }>, unknown> } = {
  identify: Identify,
  ping: Ping,
  task_accepted: TaskAccepted,
  task_rejected: TaskRejected,
  wake_result: WakeResult,
  task_complete: TaskComplete,
  task_failed: TaskFailed,
  task_recovering: TaskRecovering,
  task_progress: TaskProgress
}
const isKnownType = (type: string): type is SidecarMessageType => Object.hasOwn(schemas, type)

/** Deeper JSON is refused: the hub re-serialises what it keeps (API, page, `task_assign`), and
 *  `JSON.stringify` overflows the stack on a few thousand levels. */
export const MAX_JSON_DEPTH = 64

/** Whether `value` nests objects/arrays deeper than `max`; iterative, so it cannot overflow itself. */
export const nestsDeeperThan = (value: unknown, max: number): boolean => {
  const stack: Array<readonly [unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (typeof v !== "object" || v === null) continue
    if (depth >= max) return true
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1])
  }
  return false
}

/** `unknown` frames (a newer sidecar's types) are ignored; `invalid` ones are answered with an `error` frame. */
export type InboundRejection =
  | { readonly kind: "unknown"; readonly type: string }
  | { readonly kind: "invalid"; readonly detail: string }

export const decodeSidecarFrame = (raw: string): Result.Result<SidecarMessage, InboundRejection> => {
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch (e) {
    return Result.fail({ kind: "invalid", detail: `not JSON: ${e instanceof Error ? e.message : String(e)}` })
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return Result.fail({ kind: "invalid", detail: "not a JSON object" })
  if (nestsDeeperThan(json, MAX_JSON_DEPTH)) return Result.fail({ kind: "invalid", detail: `nested deeper than ${MAX_JSON_DEPTH} levels` })
  const type: unknown = (json as Record<string, unknown>)["type"]
  if (typeof type !== "string") return Result.fail({ kind: "invalid", detail: "no string \"type\"" })
  if (!isKnownType(type)) return Result.fail({ kind: "unknown", type: type.slice(0, 64) })
  const decoded = Schema.decodeUnknownResult(schemas[type])(json)
  return Result.isSuccess(decoded)
    ? Result.succeed(decoded.success)
    : Result.fail({ kind: "invalid", detail: `${type}: ${decoded.failure.message.replaceAll("\n", " ")}` })
}

/** The text frame for a hub message; every one carries `protocol_version: 1`. */
export const encodeHubFrame = (message: HubMessage): string => JSON.stringify({ ...message, protocol_version: PROTOCOL_VERSION })

/**
 * Field validation of inbound WebSocket frames, as AgentCom's hub does it (`lib/agent_com/validation.ex` with the
 * tables of `lib/agent_com/validation/schemas.ex`), so a frame the real hub refuses is refused here with the same
 * `validation_failed` answer. Pure: no clock, no I/O.
 *
 * The rules, as the real hub has them: every known type has required and optional fields with a type each; a
 * required field that is absent or `null` is `required`; a present field of the wrong type is `wrong_type`; some
 * field names have a length limit counted in characters (graphemes, as Elixir's `String.length`); unknown fields
 * pass through untouched; an unknown `type` is refused with the list of known types. Errors come out in the
 * order the hub walks its maps (required fields by name, then optional ones by name).
 *
 * One difference JavaScript cannot avoid: the hub tells `1.0` (a float) from `1` (an integer); `JSON.parse` does
 * not, so `1.0` passes as an integer here.
 */

type FieldType = "string" | "integer" | "number" | "map" | { readonly list: FieldType }

interface WsSchema {
  readonly required: Readonly<Record<string, FieldType>>
  readonly optional: Readonly<Record<string, FieldType>>
}

/** schemas.ex `@length_limits`. */
export const LENGTH_LIMITS: Readonly<Record<string, number>> = {
  agent_id: 128,
  description: 10_000,
  status: 256,
  channel: 64,
  token: 256,
  error: 2_000,
  reason: 2_000,
  name: 256,
  repo: 512,
  ollama_url: 512
}

/** schemas.ex `@ws_schemas`: the 17 types the hub knows. `task_rejected` is not among them. */
export const WS_SCHEMAS: Readonly<Record<string, WsSchema>> = {
  identify: {
    required: { type: "string", agent_id: "string", token: "string" },
    optional: { name: "string", status: "string", capabilities: { list: "string" }, ollama_url: "string" }
  },
  message: { required: { type: "string", payload: "map" }, optional: { to: "string", message_type: "string", reply_to: "string" } },
  status: { required: { type: "string", status: "string" }, optional: {} },
  list_agents: { required: { type: "string" }, optional: {} },
  ping: { required: { type: "string" }, optional: {} },
  channel_subscribe: { required: { type: "string", channel: "string" }, optional: {} },
  channel_unsubscribe: { required: { type: "string", channel: "string" }, optional: {} },
  channel_publish: { required: { type: "string", channel: "string", payload: "map" }, optional: { message_type: "string", reply_to: "string" } },
  channel_history: { required: { type: "string", channel: "string" }, optional: { limit: "integer", since: "integer" } },
  list_channels: { required: { type: "string" }, optional: {} },
  task_accepted: { required: { type: "string", task_id: "string" }, optional: {} },
  task_progress: { required: { type: "string", task_id: "string" }, optional: { progress: "integer", execution_event: "map" } },
  task_complete: {
    required: { type: "string", task_id: "string", generation: "integer" },
    optional: { result: "map", tokens_used: "integer", verification_report: "map", verification_history: { list: "map" } }
  },
  task_failed: { required: { type: "string", task_id: "string", generation: "integer" }, optional: { error: "string", reason: "string" } },
  task_recovering: { required: { type: "string", task_id: "string" }, optional: {} },
  ollama_report: { required: { type: "string", ollama_url: "string" }, optional: {} },
  resource_report: {
    required: { type: "string" },
    optional: {
      cpu_percent: "number", ram_used_bytes: "number", ram_total_bytes: "number", vram_used_bytes: "number", vram_total_bytes: "number",
      timestamp: "number"
    }
  },
  wake_result: { required: { type: "string", task_id: "string", status: "string" }, optional: { attempt: "integer", error: "string", reason: "string" } },
  state_report: { required: { type: "string", task_id: "string" }, optional: { status: "string", generation: "integer", assigned_at: "number" } }
}

/** schemas.ex `known_types/0`: sorted. */
export const KNOWN_TYPES: ReadonlyArray<string> = Object.keys(WS_SCHEMAS).sort()

/** One violation, in the JSON shape of `Validation.format_errors/1`. */
export interface FieldError {
  readonly field: string
  readonly error: "required" | "wrong_type" | "too_long" | "unknown_message_type"
  readonly detail: string
  readonly value?: unknown
  readonly known_types?: ReadonlyArray<string>
}

export type JsonObject = Readonly<Record<string, unknown>>
export const isJsonObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v)

/** validation.ex `type_name/1`. */
const typeName = (v: unknown): string =>
  typeof v === "string" ? "string"
    : typeof v === "number" ? (Number.isInteger(v) ? "integer" : "float")
    : typeof v === "boolean" ? "boolean"
    : v === null ? "null"
    : Array.isArray(v) ? "array"
    : typeof v === "object" ? "object"
    : "unknown"

const typeLabel = (t: FieldType): string =>
  typeof t === "string" ? (t === "map" ? "object" : t) : `array<${typeLabel(t.list)}>`

const fits = (v: unknown, t: FieldType): boolean =>
  typeof t !== "string" ? Array.isArray(v) && v.every((x) => fits(x, t.list))
    : t === "string" ? typeof v === "string"
    : t === "integer" ? typeof v === "number" && Number.isInteger(v)
    : t === "number" ? typeof v === "number"
    : isJsonObject(v)

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" })
/** Elixir's `String.length`: graphemes, not UTF-16 units. */
export const graphemeLength = (s: string): number => {
  if (s.length <= 1) return s.length
  let n = 0
  for (const _ of segmenter.segment(s)) n++
  return n
}
const graphemeSlice = (s: string, count: number): string => {
  let out = ""
  let n = 0
  for (const { segment } of segmenter.segment(s)) {
    if (n++ >= count) break
    out += segment
  }
  return out
}

const checkType = (field: string, value: unknown, t: FieldType): ReadonlyArray<FieldError> => {
  if (typeof t !== "string") {
    if (!Array.isArray(value)) return [{ field, error: "wrong_type", detail: `expected array, got ${typeName(value)}`, value }]
    const idx = value.findIndex((x) => !fits(x, t.list))
    if (idx < 0) return []
    const bad: unknown = value[idx]
    return [{ field: `${field}[${idx}]`, error: "wrong_type", detail: `expected ${typeLabel(t.list)}, got ${typeName(bad)}`, value: bad }]
  }
  return fits(value, t) ? [] : [{ field, error: "wrong_type", detail: `expected ${typeLabel(t)}, got ${typeName(value)}`, value }]
}

const checkLength = (field: string, value: unknown): ReadonlyArray<FieldError> => {
  const max = LENGTH_LIMITS[field]
  // Code units ≥ graphemes, so only a string longer in code units can be too long.
  if (max === undefined || typeof value !== "string" || value.length <= max || graphemeLength(value) <= max) return []
  return [{ field, error: "too_long", detail: `exceeds maximum length of ${max} characters`, value: `${graphemeSlice(value, 50)}...` }]
}

const walk = (msg: JsonObject, fields: Readonly<Record<string, FieldType>>, required: boolean): ReadonlyArray<FieldError> =>
  Object.keys(fields).sort().flatMap((field) => {
    const value = Object.hasOwn(msg, field) ? msg[field] : undefined
    if (value === undefined || value === null) return required ? [{ field, error: "required", detail: "field is required" } as const] : []
    return [...checkType(field, value, fields[field]!), ...checkLength(field, value)]
  })

/**
 * validation.ex `validate_ws_message/1` for a decoded JSON object: the errors, empty when the frame is valid.
 * (A JSON value that is not an object is not handled here: the real hub crashes on it, see frames.ts.)
 */
export const validateWsMessage = (msg: JsonObject): ReadonlyArray<FieldError> => {
  const type = msg["type"]
  if (type === undefined) return [{ field: "type", error: "required", detail: "field is required" }]
  if (typeof type !== "string") return [{ field: "type", error: "wrong_type", detail: `expected string, got ${typeName(type)}`, value: type }]
  const schema = Object.hasOwn(WS_SCHEMAS, type) ? WS_SCHEMAS[type] : undefined
  if (schema === undefined) {
    return [{ field: "type", error: "unknown_message_type", detail: `unknown message type '${type}'`, known_types: KNOWN_TYPES }]
  }
  return [...walk(msg, schema.required, true), ...walk(msg, schema.optional, false)]
}

/** The violation counter of one connection (violation_tracker.ex): ten in a one-minute window close it. */
export interface Violations {
  readonly count: number
  readonly window_start: number
}
export const VIOLATION_THRESHOLD = 10
export const VIOLATION_WINDOW_MS = 60_000

/** `track_violation/1`: a window older than a minute starts over at 1. */
export const trackViolation = (v: Violations | undefined, now: number): Violations =>
  v === undefined || now - v.window_start > VIOLATION_WINDOW_MS ? { count: 1, window_start: now } : { count: v.count + 1, window_start: v.window_start }
export const shouldDisconnect = (v: Violations): boolean => v.count >= VIOLATION_THRESHOLD

/** Per-agent cool-down after a validation disconnect (violation_tracker.ex `record_disconnect`, `check_backoff`). */
export interface Backoff {
  readonly count: number
  readonly last_at: number
}
const backoffDuration = (count: number): number => (count === 1 ? 30_000 : count === 2 ? 60_000 : count >= 3 ? 300_000 : 0)
/** The seconds left of the cool-down, or undefined when none is active. */
export const cooldownSeconds = (b: Backoff | undefined, now: number): number | undefined => {
  if (b === undefined) return undefined
  const cooldown = backoffDuration(b.count)
  const elapsed = now - b.last_at
  return elapsed < cooldown ? Math.floor((cooldown - elapsed) / 1000) + 1 : undefined
}

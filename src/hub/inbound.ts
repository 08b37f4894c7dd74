/**
 * The dev hub's wire format: parsing what sidecars send, and the frames the hub sends, in AgentCom's shapes
 * (`lib/agent_com/socket.ex`). These are the dev hub's own types, not the sidecar's `HubMessage`: the hub says
 * things (`state_report_ack`, `validation_failed` with its `errors`, `task_ack` `retried`/`dead_letter`) whether
 * or not a given sidecar understands them, exactly as the real hub does. Like the real hub, frames carry no
 * `protocol_version`.
 */
import { Result } from "effect"
import type { FieldError, JsonObject } from "./validation.ts"

/** What `task_assign` carries besides the task's own fields (socket.ex `handle_info({:push_task, …})`). */
export interface TaskAssignFrame {
  readonly type: "task_assign"
  readonly task_id: string
  readonly description: string
  readonly metadata: Readonly<Record<string, unknown>>
  readonly generation: number
  readonly assigned_at: number
  readonly repo: null
  readonly branch: null
  readonly file_hints: ReadonlyArray<never>
  readonly success_criteria: ReadonlyArray<never>
  readonly verification_steps: ReadonlyArray<never>
  readonly complexity: null
  readonly routing_decision: null
  readonly skip_verification: false
  readonly verification_timeout_ms: null
  readonly max_verification_retries: 0
}

export type HubFrame =
  | { readonly type: "identified"; readonly agent_id: string }
  | { readonly type: "error"; readonly error: string }
  | { readonly type: "error"; readonly error: "validation_failed"; readonly message_type: unknown; readonly errors: ReadonlyArray<FieldError> }
  | { readonly type: "pong"; readonly timestamp: number }
  | TaskAssignFrame
  | { readonly type: "task_ack"; readonly task_id: string; readonly status: "accepted" | "complete" | "retried" | "dead_letter" }
  | { readonly type: "task_cancelled"; readonly task_id: string; readonly timestamp: number }
  | { readonly type: "task_continue"; readonly task_id: string; readonly generation: number }
  | { readonly type: "task_reassign"; readonly task_id: string }
  | { readonly type: "state_report_ack"; readonly task_id: string; readonly action: "continue" | "abort" }
  | { readonly type: "status_updated" }
  | { readonly type: "agents"; readonly agents: ReadonlyArray<Readonly<Record<string, unknown>>> }
  | { readonly type: "message_sent"; readonly id: string }
  | { readonly type: "channel_history"; readonly channel: string; readonly messages: ReadonlyArray<never> }
  | { readonly type: "channels"; readonly channels: ReadonlyArray<never> }
  | { readonly type: "ollama_report_ack"; readonly status: "registered" }

/** Deeper JSON is refused (a dev hub guard; the real hub has none): the hub re-serialises what it keeps (API,
 *  page, `task_assign`), and `JSON.stringify` overflows the stack on a few thousand levels. */
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

/** A text frame as JSON: an object, some other JSON value, or not JSON at all (answered `invalid_json`). */
export type Parsed =
  | { readonly kind: "object"; readonly value: JsonObject }
  | { readonly kind: "other"; readonly value: unknown }

export const parseFrame = (raw: string): Result.Result<Parsed, "invalid_json"> => {
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return Result.fail("invalid_json")
  }
  if (nestsDeeperThan(json, MAX_JSON_DEPTH)) return Result.fail("invalid_json")
  return Result.succeed(typeof json === "object" && json !== null && !Array.isArray(json)
    ? { kind: "object", value: json as JsonObject }
    : { kind: "other", value: json })
}

export const encodeHubFrame = (frame: HubFrame): string => JSON.stringify(frame)

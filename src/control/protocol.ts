/**
 * The local control socket (SPEC §7 operator controls): a 0600 Unix socket beside the state, one JSON request
 * line in, one JSON response line out. Local only: whoever can open it can already read the state files.
 */
import { Schema } from "effect"

export const socketPathFor = (queuePath: string) => `${queuePath}.sock`

export const ControlRequest = Schema.Union([
  Schema.Struct({ op: Schema.Literal("status") }),
  Schema.Struct({ op: Schema.Literals(["cancel", "forget", "resend"]), task_id: Schema.String })
])
export type ControlRequest = typeof ControlRequest.Type

export interface ControlResponse {
  readonly ok: boolean
  readonly error?: string
  readonly [key: string]: unknown
}

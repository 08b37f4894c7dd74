/**
 * What the hub's schemas take (AgentCom `validation/schemas.ex`): a frame over them is refused and counts
 * towards its ten-a-minute disconnect, so the sidecar fits what it sends instead.
 */
import type { Report, TaskRecord } from "../Task.ts"
import type { Ending } from "./Messages.ts"

/** `reason` and `error`: at most 2,000 characters (the hub counts graphemes; code points are never fewer). */
export const MAX_REASON_CHARS = 2_000
/** `description`, in any frame (the hub's limits go by field name): at most 10,000 characters. */
export const MAX_DESCRIPTION_CHARS = 10_000

export const fitText = (text: string, max: number = MAX_REASON_CHARS): { readonly text: string; readonly cut: boolean } => {
  if (text.length <= max) return { text, cut: false }
  const points = Array.from(text)
  return points.length <= max ? { text, cut: false } : { text: points.slice(0, max).join(""), cut: true }
}

/** `progress` is an integer 0–100. */
export const fitPercent = (percent: number): number => Math.min(100, Math.max(0, Math.round(percent)))

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/** AgentCom reads `tokens_used` (an integer), `verification_report` (an object) and `verification_history` (a
 *  list of objects) only at the top level of `task_complete`: lift them from the result when they have that shape. */
export const liftedFields = (result: unknown): Record<string, unknown> => {
  if (!isObject(result)) return {}
  const { tokens_used: tokens, verification_report: report, verification_history: history } = result
  return {
    ...(typeof tokens === "number" && Number.isInteger(tokens) ? { tokens_used: tokens } : {}),
    ...(isObject(report) ? { verification_report: report } : {}),
    ...(Array.isArray(history) && history.every(isObject) ? { verification_history: history } : {})
  }
}

/** The report for a task's ending, fitted; `cut` is the whole reason when it had to be shortened. */
export const buildReport = (task: TaskRecord, ending: Ending): { readonly report: Report; readonly cut: string | undefined } => {
  const generation = task.generation !== undefined ? { generation: task.generation } : {}
  if (ending.kind === "complete") {
    return { report: { type: "task_complete", task_id: task.task_id, result: ending.result, ...generation, ...liftedFields(ending.result) }, cut: undefined }
  }
  const reason = fitText(ending.reason)
  return { report: { type: "task_failed", task_id: task.task_id, reason: reason.text, ...generation }, cut: reason.cut ? ending.reason : undefined }
}

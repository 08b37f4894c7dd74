/**
 * The agent file protocol (SPEC §4): which file names mean what, and how a result file's text is judged.
 * Pure; the watching and the I/O are in `services/ResultWatcher.ts`.
 */
import { exceedsDepth, MAX_JSON_DEPTH } from "./JsonLimits.ts"
import { isValidTaskId } from "./Task.ts"

/** What the agent's files say, as events (`services/ResultWatcher.ts` turns file changes into these). */
export type AgentEvent =
  | { readonly _tag: "Started"; readonly taskId: string }
  | { readonly _tag: "Progress"; readonly taskId: string; readonly percent?: number; readonly message?: string }
  | { readonly _tag: "Succeeded"; readonly taskId: string; readonly result: Record<string, unknown> }
  | { readonly _tag: "Failed"; readonly taskId: string; readonly reason: string }
  /** Unparseable, too large or not a regular file: `reason` starts with `result_parse_error:`. */
  | { readonly _tag: "Invalid"; readonly taskId: string; readonly reason: string }

export type AgentFileKind = "started" | "result" | "progress"

export interface TaskFiles {
  readonly taskFile: string
  readonly startedFile: string
  readonly resultFile: string
  readonly progressFile: string
  readonly cancelledFile: string
}

export const taskFileNames = (id: string): TaskFiles => ({
  taskFile: `${id}.task.json`,
  startedFile: `${id}.started`,
  resultFile: `${id}.json`,
  progressFile: `${id}.progress`,
  cancelledFile: `${id}.cancelled`
})

const agentFile = /^(.+)\.(started|json|progress)$/

/** Classifies a file name in `results_dir`. Our own files (`.task.json`, dot-prefixed temp files) are not the
 *  agent's. (So a task id ending in `.task` cannot report through `<id>.json`: that name is a task file.) */
export const classifyFile = (name: string): { readonly taskId: string; readonly kind: AgentFileKind } | undefined => {
  if (name.startsWith(".") || name.endsWith(".task.json")) return undefined
  const m = agentFile.exec(name)
  if (m === null || !isValidTaskId(m[1]!)) return undefined
  return { taskId: m[1]!, kind: m[2] === "json" ? "result" : m[2] as "started" | "progress" }
}

export type ResultVerdict =
  | { readonly outcome: "success"; readonly result: Record<string, unknown> }
  | { readonly outcome: "failed"; readonly reason: string; readonly result: Record<string, unknown> }
  | { readonly outcome: "unparseable"; readonly detail: string }

/** `status: "success"` → complete with the whole object; anything else → failed with reason ?? error ?? "unknown". */
export const judgeResult = (text: string): ResultVerdict => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return { outcome: "unparseable", detail: e instanceof Error ? e.message : String(e) }
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { outcome: "unparseable", detail: "not a JSON object" }
  if (exceedsDepth(json)) return { outcome: "unparseable", detail: `nests deeper than ${MAX_JSON_DEPTH} levels` }
  const result = json as Record<string, unknown>
  if (result["status"] === "success") return { outcome: "success", result }
  const why = result["reason"] ?? result["error"]
  const reason = typeof why === "string" && why !== "" ? why : why === undefined || why === null ? "unknown" : JSON.stringify(why)
  return { outcome: "failed", reason: reason.slice(0, 4096), result }
}

/** The event a judged result file makes. */
export const verdictEvent = (taskId: string, verdict: ResultVerdict): AgentEvent =>
  verdict.outcome === "success" ? { _tag: "Succeeded", taskId, result: verdict.result }
    : verdict.outcome === "failed" ? { _tag: "Failed", taskId, reason: verdict.reason }
    : { _tag: "Invalid", taskId, reason: `result_parse_error: ${verdict.detail}` }

/** `.progress` may be empty (a touch) or JSON `{"percent"?, "message"?}`; anything else is just a sign of life. */
export const parseProgress = (text: string): { readonly percent?: number; readonly message?: string } => {
  try {
    const json: unknown = JSON.parse(text)
    if (typeof json !== "object" || json === null) return {}
    const o = json as Record<string, unknown>
    return {
      ...(typeof o["percent"] === "number" && Number.isFinite(o["percent"]) ? { percent: o["percent"] } : {}),
      ...(typeof o["message"] === "string" ? { message: o["message"].slice(0, 1024) } : {})
    }
  } catch {
    return {}
  }
}

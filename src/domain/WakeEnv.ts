/**
 * What a wake command gets (SPEC §5). Task text never becomes shell source: a string command is run by the
 * shell with the task in its environment, so `${TASK_ID}`, `${TASK_DESCRIPTION}`, `${TASK_JSON}` in it are
 * expanded by the shell as data, never evaluated as code; an array command runs without a shell and has
 * the placeholders substituted inside each argument, which stays one argument.
 */
export const TASK_JSON_ENV_LIMIT = 64 * 1024

export interface WakeRequest {
  readonly taskId: string
  readonly description: string
  /** The task as written to `<id>.task.json`. */
  readonly taskJson: string
  readonly taskFile: string
  readonly resultsDir: string
  readonly startedFile: string
  readonly resultFile: string
  readonly attempt: number
}

/** The variables a wake command sees on top of the sidecar's own environment (minus `SIDECAR_*`). */
export const wakeVariables = (request: WakeRequest): Record<string, string> => ({
  TASK_ID: request.taskId,
  TASK_DESCRIPTION: request.description,
  ...(Buffer.byteLength(request.taskJson, "utf8") <= TASK_JSON_ENV_LIMIT ? { TASK_JSON: request.taskJson } : {}),
  TASK_FILE: request.taskFile,
  RESULTS_DIR: request.resultsDir,
  STARTED_FILE: request.startedFile,
  RESULT_FILE: request.resultFile,
  WAKE_ATTEMPT: String(request.attempt)
})

/** The sidecar's environment without its own settings, so the agent never sees the hub token. */
export const agentBaseEnv = (env: Readonly<Record<string, string | undefined>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !key.startsWith("SIDECAR_")) out[key] = value
  }
  return out
}

/** Substitutes placeholders inside one argument of an array command (no shell involved). One pass, with a
 *  replacer function: task text that itself looks like `${TASK_JSON}` or `$&` is inserted verbatim. */
export const substituteArgument = (arg: string, request: WakeRequest): string => {
  const values: Record<string, string> = { TASK_ID: request.taskId, TASK_DESCRIPTION: request.description, TASK_JSON: request.taskJson }
  return arg.replace(/\$\{(TASK_ID|TASK_DESCRIPTION|TASK_JSON)\}/g, (_, name: string) => values[name]!)
}

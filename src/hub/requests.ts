/**
 * The dev hub's transitions asked for through its API (`POST /api/tasks`, cancel), pure like `state.ts`: a new task
 * is queued and dispatched at once when an agent may take it; a cancel reaches the task's holder as `task_cancelled`.
 */
import { Result } from "effect"
import type { TimelineEntry } from "../domain/Task.ts"
import { dispatch, entry, type HubState, type HubTask, isFinished, isHeld, type Settings, type Step, type TaskState, Tx } from "./state.ts"

export interface TaskInput {
  readonly description: string
  readonly metadata?: Readonly<Record<string, unknown>> | undefined
  readonly agent_id?: string | undefined
  /** How many `task_failed` the task takes before it is dead-lettered (task_queue.ex: default 3). */
  readonly max_retries?: number | undefined
}

/** A new pending task; `first` opens its timeline. */
export const newTask = (taskId: string, input: TaskInput, now: number, first: TimelineEntry, settings: Settings): HubTask => ({
  task_id: taskId, description: input.description, metadata: input.metadata ?? {}, agent_id: input.agent_id,
  state: "pending", agent: undefined, generation: 0, assigned_at: undefined,
  result: undefined, tokens_used: undefined, verification_report: undefined, verification_history: [], last_error: undefined,
  retry_count: 0, max_retries: input.max_retries ?? settings.maxRetries, progress: undefined, progress_message: undefined,
  created_at: now, updated_at: now, timeline: [first]
})

export const submit = (state: HubState, taskId: string, input: TaskInput, now: number, settings: Settings): Step => {
  const tx = new Tx(state, now, settings)
  tx.putTask(newTask(taskId, input, now, entry(now, "submitted", input.agent_id === undefined ? undefined : `for agent ${input.agent_id}`), settings))
  dispatch(tx)
  return tx.done()
}

export type CancelRefusal = { readonly kind: "not_found" } | { readonly kind: "finished"; readonly state: TaskState }

/** task_queue.ex `cancel_task`: the holder gets `task_cancelled` and its FSM goes idle. */
export const cancel = (state: HubState, taskId: string, now: number, settings: Settings): Result.Result<Step, CancelRefusal> => {
  const tx = new Tx(state, now, settings)
  const t = tx.tasks.get(taskId)
  if (t === undefined) return Result.fail({ kind: "not_found" })
  if (isFinished(t.state)) return Result.fail({ kind: "finished", state: t.state })
  const holder = isHeld(t.state) ? t.agent : undefined
  tx.update(t, { state: "cancelled" }, "cancelled", holder === undefined ? undefined : `task_cancelled sent to ${holder}`)
  const agent = holder === undefined ? undefined : tx.agents.get(holder)
  if (agent !== undefined) {
    tx.send(agent.conn, { type: "task_cancelled", task_id: taskId, timestamp: now })
    tx.putAgent(agent.fsm === "idle"
      ? { ...agent, current_task: undefined }
      : { ...agent, fsm: "idle", current_task: undefined, accept_deadline: undefined })
  }
  dispatch(tx)
  return Result.succeed(tx.done())
}

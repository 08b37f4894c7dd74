/**
 * The dev hub's state and its transitions (frames are in frames.ts), kept pure: each function takes the state, the event and the time, and
 * returns the next state plus what to do (`Out`: frames to send, connections to close, lines to log). The
 * DevHub layer owns the sockets and the clock and carries the outs out; nothing here does I/O.
 *
 * Rules worth knowing (the README repeats them):
 * - A pending task is offered to one identified agent: the one named by its `agent_id`, else the least loaded one
 *   (idle first). Each (re)assignment increments `generation`.
 * - `task_rejected` puts the task back in the queue; it is offered again after `requeueDelayMs`, doubling per
 *   rejection up to 30 s, or at once when some agent frees up (a task ends, an agent connects), and then to
 *   another agent than the one that rejected it if there is one.
 * - A holder that disconnects keeps its tasks for `graceMs`, so a restarting sidecar can claim them with
 *   `task_recovering`; after that they are re-queued.
 */
import { Result } from "effect"
import type { HubMessage } from "../domain/Protocol.ts"
import type { TimelineEntry } from "../domain/Task.ts"

export type TaskState = "pending" | "assigned" | "accepted" | "working" | "complete" | "failed" | "cancelled"
/** The agent has the task: it was offered it and has not finished or lost it. */
export const isHeld = (s: TaskState): boolean => s === "assigned" || s === "accepted" || s === "working"
export const isFinished = (s: TaskState): boolean => s === "complete" || s === "failed" || s === "cancelled"

export interface HubTask {
  readonly task_id: string
  readonly description: string
  readonly metadata: Readonly<Record<string, unknown>>
  /** The agent the submitter asked for; then only that agent is offered the task. */
  readonly agent_id: string | undefined
  readonly state: TaskState
  /** The agent holding the task, or the one that finished it. */
  readonly agent: string | undefined
  readonly generation: number
  readonly assigned_at: number | undefined
  /** Set while the holder is disconnected: the task is re-queued `graceMs` after this unless the agent returns. */
  readonly agent_disconnected_at: number | undefined
  readonly result: unknown
  readonly reason: string | undefined
  readonly progress: number | undefined
  readonly progress_message: string | undefined
  readonly created_at: number
  readonly updated_at: number
  readonly timeline: ReadonlyArray<TimelineEntry>
  /** Pending only: not offered before this time (after a rejection). */
  readonly retry_at: number | undefined
  readonly rejections: number
  /** The agent that rejected it last: offered to others first. */
  readonly rejected_by: string | undefined
}
export type TaskView = Omit<HubTask, "retry_at" | "rejections" | "rejected_by">

export interface HubAgent {
  readonly agent_id: string
  readonly name: string
  readonly reported_status: string
  readonly capabilities: ReadonlyArray<string>
  readonly client_type: string | undefined
  readonly conn: number
  readonly connected_at: number
  readonly last_seen: number
}
export interface AgentView extends Omit<HubAgent, "conn"> {
  /** The hub's view: `busy` while it holds a task. */
  readonly status: "idle" | "busy"
  readonly tasks: number
}

export interface HubState {
  readonly tasks: ReadonlyMap<string, HubTask>
  /** Identified, connected agents by agent id. */
  readonly agents: ReadonlyMap<string, HubAgent>
  /** Identified connections → agent id. */
  readonly conns: ReadonlyMap<number, string>
}
export const emptyState: HubState = { tasks: new Map(), agents: new Map(), conns: new Map() }

export interface Settings {
  readonly token: string | undefined
  readonly graceMs: number
  readonly requeueDelayMs: number
}

export type Out =
  | { readonly _tag: "send"; readonly conn: number; readonly frame: HubMessage }
  | { readonly _tag: "close"; readonly conn: number; readonly code: number; readonly reason: string }
  | { readonly _tag: "log"; readonly level: "info" | "warn" | "debug"; readonly message: string }
export interface Step {
  readonly state: HubState
  readonly out: ReadonlyArray<Out>
}

const TIMELINE_MAX = 200

/**
 * One transition under construction. Maps are copied on first write, so the input state is never mutated and a
 * transition that changes nothing returns the very same state object (the layer then publishes nothing).
 */
export class Tx {
  readonly now: number
  readonly settings: Settings
  readonly out: Array<Out> = []
  readonly #base: HubState
  #tasks: Map<string, HubTask> | undefined
  #agents: Map<string, HubAgent> | undefined
  #conns: Map<number, string> | undefined

  constructor(base: HubState, now: number, settings: Settings) {
    this.#base = base
    this.now = now
    this.settings = settings
  }
  get tasks(): ReadonlyMap<string, HubTask> { return this.#tasks ?? this.#base.tasks }
  get agents(): ReadonlyMap<string, HubAgent> { return this.#agents ?? this.#base.agents }
  get conns(): ReadonlyMap<number, string> { return this.#conns ?? this.#base.conns }

  putTask(task: HubTask): void { (this.#tasks ??= new Map(this.#base.tasks)).set(task.task_id, task) }
  putAgent(agent: HubAgent): void { (this.#agents ??= new Map(this.#base.agents)).set(agent.agent_id, agent) }
  deleteAgent(id: string): void { (this.#agents ??= new Map(this.#base.agents)).delete(id) }
  putConn(conn: number, agentId: string): void { (this.#conns ??= new Map(this.#base.conns)).set(conn, agentId) }
  deleteConn(conn: number): void { (this.#conns ??= new Map(this.#base.conns)).delete(conn) }

  /** Updates a task and, when `event` is given, appends it to the task's timeline. */
  update(task: HubTask, patch: Partial<HubTask>, event?: string, detail?: string): HubTask {
    const timeline = event === undefined ? task.timeline : capTimeline([...task.timeline, entry(this.now, event, detail)])
    const next: HubTask = { ...task, ...patch, updated_at: this.now, timeline }
    this.putTask(next)
    return next
  }
  send(conn: number, frame: HubMessage): void { this.out.push({ _tag: "send", conn, frame }) }
  close(conn: number, code: number, reason: string): void { this.out.push({ _tag: "close", conn, code, reason }) }
  log(level: "info" | "warn" | "debug", message: string): void { this.out.push({ _tag: "log", level, message }) }

  done(): Step {
    const changed = this.#tasks !== undefined || this.#agents !== undefined || this.#conns !== undefined
    return {
      state: changed ? { tasks: this.tasks, agents: this.agents, conns: this.conns } : this.#base,
      out: this.out
    }
  }
}

const entry = (at: number, event: string, detail: string | undefined): TimelineEntry =>
  detail === undefined ? { at, event } : { at, event, detail }
/** Keeps the first entry (submission) and the latest ones, so a chatty task cannot grow without bound. */
const capTimeline = (t: ReadonlyArray<TimelineEntry>): ReadonlyArray<TimelineEntry> =>
  t.length <= TIMELINE_MAX ? t : [t[0]!, ...t.slice(t.length - TIMELINE_MAX + 1)]

const loadOf = (tasks: ReadonlyMap<string, HubTask>, agentId: string): number => {
  let n = 0
  for (const t of tasks.values()) if (isHeld(t.state) && t.agent === agentId) n++
  return n
}

const lessThan = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): boolean => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!
  return false
}

/** Offers every due pending task to an agent that may take it. Called at the end of every transition. */
export const dispatch = (tx: Tx): void => {
  const loads = new Map<string, number>()
  for (const a of tx.agents.values()) loads.set(a.agent_id, loadOf(tx.tasks, a.agent_id))
  for (const t of [...tx.tasks.values()]) {
    if (t.state !== "pending" || (t.retry_at ?? 0) > tx.now) continue
    // Order of preference: not the agent that just rejected it, fewest tasks held, connected longest.
    const rank = (a: HubAgent) => [a.agent_id === t.rejected_by ? 1 : 0, loads.get(a.agent_id)!, a.connected_at] as const
    let best: HubAgent | undefined
    for (const a of tx.agents.values()) {
      if (t.agent_id !== undefined && a.agent_id !== t.agent_id) continue
      if (best === undefined || lessThan(rank(a), rank(best))) best = a
    }
    if (best === undefined) continue
    const generation = t.generation + 1
    tx.update(t, { state: "assigned", agent: best.agent_id, generation, assigned_at: tx.now, retry_at: undefined }, "assigned",
      `to ${best.agent_id} (generation ${generation})`)
    tx.send(best.conn, { type: "task_assign", task_id: t.task_id, description: t.description, metadata: t.metadata, generation, assigned_at: tx.now })
    loads.set(best.agent_id, loads.get(best.agent_id)! + 1)
  }
}

/** Some agent has room again (a task ended, an agent connected): tasks waiting out a rejection delay are due now. */
export const offerWaitingNow = (tx: Tx): void => {
  for (const t of [...tx.tasks.values()]) {
    if (t.state === "pending" && t.retry_at !== undefined) tx.update(t, { retry_at: undefined })
  }
}

/** A connection closed. Its agent's tasks stay with it for the grace period. */
export const disconnect = (state: HubState, conn: number, now: number, settings: Settings): Step => {
  const tx = new Tx(state, now, settings)
  const agentId = tx.conns.get(conn)
  if (agentId === undefined) return tx.done()
  tx.deleteConn(conn)
  if (tx.agents.get(agentId)?.conn === conn) {
    tx.deleteAgent(agentId)
    tx.log("info", `agent ${agentId} disconnected`)
    for (const t of [...tx.tasks.values()]) {
      if (t.agent === agentId && isHeld(t.state)) {
        tx.update(t, { agent_disconnected_at: now }, "agent_disconnected", `held for ${settings.graceMs / 1000} s for recovery`)
      }
    }
  }
  dispatch(tx)
  return tx.done()
}

/** Timers: re-queue tasks whose agent did not come back in time, and offer tasks whose retry delay has passed. */
export const tick = (state: HubState, now: number, settings: Settings): Step => {
  const tx = new Tx(state, now, settings)
  for (const t of [...tx.tasks.values()]) {
    if (isHeld(t.state) && t.agent_disconnected_at !== undefined && now - t.agent_disconnected_at >= settings.graceMs) {
      tx.update(t, { state: "pending", agent: undefined, assigned_at: undefined, agent_disconnected_at: undefined }, "requeued",
        `${t.agent ?? "the agent"} did not come back within ${settings.graceMs / 1000} s`)
    }
  }
  dispatch(tx)
  return tx.done()
}

export interface TaskInput {
  readonly description: string
  readonly metadata?: Readonly<Record<string, unknown>> | undefined
  readonly agent_id?: string | undefined
}

/** A new pending task; `first` opens its timeline. */
export const newTask = (taskId: string, input: TaskInput, now: number, first: TimelineEntry): HubTask => ({
  task_id: taskId, description: input.description, metadata: input.metadata ?? {}, agent_id: input.agent_id,
  state: "pending", agent: undefined, generation: 0, assigned_at: undefined, agent_disconnected_at: undefined,
  result: undefined, reason: undefined, progress: undefined, progress_message: undefined,
  created_at: now, updated_at: now, retry_at: undefined, rejections: 0, rejected_by: undefined, timeline: [first]
})

export const submit = (state: HubState, taskId: string, input: TaskInput, now: number, settings: Settings): Step => {
  const tx = new Tx(state, now, settings)
  tx.putTask(newTask(taskId, input, now, entry(now, "submitted", input.agent_id === undefined ? undefined : `for agent ${input.agent_id}`)))
  dispatch(tx)
  return tx.done()
}

export type CancelRefusal = { readonly kind: "not_found" } | { readonly kind: "finished"; readonly state: TaskState }

export const cancel = (state: HubState, taskId: string, now: number, settings: Settings): Result.Result<Step, CancelRefusal> => {
  const tx = new Tx(state, now, settings)
  const t = tx.tasks.get(taskId)
  if (t === undefined) return Result.fail({ kind: "not_found" })
  if (isFinished(t.state)) return Result.fail({ kind: "finished", state: t.state })
  const holder = isHeld(t.state) ? t.agent : undefined
  tx.update(t, { state: "cancelled", agent_disconnected_at: undefined, retry_at: undefined }, "cancelled",
    holder === undefined ? undefined : `task_cancelled sent to ${holder}`)
  const agent = holder === undefined ? undefined : tx.agents.get(holder)
  // A holder that is away learns of it when it sends task_recovering (answered task_cancelled).
  if (agent !== undefined) tx.send(agent.conn, { type: "task_cancelled", task_id: taskId })
  if (holder !== undefined) offerWaitingNow(tx)
  dispatch(tx)
  return Result.succeed(tx.done())
}

export const taskView = (t: HubTask): TaskView => {
  const { retry_at: _retry, rejections: _rejections, rejected_by: _by, ...view } = t
  return view
}
export const agentView = (a: HubAgent, tasks: ReadonlyMap<string, HubTask>): AgentView => {
  const { conn: _conn, ...view } = a
  const load = loadOf(tasks, a.agent_id)
  return { ...view, status: load > 0 ? "busy" : "idle", tasks: load }
}

/**
 * The dev hub's state and its transitions (frames are in frames.ts; disconnects, timers and restart in timers.ts;
 * submit and cancel in requests.ts),
 * kept pure: each function takes the state, the event and the time, and returns the next state plus what to do
 * (`Out`: frames to send, connections to close or cut, lines to log). The DevHub layer owns the sockets and the
 * clock and carries the outs out; nothing here does I/O.
 *
 * It follows AgentCom's hub (notno/AgentCom), where ownership moves on the hub's side:
 * - Scheduler (scheduler.ex): a pending task goes to an *idle* agent only, one task per agent at a time; the
 *   agent named by the task's `agent_id` (the real hub's `assign_to`) or else the longest-connected idle one.
 *   Every assignment bumps `generation`.
 * - Agent FSM (agent_fsm.ex): idle → assigned (on `task_assign`) → working (on `task_accepted` of that task) →
 *   idle (on `task_complete`/`task_failed` while working). A task not accepted in time, or whose agent's
 *   connection drops, is taken back with a new generation (timers.ts).
 */
import type { TimelineEntry } from "../domain/Task.ts"
import type { HubFrame } from "./inbound.ts"
import type { Backoff, Violations } from "./validation.ts"

/**
 * `pending` is the real hub's `queued`; `assigned`, `accepted` and `working` are all its `assigned` (the dev hub
 * shows how far the agent got); `complete` is `completed`; `dead_letter` a task that failed `max_retries` times.
 * `cancelled` tasks are deleted by the real hub: the protocol treats them as unknown, the page still shows them.
 */
export type TaskState = "pending" | "assigned" | "accepted" | "working" | "complete" | "dead_letter" | "cancelled"
/** The real hub's status `assigned`: some agent has the task. */
export const isHeld = (s: TaskState): boolean => s === "assigned" || s === "accepted" || s === "working"
export const isFinished = (s: TaskState): boolean => s === "complete" || s === "dead_letter" || s === "cancelled"

export interface HubTask {
  readonly task_id: string
  readonly description: string
  readonly metadata: Readonly<Record<string, unknown>>
  /** The agent the submitter asked for (the real hub's `assign_to`); then only that agent is offered the task. */
  readonly agent_id: string | undefined
  readonly state: TaskState
  /** The agent holding the task, or the one that completed it (the real hub's `assigned_to`). */
  readonly agent: string | undefined
  readonly generation: number
  readonly assigned_at: number | undefined
  readonly result: unknown
  readonly tokens_used: unknown
  readonly verification_report: unknown
  readonly verification_history: ReadonlyArray<unknown>
  /** The last `task_failed` error. */
  readonly last_error: string | undefined
  readonly retry_count: number
  readonly max_retries: number
  /** The dev hub's display of `task_progress` (the real hub only takes it as a sign of life). */
  readonly progress: number | undefined
  readonly progress_message: string | undefined
  readonly created_at: number
  /** The real hub's `updated_at`: set by its mutations and by signs of life, and read by the stuck sweep. */
  readonly updated_at: number
  readonly timeline: ReadonlyArray<TimelineEntry>
}
export type TaskView = HubTask

export type FsmState = "idle" | "assigned" | "working"

export interface HubAgent {
  readonly agent_id: string
  readonly name: string
  readonly reported_status: string
  readonly capabilities: ReadonlyArray<string>
  readonly client_type: string | undefined
  readonly conn: number
  readonly connected_at: number
  /** Set at identify and by `ping` only (presence.ex `touch`); the reaper reads it. */
  readonly last_seen: number
  readonly fsm: FsmState
  readonly current_task: string | undefined
  /** While `fsm` is `assigned`: the task is taken back at this time unless accepted. */
  readonly accept_deadline: number | undefined
  /** Set when the agent let a task's acceptance time out. */
  readonly unresponsive: boolean
}
export interface AgentView extends Omit<HubAgent, "conn" | "accept_deadline"> {
  /** `busy` while it holds a task. */
  readonly status: "idle" | "busy"
  readonly tasks: number
}

export interface HubState {
  readonly tasks: ReadonlyMap<string, HubTask>
  /** Identified, connected agents by agent id. */
  readonly agents: ReadonlyMap<string, HubAgent>
  /** Identified connections → agent id. */
  readonly conns: ReadonlyMap<number, string>
  /** Validation violations per connection (identified or not). */
  readonly violations: ReadonlyMap<number, Violations>
  /** Cool-downs of agents cut off for too many violations (lost at a restart, as the hub's ETS table is). */
  readonly backoff: ReadonlyMap<string, Backoff>
}
export const emptyState: HubState = { tasks: new Map(), agents: new Map(), conns: new Map(), violations: new Map(), backoff: new Map() }

/** Every timer of the hub; defaults are AgentCom's. */
export interface Settings {
  readonly token: string | undefined
  /** agent_fsm.ex `@acceptance_timeout_ms`. */
  readonly acceptanceTimeoutMs: number
  /** scheduler.ex `@stuck_threshold_ms` (twice this while the agent is working). */
  readonly stuckThresholdMs: number
  /** scheduler.ex `@stuck_sweep_interval_ms`. */
  readonly stuckSweepMs: number
  /** reaper.ex `@default_ttl_ms`. */
  readonly reaperTtlMs: number
  /** reaper.ex `@default_sweep_interval_ms`. */
  readonly reaperSweepMs: number
  /** task_queue.ex `@default_max_retries`, for tasks submitted without `max_retries`. */
  readonly maxRetries: number
  /** Test hook (0 in AgentCom): an agent is offered tasks only this long after it identified, as when the real
   *  scheduler runs late after a reconnect, so that a `state_report` is answered before the task comes again. */
  readonly assignDelayMs: number
}
export const defaultSettings: Settings = {
  token: undefined,
  acceptanceTimeoutMs: 60_000,
  stuckThresholdMs: 600_000,
  stuckSweepMs: 30_000,
  reaperTtlMs: 60_000,
  reaperSweepMs: 30_000,
  maxRetries: 3,
  assignDelayMs: 0
}

export type Out =
  | { readonly _tag: "send"; readonly conn: number; readonly frame: HubFrame }
  | { readonly _tag: "close"; readonly conn: number; readonly code: number; readonly reason: string }
  /** Drop the connection without a close handshake (a killed socket process). */
  | { readonly _tag: "terminate"; readonly conn: number }
  | { readonly _tag: "log"; readonly level: "info" | "warn" | "debug"; readonly message: string }
export interface Step {
  readonly state: HubState
  readonly out: ReadonlyArray<Out>
}

const TIMELINE_MAX = 200

type Key = keyof HubState
/**
 * One transition under construction. Maps are copied on first write, so the input state is never mutated and a
 * transition that changes nothing returns the very same state object (the layer then publishes nothing).
 */
export class Tx {
  readonly now: number
  readonly settings: Settings
  readonly out: Array<Out> = []
  readonly #base: HubState
  readonly #copies: { -readonly [K in Key]?: Map<unknown, unknown> } = {}

  constructor(base: HubState, now: number, settings: Settings) {
    this.#base = base
    this.now = now
    this.settings = settings
  }
  #read<K extends Key>(k: K): HubState[K] { return (this.#copies[k] ?? this.#base[k]) as HubState[K] }
  #write<K extends Key>(k: K): HubState[K] extends ReadonlyMap<infer A, infer B> ? Map<A, B> : never {
    return (this.#copies[k] ??= new Map(this.#base[k] as ReadonlyMap<unknown, unknown>)) as never
  }
  get tasks() { return this.#read("tasks") }
  get agents() { return this.#read("agents") }
  get conns() { return this.#read("conns") }
  get violations() { return this.#read("violations") }
  get backoff() { return this.#read("backoff") }

  putTask(task: HubTask): void { this.#write("tasks").set(task.task_id, task) }
  putAgent(agent: HubAgent): void { this.#write("agents").set(agent.agent_id, agent) }
  deleteAgent(id: string): void { this.#write("agents").delete(id) }
  putConn(conn: number, agentId: string): void { this.#write("conns").set(conn, agentId) }
  deleteConn(conn: number): void { this.#write("conns").delete(conn) }
  putViolations(conn: number, v: Violations): void { this.#write("violations").set(conn, v) }
  deleteViolations(conn: number): void { if (this.violations.has(conn)) this.#write("violations").delete(conn) }
  putBackoff(agentId: string, b: Backoff): void { this.#write("backoff").set(agentId, b) }
  clearConnections(): void {
    if (this.conns.size > 0) this.#write("conns").clear()
    if (this.agents.size > 0) this.#write("agents").clear()
    if (this.violations.size > 0) this.#write("violations").clear()
    if (this.backoff.size > 0) this.#write("backoff").clear()
  }

  /** Updates a task and, when `event` is given, appends it to the task's timeline. `updated_at` is not touched:
   *  the real hub's mutations set it themselves (see `touch`). */
  update(task: HubTask, patch: Partial<HubTask>, event?: string, detail?: string): HubTask {
    const timeline = event === undefined ? task.timeline : capTimeline([...task.timeline, entry(this.now, event, detail)])
    const next: HubTask = { ...task, ...patch, timeline }
    this.putTask(next)
    return next
  }
  send(conn: number, frame: HubFrame): void { this.out.push({ _tag: "send", conn, frame }) }
  close(conn: number, code: number, reason: string): void { this.out.push({ _tag: "close", conn, code, reason }) }
  terminate(conn: number): void { this.out.push({ _tag: "terminate", conn }) }
  log(level: "info" | "warn" | "debug", message: string): void { this.out.push({ _tag: "log", level, message }) }

  done(): Step {
    const changed = Object.keys(this.#copies).length > 0
    return {
      state: changed
        ? { tasks: this.tasks, agents: this.agents, conns: this.conns, violations: this.violations, backoff: this.backoff }
        : this.#base,
      out: this.out
    }
  }
}

export const entry = (at: number, event: string, detail: string | undefined): TimelineEntry =>
  detail === undefined ? { at, event } : { at, event, detail }
/** Keeps the first entry (submission) and the latest ones, so a chatty task cannot grow without bound. */
const capTimeline = (t: ReadonlyArray<TimelineEntry>): ReadonlyArray<TimelineEntry> =>
  t.length <= TIMELINE_MAX ? t : [t[0]!, ...t.slice(t.length - TIMELINE_MAX + 1)]

const loadOf = (tasks: ReadonlyMap<string, HubTask>, agentId: string): number => {
  let n = 0
  for (const t of tasks.values()) if (isHeld(t.state) && t.agent === agentId) n++
  return n
}

/** task_queue.ex `update_progress`: a sign of life for a held task (the stuck sweep reads `updated_at`). */
export const touch = (tx: Tx, taskId: string): void => {
  const t = tx.tasks.get(taskId)
  if (t !== undefined && isHeld(t.state)) tx.update(t, { updated_at: tx.now })
}

/** The FSM leaves its task (agent_fsm.ex `task_completed`/`task_failed`: only from `working`). */
export const agentDone = (tx: Tx, agentId: string): void => {
  const a = tx.agents.get(agentId)
  if (a !== undefined && a.fsm === "working") tx.putAgent({ ...a, fsm: "idle", current_task: undefined, accept_deadline: undefined })
}

export const taskAssignFrame = (t: HubTask, generation: number, now: number): HubFrame => ({
  type: "task_assign", task_id: t.task_id, description: t.description, metadata: t.metadata, generation, assigned_at: now,
  repo: null, branch: null, file_hints: [], success_criteria: [], verification_steps: [], complexity: null, routing_decision: null,
  skip_verification: false, verification_timeout_ms: null, max_verification_retries: 0
})

/** scheduler.ex `try_schedule_all`: each pending task, oldest first, to an idle agent (one task per agent). Called at
 *  the end of every transition (and by the acceptance timers' tick), as the real scheduler runs on every task and
 *  presence event. */
export const dispatch = (tx: Tx): void => {
  const idle = [...tx.agents.values()].filter((a) => a.fsm === "idle" && tx.now - a.connected_at >= tx.settings.assignDelayMs)
    .sort((a, b) => a.connected_at - b.connected_at || a.conn - b.conn)
  if (idle.length === 0) return
  const pending = [...tx.tasks.values()].filter((t) => t.state === "pending").sort((a, b) => a.created_at - b.created_at)
  for (const t of pending) {
    const i = idle.findIndex((a) => t.agent_id === undefined || a.agent_id === t.agent_id)
    if (i < 0) continue
    const [agent] = idle.splice(i, 1)
    const generation = t.generation + 1
    tx.update(t, { state: "assigned", agent: agent!.agent_id, generation, assigned_at: tx.now, updated_at: tx.now }, "assigned",
      `to ${agent!.agent_id} (generation ${generation})`)
    tx.putAgent({ ...agent!, fsm: "assigned", current_task: t.task_id, accept_deadline: tx.now + tx.settings.acceptanceTimeoutMs })
    tx.send(agent!.conn, taskAssignFrame(t, generation, tx.now))
    if (idle.length === 0) return
  }
}

export const taskView = (t: HubTask): TaskView => t
export const agentView = (a: HubAgent, tasks: ReadonlyMap<string, HubTask>): AgentView => {
  const { conn: _conn, accept_deadline: _deadline, ...view } = a
  const load = loadOf(tasks, a.agent_id)
  return { ...view, status: load > 0 ? "busy" : "idle", tasks: load }
}

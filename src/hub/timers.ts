/**
 * The dev hub's transitions driven by time and by connections going away, pure like `state.ts` (each takes the
 * state, the time and the settings and returns a `Step`); the DevHub layer runs them on its timers and sockets.
 * After AgentCom's hub:
 * - Disconnect (agent_fsm.ex `:DOWN`): the agent's current task is taken back at once (generation bumped) and
 *   offered again.
 * - Acceptance timer (agent_fsm.ex): a task not accepted within `acceptanceTimeoutMs` (60 s) is taken back and
 *   the agent flagged `unresponsive`.
 * - Stuck sweep (scheduler.ex): every `stuckSweepMs` (30 s), a held task with no sign of life (`updated_at`) for
 *   `stuckThresholdMs` (10 min) is taken back; 2× that when its agent is working. Signs of life are the hub's
 *   `update_progress`: `task_accepted`, `task_progress`, `wake_result` success, `state_report` answered continue.
 * - Reaper (reaper.ex): every `reaperSweepMs` (30 s), agents not heard from (`ping` only) for `reaperTtlMs`
 *   (60 s) are cut off, which takes their task back.
 * - Restart: the real hub keeps its tasks on disk. `graceful` is a normal stop (each connected agent's current
 *   task is taken back, as its socket goes down); `crash` keeps held tasks assigned, and an agent that comes back
 *   holding one starts in `assigned` with the acceptance timer running (agent_fsm.ex `init`).
 */
import { dispatch, type HubState, isHeld, type Settings, type Step, Tx } from "./state.ts"

/** task_queue.ex `reclaim_task`: a held task back to the queue with a new generation. Does not touch any agent's FSM. */
export const reclaim = (tx: Tx, taskId: string | undefined, why: string): void => {
  const t = taskId === undefined ? undefined : tx.tasks.get(taskId)
  if (t === undefined || !isHeld(t.state)) return
  const generation = t.generation + 1
  tx.update(t, { state: "pending", agent: undefined, assigned_at: undefined, generation, updated_at: tx.now }, "reclaimed",
    `${why}; taken back from ${t.agent ?? "?"} (generation ${generation})`)
  tx.log("info", `task ${t.task_id} taken back from ${t.agent ?? "?"}: ${why}`)
}

/** The agent's socket went down (agent_fsm.ex `:DOWN`): its current task is taken back at once. */
const agentDown = (tx: Tx, agentId: string, why: string): void => {
  const a = tx.agents.get(agentId)
  if (a === undefined) return
  tx.deleteAgent(agentId)
  tx.deleteConn(a.conn)
  tx.deleteViolations(a.conn)
  reclaim(tx, a.current_task, why)
}

/** A connection closed. Only the agent's current connection counts (a replaced one was already let go). */
export const disconnect = (state: HubState, conn: number, now: number, settings: Settings): Step => {
  const tx = new Tx(state, now, settings)
  tx.deleteViolations(conn)
  const agentId = tx.conns.get(conn)
  if (agentId !== undefined) {
    tx.deleteConn(conn)
    if (tx.agents.get(agentId)?.conn === conn) {
      tx.log("info", `agent ${agentId} disconnected`)
      agentDown(tx, agentId, "agent disconnected")
    }
  }
  dispatch(tx)
  return tx.done()
}

/** Acceptance timers (agent_fsm.ex `:acceptance_timeout`): due ones take the task back and flag the agent. */
export const tick = (state: HubState, now: number, settings: Settings): Step => {
  const tx = new Tx(state, now, settings)
  for (const a of [...tx.agents.values()]) {
    if (a.fsm !== "assigned" || a.accept_deadline === undefined || a.accept_deadline > now) continue
    reclaim(tx, a.current_task, `not accepted within ${settings.acceptanceTimeoutMs / 1000} s`)
    tx.putAgent({ ...a, fsm: "idle", current_task: undefined, accept_deadline: undefined, unresponsive: true })
  }
  dispatch(tx)
  return tx.done()
}

/** scheduler.ex `:sweep_stuck`: held tasks without a sign of life for the threshold (2× while the agent works). */
export const sweepStuck = (state: HubState, now: number, settings: Settings): Step => {
  const tx = new Tx(state, now, settings)
  for (const t of [...tx.tasks.values()]) {
    if (!isHeld(t.state) || t.updated_at >= now - settings.stuckThresholdMs) continue
    const fsm = t.agent === undefined ? undefined : tx.agents.get(t.agent)?.fsm
    const minutes = Math.round((now - t.updated_at) / 6_000) / 10
    if (fsm === "working" && t.updated_at >= now - 2 * settings.stuckThresholdMs) continue
    reclaim(tx, t.task_id, `no sign of life for ${minutes} min (agent ${fsm ?? "offline"})`)
  }
  dispatch(tx)
  return tx.done()
}

/** reaper.ex `:sweep`: agents not heard from (ping) within the TTL are cut off, which takes their task back. */
export const reap = (state: HubState, now: number, settings: Settings): Step => {
  const tx = new Tx(state, now, settings)
  for (const a of [...tx.agents.values()]) {
    if (a.last_seen >= now - settings.reaperTtlMs) continue
    tx.log("warn", `reaper: agent ${a.agent_id} silent for ${(now - a.last_seen) / 1000} s, connection cut`)
    tx.terminate(a.conn)
    agentDown(tx, a.agent_id, `agent silent for ${(now - a.last_seen) / 1000} s (reaper)`)
  }
  dispatch(tx)
  return tx.done()
}

export type RestartMode = "graceful" | "crash"

/**
 * The hub restarts with its tasks (they are on disk in the real hub). Every connection is dropped; `graceful`
 * takes each connected agent's current task back first (its socket went down while the hub still ran), `crash`
 * leaves held tasks assigned. Either way an agent that comes back is offered its task again with a new generation:
 * at once after `graceful`, and after `crash` once its acceptance timer runs out, unless it sends `task_accepted`.
 */
export const restart = (state: HubState, now: number, settings: Settings, mode: RestartMode): Step => {
  const tx = new Tx(state, now, settings)
  for (const conn of tx.conns.keys()) {
    if (mode === "graceful") tx.close(conn, 1001, "hub shutting down")
    else tx.terminate(conn)
  }
  if (mode === "graceful") for (const a of [...tx.agents.values()]) agentDown(tx, a.agent_id, "hub restarted")
  tx.clearConnections()
  tx.log("info", `hub restarted (${mode})`)
  return tx.done()
}

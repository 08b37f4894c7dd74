/**
 * What the hub does with each frame a sidecar sends (SPEC §3), as pure transitions over `HubState`. The answers
 * and error texts are those existing hubs give, so the sidecar's handling of them is exercised for real
 * (`task_complete_failed: <why>` / `task_fail_failed: <why>` for reports the hub refuses).
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Result } from "effect"
import { isValidTaskId } from "../domain/Task.ts"
import { decodeSidecarFrame, type Identify, type SidecarMessage } from "./inbound.ts"
import { dispatch, type HubState, type HubTask, isHeld, newTask, offerWaitingNow, type Settings, type Step, Tx } from "./state.ts"

const MAX_RETRY_DELAY_MS = 30_000
const AgentIdPattern = /^[A-Za-z0-9._-]{1,64}$/

/** One text frame from connection `conn`. Unidentified connections may only send `identify`. */
export const onFrame = (state: HubState, conn: number, raw: string, now: number, settings: Settings): Step => {
  const tx = new Tx(state, now, settings)
  const decoded = decodeSidecarFrame(raw)
  const agentId = tx.conns.get(conn)
  if (agentId === undefined) {
    if (Result.isSuccess(decoded) && decoded.success.type === "identify") identify(tx, conn, decoded.success)
    else {
      tx.send(conn, { type: "error", error: "identify_required: the first frame must be identify" })
      tx.close(conn, 1008, "identify_required")
    }
    dispatch(tx)
    return tx.done()
  }
  const agent = tx.agents.get(agentId)
  if (agent !== undefined) tx.putAgent({ ...agent, last_seen: now })
  if (Result.isFailure(decoded)) {
    const r = decoded.failure
    if (r.kind === "unknown") tx.log("debug", `agent ${agentId}: ignored unknown message type "${r.type}"`)
    else {
      tx.log("warn", `agent ${agentId}: invalid message: ${r.detail}`)
      tx.send(conn, { type: "error", error: `invalid_message: ${r.detail}` })
    }
  } else {
    handle(tx, conn, agentId, decoded.success)
  }
  dispatch(tx)
  return tx.done()
}

const sameSecret = (a: string, b: string): boolean =>
  timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest())

/** `identify` on connection `conn` (the first frame, or a repeat on the same connection). */
const identify = (tx: Tx, conn: number, msg: Identify): void => {
  const { token } = tx.settings
  if (token !== undefined && (msg.token === undefined || !sameSecret(msg.token, token))) {
    tx.log("warn", `connection #${conn} (agent "${msg.agent_id.slice(0, 64)}") refused: invalid token`)
    tx.send(conn, { type: "error", error: "auth_failed: invalid token" })
    return tx.close(conn, 4001, "auth_failed")
  }
  if (!AgentIdPattern.test(msg.agent_id)) {
    tx.send(conn, { type: "error", error: "identify_failed: agent_id must match [A-Za-z0-9._-]{1,64}" })
    return tx.close(conn, 1008, "identify_failed")
  }
  const previous = tx.agents.get(msg.agent_id)
  if (previous !== undefined && previous.conn !== conn) {
    // The newest connection wins: a restarted sidecar must not wait for its old socket to time out.
    tx.log("info", `agent ${msg.agent_id}: connection #${previous.conn} replaced by #${conn}`)
    tx.deleteConn(previous.conn)
    tx.close(previous.conn, 4000, "replaced by a newer connection")
  }
  tx.putConn(conn, msg.agent_id)
  tx.putAgent({
    agent_id: msg.agent_id,
    name: msg.name ?? msg.agent_id,
    reported_status: msg.status ?? "idle",
    capabilities: msg.capabilities ?? [],
    client_type: msg.client_type,
    conn,
    connected_at: previous?.conn === conn ? previous.connected_at : tx.now,
    last_seen: tx.now
  })
  for (const t of [...tx.tasks.values()]) {
    if (t.agent === msg.agent_id && isHeld(t.state) && t.agent_disconnected_at !== undefined) {
      tx.update(t, { agent_disconnected_at: undefined }, "agent_reconnected")
    }
  }
  if (previous === undefined) tx.log("info", `agent ${msg.agent_id} identified (connection #${conn})`)
  tx.send(conn, { type: "identified", agent_id: msg.agent_id })
  offerWaitingNow(tx)
}

type HeldTask = HubTask & { readonly agent: string }
const heldBy = (t: HubTask | undefined, agentId: string): t is HeldTask => t !== undefined && isHeld(t.state) && t.agent === agentId

/** Why `agentId` may not act on task `taskId`, in the words of the error frame. */
const why = (t: HubTask | undefined, taskId: string, agentId: string): string =>
  t === undefined ? `unknown task ${taskId}`
    : t.state === "pending" ? `task ${taskId} is not assigned`
    : !isHeld(t.state) ? `task ${taskId} is ${t.state}`
    : t.agent !== agentId ? `task ${taskId} is assigned to another agent`
    : `task ${taskId} is ${t.state}`

const handle = (tx: Tx, conn: number, agentId: string, msg: SidecarMessage): void => {
  switch (msg.type) {
    case "identify":
      return identify(tx, conn, msg)
    case "ping":
      return tx.send(conn, { type: "pong", timestamp: tx.now })
    case "task_accepted": {
      const t = tx.tasks.get(msg.task_id)
      if (!heldBy(t, agentId)) return tx.send(conn, { type: "error", error: `task_accept_failed: ${why(t, msg.task_id, agentId)}` })
      if (t.state === "assigned") tx.update(t, { state: "accepted" }, "accepted", `by ${agentId}`)
      return tx.send(conn, { type: "task_ack", task_id: msg.task_id, status: "accepted" })
    }
    case "task_rejected": {
      const t = tx.tasks.get(msg.task_id)
      if (!heldBy(t, agentId)) return tx.log("debug", `agent ${agentId}: task_rejected for ${msg.task_id} ignored: ${why(t, msg.task_id, agentId)}`)
      const rejections = t.rejections + 1
      const delay = Math.min(tx.settings.requeueDelayMs * 2 ** (rejections - 1), MAX_RETRY_DELAY_MS)
      const reason = msg.reason ?? "no reason given"
      tx.update(t, { state: "pending", agent: undefined, assigned_at: undefined, retry_at: tx.now + delay, rejections, rejected_by: agentId },
        "rejected", `by ${agentId}: ${reason}; offered again in ${delay / 1000} s or when an agent frees up`)
      return
    }
    case "wake_result": {
      const t = tx.tasks.get(msg.task_id)
      if (!heldBy(t, agentId)) return
      const outcome = `attempt ${msg.attempt ?? "?"}: ${msg.status ?? "unknown"}${msg.error === undefined ? "" : ` (${msg.error})`}`
      tx.update(t, msg.status === "success" && t.state !== "working" ? { state: "working" } : {}, "wake", outcome)
      return
    }
    case "task_progress": {
      const t = tx.tasks.get(msg.task_id)
      if (!heldBy(t, agentId)) return
      const detail = [msg.progress === undefined ? undefined : `${msg.progress}%`, msg.message].filter((s) => s !== undefined).join(" ")
      tx.update(t, {
        state: "working",
        progress: msg.progress ?? t.progress,
        progress_message: msg.message ?? t.progress_message
      }, "progress", detail === "" ? undefined : detail)
      return
    }
    case "task_complete":
      return finish(tx, conn, agentId, msg.task_id, msg.generation, { state: "complete", result: msg.result })
    case "task_failed":
      return finish(tx, conn, agentId, msg.task_id, msg.generation, { state: "failed", reason: msg.reason ?? "unknown" })
    case "task_recovering":
      return recovering(tx, conn, agentId, msg)
  }
}

type Outcome = { readonly state: "complete"; readonly result: unknown } | { readonly state: "failed"; readonly reason: string }

/** A terminal report. A report without `generation` (older sidecars) is taken as current. */
const finish = (tx: Tx, conn: number, agentId: string, taskId: string, generation: number | undefined, outcome: Outcome): void => {
  const prefix = outcome.state === "complete" ? "task_complete_failed" : "task_fail_failed"
  const t = tx.tasks.get(taskId)
  const current = generation === undefined || generation === t?.generation
  // The sidecar resends a report whose ack it missed; the same report again is acknowledged again.
  if (t !== undefined && t.state === outcome.state && t.agent === agentId && current) {
    return tx.send(conn, { type: "task_ack", task_id: taskId, status: outcome.state })
  }
  if (!heldBy(t, agentId)) return tx.send(conn, { type: "error", error: `${prefix}: ${why(t, taskId, agentId)}` })
  if (!current) {
    return tx.send(conn, { type: "error", error: `${prefix}: stale generation ${generation} for task ${taskId} (current ${t.generation})` })
  }
  if (outcome.state === "complete") {
    tx.update(t, { state: "complete", result: outcome.result, agent_disconnected_at: undefined }, "complete", `reported by ${agentId}`)
  } else {
    tx.update(t, { state: "failed", reason: outcome.reason, agent_disconnected_at: undefined }, "failed", outcome.reason)
  }
  tx.send(conn, { type: "task_ack", task_id: taskId, status: outcome.state })
  offerWaitingNow(tx)
}

/**
 * A restarted sidecar asks about a task it found unfinished. Its own task → `task_continue`; a task cancelled
 * meanwhile → `task_cancelled`; anyone else's → `task_reassign`. A task this hub never knew (it restarted too,
 * its state being in memory) is answered `task_reassign` and adopted as a new pending task, so the work is
 * offered again (most likely to the same agent) instead of being lost.
 */
const recovering = (tx: Tx, conn: number, agentId: string, msg: Extract<SidecarMessage, { type: "task_recovering" }>): void => {
  const t = tx.tasks.get(msg.task_id)
  const was = msg.last_status === undefined ? "" : ` (was ${msg.last_status})`
  if (heldBy(t, agentId)) {
    tx.update(t, { agent_disconnected_at: undefined }, "recovered", `${agentId} resumes it${was}`)
    return tx.send(conn, { type: "task_continue", task_id: msg.task_id, generation: t.generation })
  }
  if (t !== undefined) {
    if (t.state === "cancelled") return tx.send(conn, { type: "task_cancelled", task_id: msg.task_id })
    tx.update(t, {}, "recovery_refused", `${agentId} asked to resume it; ${why(t, msg.task_id, agentId)}`)
    return tx.send(conn, { type: "task_reassign", task_id: msg.task_id })
  }
  tx.send(conn, { type: "task_reassign", task_id: msg.task_id })
  if (!isValidTaskId(msg.task_id)) return
  tx.putTask(newTask(msg.task_id, { description: msg.description ?? "", metadata: msg.metadata ?? {} }, tx.now,
    { at: tx.now, event: "adopted", detail: `unknown to this hub; ${agentId} reported it in task_recovering${was}` }))
}

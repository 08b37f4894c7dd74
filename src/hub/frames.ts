/**
 * What the hub does with each frame a sidecar sends, as pure transitions over `HubState`, in the words of
 * AgentCom's `lib/agent_com/socket.ex` (the handler), `validation.ex` (refusals) and `task_queue.ex` (task rules):
 * - not JSON → `{"type":"error","error":"invalid_json"}`; a JSON value that is not an object crashes the real hub's
 *   connection process, here a close 1011;
 * - a frame that fails validation → `{"type":"error","error":"validation_failed","message_type","errors"}`, and the
 *   tenth in a minute closes the connection 1008 "too many validation errors" (then a cool-down on `identify`);
 *   unknown types (`task_rejected` among them) are such failures;
 * - before `identify`: `not_identified`; a wrong token: `invalid_token` (the connection stays open);
 * - reports are fenced by generation and answered `task_complete_failed: <reason>` / `task_fail_failed: <reason>`
 *   with `stale_generation`, `invalid_state` or `not_found`; they do not check which agent sends them.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Result } from "effect"
import { parseFrame } from "./inbound.ts"
import { agentDone, dispatch, type HubState, type HubTask, isHeld, type Settings, type Step, touch, Tx } from "./state.ts"
import { cooldownSeconds, isJsonObject, type JsonObject, shouldDisconnect, trackViolation, validateWsMessage } from "./validation.ts"

/** One text frame from connection `conn`. */
export const onFrame = (state: HubState, conn: number, raw: string, now: number, settings: Settings): Step => {
  const tx = new Tx(state, now, settings)
  const parsed = parseFrame(raw)
  if (Result.isFailure(parsed)) {
    tx.send(conn, { type: "error", error: "invalid_json" })
    return tx.done()
  }
  if (parsed.success.kind === "other") {
    tx.log("warn", `connection #${conn}: a JSON value that is not an object (the real hub's socket process crashes on it)`)
    tx.close(conn, 1011, "internal error")
    return tx.done()
  }
  const msg = parsed.success.value
  const errors = validateWsMessage(msg)
  const agentId = tx.conns.get(conn)
  if (errors.length > 0) {
    const violations = trackViolation(tx.violations.get(conn), now)
    tx.putViolations(conn, violations)
    if (shouldDisconnect(violations)) {
      if (agentId !== undefined) {
        const b = tx.backoff.get(agentId)
        tx.putBackoff(agentId, { count: (b?.count ?? 0) + 1, last_at: now })
      }
      tx.log("warn", `connection #${conn}${agentId === undefined ? "" : ` (${agentId})`}: ${violations.count} validation errors within a minute, closed`)
      tx.close(conn, 1008, "too many validation errors")
      return tx.done()
    }
    const type = Object.hasOwn(msg, "type") ? msg["type"] : "unknown"
    tx.log("debug", `connection #${conn}: validation_failed for ${JSON.stringify(type)}: ${errors.map((e) => `${e.field}: ${e.detail}`).join("; ")}`)
    tx.send(conn, { type: "error", error: "validation_failed", message_type: type, errors })
    return tx.done()
  }
  const type = msg["type"] as string
  if (type === "identify") identify(tx, conn, msg)
  else if (agentId === undefined) tx.send(conn, { type: "error", error: "not_identified" })
  else handle(tx, conn, agentId, type, msg)
  dispatch(tx)
  return tx.done()
}

const sameSecret = (a: string, b: string): boolean =>
  timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest())

/** socket.ex `handle_msg(identify)` and `do_identify`. One token for every agent (the real hub has one per agent). */
const identify = (tx: Tx, conn: number, msg: JsonObject): void => {
  const agentId = msg["agent_id"] as string
  const cooldown = cooldownSeconds(tx.backoff.get(agentId), tx.now)
  if (cooldown !== undefined) return tx.close(conn, 1008, `cooldown active: retry in ${cooldown}s`)
  const { token } = tx.settings
  if (token !== undefined && !sameSecret(msg["token"] as string, token)) {
    tx.log("warn", `connection #${conn} (agent "${agentId.slice(0, 64)}"): invalid token`)
    return tx.send(conn, { type: "error", error: "invalid_token" })
  }
  const previous = tx.agents.get(agentId)
  const prevConnAgent = tx.conns.get(conn)
  if (prevConnAgent !== undefined && prevConnAgent !== agentId) {
    // The same connection identifies as someone else: the real hub keeps both registrations; here the old one goes.
    tx.deleteAgent(prevConnAgent)
  }
  if (previous !== undefined && previous.conn !== conn) {
    // The real hub stops the old FSM (no take-back) and leaves the old socket open; the dev hub also closes it.
    tx.log("info", `agent ${agentId}: connection #${previous.conn} replaced by #${conn}`)
    tx.deleteConn(previous.conn)
    tx.close(previous.conn, 4000, "replaced by a newer connection")
  }
  // agent_fsm.ex `init`: an agent that still holds a task (after a hub crash, or a replaced connection) starts
  // `assigned` with the acceptance timer running.
  const held = [...tx.tasks.values()].find((t) => isHeld(t.state) && t.agent === agentId)
  tx.putConn(conn, agentId)
  tx.putAgent({
    agent_id: agentId,
    name: typeof msg["name"] === "string" ? msg["name"] : agentId,
    reported_status: typeof msg["status"] === "string" ? msg["status"] : "connected",
    capabilities: Array.isArray(msg["capabilities"]) ? (msg["capabilities"] as ReadonlyArray<string>) : [],
    client_type: typeof msg["client_type"] === "string" ? msg["client_type"] : undefined,
    conn,
    connected_at: tx.now,
    last_seen: tx.now,
    fsm: held === undefined ? "idle" : "assigned",
    current_task: held?.task_id,
    accept_deadline: held === undefined ? undefined : tx.now + tx.settings.acceptanceTimeoutMs,
    unresponsive: false
  })
  tx.log("info", `agent ${agentId} identified (connection #${conn})${held === undefined ? "" : `; still holds ${held.task_id}`}`)
  tx.send(conn, { type: "identified", agent_id: agentId })
}

const str = (msg: JsonObject, key: string): string | undefined => (typeof msg[key] === "string" ? (msg[key] as string) : undefined)
const int = (msg: JsonObject, key: string): number | undefined => (typeof msg[key] === "number" ? (msg[key] as number) : undefined)

const handle = (tx: Tx, conn: number, agentId: string, type: string, msg: JsonObject): void => {
  const taskId = str(msg, "task_id") ?? ""
  const task = tx.tasks.get(taskId)
  switch (type) {
    case "ping": {
      const a = tx.agents.get(agentId)
      if (a !== undefined) tx.putAgent({ ...a, last_seen: tx.now })
      return tx.send(conn, { type: "pong", timestamp: tx.now })
    }
    case "status": {
      const a = tx.agents.get(agentId)
      if (a !== undefined) tx.putAgent({ ...a, reported_status: msg["status"] as string })
      return tx.send(conn, { type: "status_updated" })
    }
    case "list_agents":
      return tx.send(conn, {
        type: "agents",
        agents: [...tx.agents.values()].map((a) => ({
          agent_id: a.agent_id, name: a.name, status: a.reported_status, capabilities: a.capabilities, connected_at: a.connected_at
        }))
      })
    // The dev hub has no messaging or channels: messages go nowhere, and no channel exists.
    case "message":
      return tx.send(conn, { type: "message_sent", id: `dev-${tx.now.toString(16)}-${conn}` })
    case "channel_subscribe":
    case "channel_unsubscribe":
    case "channel_publish":
      return tx.send(conn, { type: "error", error: "channel_not_found" })
    case "channel_history":
      return tx.send(conn, { type: "channel_history", channel: msg["channel"] as string, messages: [] })
    case "list_channels":
      return tx.send(conn, { type: "channels", channels: [] })
    case "ollama_report":
      return tx.send(conn, { type: "ollama_report_ack", status: "registered" })
    case "resource_report":
      return
    case "task_accepted": {
      touch(tx, taskId)
      const a = tx.agents.get(agentId)
      if (a !== undefined && a.current_task === taskId && a.fsm === "assigned") {
        tx.putAgent({ ...a, fsm: "working", accept_deadline: undefined })
        const t = tx.tasks.get(taskId)
        if (t !== undefined && t.state === "assigned") tx.update(t, { state: "accepted" }, "accepted", `by ${agentId}`)
      } else if (task !== undefined) {
        tx.update(tx.tasks.get(taskId)!, {}, "accept_ignored", `${agentId} is ${a?.fsm ?? "?"} with ${a?.current_task ?? "no task"}`)
      }
      return tx.send(conn, { type: "task_ack", task_id: taskId, status: "accepted" })
    }
    case "task_progress": {
      touch(tx, taskId)
      const t = tx.tasks.get(taskId)
      if (t === undefined || !isHeld(t.state)) return
      const progress = int(msg, "progress")
      const message = str(msg, "message")
      const detail = [progress === undefined ? undefined : `${progress}%`, message].filter((s) => s !== undefined).join(" ")
      tx.update(t, { state: "working", progress: progress ?? t.progress, progress_message: message ?? t.progress_message }, "progress",
        detail === "" ? undefined : detail)
      return
    }
    case "wake_result": {
      const status = msg["status"] as string
      if (status === "success") touch(tx, taskId)
      const t = tx.tasks.get(taskId)
      if (t === undefined || !isHeld(t.state)) return
      const error = str(msg, "error")
      const outcome = `attempt ${int(msg, "attempt") ?? "?"}: ${status}${error === undefined ? "" : ` (${error})`}`
      tx.update(t, status === "success" && t.state !== "working" ? { state: "working" } : {}, "wake", outcome)
      return
    }
    case "task_complete":
      return complete(tx, conn, agentId, taskId, task, msg)
    case "task_failed":
      return fail(tx, conn, agentId, taskId, task, msg)
    case "task_recovering":
      return recovering(tx, conn, agentId, taskId, task)
    case "state_report":
      return stateReport(tx, conn, agentId, taskId, task, msg)
  }
}

/** Why task_queue.ex refuses a report; undefined when the report is for the task's current assignment. */
const refusal = (t: HubTask | undefined, generation: number): "not_found" | "invalid_state" | "stale_generation" | undefined =>
  // Cancelled tasks are deleted by the real hub, dead-lettered ones moved to another table: both unknown here.
  t === undefined || t.state === "cancelled" || t.state === "dead_letter" ? "not_found"
    : !isHeld(t.state) ? "invalid_state"
    : t.generation !== generation ? "stale_generation"
    : undefined

/** Answers a report task_queue.ex refuses (logged on the task, `error` frame to the sidecar); true when refused. */
const refuseReport = (tx: Tx, conn: number, agentId: string, t: HubTask | undefined, msg: JsonObject, type: string, errorPrefix: string): boolean => {
  const generation = int(msg, "generation") ?? 0
  const why = refusal(t, generation)
  if (why === undefined && t !== undefined) return false
  if (t !== undefined) tx.update(t, {}, "report_refused", `${type} (generation ${generation}) from ${agentId}: ${why}`)
  tx.send(conn, { type: "error", error: `${errorPrefix}: ${why}` })
  return true
}

/** socket.ex `task_complete` → task_queue.ex `complete_task`. */
const complete = (tx: Tx, conn: number, agentId: string, taskId: string, t: HubTask | undefined, msg: JsonObject): void => {
  if (refuseReport(tx, conn, agentId, t, msg, "task_complete", "task_complete_failed") || t === undefined) return
  const result = isJsonObject(msg["result"]) ? msg["result"] : {}
  const history = msg["verification_history"]
  tx.update(t, {
    state: "complete",
    result,
    tokens_used: msg["tokens_used"] ?? result["tokens_used"],
    verification_report: msg["verification_report"] ?? undefined,
    verification_history: Array.isArray(history) ? history : [],
    updated_at: tx.now
  }, "complete", `reported by ${agentId}`)
  agentDone(tx, agentId)
  tx.send(conn, { type: "task_ack", task_id: taskId, status: "complete" })
}

/** socket.ex `task_failed` → task_queue.ex `fail_task`: retried (back to the queue, new generation) until
 *  `max_retries` failures, then dead-lettered. */
const fail = (tx: Tx, conn: number, agentId: string, taskId: string, t: HubTask | undefined, msg: JsonObject): void => {
  if (refuseReport(tx, conn, agentId, t, msg, "task_failed", "task_fail_failed") || t === undefined) return
  const error = str(msg, "error") ?? str(msg, "reason") ?? "unknown"
  const retryCount = t.retry_count + 1
  if (retryCount >= t.max_retries) {
    tx.update(t, { state: "dead_letter", last_error: error, retry_count: retryCount, updated_at: tx.now }, "dead_letter",
      `${agentId}: ${error} (failure ${retryCount} of ${t.max_retries})`)
  } else {
    tx.update(t, {
      state: "pending", agent: undefined, assigned_at: undefined, generation: t.generation + 1, last_error: error, retry_count: retryCount,
      updated_at: tx.now
    }, "retried", `${agentId}: ${error} (failure ${retryCount} of ${t.max_retries}; queued again)`)
  }
  agentDone(tx, agentId)
  tx.send(conn, { type: "task_ack", task_id: taskId, status: retryCount >= t.max_retries ? "dead_letter" : "retried" })
}

/** socket.ex `task_recovering` → task_queue.ex `recover_task`: any held task is `continue`, whoever holds it. */
const recovering = (tx: Tx, conn: number, agentId: string, taskId: string, t: HubTask | undefined): void => {
  if (t !== undefined && isHeld(t.state)) {
    tx.update(t, {}, "recovering", `${agentId} resumes it${t.agent === agentId ? "" : ` (held by ${t.agent ?? "?"})`}: task_continue`)
    return tx.send(conn, { type: "task_continue", task_id: taskId, generation: t.generation })
  }
  if (t !== undefined) tx.update(t, {}, "recovering", `${agentId} asked to resume it; it is ${t.state}: task_reassign`)
  tx.send(conn, { type: "task_reassign", task_id: taskId })
}

/** socket.ex `state_report`: continue only for this agent's current assignment, with the same generation. */
const stateReport = (tx: Tx, conn: number, agentId: string, taskId: string, t: HubTask | undefined, msg: JsonObject): void => {
  const generation = int(msg, "generation") ?? 0
  const ok = t !== undefined && isHeld(t.state) && t.agent === agentId && t.generation === generation
  if (ok) touch(tx, taskId)
  const current = tx.tasks.get(taskId)
  if (current !== undefined) {
    tx.update(current, {}, "state_report", `${agentId}: ${str(msg, "status") ?? "unknown"} at generation ${generation} → ${ok ? "continue" : "abort"}`)
  }
  tx.send(conn, { type: "state_report_ack", task_id: taskId, action: ok ? "continue" : "abort" })
}

/**
 * Decisions on the hub's messages (SPEC §3, §5): taking a task (validation, capacity, persist before
 * acknowledge), recovery answers, cancellation, and what a fresh `identified` connection needs.
 */
import { Result } from "effect"
import { activeCount, addTask } from "../QueueOps.ts"
import type { HubMessage } from "../Protocol.ts"
import { isPrintableId, isValidTaskId, type TaskRecord, validateAssignment } from "../Task.ts"
import { resumeFrom } from "../TaskState.ts"
import type { AgentEvent } from "../AgentFiles.ts"
import { finish, forgetTask, keepStale, onAck, onError, sendNext, unstale } from "./Reports.ts"
import { fitText, MAX_DESCRIPTION_CHARS } from "./Fit.ts"
import type { Tx } from "./Tx.ts"

export const onHubMessage = (tx: Tx, message: HubMessage): void => {
  switch (message.type) {
    case "task_assign": return onAssign(tx, message)
    case "task_ack": return onAck(tx, message)
    case "error": return onError(tx, message)
    case "task_continue": return onContinue(tx, message.task_id, message.generation)
    case "task_reassign": return onReassign(tx, message.task_id)
    case "task_cancelled":
      if (!cancel(tx, message.task_id)) tx.log("warning", "task_cancelled for a task not held", { task_id: message.task_id })
      return
    case "identified": return onIdentified(tx)
    case "state_report_ack": return onStateReportAck(tx, message.task_id, message.action)
    case "pong": return
  }
}

const onAssign = (tx: Tx, message: Extract<HubMessage, { type: "task_assign" }>): void => {
  const id = message.task_id
  if (!isValidTaskId(id)) {
    if (!isPrintableId(id)) return tx.log("warning", "task_assign with an unprintable task_id dropped")
    tx.log("warning", "task_assign rejected: invalid task_id", { task_id: id })
    return tx.emit({ _tag: "Send", frame: { type: "task_rejected", task_id: id, reason: "invalid_task" } })
  }
  const held = tx.task(id)
  if (held !== undefined) {
    // Already held: the hub took it back (a drop, its restart) and hands it to us again, or missed our answer.
    // The work goes on where it stands, under the hub's newest generation (saved before we answer).
    adoptGeneration(tx, id, typeof message.generation === "number" ? message.generation : undefined)
    unstale(tx, id)
    if (held.status !== "recovering") tx.emit({ _tag: "TraceBegin", taskId: id, attributes: { generation: tx.task(id)?.generation ?? null } })
    tx.emit({ _tag: "Send", frame: { type: "task_accepted", task_id: id } })
    if (held.status === "recovering") tx.emit({ _tag: "Inspect", taskId: id })
    else tx.log("info", "task handed back by the hub; carrying on where it stands", { task_id: id, status: held.status, generation: tx.task(id)?.generation ?? null })
    sendNext(tx)
    return
  }
  if (!tx.model.accepting) return tx.emit({ _tag: "Send", frame: { type: "task_rejected", task_id: id, reason: "shutting_down" } })
  const valid = validateAssignment(message)
  if (Result.isFailure(valid)) {
    tx.log("warning", "task_assign rejected: invalid task", { task_id: id, reason: valid.failure.reason })
    return tx.emit({ _tag: "Send", frame: { type: "task_rejected", task_id: id, reason: "invalid_task" } })
  }
  if (activeCount(tx.queue) >= tx.config.maxActiveTasks) {
    return tx.emit({ _tag: "Send", frame: { type: "task_rejected", task_id: id, reason: "busy" } })
  }
  if (tx.queue.outbox.length >= tx.config.maxPendingReports) {
    tx.log("warning", "too many reports wait for the hub's answer (max_pending_reports): refusing new tasks until it answers",
      { task_id: id, pending: tx.queue.outbox.length, max_pending_reports: tx.config.maxPendingReports })
    return tx.emit({ _tag: "Send", frame: { type: "task_rejected", task_id: id, reason: "busy" } })
  }
  const task: TaskRecord = {
    task_id: id, description: valid.success.description, metadata: valid.success.metadata,
    ...(valid.success.generation !== undefined ? { generation: valid.success.generation } : {}),
    assignment: valid.success.assignment, status: "accepted", accepted_at: tx.now, updated_at: tx.now,
    timeline: [{ at: tx.now, event: "accepted" }]
  }
  tx.queue = addTask(tx.queue, task)
  tx.setLife(id, { lastSign: tx.now })
  tx.emit({ _tag: "TraceBegin", taskId: id, attributes: { generation: task.generation ?? null, resumed: false } })
  // the interpreter saves this decision before carrying out any command: the hub hears only of a durable task;
  // the log line goes first, so whoever saw the answer finds it in the log even after a kill -9
  tx.log("info", "task accepted", { task_id: id })
  tx.emit({ _tag: "Send", frame: { type: "task_accepted", task_id: id } })
  startFromScratch(tx, id, task.assignment)
}

/** A task that has not been woken: write its file for the agent, then wake it (or let it start itself). */
const startFromScratch = (tx: Tx, id: string, assignment: Readonly<Record<string, unknown>>): void => {
  tx.emit({ _tag: "WriteTaskFile", taskId: id, assignment })
  if (tx.config.wakes) return tx.emit({ _tag: "RunWake", taskId: id })
  tx.advance(id, "self_start", "no wake_command: the agent starts itself")
  tx.emit({ _tag: "Watch", taskId: id, phase: "work" })
}

const adoptGeneration = (tx: Tx, id: string, generation: number | undefined): void => {
  if (generation === undefined || tx.task(id)?.generation === generation) return
  tx.updateTask(id, (t) => ({ ...t, generation }))
  tx.queue = { ...tx.queue, outbox: tx.queue.outbox.map((r) => r.task_id === id ? { ...r, generation } : r) }
}

const onContinue = (tx: Tx, id: string, generation: number | undefined): void => {
  const task = tx.task(id)
  if (task === undefined) return tx.log("warning", "task_continue for a task not held; ignored", { task_id: id })
  adoptGeneration(tx, id, generation)
  // What the agent did while we were down decides where to resume: look before deciding (`Inspected`).
  if (task.status === "recovering") tx.emit({ _tag: "Inspect", taskId: id })
}

/** The files of a recovering task, read after `task_continue`: never wake an agent that has started. */
export const onInspected = (tx: Tx, id: string, started: boolean, result: AgentEvent | undefined): void => {
  const task = tx.task(id)
  if (task === undefined || task.status !== "recovering") return
  if (result !== undefined && result._tag !== "Started" && result._tag !== "Progress") {
    tx.log("info", "recovering task already has a result; reporting it", { task_id: id })
    tx.emit({ _tag: "TraceBegin", taskId: id, attributes: { generation: task.generation ?? null, resumed: true, resumed_at: "report" } })
    finish(tx, id, result._tag === "Succeeded" ? { kind: "complete", result: result.result } : { kind: "failed", reason: result.reason })
    return
  }
  const resume = resumeFrom(task.last_status, started)
  const at = resume === "resume_wake" ? "wake" : resume === "resume_confirm" ? "confirm" : "work"
  tx.advance(id, resume, `task_continue; resuming at ${at}${started ? " (.started found)" : ""}`)
  tx.emit({ _tag: "TraceBegin", taskId: id, attributes: { generation: task.generation ?? null, resumed: true, resumed_at: at } })
  tx.setLife(id, { lastSign: tx.now })
  if (at === "wake") startFromScratch(tx, id, task.assignment)
  else tx.emit({ _tag: "Watch", taskId: id, phase: at })
  // a result still being written (or unusable) gets the watcher's settle logic now that the task is active
  tx.emit({ _tag: "Rescan", taskId: id })
  tx.log("info", "recovering task resumed", { task_id: id, at })
}

/** The hub will not let us resume it. AgentCom answers so when it took the task back at our drop, and then
 *  usually assigns it to us again a moment later (in either order): so, as for an abort, the task is let go only
 *  if no `task_assign` for it came within the grace period. */
const onReassign = (tx: Tx, id: string): void => {
  const task = tx.task(id)
  if (task === undefined) return tx.log("warning", "task_reassign for a task not held; ignored", { task_id: id })
  if (task.status !== "recovering") return tx.log("warning", "task_reassign for an active task; ignored", { task_id: id })
  tx.log("info", "the hub will not let us resume this task; letting it go unless it is assigned to us again", { task_id: id, grace_ms: tx.config.abortGraceMs })
  tx.emit({ _tag: "Later", key: `abort:${id}`, afterMs: tx.config.abortGraceMs, input: { _tag: "AbortDue", taskId: id, generation: task.generation } })
}

/** Stops and forgets a task; the agent is told with `<id>.cancelled`, and its files go after a grace period. */
export const cancel = (tx: Tx, id: string): boolean => {
  const task = tx.task(id)
  if (task === undefined) return false
  forgetTask(tx, id, "now", "cancelled")
  tx.emit({ _tag: "WriteCancelled", taskId: id })
  tx.emit({ _tag: "Later", key: `cleanup:${id}`, afterMs: tx.config.cleanupGraceMs, input: { _tag: "CleanupDue", taskId: id } })
  tx.log("info", "task cancelled", { task_id: id, was: task.status })
  return true
}

/** The hub's `identified`: recovering tasks are announced; every other held task is reconciled (`state_report`:
 *  is it still ours, under this generation?), then what waited goes out. */
const onIdentified = (tx: Tx): void => {
  const reported = new Map(tx.model.reported)
  for (const t of tx.queue.tasks) {
    if (t.status === "recovering") {
      const description = fitText(t.description, MAX_DESCRIPTION_CHARS).text
      tx.emit({ _tag: "Send", frame: { type: "task_recovering", task_id: t.task_id, description, metadata: t.metadata, last_status: t.last_status ?? "accepted" } })
      continue
    }
    reported.set(t.task_id, t.generation)
    tx.emit({ _tag: "Send", frame: { type: "state_report", task_id: t.task_id, status: t.status, ...(t.generation !== undefined ? { generation: t.generation } : {}) } })
  }
  tx.set({ reported })
  // a hub that does not answer state_report (older ones) must not hold the reports up for long
  if (reported.size > 0) tx.emit({ _tag: "Later", key: "reconcile", afterMs: tx.config.reconcileWaitMs, input: { _tag: "ReconcileDue" } })
  onLink(tx, true)
  sendNext(tx)
}

/** `continue`: still ours; `task_accepted` again, since AgentCom's agent state after a reconnect waits for it (60 s,
 *  then it takes the task back). `abort`: not ours under the generation we reported. The hub usually hands a task
 *  it took back at a drop right back with a new generation, possibly just after this answer: so the task is stopped
 *  only if no newer generation came within a grace period, and a finished result is kept like a stale refusal. */
const onStateReportAck = (tx: Tx, id: string, action: string): void => {
  const task = tx.task(id)
  const reportedGen = tx.model.reported.get(id)
  if (task === undefined || !tx.model.reported.has(id)) return tx.log("debug", "state_report_ack for a task not reported; ignored", { task_id: id, action })
  const reported = new Map(tx.model.reported)
  reported.delete(id)
  tx.set({ reported })
  reconciled(tx, task, reportedGen, action)
  // its report (if any) may go now, or the one behind it
  sendNext(tx)
}

const reconciled = (tx: Tx, task: TaskRecord, reportedGen: number | undefined, action: string): void => {
  const id = task.task_id
  if (task.generation !== reportedGen) return tx.log("info", "state_report_ack answers an older generation; ignored", { task_id: id, action })
  if (action === "continue") return tx.emit({ _tag: "Send", frame: { type: "task_accepted", task_id: id } })
  if (action !== "abort") return tx.log("warning", "state_report_ack with an unknown action; ignored", { task_id: id, action })
  if (task.status === "reporting") {
    // kept, not sent again until the task is handed back; a send of it already on the wire still waits for its
    // own answer (ack, refusal or time-out), so no second report goes out meanwhile
    return keepStale(tx, id, "state_report_ack abort")
  }
  tx.log("warning", "the hub says this task is no longer ours; stopping it unless it is handed back", { task_id: id, grace_ms: tx.config.abortGraceMs })
  tx.emit({ _tag: "Later", key: `abort:${id}`, afterMs: tx.config.abortGraceMs, input: { _tag: "AbortDue", taskId: id, generation: reportedGen } })
}

/** No answer to the state_reports in time (an older hub): the reports waiting on them go. */
export const onReconcileDue = (tx: Tx): void => {
  if (tx.model.reported.size === 0) return
  tx.set({ reported: new Map() })
  sendNext(tx)
}

/** The grace after an abort or a reassign is over: a task still under that generation is stopped as for a cancel
 *  (the agent, possibly still running from before a restart, is told with `<id>.cancelled`). */
export const onAbortDue = (tx: Tx, id: string, generation: number | undefined): void => {
  const task = tx.task(id)
  if (task === undefined || task.generation !== generation || task.status === "reporting") return
  tx.log("warning", "the hub did not hand the task back; letting it go", { task_id: id, was: task.status })
  cancel(tx, id)
}

/** The connection is up (identified) or lost. Lost: the report in flight goes again on the next one, and what
 *  was being reconciled is asked again then. Up: the newest waiting progress of each task goes out; the reports
 *  wait for the hub's `identified` (reconciliation first; idempotent: both may say it). */
export const onLink = (tx: Tx, up: boolean): void => {
  if (!up) return tx.set({ identified: false, inFlight: undefined, reported: new Map() })
  tx.set({ identified: true })
  for (const [id, life] of tx.model.life) {
    if (life.pendingProgress === undefined) continue
    tx.emit({ _tag: "Send", frame: life.pendingProgress })
    tx.setLife(id, { pendingProgress: undefined, lastRelay: tx.now })
  }
}

/**
 * The outbox of terminal reports (SPEC §6.2), decided: a report is persisted before it is sent, sent one at a
 * time, settled by a terminal `task_ack`, dropped when the hub refuses it, re-sent when unanswered, and parked
 * when the hub never answers it, so the reports behind it flow.
 */
import { enqueueReport, removeTask } from "../QueueOps.ts"
import type { HubMessage } from "../Protocol.ts"
import type { Report, TaskRecord } from "../Task.ts"
import type { Ending } from "./Messages.ts"
import type { Tx } from "./Tx.ts"

/** `task_ack` statuses that mean the hub has the terminal report. */
export const TERMINAL_ACKS: ReadonlySet<string> = new Set(["complete", "completed", "failed", "retried", "dead_letter"])

/** Existing hubs refuse a report with an `error` frame that does not name the task: it answers the one in flight,
 *  and only if it is about that kind of report. */
const REFUSALS: Readonly<Record<Report["type"], RegExp>> = {
  task_complete: /^task_complete_failed\b/,
  task_failed: /^task_fail_failed\b/
}

export const buildReport = (task: TaskRecord, ending: Ending): Report => {
  const generation = task.generation !== undefined ? { generation: task.generation } : {}
  return ending.kind === "complete"
    ? { type: "task_complete", task_id: task.task_id, result: ending.result, ...generation }
    : { type: "task_failed", task_id: task.task_id, reason: ending.reason, ...generation }
}

/** The report as it goes on the wire (the outbox's own bookkeeping stays home). */
export const wireReport = (report: Report): Report => {
  const { parked_at: _parked, ...wire } = report
  return wire
}

/** Ends a task: its report goes into the outbox (persisted with this decision) and out when its turn comes.
 *  False, with nothing changed, when the task cannot end now (unknown, already reporting). */
export const finish = (tx: Tx, id: string, ending: Ending): boolean => {
  const task = tx.task(id)
  if (task === undefined) return false
  const detail = ending.kind === "complete" ? "agent reported success" : ending.reason
  if (!tx.advance(id, "ended", detail)) return false
  tx.queue = enqueueReport(tx.queue, buildReport(task, ending))
  tx.emit({ _tag: "Unwatch", taskId: id })
  tx.emit({ _tag: "StopWake", taskId: id, graceful: true })
  tx.forgetLife(id)
  tx.log("info", "task ended; report queued", { task_id: id, outcome: ending.kind, ...(ending.kind === "failed" ? { reason: ending.reason } : {}) })
  sendNext(tx)
  return true
}

/** Puts the next unparked report on the wire, if the hub is listening and nothing is in flight. */
export const sendNext = (tx: Tx): void => {
  if (!tx.model.identified || tx.model.inFlight !== undefined) return
  const report = tx.queue.outbox.find((r) => r.parked_at === undefined)
  if (report === undefined) return
  const seq = tx.model.sends + 1
  const tries = new Map(tx.model.tries).set(report.task_id, (tx.model.tries.get(report.task_id) ?? 0) + 1)
  tx.set({ inFlight: { taskId: report.task_id, type: report.type, seq }, sends: seq, tries })
  tx.emit({ _tag: "SendReport", report: wireReport(report), seq })
}

/** Forgets a task and its report, whatever its state; the next report goes out if this one was in flight.
 *  `stop`: "now" kills a running wake command (cancel, forget); "graceful" lets a finishing attempt report. */
export const forgetTask = (tx: Tx, id: string, stop: "now" | "graceful"): void => {
  const inFlight = tx.model.inFlight?.taskId === id
  tx.queue = removeTask(tx.queue, id)
  tx.forgetLife(id)
  if (tx.model.tries.has(id)) {
    const tries = new Map(tx.model.tries)
    tries.delete(id)
    tx.set({ tries })
  }
  if (inFlight) tx.set({ inFlight: undefined })
  tx.emit({ _tag: "Unwatch", taskId: id })
  tx.emit({ _tag: "StopWake", taskId: id, graceful: stop === "graceful" })
  sendNext(tx)
}

/** The hub has the report (acked) or will never take it (refused): either way it is settled. */
const settle = (tx: Tx, id: string, refusal: string | undefined): void => {
  tx.set({ settled: tx.model.settled + 1 })
  forgetTask(tx, id, "graceful")
  if (refusal === undefined) {
    tx.emit({ _tag: "Cleanup", taskId: id })
    tx.log("info", "report acknowledged by the hub; task done", { task_id: id })
  } else {
    tx.emit({ _tag: "CleanupLater", taskId: id, afterMs: tx.config.cleanupGraceMs })
    tx.log("error", "hub refused the report; dropping it", { task_id: id, hub_said: refusal })
  }
}

export const onAck = (tx: Tx, message: Extract<HubMessage, { type: "task_ack" }>): void => {
  const { status, task_id: id } = message
  if (status === "accepted") return
  const inFlight = tx.model.inFlight?.taskId === id
  const terminal = status === undefined ? inFlight : TERMINAL_ACKS.has(status)
  if (!terminal) return tx.log("debug", "task_ack ignored", { task_id: id, status: status ?? "" })
  if (!tx.queue.outbox.some((r) => r.task_id === id)) {
    return tx.log("warning", "terminal task_ack for a task with no report pending; ignored", { task_id: id, status: status ?? "" })
  }
  settle(tx, id, undefined)
}

/** An `error` frame: the refusal of the report in flight, or just something to log. */
export const onError = (tx: Tx, message: Extract<HubMessage, { type: "error" }>): void => {
  const error = message.error ?? ""
  const inFlight = tx.model.inFlight
  if (inFlight !== undefined && REFUSALS[inFlight.type].test(error)) return settle(tx, inFlight.taskId, error)
  tx.log("warning", "hub sent an error", { error })
}

/** No answer in time: send it again now, or park it once it has had its tries. */
export const onUnanswered = (tx: Tx, seq: number): void => {
  const inFlight = tx.model.inFlight
  if (inFlight === undefined || inFlight.seq !== seq) return
  tx.set({ inFlight: undefined })
  const tries = tx.model.tries.get(inFlight.taskId) ?? 0
  if (tries >= tx.config.maxReportTries) {
    tx.queue = { ...tx.queue, outbox: tx.queue.outbox.map((r) => r.task_id === inFlight.taskId ? { ...r, parked_at: tx.now } : r) }
    tx.log("error", "report parked: the hub never answered it; the reports behind it go on (agent-sidecar task resend to retry)",
      { task_id: inFlight.taskId, tries })
  } else {
    tx.log("warning", "report not answered; sending it again", { task_id: inFlight.taskId, tries })
  }
  sendNext(tx)
}

/** Operator `task resend`: the report moves to the front of the outbox (unparked); it never jumps the one in flight. */
export const resend = (tx: Tx, id: string): boolean => {
  const report = tx.queue.outbox.find((r) => r.task_id === id)
  if (report === undefined) return false
  if (tx.model.inFlight?.taskId !== id) {
    const { parked_at: _parked, ...fresh } = report
    tx.queue = { ...tx.queue, outbox: [fresh, ...tx.queue.outbox.filter((r) => r.task_id !== id)] }
    const tries = new Map(tx.model.tries)
    tries.delete(id)
    tx.set({ tries })
    tx.log("info", "report moved to the front of the outbox by the operator", { task_id: id })
  }
  sendNext(tx)
  return true
}

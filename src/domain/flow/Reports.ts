/**
 * The outbox of terminal reports (SPEC §6.2), decided: a report is persisted before it is sent, sent one at a
 * time, settled by a terminal `task_ack`, dropped when the hub refuses it for good, kept when the hub refuses
 * its generation (it took the task back and usually hands it back), re-sent when unanswered, and parked when
 * the hub never answers it, so the reports behind it flow.
 */
import { enqueueReport, removeTask } from "../QueueOps.ts"
import type { HubMessage } from "../Protocol.ts"
import type { Report } from "../Task.ts"
import { buildReport } from "./Fit.ts"
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

/** The report as it goes on the wire (the outbox's own bookkeeping stays home). */
export const wireReport = (report: Report): Report => {
  const { parked_at: _parked, stale_at: _stale, ...wire } = report
  return wire
}

const waiting = (r: Report) => r.parked_at === undefined && r.stale_at === undefined

const editReport = (tx: Tx, id: string, f: (r: Report) => Report): void => {
  tx.queue = { ...tx.queue, outbox: tx.queue.outbox.map((r) => r.task_id === id ? f(r) : r) }
}

/** Ends a task: its report goes into the outbox (persisted with this decision) and out when its turn comes.
 *  False, with nothing changed, when the task cannot end now (unknown, already reporting). */
export const finish = (tx: Tx, id: string, ending: Ending): boolean => {
  const task = tx.task(id)
  if (task === undefined) return false
  const detail = ending.kind === "complete" ? "agent reported success" : ending.reason.slice(0, 500)
  if (!tx.advance(id, "ended", detail)) return false
  const { report, cut } = buildReport(task, ending)
  tx.queue = enqueueReport(tx.queue, report)
  tx.emit({ _tag: "Unwatch", taskId: id })
  tx.emit({ _tag: "StopWake", taskId: id, graceful: true })
  tx.forgetLife(id)
  if (cut !== undefined) {
    tx.emit({ _tag: "KeepText", taskId: id, label: "reason", text: cut })
    tx.log("warning", "reason over the hub's 2,000 characters: cut for the hub; the whole text is kept in rejected/", { task_id: id, chars: cut.length })
  }
  tx.log("info", "task ended; report queued", { task_id: id, outcome: ending.kind, ...(ending.kind === "failed" ? { reason: ending.reason } : {}) })
  sendNext(tx)
  return true
}

/** Puts the next waiting report on the wire, if the hub is listening and nothing is in flight. */
export const sendNext = (tx: Tx): void => {
  if (!tx.model.identified || tx.model.inFlight !== undefined) return
  // a report whose task is being reconciled (state_report sent, no answer yet) waits: its generation may be about to
  // change, and a report sent under the old one would only be refused
  const report = tx.queue.outbox.find((r) => waiting(r) && !tx.model.reported.has(r.task_id))
  if (report === undefined) return
  const seq = tx.model.sends + 1
  const tries = new Map(tx.model.tries).set(report.task_id, (tx.model.tries.get(report.task_id) ?? 0) + 1)
  tx.set({ inFlight: { taskId: report.task_id, type: report.type, seq, generation: report.generation }, sends: seq, tries })
  tx.emit({ _tag: "SendReport", report: wireReport(report), seq })
}

/** Forgets a task and its report, whatever its state; the next report goes out if this one was in flight.
 *  `stop`: "now" kills a running wake command (cancel, forget); "graceful" lets a finishing attempt report. */
export const forgetTask = (tx: Tx, id: string, stop: "now" | "graceful", outcome: "acknowledged" | "refused" | "cancelled" | "forgotten"): void => {
  const inFlight = tx.model.inFlight?.taskId === id
  tx.queue = removeTask(tx.queue, id)
  tx.forgetLife(id)
  for (const key of ["tries", "reported"] as const) {
    if (!tx.model[key].has(id)) continue
    const map = new Map(tx.model[key])
    map.delete(id)
    tx.set({ [key]: map })
  }
  if (inFlight) tx.set({ inFlight: undefined })
  tx.emit({ _tag: "Unwatch", taskId: id })
  tx.emit({ _tag: "StopWake", taskId: id, graceful: stop === "graceful" })
  tx.emit({ _tag: "TraceEnd", taskId: id, outcome })
  sendNext(tx)
}

/** The hub has the report (acked) or will never take it (refused): either way it is settled. */
const settle = (tx: Tx, id: string, refusal: string | undefined): void => {
  tx.set({ settled: tx.model.settled + 1 })
  forgetTask(tx, id, "graceful", refusal === undefined ? "acknowledged" : "refused")
  if (refusal === undefined) {
    // the ack is lazy (TaskDecider.ts): the files go once the queue without the task is on disk, so what is on disk
    // never names a task whose files are gone
    tx.emit({ _tag: "CleanupOnceSaved", taskId: id })
    tx.log("info", "report acknowledged by the hub; task done", { task_id: id })
  } else {
    tx.emit({ _tag: "Later", key: `cleanup:${id}`, afterMs: tx.config.cleanupGraceMs, input: { _tag: "CleanupDue", taskId: id } })
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

/** An `error` frame: a refusal of the report in flight (of its kind, or AgentCom's `validation_failed` naming its
 *  type), or just something to log. A stale generation is not the end of a finished result (`keepStale`). */
export const onError = (tx: Tx, message: Extract<HubMessage, { type: "error" }>): void => {
  const error = message.error ?? ""
  const inFlight = tx.model.inFlight
  const refused = inFlight !== undefined &&
    (REFUSALS[inFlight.type].test(error) || (error === "validation_failed" && message.message_type === inFlight.type))
  if (!refused) {
    const fields = message.message_type !== undefined ? { message_type: message.message_type, errors: message.errors ?? null } : {}
    return tx.log("warning", "hub sent an error", { error, ...fields })
  }
  if (!/\bstale_generation\b/.test(error)) {
    const why = error === "validation_failed" ? `validation_failed: ${JSON.stringify(message.errors ?? null)}` : error
    return settle(tx, inFlight.taskId, why)
  }
  tx.set({ inFlight: undefined })
  const report = tx.queue.outbox.find((r) => r.task_id === inFlight.taskId)
  if (report !== undefined && report.generation !== inFlight.generation) {
    // the hub handed the task back after this send: the report goes again under the generation adopted since
    tx.log("info", "stale refusal of a report sent before the task was handed back; sending it again", { task_id: inFlight.taskId })
  } else {
    keepStale(tx, inFlight.taskId, error)
  }
  sendNext(tx)
}

/** The hub took the task back while its report waited: the result is work done, so it is kept a while; when the
 *  hub hands the task back (`task_assign`), it is reported at once under the new generation (`unstale`). */
export const keepStale = (tx: Tx, id: string, why: string): void => {
  editReport(tx, id, (r) => ({ ...r, stale_at: tx.now }))
  tx.emit({ _tag: "Later", key: `stale:${id}`, afterMs: tx.config.staleRetainMs, input: { _tag: "StaleExpired", taskId: id } })
  tx.log("warning", "the hub no longer gives this task to us; keeping its result in case it hands it back",
    { task_id: id, hub_said: why, keep_ms: tx.config.staleRetainMs })
}

export const unstale = (tx: Tx, id: string): void => {
  if (tx.queue.outbox.some((r) => r.task_id === id && r.stale_at !== undefined)) editReport(tx, id, ({ stale_at: _s, ...r }) => r)
}

export const onStaleExpired = (tx: Tx, id: string): void => {
  const report = tx.queue.outbox.find((r) => r.task_id === id)
  if (report?.stale_at === undefined) return
  settle(tx, id, `stale_generation; the hub did not hand the task back within ${Math.round(tx.config.staleRetainMs / 1000)} s`)
}

/** No answer in time: send it again now, or park it once it has had its tries. */
export const onUnanswered = (tx: Tx, seq: number): void => {
  const inFlight = tx.model.inFlight
  if (inFlight === undefined || inFlight.seq !== seq) return
  tx.set({ inFlight: undefined })
  const tries = tx.model.tries.get(inFlight.taskId) ?? 0
  if (tries >= tx.config.maxReportTries) {
    editReport(tx, inFlight.taskId, (r) => ({ ...r, parked_at: tx.now }))
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
    const { parked_at: _parked, stale_at: _stale, ...fresh } = report
    tx.queue = { ...tx.queue, outbox: [fresh, ...tx.queue.outbox.filter((r) => r.task_id !== id)] }
    const tries = new Map(tx.model.tries)
    tries.delete(id)
    tx.set({ tries })
    tx.log("info", "report moved to the front of the outbox by the operator", { task_id: id })
  }
  sendNext(tx)
  return true
}

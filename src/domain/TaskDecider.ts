/**
 * The whole life of a task as one pure function: `decide(model, input, now, config)` gives the next model and
 * the commands that carry it out (send a frame, run or stop a phase, write or remove files, log). No I/O, no
 * clock, no Effect services: the interpreter (`services/TaskFlow.ts`) saves the new queue before it carries
 * out any command, so nothing is ever sent that the saved state does not imply.
 *
 * The rules live in `flow/`: hub messages (`HubInputs.ts`), the agent and the phase clocks
 * (`AgentInputs.ts`), the outbox (`Reports.ts`); every status change goes through `TaskState.transition`.
 */
import { onAgentEvent, onKeepAlive, onPhase } from "./flow/AgentInputs.ts"
import { cancel, onAbortDue, onHubMessage, onInspected, onLink, onReconcileDue } from "./flow/HubInputs.ts"
import type { Input } from "./flow/Messages.ts"
import type { DeciderConfig, Model } from "./flow/Model.ts"
import { forgetTask, onStaleExpired, onUnanswered, resend } from "./flow/Reports.ts"
import { type Decision, Tx } from "./flow/Tx.ts"
import { holdsNothing } from "./QueueOps.ts"

export type { Decision } from "./flow/Tx.ts"

/** Inputs whose changes need not be durable before their commands run, because recovery resumes the same way
 *  without them: a wake attempt starting or ending (accepted and waking both resume by waking; the wake that
 *  succeeded *is* saved at once), `.started` seen (recovery looks at the files: an agent that started is never
 *  woken again), and the hub's acks (issue 14: only the accept and the report must be on disk before the next
 *  step). A terminal ack not yet on disk at a crash leaves its report in the outbox: the next start sends it once
 *  more, and the hub answers it as the duplicate it is (acked again, or `task_complete_failed`: dropped). An ack is
 *  lazy only while other work is held, since only then is another save coming soon for it to ride along with; the
 *  ack that leaves the sidecar idle is saved at once, and its task's files go with it. */
const lazy = (input: Input, after: Model): boolean =>
  input._tag === "WakeAttemptStarted" || input._tag === "WakeAttemptEnded" ||
  (input._tag === "Agent" && (input.event._tag === "Started" || input.event._tag === "Progress")) ||
  (input._tag === "Hub" && input.message.type === "task_ack" && !holdsNothing(after.queue))

export const decide = (model: Model, input: Input, now: number, config: DeciderConfig): Decision => {
  const tx = new Tx(model, now, config)
  switch (input._tag) {
    case "Hub":
      onHubMessage(tx, input.message)
      break
    case "Link":
      onLink(tx, input.up)
      break
    case "Agent":
      onAgentEvent(tx, input.event)
      break
    case "WakeAttemptStarted":
    case "WakeAttemptEnded":
    case "WakeSucceeded":
    case "WakeExhausted":
    case "PhaseTimedOut":
    case "TaskFileFailed":
      onPhase(tx, input)
      break
    case "Inspected":
      onInspected(tx, input.taskId, input.started, input.result)
      break
    case "ReportUnanswered":
      onUnanswered(tx, input.seq)
      break
    case "CleanupDue":
      // the id may have been assigned again meanwhile: its new files are not ours to remove
      if (tx.task(input.taskId) === undefined) tx.emit({ _tag: "Cleanup", taskId: input.taskId })
      break
    case "Operator":
      operator(tx, input.op, input.taskId)
      break
    case "Flush":
      tx.flush = true
      break
    case "Boot":
      // clocks do not survive a restart: a kept stale report gets the rest of its time again
      for (const r of tx.queue.outbox) {
        if (r.stale_at === undefined) continue
        const afterMs = Math.max(0, r.stale_at + config.staleRetainMs - now)
        tx.emit({ _tag: "Later", key: `stale:${r.task_id}`, afterMs, input: { _tag: "StaleExpired", taskId: r.task_id } })
      }
      break
    case "KeepAlive":
      onKeepAlive(tx, input.taskId)
      break
    case "AbortDue":
      onAbortDue(tx, input.taskId, input.generation)
      break
    case "ReconcileDue":
      onReconcileDue(tx)
      break
    case "StaleExpired":
      onStaleExpired(tx, input.taskId)
      break
    case "StopAccepting":
      tx.set({ accepting: false })
      break
    case "SaveFailed":
      saveFailed(tx, input)
      break
  }
  // A decision that changes nothing of the queue has nothing of its own to make durable: it does not force out
  // the lazy changes before it (a wake that ends after the agent has already started, say).
  tx.durable = !lazy(input, tx.model)
  return tx.done()
}

const operator = (tx: Tx, op: "cancel" | "forget" | "resend", id: string): void => {
  switch (op) {
    case "cancel":
      return tx.reply(cancel(tx, id))
    case "resend":
      return tx.reply(resend(tx, id))
    case "forget": {
      if (tx.task(id) === undefined) return tx.reply(false)
      forgetTask(tx, id, "now", "forgotten")
      tx.emit({ _tag: "Later", key: `cleanup:${id}`, afterMs: tx.config.cleanupGraceMs, input: { _tag: "CleanupDue", taskId: id } })
      tx.log("info", "task forgotten by the operator", { task_id: id })
      return tx.reply(true)
    }
  }
}

/** The decision for an input could not be saved, so none of it happened (the model is the one before it).
 *  A task offered now is refused (the hub offers it again); everything else is decided again later, on the
 *  save-retry schedule, so a full disk delays a result but never strands it. */
const saveFailed = (tx: Tx, failed: Extract<Input, { _tag: "SaveFailed" }>): void => {
  const input = failed.input
  // a new task is refused (the hub offers it again); a held one's new generation is saved later, like the rest
  if (input._tag === "Hub" && input.message.type === "task_assign" && tx.task(input.message.task_id) === undefined) {
    tx.log("warning", "cannot persist the task; rejecting it", { task_id: input.message.task_id, error: failed.error })
    return tx.emit({ _tag: "Send", frame: { type: "task_rejected", task_id: input.message.task_id, reason: "busy" } })
  }
  // a runner waiting on this input carries on; its phase end is decided again when it comes
  if (input._tag === "WakeAttemptStarted" || input._tag === "WakeAttemptEnded") tx.reply(true)
  if (input._tag === "Operator") tx.reply(false)
  if (failed.retrying) return tx.log("debug", "still cannot save the queue", { error: failed.error })
  // the fault itself is logged once per episode (Health); here only what is being kept for later
  tx.log("debug", "cannot save the queue; will decide this again", { input: input._tag, error: failed.error })
  if (input._tag !== "Operator") tx.emit({ _tag: "Retry", input })
}

/**
 * Decisions on what the agent and the clock say (SPEC §4, §5): its files (`.started`, `.progress`, the
 * result), and the end of each phase the task runner watches (wake attempts, confirmation, task and idle
 * timeouts).
 */
import type { AgentEvent } from "../AgentFiles.ts"
import type { TaskStatus } from "../Task.ts"
import { failureText, type Input, type SidecarFailure } from "./Messages.ts"
import type { ProgressFrame } from "./Model.ts"
import { finish } from "./Reports.ts"
import { fitPercent, fitText } from "./Fit.ts"
import type { Tx } from "./Tx.ts"

/** Statuses in which the agent's files count (recovering tasks wait for the hub; reporting ones are done). */
const LIVE: ReadonlySet<TaskStatus> = new Set(["accepted", "waking", "waking_confirmation", "working"])
const WAKING: ReadonlySet<TaskStatus> = new Set(["accepted", "waking"])

const statusOf = (tx: Tx, id: string): TaskStatus | undefined => tx.task(id)?.status


export const onAgentEvent = (tx: Tx, event: AgentEvent): void => {
  const id = event.taskId
  const status = statusOf(tx, id)
  if (status === undefined || !LIVE.has(status)) return
  switch (event._tag) {
    case "Started":
      tx.setLife(id, { lastSign: tx.now })
      if (status !== "working") startWorking(tx, id, "agent wrote .started")
      return
    case "Progress":
      return relayProgress(tx, id, {
        type: "task_progress", task_id: id,
        ...(event.percent !== undefined ? { progress: fitPercent(event.percent) } : {}),
        ...(event.message !== undefined ? { message: event.message } : {})
      })
    case "Invalid":
      tx.emit({ _tag: "RejectResult", taskId: id })
      tx.log("warning", "agent result unusable", { task_id: id, reason: event.reason })
      finish(tx, id, { kind: "failed", reason: event.reason })
      return
    case "Succeeded":
      finish(tx, id, { kind: "complete", result: event.result })
      return
    case "Failed":
      finish(tx, id, { kind: "failed", reason: event.reason })
      return
  }
}

/** The agent is up: no more wake attempts (one running may finish: it may be the agent's launcher). */
const startWorking = (tx: Tx, id: string, detail?: string): void => {
  if (!tx.advance(id, "started_seen", detail)) return
  tx.setLife(id, { lastSign: tx.now })
  tx.emit({ _tag: "StopWake", taskId: id, graceful: true })
  tx.emit({ _tag: "Watch", taskId: id, phase: "work" })
}

/** At most one `task_progress` per task per relay interval, and only to a listening hub; the newest one
 *  waiting is kept (never a backlog) and goes out on the next identified connection. */
const relayProgress = (tx: Tx, id: string, frame: ProgressFrame): void => {
  const life = tx.life(id)
  if (tx.model.identified && tx.now - life.lastRelay >= tx.config.progressRelayIntervalMs) {
    tx.emit({ _tag: "Send", frame })
    tx.setLife(id, { lastSign: tx.now, lastRelay: tx.now, pendingProgress: undefined })
  } else {
    tx.setLife(id, { lastSign: tx.now, pendingProgress: frame })
  }
}

const end = (tx: Tx, id: string, failure: SidecarFailure): void => {
  finish(tx, id, { kind: "failed", reason: failureText(failure) })
}

/** The runner's reports on a task's phases. Each is checked against where the task stands now: a phase end
 *  that lost a race (the result came first) changes nothing. */
export const onPhase = (tx: Tx, input: Extract<Input, { _tag: "WakeAttemptStarted" | "WakeAttemptEnded" | "WakeSucceeded" | "WakeExhausted" | "PhaseTimedOut" | "TaskFileFailed" }>): void => {
  const id = input.taskId
  const status = statusOf(tx, id)
  switch (input._tag) {
    case "WakeAttemptStarted": {
      const go = status !== undefined && WAKING.has(status) && tx.advance(id, "wake_started", `attempt ${input.attempt}`)
      return tx.reply(go)
    }
    case "WakeAttemptEnded": {
      const o = input.outcome
      const detail = `attempt ${input.attempt}: ${o.status}${o.exitCode !== undefined ? ` (exit ${o.exitCode})` : ""}${o.error !== undefined ? ` ${o.error}` : ""}`
      if (status !== undefined) tx.note(id, "wake_attempt", detail)
      if (tx.model.identified) {
        tx.emit({ _tag: "Send", frame: { type: "wake_result", task_id: id, status: o.status, attempt: input.attempt, ...(o.error !== undefined ? { error: fitText(o.error).text } : {}) } })
      }
      tx.log(o.status === "success" ? "info" : "warning", "wake attempt",
        { task_id: id, attempt: input.attempt, status: o.status, exit_code: o.exitCode ?? null, stderr_tail: o.stderrTail })
      return tx.reply(true)
    }
    case "WakeSucceeded":
      if (status !== undefined && WAKING.has(status) && tx.advance(id, "wake_ok")) tx.emit({ _tag: "Watch", taskId: id, phase: "confirm" })
      return
    case "WakeExhausted":
      if (status !== undefined && WAKING.has(status)) end(tx, id, { kind: "wake_failed", attempts: input.attempts })
      return
    case "PhaseTimedOut": {
      const expected: TaskStatus = input.failure.kind === "confirmation_timeout" ? "waking_confirmation" : "working"
      if (status !== expected) return
      // the idle clock is the decider's own: a sign of life that raced the timer wins
      if (input.failure.kind === "agent_stalled" && tx.now - tx.life(id).lastSign < tx.config.agentIdleTimeoutMs) return
      return end(tx, id, input.failure)
    }
    case "TaskFileFailed":
      if (status === undefined || !LIVE.has(status)) return
      tx.log("error", "cannot write the task file for the agent; failing the task", { task_id: id, error: input.error })
      return end(tx, id, { kind: "task_file_unwritable" })
  }
}

/** At least one `task_progress` a minute for a working task, or AgentCom's stuck sweep takes it back (10 min; 20 min
 *  when working; 5 min on older hubs). The newest progress waiting goes, else a bare sign of life. */
export const onKeepAlive = (tx: Tx, id: string): void => {
  if (statusOf(tx, id) !== "working" || !tx.model.identified) return
  const life = tx.life(id)
  if (tx.now - life.lastRelay < tx.config.keepAliveMs) return
  tx.emit({ _tag: "Send", frame: life.pendingProgress ?? { type: "task_progress", task_id: id } })
  tx.setLife(id, { lastRelay: tx.now, pendingProgress: undefined })
}

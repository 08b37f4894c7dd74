/**
 * The task decider's vocabulary: every input it takes (hub messages, agent file events, the end of a phase,
 * operator commands, connection changes, a failed save) and every command it gives. Pure data.
 */
import type { AgentEvent } from "../AgentFiles.ts"
import type { HubMessage, Outbound, WakeStatus } from "../Protocol.ts"
import type { Report } from "../Task.ts"

/** Why the sidecar itself ended a task: a closed set, each with its wire text (`failureText`). */
export type SidecarFailure =
  | { readonly kind: "wake_failed"; readonly attempts: number }
  | { readonly kind: "confirmation_timeout" }
  | { readonly kind: "task_timeout" }
  | { readonly kind: "agent_stalled" }
  | { readonly kind: "task_file_unwritable" }

export const failureText = (f: SidecarFailure): string =>
  f.kind === "wake_failed" ? `wake_failed_after_${f.attempts}_attempts` : f.kind

/** How a task ended, before it becomes a report. */
export type Ending =
  | { readonly kind: "complete"; readonly result: unknown }
  | { readonly kind: "failed"; readonly reason: string }

export interface WakeAttemptOutcome {
  readonly status: WakeStatus
  readonly exitCode?: number
  readonly stderrTail: string
  readonly error?: string
}

export type Input =
  | { readonly _tag: "Hub"; readonly message: HubMessage }
  /** The connection became identified (up) or was lost: what the HubClient sees, whatever messages say. */
  | { readonly _tag: "Link"; readonly up: boolean }
  | { readonly _tag: "Agent"; readonly event: AgentEvent }
  | { readonly _tag: "WakeAttemptStarted"; readonly taskId: string; readonly attempt: number }
  | { readonly _tag: "WakeAttemptEnded"; readonly taskId: string; readonly attempt: number; readonly outcome: WakeAttemptOutcome }
  | { readonly _tag: "WakeSucceeded"; readonly taskId: string }
  | { readonly _tag: "WakeExhausted"; readonly taskId: string; readonly attempts: number }
  | { readonly _tag: "PhaseTimedOut"; readonly taskId: string; readonly failure: Exclude<SidecarFailure, { kind: "wake_failed" | "task_file_unwritable" }> }
  | { readonly _tag: "TaskFileFailed"; readonly taskId: string; readonly error: string }
  | { readonly _tag: "Inspected"; readonly taskId: string; readonly started: boolean; readonly result: AgentEvent | undefined }
  | { readonly _tag: "ReportUnanswered"; readonly seq: number }
  | { readonly _tag: "CleanupDue"; readonly taskId: string }
  /** Save what lazily decided changes are pending (see `Decision.durable`); decides nothing. */
  | { readonly _tag: "Flush" }
  /** The sidecar has just started with what `queue.json` held: re-arm the clocks that do not survive a restart. */
  | { readonly _tag: "Boot" }
  /** A minute of a working task: the hub must hear of it even when the agent is silent (its stuck sweep). */
  | { readonly _tag: "KeepAlive"; readonly taskId: string }
  /** The grace after `state_report_ack abort` is over: stop the task unless the hub handed it back meanwhile. */
  | { readonly _tag: "AbortDue"; readonly taskId: string; readonly generation: number | undefined }
  /** The hub did not answer the state_reports of a new connection in time: the reports waiting on them go. */
  | { readonly _tag: "ReconcileDue" }
  /** A report refused as stale was kept this long for a re-assign that did not come. */
  | { readonly _tag: "StaleExpired"; readonly taskId: string }
  | { readonly _tag: "Operator"; readonly op: "cancel" | "forget" | "resend"; readonly taskId: string }
  | { readonly _tag: "StopAccepting" }
  /** The decision for `input` could not be saved: nothing of it happened. `retrying`: a retry already owns it. */
  | { readonly _tag: "SaveFailed"; readonly input: Input; readonly error: string; readonly retrying: boolean }

export type LogLevel = "debug" | "info" | "warning" | "error"

export type Command =
  /** A frame for the hub now; dropped if the connection is not identified (nothing queues across a drop). */
  | { readonly _tag: "Send"; readonly frame: Outbound }
  /** The report in flight: send it and answer `ReportUnanswered` if the hub says nothing in time. */
  | { readonly _tag: "SendReport"; readonly report: Report; readonly seq: number }
  | { readonly _tag: "WriteTaskFile"; readonly taskId: string; readonly assignment: Readonly<Record<string, unknown>> }
  | { readonly _tag: "RunWake"; readonly taskId: string }
  /** `graceful`: an attempt already running may finish (it may be the agent's launcher); no further attempts. */
  | { readonly _tag: "StopWake"; readonly taskId: string; readonly graceful: boolean }
  /** Watch a phase's clock: `confirm` (confirmation timeout), `work` (task and idle timeouts). */
  | { readonly _tag: "Watch"; readonly taskId: string; readonly phase: "confirm" | "work" }
  | { readonly _tag: "Unwatch"; readonly taskId: string }
  | { readonly _tag: "WriteCancelled"; readonly taskId: string }
  | { readonly _tag: "RejectResult"; readonly taskId: string }
  | { readonly _tag: "Cleanup"; readonly taskId: string }
  /** Remove the task's files once the queue without it is on disk: at once after a saved decision, else after the
   *  save that takes this lazy one along (the next durable save, or the flush); not if the task is held again by
   *  then (the files are the new assignment's). */
  | { readonly _tag: "CleanupOnceSaved"; readonly taskId: string }
  /** Decide `input` after `afterMs`; a later `Later` with the same key replaces this one. */
  | { readonly _tag: "Later"; readonly key: string; readonly afterMs: number; readonly input: Input }
  /** Keep a text the hub could not take whole (a reason over its limit) in `rejected/` for a person to read. */
  | { readonly _tag: "KeepText"; readonly taskId: string; readonly label: string; readonly text: string }
  /** Read the task's files now and answer `Inspected` (recovery: what did the agent do while we were down?). */
  | { readonly _tag: "Inspect"; readonly taskId: string }
  /** Emit the task's file events again (a result still being written gets the watcher's settle logic). */
  | { readonly _tag: "Rescan"; readonly taskId: string }
  /** Feed `input` again on the save-retry schedule until its decision is saved. */
  | { readonly _tag: "Retry"; readonly input: Input }
  | { readonly _tag: "Log"; readonly level: LogLevel; readonly message: string; readonly fields: Readonly<Record<string, unknown>> }
  /** A task's trace starts (accepted, or resumed after a restart; again: its generation changed) or ends. */
  | { readonly _tag: "TraceBegin"; readonly taskId: string; readonly attributes: Readonly<Record<string, unknown>> }
  | { readonly _tag: "TraceEnd"; readonly taskId: string; readonly outcome: "acknowledged" | "refused" | "cancelled" | "forgotten" }
  /** The answer to an operator command or to a runner waiting for its input to be decided. */
  | { readonly _tag: "Reply"; readonly ok: boolean }

/**
 * The task state machine (SPEC §5) as a pure transition table. Every status change in the decider goes
 * through `transition`, so an impossible step is refused (the input is ignored), never a corrupt queue.
 */
import { Data, Result } from "effect"
import type { TaskStatus } from "./Task.ts"

export type TaskEvent =
  | "wake_started"   // the wake command is about to run
  | "wake_ok"        // it exited 0: now wait for `.started`
  | "self_start"     // no wake_command: the agent starts itself
  | "started_seen"   // `<id>.started` appeared
  | "ended"          // a result, or a failure the sidecar decided: a report is due
  | "resume_wake"    // task_continue for a recovering task that was never confirmed woken
  | "resume_confirm" // … that was woken and not yet confirmed
  | "resume_work"    // … whose agent had started
  | "restarted"      // the sidecar started again with this task unfinished: wait for the hub's word

export class IllegalTransition extends Data.TaggedError("IllegalTransition")<{ readonly from: TaskStatus; readonly event: TaskEvent }> {
  override get message() {
    return `no transition from ${this.from} on ${this.event}`
  }
}

const table: { readonly [S in TaskStatus]: Partial<Record<TaskEvent, TaskStatus>> } = {
  accepted: { wake_started: "waking", wake_ok: "waking_confirmation", self_start: "working", started_seen: "working", ended: "reporting", restarted: "recovering" },
  waking: { wake_started: "waking", wake_ok: "waking_confirmation", started_seen: "working", ended: "reporting", restarted: "recovering" },
  waking_confirmation: { started_seen: "working", ended: "reporting", restarted: "recovering" },
  working: { started_seen: "working", ended: "reporting", restarted: "recovering" },
  reporting: {},
  recovering: { resume_wake: "accepted", resume_confirm: "waking_confirmation", resume_work: "working", ended: "reporting", restarted: "recovering" }
}

export const transition = (from: TaskStatus, event: TaskEvent): Result.Result<TaskStatus, IllegalTransition> => {
  const to = table[from][event]
  return to === undefined ? Result.fail(new IllegalTransition({ from, event })) : Result.succeed(to)
}

/** Where a `task_continue` resumes a recovering task, given the status it had when the sidecar stopped (a
 *  task that was `reporting` kept its report in the outbox and is never `recovering`). */
export const resumeFrom = (last: TaskStatus | undefined, started: boolean): "resume_wake" | "resume_confirm" | "resume_work" => {
  if (started || last === "working") return "resume_work"
  return last === "waking_confirmation" ? "resume_confirm" : "resume_wake"
}

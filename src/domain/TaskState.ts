/**
 * The task state machine (SPEC §5) as a pure transition table. TaskFlow asks `transition` before every
 * persisted step, so an impossible step is a logged bug, never a corrupt queue.
 */
import { Data, Result } from "effect"
import type { TaskStatus } from "./Task.ts"

export type TaskEvent =
  | "wake_started"   // the wake command is about to run
  | "wake_ok"        // it exited 0: now wait for `.started`
  | "self_start"     // no wake_command: the agent starts itself
  | "started_seen"   // `<id>.started` appeared
  | "result_seen"    // `<id>.json` appeared (or the task ended otherwise): a report is due
  | "failed"         // wake exhausted, confirmation/task/idle timeout
  | "resume"         // task_continue for a recovering task

export class IllegalTransition extends Data.TaggedError("IllegalTransition")<{ readonly from: TaskStatus; readonly event: TaskEvent }> {
  override get message() {
    return `no transition from ${this.from} on ${this.event}`
  }
}

const table: { readonly [S in TaskStatus]: Partial<Record<TaskEvent, TaskStatus>> } = {
  accepted: { wake_started: "waking", self_start: "working", started_seen: "working", result_seen: "reporting", failed: "reporting" },
  waking: { wake_started: "waking", wake_ok: "waking_confirmation", started_seen: "working", result_seen: "reporting", failed: "reporting" },
  waking_confirmation: { started_seen: "working", result_seen: "reporting", failed: "reporting" },
  working: { started_seen: "working", result_seen: "reporting", failed: "reporting" },
  reporting: {},
  recovering: { result_seen: "reporting", failed: "reporting" }
}

export const transition = (from: TaskStatus, event: TaskEvent): Result.Result<TaskStatus, IllegalTransition> => {
  const to = table[from][event]
  return to === undefined ? Result.fail(new IllegalTransition({ from, event })) : Result.succeed(to)
}

/** Where a `task_continue` resumes a recovering task, given the status it had when the sidecar stopped. */
export const resumeFrom = (last: TaskStatus | undefined): "wake" | "confirm" | "work" | "report" => {
  switch (last) {
    case "waking_confirmation": return "confirm"
    case "working": return "work"
    case "reporting": return "report"
    default: return "wake"
  }
}

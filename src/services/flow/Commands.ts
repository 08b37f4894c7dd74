/**
 * Carries out the decider's commands, one at a time and in order. Sends go on the current connection only;
 * the report in flight gets its answer timer; files are written and removed; phases start and stop in the
 * task runner. Failures here are facts for the decider (`TaskFileFailed`), or logged: never fatal.
 */
import { Effect, FiberMap, FiberSet } from "effect"
import type { Command, Input } from "../../domain/flow/Messages.ts"
import type { HubClient } from "../HubClient.ts"
import type { ResultWatcher } from "../ResultWatcher.ts"
import { saveRetrySchedule } from "./Ledger.ts"
import type { TaskSpans } from "./Telemetry.ts"
import type { Submit, TaskRunner } from "./TaskRunner.ts"

export const REPORT_ANSWER_TIMEOUT_MS = 10_000

/** The commands carried out here; `CleanupOnceSaved` is the dispatcher's, which knows what is on disk (Ledger). */
export type Act = Exclude<Command, { readonly _tag: "CleanupOnceSaved" }>

export interface Carried {
  /** The answer for whoever submitted the input (operator, runner). */
  readonly reply?: boolean
  /** A fact learned while carrying out the command, to be decided at once. */
  readonly next?: Input
}

export interface CommandDeps {
  readonly hub: HubClient["Service"]
  readonly files: ResultWatcher["Service"]
  readonly runner: TaskRunner
  readonly submit: Submit
  readonly submitRetry: Submit
  readonly spans: TaskSpans
}

export const makeCommands = Effect.fn("makeCommands")(function*({ hub, files, runner, submit, submitRetry, spans }: CommandDeps) {
  const timers = yield* FiberMap.make<string>()
  const retries = yield* FiberSet.make()
  const none: Carried = {}
  const later = (key: string, ms: number, input: Input) =>
    FiberMap.run(timers, key, Effect.sleep(ms).pipe(Effect.andThen(submit(input)))).pipe(Effect.as(none))
  const logged = <E extends { readonly message: string }>(what: string, effect: Effect.Effect<void, E>) =>
    effect.pipe(Effect.as(none), Effect.catch((e) => Effect.as(Effect.logError(`${what} failed`, { error: e.message }), none)))

  const execute = (command: Act): Effect.Effect<Carried> => {
    switch (command._tag) {
      case "Send":
        return Effect.as(hub.sendNow(command.frame), none)
      case "SendReport":
        return hub.sendNow(command.report).pipe(Effect.tap((sent) => sent ? spans.reportSent(command.report.task_id, command.report.generation) : Effect.void), Effect.flatMap((sent) => sent
          ? later("report", REPORT_ANSWER_TIMEOUT_MS, { _tag: "ReportUnanswered", seq: command.seq })
          // the connection is gone although its drop was not decided yet: the report goes on the next one
          : Effect.succeed<Carried>({ next: { _tag: "Link", up: false } })))
      case "WriteTaskFile":
        return files.writeTask(command.taskId, command.assignment).pipe(
          Effect.as(none),
          Effect.catch((e) => Effect.succeed<Carried>({ next: { _tag: "TaskFileFailed", taskId: command.taskId, error: e.message } }))
        )
      case "RunWake": return Effect.as(runner.runWake(command.taskId), none)
      case "StopWake": return Effect.as(runner.stopWake(command.taskId, command.graceful), none)
      case "Watch": return Effect.as(runner.watch(command.taskId, command.phase), none)
      case "Unwatch": return Effect.as(runner.unwatch(command.taskId), none)
      case "WriteCancelled": return logged("writing the .cancelled file", files.writeCancelled(command.taskId))
      case "RejectResult": return logged("moving the result aside", files.reject(command.taskId))
      case "Cleanup": return logged("removing task files", files.cleanup(command.taskId))
      case "Later": return later(command.key, command.afterMs, command.input)
      case "KeepText": return logged("keeping the whole text in rejected/", files.keepText(command.taskId, command.label, command.text))
      case "Inspect":
        return files.inspect(command.taskId).pipe(Effect.map((seen): Carried => ({
          next: { _tag: "Inspected", taskId: command.taskId, started: seen.started, result: seen.result._tag === "Some" ? seen.result.value : undefined }
        })))
      case "Rescan": return Effect.as(files.rescan(command.taskId), none)
      case "Retry":
        return FiberSet.run(retries, Effect.sleep(500).pipe(
          Effect.andThen(submitRetry(command.input).pipe(Effect.flatMap((o) => o.saved ? Effect.void : Effect.fail("unsaved" as const)))),
          Effect.retry(saveRetrySchedule),
          Effect.andThen(Effect.logInfo("saved after retrying", { input: command.input._tag }))
        )).pipe(Effect.as(none))
      case "Log": {
        const log = { debug: Effect.logDebug, info: Effect.logInfo, warning: Effect.logWarning, error: Effect.logError }[command.level]
        return Effect.as(log(command.message, command.fields), none)
      }
      case "TraceBegin": return Effect.as(spans.begin(command.taskId, command.attributes), none)
      case "TraceEnd": return Effect.as(spans.end(command.taskId, command.outcome), none)
      case "Reply": return Effect.succeed({ reply: command.ok })
    }
  }
  return { execute, stopTimers: Effect.andThen(FiberMap.clear(timers), FiberSet.clear(retries)) }
})

export type Commands = Effect.Success<ReturnType<typeof makeCommands>>

/** Operator commands on a running daemon: `task cancel|forget|resend`, `drain`. */
import { Console, Effect, FileSystem, Option } from "effect"
import { Argument, Command } from "effect/cli"
import { askDaemon } from "../control/client.ts"
import { socketPathFor } from "../control/protocol.ts"
import { lockPathFor } from "../services/StateLock.ts"
import { CliError, configFlag, loadConfig } from "./shared.ts"

const notRunning = (path: string) => new CliError({ message: `no running sidecar answers on ${path} (is it running with this --config?)`, exitCode: 1 })

const taskAction = (op: "cancel" | "forget" | "resend", description: string) =>
  Command.make(op, { config: configFlag, taskId: Argument.String("task-id") }, ({ config, taskId }) => Effect.gen(function*() {
    const settings = yield* loadConfig(config)
    const path = socketPathFor(settings.queuePath)
    const response = yield* askDaemon(path, { op, task_id: taskId })
    if (Option.isNone(response)) return yield* notRunning(path)
    if (!response.value.ok) return yield* new CliError({ message: response.value.error ?? "refused", exitCode: 1 })
    yield* Console.log(`${op}: ${taskId} done`)
  })).pipe(Command.withDescription(description))

export const taskCommand = Command.make("task").pipe(
  Command.withDescription("Operator controls on a running daemon"),
  Command.withSubcommands([
    taskAction("cancel", "Stop a task's flow (kills a running wake command), write <id>.cancelled, forget it; the hub is not told"),
    taskAction("forget", "Drop a task and any pending report, without touching the agent"),
    taskAction("resend", "Send a task's pending terminal report to the hub again now")
  ])
)

export const drainCommand = Command.make("drain", { config: configFlag }, ({ config }) => Effect.gen(function*() {
  const settings = yield* loadConfig(config)
  const fs = yield* FileSystem.FileSystem
  const lock = lockPathFor(settings.queuePath)
  const pid = Number.parseInt((yield* fs.readFileString(lock).pipe(Effect.orElseSucceed(() => ""))).trim(), 10)
  if (!Number.isInteger(pid) || pid <= 0) return yield* new CliError({ message: `no running sidecar holds ${lock}`, exitCode: 1 })
  yield* Effect.try({ try: () => process.kill(pid, "SIGUSR2"), catch: () => new CliError({ message: `cannot signal pid ${pid} (from ${lock}); is it still running?`, exitCode: 1 }) })
  yield* Console.log(`drain requested (SIGUSR2 to pid ${pid}): no new tasks; it exits once active tasks are reported and acknowledged`)
})).pipe(Command.withDescription("Ask a running daemon to stop taking tasks, finish the active ones, then exit 0"))

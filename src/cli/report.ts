/**
 * `agent-sidecar report started|progress|success|failed TASK_ID`: writes the agent's side of the file
 * protocol atomically (temp file + rename), so agents never hand-roll it and the sidecar never sees a
 * partial file.
 */
import { Console, Effect, Option, Path } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { taskFileNames } from "../domain/AgentFiles.ts"
import { isValidTaskId } from "../domain/Task.ts"
import { PlatformLayer } from "../layers/Platform.ts"
import { writeAtomic } from "../platform/atomicWrite.ts"
import { SidecarConfig } from "../services/SidecarConfig.ts"
import { CliError } from "./shared.ts"

const kind = Argument.Literals("kind", ["started", "progress", "success", "failed"]).pipe(Argument.withDescription("What to report"))
const taskId = Argument.String("task-id").pipe(Argument.withDescription("The task's id (TASK_ID in the wake command's environment)"))

export const reportCommand = Command.make("report", {
  kind,
  taskId,
  output: Flag.String("output").pipe(Flag.withDescription("success: the output, as JSON (plain text is sent as a string)"), Flag.optional),
  reason: Flag.String("reason").pipe(Flag.withDescription("failed: why"), Flag.optional),
  message: Flag.String("message").pipe(Flag.withDescription("progress: a short message"), Flag.optional),
  percent: Flag.Int("percent").pipe(Flag.withDescription("progress: 0-100"), Flag.optional),
  resultsDir: Flag.String("results-dir").pipe(Flag.withDescription("The sidecar's results_dir (default: $RESULTS_DIR, or from --config)"), Flag.optional),
  config: Flag.String("config").pipe(Flag.withDescription("Read results_dir from this sidecar config"), Flag.optional)
}, (args) => Effect.gen(function*() {
  if (!isValidTaskId(args.taskId)) return yield* new CliError({ message: `invalid task id ${JSON.stringify(args.taskId)}: use [A-Za-z0-9._-]{1,128}`, exitCode: 2 })
  const path = yield* Path.Path
  const dir = yield* resolveResultsDir(args.resultsDir, args.config)
  const names = taskFileNames(args.taskId)
  const write = (name: string, content: string) => writeAtomic(path.join(dir, name), content, { sync: false })
  switch (args.kind) {
    case "started":
      yield* write(names.startedFile, JSON.stringify({ started_at: new Date().toISOString(), pid: process.ppid }))
      break
    case "progress":
      yield* write(names.progressFile, JSON.stringify({
        ...Option.match(args.percent, { onNone: () => ({}), onSome: (percent) => ({ percent }) }),
        ...Option.match(args.message, { onNone: () => ({}), onSome: (message) => ({ message }) })
      }))
      break
    case "success":
      yield* write(names.resultFile, JSON.stringify({ status: "success", output: Option.match(args.output, { onNone: () => null, onSome: parseOutput }) }))
      break
    case "failed":
      yield* write(names.resultFile, JSON.stringify({ status: "failed", reason: Option.getOrElse(args.reason, () => "unknown") }))
      break
  }
  yield* Console.log(`${args.kind} reported for ${args.taskId} in ${dir}`)
}).pipe(Effect.provide(PlatformLayer))).pipe(
  Command.withDescription("For agents: write started/progress/success/failed files atomically into results_dir")
)

const parseOutput = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const resolveResultsDir = (flag: Option.Option<string>, config: Option.Option<string>) => Effect.gen(function*() {
  const path = yield* Path.Path
  if (Option.isSome(flag)) return path.resolve(flag.value)
  if (Option.isSome(config)) return (yield* SidecarConfig.load(config.value, process.env)).settings.resultsDir
  const fromEnv = process.env["RESULTS_DIR"]
  if (fromEnv !== undefined && fromEnv !== "") return path.resolve(fromEnv)
  return yield* new CliError({ message: "where is results_dir? pass --results-dir DIR or --config PATH (or run from a wake command, which sets RESULTS_DIR)", exitCode: 2 })
})

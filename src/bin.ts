/**
 * The `agent-sidecar` command line. The one place effects are run (NodeRuntime.runMain). Errors come out as
 * one line (`--verbose` adds the full cause); exit codes: 78 bad config, 75 state locked, 2 usage, 1 other;
 * a signal-driven shutdown exits 0.
 */
import * as NodeRuntime from "@effect/platform-node-shared/NodeRuntime"
import { NodeServicesLayer } from "./layers/Platform.ts"
import { Cause, Console, Effect, Exit, Runtime } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import { VERSION } from "./version.ts"
import { exitOnSecondSignal } from "./platform/signals.ts"

/**
 * Each command's module, loaded only when it runs (issue 14): the daemon (`run`) never loads the help of the
 * others, the dev hub and its page, doctor, init or service. rolldown makes each `import()` a chunk of its own.
 * In the order `--help` lists them.
 */
const COMMANDS = [
  ["init", () => import("./cli/init.ts").then((m) => m.initCommand)],
  ["run", () => import("./cli/run.ts").then((m) => m.runCommand)],
  ["status", () => import("./cli/status.ts").then((m) => m.statusCommand)],
  ["report", () => import("./cli/report.ts").then((m) => m.reportCommand)],
  ["hub", () => import("./hub/command.ts").then((m) => m.hub)],
  ["dev", () => import("./cli/dev.ts").then((m) => m.devCommand)],
  ["doctor", () => import("./cli/doctor.ts").then((m) => m.doctorCommand)],
  ["task", () => import("./cli/control.ts").then((m) => m.taskCommand)],
  ["drain", () => import("./cli/control.ts").then((m) => m.drainCommand)],
  ["service", () => import("./cli/service.ts").then((m) => m.serviceCommand)]
] as const

type AnyCommand = Awaited<ReturnType<(typeof COMMANDS)[number][1]>>

/**
 * The commands this command line needs: the one it names (the first argument that is not a flag; `--verbose`,
 * the only flag before it, takes no value), none for a bare `--version`, and all of them otherwise (`--help`,
 * no command, a misspelt one: the help and the suggestions list every command).
 */
export const commandsFor = (args: ReadonlyArray<string>): Promise<Array<AnyCommand>> => {
  const named = args.find((a) => !a.startsWith("-"))
  const one = COMMANDS.find(([name]) => name === named)
  if (one !== undefined) return one[1]().then((command) => [command])
  if (named === undefined && args.length > 0 && args.every((a) => a === "--version" || a === "--verbose")) return Promise.resolve([])
  return Promise.all(COMMANDS.map(([, load]) => load()))
}

export const makeCli = (commands: ReadonlyArray<AnyCommand>) => Command.make("agent-sidecar").pipe(
  Command.withSharedFlags({
    verbose: Flag.Boolean("verbose").pipe(Flag.withDescription("On errors, print the full cause (stack traces) too"), Flag.withDefault(false))
  }),
  Command.withDescription("Bridges an AI coding agent to a task hub: takes tasks over WebSocket, wakes the agent, reports results"),
  Command.withSubcommands(commands)
)

const verbose = process.argv.includes("--verbose")

const exitCodeOf = (error: unknown): number => {
  if (typeof error === "object" && error !== null) {
    const marked = (error as { readonly [Runtime.errorExitCode]?: unknown })[Runtime.errorExitCode]
    if (typeof marked === "number") return marked
    const code = (error as { readonly exitCode?: unknown }).exitCode
    if (typeof code === "number") return code
  }
  return 1
}

const main = (commands: ReadonlyArray<AnyCommand>) => Command.run(makeCli(commands), { version: VERSION }).pipe(
  Effect.tapCause((cause) => {
    if (Cause.hasInterruptsOnly(cause)) return Effect.void
    const error = Cause.squash(cause)
    // the CLI module has already printed usage errors together with the help text
    if (CliError.isCliError(error)) return Effect.void
    const line = error instanceof Error ? error.message : String(error)
    return Console.error(verbose ? Cause.pretty(cause) : `agent-sidecar: ${line.length > 0 ? line : String(error)}`)
  }),
  Effect.provide(NodeServicesLayer)
)

/** Entry point; `bin/agent-sidecar.js` calls it. */
export const runCli = async () => {
  exitOnSecondSignal()
  NodeRuntime.runMain(main(await commandsFor(process.argv.slice(2))), {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
      onExit(exitCodeOf(Cause.squash(exit.cause)))
    }
  })
}

if (import.meta.main) runCli()

/**
 * The `agent-sidecar` command line. The one place effects are run (NodeRuntime.runMain). Errors come out as
 * one line (`--verbose` adds the full cause); exit codes: 78 bad config, 75 state locked, 2 usage, 1 other;
 * a signal-driven shutdown exits 0.
 */
import * as NodeRuntime from "@effect/platform-node-shared/NodeRuntime"
import { NodeServicesLayer } from "./layers/Platform.ts"
import { Cause, Console, Effect, Exit, Runtime } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import { reportCommand } from "./cli/report.ts"
import { runCommand } from "./cli/run.ts"
import { drainCommand, taskCommand } from "./cli/control.ts"
import { serviceCommand } from "./cli/service.ts"
import { devCommand } from "./cli/dev.ts"
import { doctorCommand } from "./cli/doctor.ts"
import { initCommand } from "./cli/init.ts"
import { hub } from "./hub/command.ts"
import { statusCommand } from "./cli/status.ts"
import { VERSION } from "./version.ts"
import { exitOnSecondSignal } from "./platform/signals.ts"

export const cli = Command.make("agent-sidecar").pipe(
  Command.withSharedFlags({
    verbose: Flag.Boolean("verbose").pipe(Flag.withDescription("On errors, print the full cause (stack traces) too"), Flag.withDefault(false))
  }),
  Command.withDescription("Bridges an AI coding agent to a task hub: takes tasks over WebSocket, wakes the agent, reports results"),
  Command.withSubcommands([initCommand, runCommand, statusCommand, reportCommand, hub, devCommand, doctorCommand, taskCommand, drainCommand, serviceCommand])
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

const main = Command.run(cli, { version: VERSION }).pipe(
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
export const runCli = () => {
  exitOnSecondSignal()
  NodeRuntime.runMain(main, {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
      onExit(exitCodeOf(Cause.squash(exit.cause)))
    }
  })
}

if (import.meta.main) runCli()

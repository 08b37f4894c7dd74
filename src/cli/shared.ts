/** Flags and helpers shared by the commands. */
import { Console, Effect, Option, Schema } from "effect"
import { Flag } from "effect/cli"
import { defaultLogFormat, LOG_FORMATS, type LogFormat } from "../layers/Logging.ts"
import { SidecarConfig } from "../services/SidecarConfig.ts"

export const configFlag = Flag.String("config").pipe(
  Flag.withAlias("c"),
  Flag.withDescription("Path to the sidecar's config.json (relative paths in it resolve against its folder)"),
  Flag.withDefault("./config.json")
)

/** `--log-format human|json` for the long-running commands (run, dev, hub); none given: human on a terminal, else JSON. */
export const logFormatFlag = Flag.Literals("log-format", LOG_FORMATS).pipe(
  Flag.withDescription("Logs on stdout: human (short lines) or json (the JSON lines of log_file); default: human on a terminal, else json"),
  Flag.optional,
  Flag.map((chosen): LogFormat => Option.getOrElse(chosen, defaultLogFormat))
)

export const jsonFlag = Flag.Boolean("json").pipe(Flag.withDescription("Print machine-readable JSON"), Flag.withDefault(false))

/** Loads the config (file + SIDECAR_* environment) and prints its warnings to stderr. */
export const loadConfig = (path: string) => Effect.gen(function*() {
  const loaded = yield* SidecarConfig.load(path, process.env)
  for (const warning of loaded.warnings) yield* Console.error(`warning: ${warning}`)
  return loaded.settings
})

/** A failure the CLI reports as one line with a hint, and an exit code. */
export class CliError extends Schema.TaggedError<CliError>()("CliError", {
  message: Schema.String,
  exitCode: Schema.Number
}) {}

/**
 * Logs: readable logfmt lines on stdout, JSON lines in `log_file` (mode 0600), at `log_level`. Every line
 * passes through the secret scrubber, so the token cannot reach a log even if some code logged it.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Effect, Layer, Logger, References } from "effect"
import * as NodePath from "node:path"
import { ensureDirectory } from "../platform/atomicWrite.ts"
import type { Settings } from "../domain/Config.ts"
import { redactText } from "../domain/Redact.ts"

const minimumLevel = { debug: "Debug", info: "Info", warning: "Warn", error: "Error" } as const

export const LoggingLayer = (settings: Pick<Settings, "logLevel" | "logFile" | "secrets">) => {
  const scrub = (line: string) => redactText(line, settings.secrets)
  const stdout = Logger.formatLogFmt.pipe(Logger.map(scrub), Logger.withConsoleLog)
  const file = settings.logFile === undefined
    ? []
    : [ensureDirectory(NodePath.dirname(settings.logFile)).pipe(
      Effect.andThen(Logger.toFile(Logger.formatJson.pipe(Logger.map(scrub)), settings.logFile, { flag: "a", mode: 0o600 }))
    )]
  return Layer.mergeAll(
    Logger.layer([stdout, ...file]),
    Layer.succeed(References.MinimumLogLevel, minimumLevel[settings.logLevel])
  ).pipe(Layer.provide(NodeFileSystem.layer))
}

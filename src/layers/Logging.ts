/**
 * Logs: one shape for every part (daemon, dev hub, CLI): JSON lines with flat keys (`time`, `level`, `msg`, the
 * annotations, the event's own fields; see `logging/format.ts`), so `jq -r .task_id sidecar.log` works.
 *
 * - `log_file` (mode 0600, its folder 0700): each line is appended synchronously when it is logged (O_APPEND,
 *   no batching), so a `kill -9` right after an event still finds its line in the file.
 * - stdout: a short human line on a terminal, else the same JSON as the file; `--log-format` chooses.
 *
 * Every line passes through the secret scrubber, on both sinks, so the token cannot reach a log even if some
 * code logged it. What this does not own: rotation (append-only; logrotate needs `copytruncate`).
 */
import * as NodeFileSystem from "@effect/platform-node-shared/NodeFileSystem"
import { Console, Effect, type FileSystem, Layer, Logger, Redacted, References, type Scope } from "effect"
import * as NFS from "node:fs"
import * as NodePath from "node:path"
import { ensureDirectory } from "../platform/atomicWrite.ts"
import type { Settings } from "../domain/Config.ts"
import { redactText } from "../domain/Redact.ts"
import { renderHuman, renderJson, toRecord } from "./logging/format.ts"

export { type LogRecord, renderHuman, renderJson, toRecord } from "./logging/format.ts"

/** How stdout shows logs: `human` (short lines, for a terminal) or `json` (the file's JSON lines). */
export type LogFormat = "human" | "json"
export const LOG_FORMATS = ["human", "json"] as const

/** Human on a terminal, JSON otherwise (a pipe, a file, journald). */
export const defaultLogFormat = (): LogFormat => process.stdout.isTTY === true ? "human" : "json"

const minimumLevel = { debug: "Debug", info: "Info", warning: "Warn", error: "Error" } as const

/** Without `logLevel`, the minimum level is left as it is (the CLI's `--log-level`, else info). */
export type LoggingSettings = Pick<Settings, "logFile" | "secrets"> & { readonly logLevel?: Settings["logLevel"] | undefined }

/**
 * The scrubber for rendered lines: each secret as written, and as JSON escapes it (a secret with `"` or `\`
 * looks different inside a JSON string).
 */
export const lineScrubber = (secrets: ReadonlyArray<Redacted.Redacted<string>>): (line: string) => string => {
  const all = [...secrets]
  for (const secret of secrets) {
    const escaped = JSON.stringify(Redacted.value(secret)).slice(1, -1)
    if (escaped !== Redacted.value(secret)) all.push(Redacted.make(escaped))
  }
  return all.length === 0 ? (line) => line : (line) => redactText(line, all)
}

/**
 * Opens `path` for appending (O_APPEND, created 0600, folder made 0700) for the scope's life and returns a
 * synchronous writer of lines (UTF-8, each ending in a newline). A failed write (disk full) is reported once on
 * stderr per run of failures and never fails the caller: losing a log line must not stop the daemon.
 */
export const appendLines = (path: string): Effect.Effect<(bytes: Uint8Array) => void, unknown, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    yield* ensureDirectory(NodePath.dirname(path))
    const fd = yield* Effect.acquireRelease(
      Effect.try(() => NFS.openSync(path, "a", 0o600)),
      (fd) => Effect.sync(() => NFS.closeSync(fd))
    )
    let failing = false
    return (bytes: Uint8Array) => {
      try {
        let written = 0
        while (written < bytes.length) written += NFS.writeSync(fd, bytes, written)
        failing = false
      } catch (e) {
        if (!failing) process.stderr.write(`agent-sidecar: cannot write ${path} (${(e as Error).message}); log lines are lost until it works again\n`)
        failing = true
      }
    }
  })

/**
 * Prints a line on the process's stdout. Issue 14: `console.log` costs a listener added and removed, a format
 * pass and a stream write per line (a task logs four); a `write` to fd 1 is one syscall. Only while nothing waits
 * in the stream (so lines keep their order) and the write takes the whole line at once; otherwise, and for a
 * pipe that is full (EAGAIN), the stream takes it, as before.
 */
const printLine = (bytes: Uint8Array): void => {
  const stdout = process.stdout
  if (stdout.writableLength === 0) {
    try {
      const written = NFS.writeSync(1, bytes)
      if (written < bytes.length) streamWrite(stdout, bytes.subarray(written))
      return
    } catch {
      // EAGAIN (a full non-blocking pipe), EPIPE, a closed fd: the stream handles these as it always has
    }
  }
  streamWrite(stdout, bytes)
}

/** As `console.log` writes: a failed write (a reader that went away) must not become an unhandled 'error'. */
const streamWrite = (stream: NodeJS.WriteStream, chunk: string | Uint8Array): void => {
  stream.write(chunk, (error) => {
    if (error !== null && error !== undefined && stream.listenerCount("error") === 0) stream.once("error", () => {})
  })
}

/** The logger: one record per event, written to the file (if any) and printed on stdout in `format`. */
export const makeLogger = (options: {
  readonly format: LogFormat
  readonly scrub: (line: string) => string
  readonly file?: ((bytes: Uint8Array) => void) | undefined
}): Logger.Logger<unknown, void> => {
  const { file, format, scrub } = options
  const encode = (line: string) => Buffer.from(`${line}\n`, "utf8")
  return Logger.make((event) => {
    const record = toRecord(event)
    const json = file !== undefined || format === "json" ? scrub(renderJson(record)) : ""
    // the same JSON line for both sinks is encoded once
    const jsonBytes = json === "" ? undefined : encode(json)
    if (file !== undefined && jsonBytes !== undefined) file(jsonBytes)
    const line = format === "json" ? json : scrub(renderHuman(record, event.date))
    const console = event.fiber.getRef(Console.Console)
    // a Console of its own (a test's, an embedding application's) gets the line as before
    if (console === globalThis.console) printLine(format === "json" && jsonBytes !== undefined ? jsonBytes : encode(line))
    else console.log(line)
  })
}

/** Replaces the default logger; `format` defaults to human on a terminal, JSON otherwise. */
export const LoggingLayer = (settings: LoggingSettings, options: { readonly format?: LogFormat | undefined } = {}) => {
  const scrub = lineScrubber(settings.secrets)
  const format = options.format ?? defaultLogFormat()
  const logger = settings.logFile === undefined
    ? Effect.succeed(makeLogger({ format, scrub }))
    : Effect.map(appendLines(settings.logFile), (file) => makeLogger({ format, scrub, file }))
  const loggers = Logger.layer([logger])
  return (settings.logLevel === undefined
    ? loggers
    : Layer.merge(loggers, Layer.succeed(References.MinimumLogLevel, minimumLevel[settings.logLevel]))).pipe(Layer.provide(NodeFileSystem.layer))
}

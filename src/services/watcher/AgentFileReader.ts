/**
 * Reads one of the agent's files in `results_dir` and turns it into its event (SPEC §4).
 *
 * Speed versus correctness for result files: an atomic writer (temp file + rename) is parsed the moment the
 * file appears, with no fixed stability wait. A file that does not parse yet is retried, and only judged
 * unparseable once it has been unchanged (size and mtime) for `SETTLE_MS`, so a slow writer's half-written
 * file is never misjudged. Symlinks are never followed: a planted `<id>.json -> /etc/passwd` is an invalid
 * result, not a read of `/etc/passwd`.
 */
import { Effect, Option } from "effect"
import { type AgentEvent, classifyFile, judgeResult, parseProgress, verdictEvent } from "../../domain/AgentFiles.ts"
import { lookAt, readTextOrEmpty } from "../../platform/quickFs.ts"

export const SETTLE_MS = 300

export interface AgentFileReader {
  /** A regular file's size and mtime, or none (missing, or a symlink/dir/device: never followed). */
  regularFile(file: string): Effect.Effect<Option.Option<{ readonly size: number; readonly mtime: number }>>
  /** Reads the file `name` of `results_dir` (a base name) and emits what it says; names not the agent's are ignored. */
  handle(name: string): Effect.Effect<void>
  /**
   * `handle` up to its first wait, which it never makes: none when that settled the file (emitted, ignored or gone),
   * else the rest of the check (a result that does not parse yet, watched until it stops changing).
   */
  firstLook(name: string): Effect.Effect<Option.Option<Effect.Effect<void>>>
}

export const makeAgentFileReader = (options: {
  readonly at: (name: string) => string
  readonly maxResultBytes: number
  readonly emit: (event: AgentEvent) => Effect.Effect<void>
}): AgentFileReader => {
  const { at, maxResultBytes, emit } = options

  /** What `lstat` says of a file: its kind, and for a regular file its size and mtime (synchronous: quickFs.ts). */
  const look = (file: string) => Effect.sync(() => lookAt(file))
  const readText = (file: string) => Effect.sync(() => readTextOrEmpty(file))

  const regularFile = (file: string) => Effect.map(look(file), (f) => f.kind === "File" ? Option.some({ size: f.size, mtime: f.mtime }) : Option.none())

  const invalid = (taskId: string, detail: string) => emit({ _tag: "Invalid", taskId, reason: `result_parse_error: ${detail}` })

  /**
   * One pass over a result file, which never waits: one lstat tells missing (a removal's event: nothing to do), not
   * a regular file, too large, or what to read. When the text does not parse yet, answers the rest of the check:
   * wait for the file to settle, then judge it.
   */
  const passOverResult = (taskId: string, file: string): Effect.Effect<Option.Option<Effect.Effect<void>>> => Effect.suspend(() => {
    const before = lookAt(file)
    if (before.kind === "missing") return Effect.succeedNone
    if (before.kind !== "File") return Effect.as(invalid(taskId, `${taskId}.json is not a regular file (${before.kind})`), Option.none())
    if (before.size > maxResultBytes) return Effect.as(invalid(taskId, `${before.size} bytes is over max_result_bytes (${maxResultBytes})`), Option.none())
    const verdict = judgeResult(readTextOrEmpty(file))
    if (verdict.outcome !== "unparseable") return Effect.as(emit(verdictEvent(taskId, verdict)), Option.none())
    // Maybe still being written: judged only once it has stopped changing (size and mtime), else read again.
    return Effect.succeedSome(Effect.sleep(SETTLE_MS).pipe(Effect.andThen(Effect.suspend(() => {
      const after = lookAt(file)
      return after.kind === "File" && after.size === before.size && after.mtime === before.mtime
        ? invalid(taskId, verdict.detail)
        : readResult(taskId, file)
    }))))
  })

  const readResult = (taskId: string, file: string): Effect.Effect<void> =>
    Effect.flatMap(passOverResult(taskId, file), Option.getOrElse(() => Effect.void))

  const handle = (name: string): Effect.Effect<void> => {
    const file = classifyFile(name)
    if (file === undefined) return Effect.void
    const full = at(name)
    switch (file.kind) {
      case "started":
        return Effect.flatMap(regularFile(full), (f) => Option.isSome(f) ? emit({ _tag: "Started", taskId: file.taskId }) : Effect.void)
      case "progress":
        return Effect.gen(function*() {
          if (Option.isNone(yield* regularFile(full))) return
          const text = yield* readText(full)
          yield* emit({ _tag: "Progress", taskId: file.taskId, ...parseProgress(text.slice(0, 65536)) })
        })
      case "result":
        return readResult(file.taskId, full)
    }
  }

  const firstLook = (name: string): Effect.Effect<Option.Option<Effect.Effect<void>>> => {
    const file = classifyFile(name)
    return file?.kind === "result" ? passOverResult(file.taskId, at(name)) : Effect.as(handle(name), Option.none())
  }

  return { regularFile, handle, firstLook }
}

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
   * `handle`'s first look, which never waits: true when that settled it (the file emitted, ignored or gone), false
   * when a result that does not parse yet must be watched until it stops changing (then run `handle`).
   */
  firstLook(name: string): Effect.Effect<boolean>
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

  /**
   * One pass over a result file: one lstat tells missing (a removal's event: nothing to do), not a regular file, too
   * large, or what to read. Answers what it saw and, when the text does not parse yet, the parser's complaint.
   */
  const passOverResult = (taskId: string, file: string) => Effect.gen(function*() {
    const invalid = (detail: string) => emit({ _tag: "Invalid", taskId, reason: `result_parse_error: ${detail}` })
    const before = lookAt(file)
    if (before.kind === "missing") return undefined
    if (before.kind !== "File") return yield* Effect.as(invalid(`${taskId}.json is not a regular file (${before.kind})`), undefined)
    if (before.size > maxResultBytes) return yield* Effect.as(invalid(`${before.size} bytes is over max_result_bytes (${maxResultBytes})`), undefined)
    const verdict = judgeResult(readTextOrEmpty(file))
    if (verdict.outcome !== "unparseable") return yield* Effect.as(emit(verdictEvent(taskId, verdict)), undefined)
    return { before, detail: verdict.detail, invalid }
  })

  const readResult = (taskId: string, file: string): Effect.Effect<void> => Effect.gen(function*() {
    while (true) {
      const pending = yield* passOverResult(taskId, file)
      if (pending === undefined) return
      // Maybe still being written: judge only once it has stopped changing.
      yield* Effect.sleep(SETTLE_MS)
      const after = yield* look(file)
      const { before } = pending
      if (after.kind === "File" && after.size === before.size && after.mtime === before.mtime) return yield* pending.invalid(pending.detail)
    }
  })

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

  const firstLook = (name: string): Effect.Effect<boolean> => {
    const file = classifyFile(name)
    if (file?.kind !== "result") return Effect.as(handle(name), true)
    return Effect.map(passOverResult(file.taskId, at(name)), (pending) => pending === undefined)
  }

  return { regularFile, handle, firstLook }
}

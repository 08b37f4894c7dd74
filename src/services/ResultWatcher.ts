/**
 * Owns the agent file exchange in `results_dir` (SPEC §4): watches it (chokidar) and turns `<id>.started`,
 * `<id>.json` and `<id>.progress` into typed events, and writes the sidecar's side of the exchange
 * (`<id>.task.json`, `<id>.cancelled`, `rejected/`, cleanup after the hub's ack).
 *
 * Speed versus correctness for result files: an atomic writer (temp file + rename) is parsed the moment the
 * file appears, with no fixed stability wait. A file that does not parse yet is retried, and only judged
 * unparseable once it has been unchanged (size and mtime) for `SETTLE_MS`, so a slow writer's half-written
 * file is never misjudged. Symlinks are never followed: a planted `<id>.json -> /etc/passwd` is an invalid
 * result, not a read of `/etc/passwd`.
 *
 * It does not decide what an event means for a task; TaskFlow does.
 */
import { watch } from "chokidar"
import { Clock, Context, Effect, FiberMap, FileSystem, Layer, Option, Path, Queue, Ref, Schema, Stream } from "effect"
import { type AgentEvent, classifyFile, judgeResult, parseProgress, type ResultVerdict, taskFileNames } from "../domain/AgentFiles.ts"
import { ensureDirectory, writeAtomic } from "../platform/atomicWrite.ts"
import { SidecarConfig } from "./SidecarConfig.ts"

export const SETTLE_MS = 300
export type { AgentEvent }

const verdictEvent = (taskId: string, verdict: ResultVerdict): AgentEvent =>
  verdict.outcome === "success" ? { _tag: "Succeeded", taskId, result: verdict.result }
    : verdict.outcome === "failed" ? { _tag: "Failed", taskId, reason: verdict.reason }
    : { _tag: "Invalid", taskId, reason: `result_parse_error: ${verdict.detail}` }

export class ResultWatcherError extends Schema.TaggedError<ResultWatcherError>()("ResultWatcherError", {
  op: Schema.Literals(["watch", "write", "reject", "cleanup"]),
  path: Schema.String,
  cause: Schema.Defect()
}) {
  override get message() {
    return `cannot ${this.op} ${this.path}: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

export interface TaskPaths {
  readonly taskFile: string
  readonly startedFile: string
  readonly resultFile: string
}

export class ResultWatcher extends Context.Service<ResultWatcher, {
  /** Agent events, including for files already present when watching started. One consumer. */
  readonly events: Stream.Stream<AgentEvent>
  /** Looks at a task's files now and emits their events again (recovery; never relies on watcher events). */
  rescan(taskId: string): Effect.Effect<void>
  /** What a task's files say right now: started, and a usable result if there is one (recovery). */
  inspect(taskId: string): Effect.Effect<{ readonly started: boolean; readonly result: Option.Option<AgentEvent> }>
  paths(taskId: string): TaskPaths
  writeTask(taskId: string, task: unknown): Effect.Effect<void, ResultWatcherError>
  writeCancelled(taskId: string): Effect.Effect<void, ResultWatcherError>
  /** Moves an unusable `<id>.json` into `rejected/` for a person to read. */
  reject(taskId: string): Effect.Effect<void, ResultWatcherError>
  /** Keeps a text the hub could not take whole (e.g. a reason over its limit) as `rejected/<id>.<label>.<time>.txt`. */
  keepText(taskId: string, label: string, text: string): Effect.Effect<void, ResultWatcherError>
  /** Removes the task's files (the agent's and the sidecar's, `.cancelled` too) once they are of no more use. */
  cleanup(taskId: string): Effect.Effect<void, ResultWatcherError>
}>()("agent-sidecar/ResultWatcher") {
  /** In memory, with its `AgentFilesMemory` control (see below). */
  static get layerMemory() { return layerMemory }

  static readonly layer = Layer.effect(ResultWatcher, Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const config = yield* SidecarConfig
    const dir = config.resultsDir
    const provide = <A, E>(e: Effect.Effect<A, E, FileSystem.FileSystem | Path.Path>) =>
      e.pipe(Effect.provideService(FileSystem.FileSystem, fs), Effect.provideService(Path.Path, path))
    yield* provide(ensureDirectory(dir)).pipe(Effect.mapError((cause) => new ResultWatcherError({ op: "watch", path: dir, cause })))

    const events = yield* Queue.unbounded<AgentEvent>()
    const emit = (event: AgentEvent) => Queue.offer(events, event).pipe(Effect.asVoid)
    const at = (name: string) => path.join(dir, name)

    /** Regular file's size and mtime, or none (missing, or a symlink/dir/device: never followed). */
    const regularFile = (file: string) => fs.lstat(file).pipe(
      Effect.map((info) => info.type === "File" ? Option.some({ size: Number(info.size), mtime: Option.getOrElse(info.mtime, () => new Date(0)).getTime() }) : Option.none()),
      Effect.orElseSucceed(() => Option.none())
    )

    const readResult = (taskId: string, file: string): Effect.Effect<void> => Effect.gen(function*() {
      const invalid = (detail: string) => emit({ _tag: "Invalid", taskId, reason: `result_parse_error: ${detail}` })
      const kind = yield* fs.lstat(file).pipe(Effect.map((i) => i.type), Effect.orElseSucceed(() => "missing" as const))
      if (kind === "missing") return
      if (kind !== "File") return yield* invalid(`${taskId}.json is not a regular file (${kind})`)
      while (true) {
        const before = yield* regularFile(file)
        if (Option.isNone(before)) return
        if (before.value.size > config.maxResultBytes) return yield* invalid(`${before.value.size} bytes is over max_result_bytes (${config.maxResultBytes})`)
        const text = yield* fs.readFileString(file).pipe(Effect.orElseSucceed(() => ""))
        const verdict = judgeResult(text)
        if (verdict.outcome !== "unparseable") return yield* emit(verdictEvent(taskId, verdict))
        // Maybe still being written: judge only once it has stopped changing.
        yield* Effect.sleep(SETTLE_MS)
        const after = yield* regularFile(file)
        if (Option.isSome(after) && after.value.size === before.value.size && after.value.mtime === before.value.mtime) {
          return yield* invalid(verdict.detail)
        }
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
            const text = yield* fs.readFileString(full).pipe(Effect.orElseSucceed(() => ""))
            yield* emit({ _tag: "Progress", taskId: file.taskId, ...parseProgress(text.slice(0, 65536)) })
          })
        case "result":
          return readResult(file.taskId, full)
      }
    }

    // One fiber per file name; a newer event for the same file restarts its check (a writer still writing).
    const checks = yield* FiberMap.make<string>()
    const names = yield* Queue.unbounded<string | { readonly watchError: string }>()
    yield* Queue.take(names).pipe(
      Effect.flatMap((name) => typeof name === "string"
        ? FiberMap.run(checks, name, handle(name))
        : Effect.logError("results_dir watcher error; watching goes on", { error: name.watchError })),
      Effect.forever,
      Effect.forkScoped
    )

    yield* Effect.acquireRelease(
      Effect.callback<ReturnType<typeof watch>, ResultWatcherError>((resume) => {
        const watcher = watch(dir, {
          depth: 0,
          ignoreInitial: false, // files already there are reported too
          // symlinks are reported as themselves (never followed), so a planted one becomes an invalid result
          followSymlinks: false,
          ignored: (p, stats) => p !== dir && ((stats?.isDirectory() ?? false) || classifyFile(path.basename(p)) === undefined)
        })
        const offer = (p: string) => { Queue.offerUnsafe(names, path.basename(p)) }
        watcher.on("add", offer)
        watcher.on("change", offer)
        // chokidar keeps watching after most errors: log them, never end the stream over one
        watcher.on("error", (err) => { Queue.offerUnsafe(names, { watchError: err instanceof Error ? err.message : String(err) }) })
        watcher.once("ready", () => resume(Effect.succeed(watcher)))
      }),
      (watcher) => Effect.promise(() => watcher.close())
    )

    /** `rejected/`, made if missing (never written through a symlink); answers a time stamp for a file name. */
    const rejectedFolder = (fail: (cause: unknown) => ResultWatcherError) => Effect.gen(function*() {
      const rejected = at("rejected")
      const kind = yield* fs.lstat(rejected).pipe(Effect.map((i) => i.type), Effect.orElseSucceed(() => "missing" as const))
      if (kind === "missing") yield* provide(ensureDirectory(rejected)).pipe(Effect.mapError(fail))
      else if (kind !== "Directory") return yield* fail(new Error(`${rejected} is not a directory (${kind}); not writing through it`))
      return new Date(yield* Clock.currentTimeMillis).toISOString().replace(/[:.]/g, "-")
    })

    const writeFile = (op: "write", file: string, content: string) =>
      provide(writeAtomic(file, content, { sync: false })).pipe(Effect.mapError((cause) => new ResultWatcherError({ op, path: file, cause })))

    return ResultWatcher.of({
      events: Stream.fromQueue(events),
      rescan: (taskId) => {
        const n = taskFileNames(taskId)
        return Effect.forEach([n.startedFile, n.progressFile, n.resultFile], (name) => Queue.offer(names, name), { discard: true })
      },
      inspect: (taskId) => Effect.gen(function*() {
        const n = taskFileNames(taskId)
        const started = Option.isSome(yield* regularFile(at(n.startedFile)))
        const file = yield* regularFile(at(n.resultFile))
        if (Option.isNone(file) || file.value.size > config.maxResultBytes) return { started, result: Option.none() }
        const event = verdictEvent(taskId, judgeResult(yield* fs.readFileString(at(n.resultFile)).pipe(Effect.orElseSucceed(() => ""))))
        // an unusable file is left to `rescan`, whose settle logic tells a slow writer from a broken file
        return { started: started || event._tag !== "Invalid", result: event._tag === "Invalid" ? Option.none() : Option.some(event) }
      }),
      paths: (taskId) => {
        const n = taskFileNames(taskId)
        return { taskFile: at(n.taskFile), startedFile: at(n.startedFile), resultFile: at(n.resultFile) }
      },
      writeTask: (taskId, task) => writeFile("write", at(taskFileNames(taskId).taskFile), JSON.stringify(task, null, 2)),
      writeCancelled: (taskId) => Effect.flatMap(Clock.currentTimeMillis, (now) =>
        writeFile("write", at(taskFileNames(taskId).cancelledFile), JSON.stringify({ task_id: taskId, cancelled_at: new Date(now).toISOString() }))),
      reject: Effect.fn("ResultWatcher.reject")(function*(taskId: string) {
        const from = at(taskFileNames(taskId).resultFile)
        const fail = (cause: unknown) => new ResultWatcherError({ op: "reject", path: from, cause })
        const stamp = yield* rejectedFolder(fail)
        yield* fs.rename(from, path.join(at("rejected"), `${taskFileNames(taskId).resultFile}.${stamp}`)).pipe(
          Effect.catchReason("PlatformError", "NotFound", () => Effect.void),
          Effect.mapError(fail)
        )
      }),
      keepText: Effect.fn("ResultWatcher.keepText")(function*(taskId: string, label: string, text: string) {
        const fail = (cause: unknown) => new ResultWatcherError({ op: "reject", path: at("rejected"), cause })
        const stamp = yield* rejectedFolder(fail)
        yield* provide(writeAtomic(path.join(at("rejected"), `${taskId}.${label}.${stamp}.txt`), text, { sync: false })).pipe(Effect.mapError(fail))
      }),
      cleanup: (taskId) => {
        const n = taskFileNames(taskId)
        return Effect.forEach([n.taskFile, n.startedFile, n.resultFile, n.progressFile, n.cancelledFile], (name) =>
          fs.remove(at(name)).pipe(Effect.catchReason("PlatformError", "NotFound", () => Effect.void)), { discard: true }).pipe(
          Effect.mapError((cause) => new ResultWatcherError({ op: "cleanup", path: dir, cause }))
        )
      }
    })
  }).pipe(Effect.annotateLogs({ service: "ResultWatcher" })))
}

/** For tests: drive an in-memory ResultWatcher and see what it was asked to write. */
export class AgentFilesMemory extends Context.Service<AgentFilesMemory, {
  /** Delivers an event as if the agent had written a file. */
  emit(event: AgentEvent): Effect.Effect<void>
  /** Files the sidecar wrote or the test placed, by name (`<id>.task.json`, `<id>.cancelled`, `<id>.json` …). */
  readonly files: Ref.Ref<ReadonlyMap<string, string>>
  /** Task ids whose result was moved to `rejected/`. */
  readonly rejected: Ref.Ref<ReadonlyArray<string>>
  readonly events: Queue.Queue<AgentEvent>
}>()("agent-sidecar/AgentFilesMemory") {
  static readonly layer = Layer.effect(AgentFilesMemory, Effect.gen(function*() {
    const events = yield* Queue.unbounded<AgentEvent>()
    return AgentFilesMemory.of({
      emit: (event) => Queue.offer(events, event).pipe(Effect.asVoid),
      files: yield* Ref.make<ReadonlyMap<string, string>>(new Map()),
      rejected: yield* Ref.make<ReadonlyArray<string>>([]),
      events
    })
  }))
}


/** An in-memory ResultWatcher (plus its `AgentFilesMemory` control) for unit tests: no files, no watcher. */
const layerMemory = Layer.effect(ResultWatcher, Effect.gen(function*() {
  const control = yield* AgentFilesMemory
  const put = (name: string, content: string) => Ref.update(control.files, (m) => new Map([...m, [name, content]]))
  const drop = (names: ReadonlyArray<string>) => Ref.update(control.files, (m) => new Map([...m].filter(([k]) => !names.includes(k))))
  return ResultWatcher.of({
    events: Stream.fromQueue(control.events),
    rescan: (taskId) => Effect.gen(function*() {
      const files = yield* Ref.get(control.files)
      const n = taskFileNames(taskId)
      if (files.has(n.startedFile)) yield* control.emit({ _tag: "Started", taskId })
      const result = files.get(n.resultFile)
      if (result !== undefined) yield* control.emit(verdictEvent(taskId, judgeResult(result)))
    }),
    inspect: (taskId) => Effect.gen(function*() {
      const files = yield* Ref.get(control.files)
      const n = taskFileNames(taskId)
      const text = files.get(n.resultFile)
      const event = text === undefined ? undefined : verdictEvent(taskId, judgeResult(text))
      const result = event === undefined || event._tag === "Invalid" ? Option.none<AgentEvent>() : Option.some(event)
      return { started: files.has(n.startedFile) || Option.isSome(result), result }
    }),
    paths: (taskId) => {
      const n = taskFileNames(taskId)
      return { taskFile: `/memory/${n.taskFile}`, startedFile: `/memory/${n.startedFile}`, resultFile: `/memory/${n.resultFile}` }
    },
    writeTask: (taskId, task) => put(taskFileNames(taskId).taskFile, JSON.stringify(task)),
    writeCancelled: (taskId) => put(taskFileNames(taskId).cancelledFile, "{}"),
    reject: (taskId) => Effect.gen(function*() {
      yield* Ref.update(control.rejected, (r) => [...r, taskId])
      yield* drop([taskFileNames(taskId).resultFile])
    }),
    keepText: (taskId, label, text) => put(`rejected/${taskId}.${label}.txt`, text),
    cleanup: (taskId) => {
      const n = taskFileNames(taskId)
      return drop([n.taskFile, n.startedFile, n.resultFile, n.progressFile, n.cancelledFile])
    }
  })
})).pipe(Layer.provideMerge(AgentFilesMemory.layer))

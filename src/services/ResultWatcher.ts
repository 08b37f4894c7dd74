/**
 * Owns the agent file exchange in `results_dir` (SPEC §4): watches it and turns `<id>.started`, `<id>.json` and
 * `<id>.progress` into typed events (reading and judging: `watcher/AgentFileReader.ts`), and writes the sidecar's
 * side of the exchange (`<id>.task.json`, `<id>.cancelled`, `rejected/`, cleanup after the hub's ack).
 *
 * The folder may be deleted or replaced under the running daemon: `watcher/DirWatch.ts` notices, makes it again
 * and re-arms the watch with a rescan of every file in it; a write into a vanished folder makes it again and
 * retries once. Health shows `results_dir` degraded while it cannot be watched or written (`watcher/DirHealth.ts`).
 *
 * It does not decide what an event means for a task; TaskFlow does.
 */
import { Clock, Context, Effect, FiberMap, FileSystem, Layer, Option, Path, Queue, Ref, Schema, Stream } from "effect"
import { type AgentEvent, classifyFile, judgeResult, taskFileNames, verdictEvent } from "../domain/AgentFiles.ts"
import { ensureDirectory, writeAtomic } from "../platform/atomicWrite.ts"
import { describeOsError, osErrorCode } from "../platform/osError.ts"
import { readTextOrEmpty, unlinkIfThere } from "../platform/quickFs.ts"
import { Health } from "./Health.ts"
import { SidecarConfig } from "./SidecarConfig.ts"
import { makeAgentFileReader, SETTLE_MS } from "./watcher/AgentFileReader.ts"
import { makeDirHealth } from "./watcher/DirHealth.ts"
import { nodeWatch, superviseWatch } from "./watcher/DirWatch.ts"

export { SETTLE_MS }
export type { AgentEvent }

export class ResultWatcherError extends Schema.TaggedError<ResultWatcherError>()("ResultWatcherError", {
  op: Schema.Literals(["watch", "write", "reject", "cleanup"]),
  path: Schema.String,
  cause: Schema.Defect()
}) {
  override get message() {
    return `cannot ${this.op} ${this.path}: ${describeOsError(this.cause)}`
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
    const health = yield* makeDirHealth(yield* Health)
    const dir = config.resultsDir
    const provide = <A, E>(e: Effect.Effect<A, E, FileSystem.FileSystem | Path.Path>) =>
      e.pipe(Effect.provideService(FileSystem.FileSystem, fs), Effect.provideService(Path.Path, path))

    const events = yield* Queue.unbounded<AgentEvent>()
    const at = (name: string) => path.join(dir, name)
    const reader = makeAgentFileReader({ at, maxResultBytes: config.maxResultBytes, emit: (event) => Queue.offer(events, event).pipe(Effect.asVoid) })

    // A file is looked at here at once (no fiber: a task's four or so events each cost one before, issue 14); only a
    // result that does not parse yet gets a fiber of its own, which waits for it to settle, and a newer event for the
    // same file restarts that wait (a writer still writing).
    const checks = yield* FiberMap.make<string>()
    const names = yield* Queue.unbounded<string>()
    const check = (name: string) => Effect.gen(function*() {
      if (yield* FiberMap.has(checks, name)) return yield* FiberMap.run(checks, name, reader.handle(name))
      const rest = yield* reader.firstLook(name)
      if (Option.isSome(rest)) yield* FiberMap.run(checks, name, rest.value)
    })
    yield* Queue.take(names).pipe(Effect.flatMap(check), Effect.forever, Effect.forkScoped)

    // the name alone decides (dot-files, our own `.task.json`, anything not `<id>.started|json|progress` are not the agent's)
    const open = nodeWatch((name) => classifyFile(name) !== undefined)
    const watch = yield* superviseWatch({ dir, open, health, onFile: (name) => { Queue.offerUnsafe(names, name) } }).pipe(
      Effect.provideService(FileSystem.FileSystem, fs),
      Effect.mapError((cause) => new ResultWatcherError({ op: "watch", path: dir, cause }))
    )

    /**
     * A write into a folder that vanished (ENOENT while results_dir is missing) makes the folder again, has the
     * watch re-armed, and is tried once more. Health follows the outcome of every write.
     */
    const inFolder = <A>(effect: Effect.Effect<A, ResultWatcherError>): Effect.Effect<A, ResultWatcherError> => effect.pipe(
      Effect.catch((e) => Effect.gen(function*() {
        const missing = yield* fs.exists(dir).pipe(Effect.map((there) => !there), Effect.orElseSucceed(() => false))
        if (osErrorCode(e.cause) !== "ENOENT" || !missing) return yield* e
        yield* Effect.logWarning(`results_dir ${dir} is gone; making it again to write ${e.path}`)
        yield* provide(ensureDirectory(dir)).pipe(Effect.mapError((cause) => new ResultWatcherError({ op: e.op, path: dir, cause })))
        yield* watch.check("made again for a write", true)
        return yield* effect
      })),
      Effect.tapError((e) => health.write(Option.some(e.message))),
      Effect.tap(() => health.write(Option.none()))
    )

    /** `rejected/`, made if missing (never written through a symlink); answers a time stamp for a file name. */
    const rejectedFolder = (fail: (cause: unknown) => ResultWatcherError) => Effect.gen(function*() {
      const rejected = at("rejected")
      const kind = yield* fs.lstat(rejected).pipe(Effect.map((i) => i.type), Effect.orElseSucceed(() => "missing" as const))
      if (kind === "missing") yield* provide(ensureDirectory(rejected)).pipe(Effect.mapError(fail))
      else if (kind !== "Directory") return yield* fail(new Error(`${rejected} is not a directory (${kind}); not writing through it`))
      return new Date(yield* Clock.currentTimeMillis).toISOString().replace(/[:.]/g, "-")
    })

    const writeFile = (file: string, content: string) => inFolder(
      writeAtomic(file, content, { sync: false }).pipe(Effect.mapError((cause) => new ResultWatcherError({ op: "write", path: file, cause })))
    )

    return ResultWatcher.of({
      events: Stream.fromQueue(events),
      rescan: (taskId) => {
        const n = taskFileNames(taskId)
        return Effect.forEach([n.startedFile, n.progressFile, n.resultFile], (name) => Queue.offer(names, name), { discard: true })
      },
      inspect: (taskId) => Effect.gen(function*() {
        const n = taskFileNames(taskId)
        const started = Option.isSome(yield* reader.regularFile(at(n.startedFile)))
        const file = yield* reader.regularFile(at(n.resultFile))
        if (Option.isNone(file) || file.value.size > config.maxResultBytes) return { started, result: Option.none() }
        const event = verdictEvent(taskId, judgeResult(readTextOrEmpty(at(n.resultFile))))
        // an unusable file is left to `rescan`, whose settle logic tells a slow writer from a broken file
        return { started: started || event._tag !== "Invalid", result: event._tag === "Invalid" ? Option.none() : Option.some(event) }
      }),
      paths: (taskId) => {
        const n = taskFileNames(taskId)
        return { taskFile: at(n.taskFile), startedFile: at(n.startedFile), resultFile: at(n.resultFile) }
      },
      writeTask: (taskId, task) => writeFile(at(taskFileNames(taskId).taskFile), JSON.stringify(task, null, 2)),
      writeCancelled: (taskId) => Effect.flatMap(Clock.currentTimeMillis, (now) =>
        writeFile(at(taskFileNames(taskId).cancelledFile), JSON.stringify({ task_id: taskId, cancelled_at: new Date(now).toISOString() }))),
      reject: Effect.fn("ResultWatcher.reject")(function*(taskId: string) {
        const from = at(taskFileNames(taskId).resultFile)
        const fail = (cause: unknown) => new ResultWatcherError({ op: "reject", path: from, cause })
        yield* inFolder(Effect.gen(function*() {
          const stamp = yield* rejectedFolder(fail)
          yield* fs.rename(from, path.join(at("rejected"), `${taskFileNames(taskId).resultFile}.${stamp}`)).pipe(
            Effect.catchReason("PlatformError", "NotFound", () => Effect.void),
            Effect.mapError(fail)
          )
        }))
      }),
      keepText: Effect.fn("ResultWatcher.keepText")(function*(taskId: string, label: string, text: string) {
        const fail = (cause: unknown) => new ResultWatcherError({ op: "reject", path: at("rejected"), cause })
        yield* inFolder(Effect.gen(function*() {
          const stamp = yield* rejectedFolder(fail)
          yield* writeAtomic(path.join(at("rejected"), `${taskId}.${label}.${stamp}.txt`), text, { sync: false }).pipe(Effect.mapError(fail))
        }))
      }),
      cleanup: (taskId) => {
        const n = taskFileNames(taskId)
        return Effect.forEach([n.taskFile, n.startedFile, n.resultFile, n.progressFile, n.cancelledFile], (name) => unlink(at(name)), { discard: true }).pipe(
          Effect.mapError((cause) => new ResultWatcherError({ op: "cleanup", path: dir, cause }))
        )
      }
    })
  }).pipe(Effect.annotateLogs({ service: "ResultWatcher" })))
}

/**
 * Removes one file, a missing one being fine. Not `FileSystem.remove` (Node's `rm`), which `lstat`s every path
 * twice before unlinking it (8 of the 13 `stat`s a task cost), and synchronous (quickFs.ts).
 */
const unlink = (file: string) => Effect.suspend(() => {
  const error = unlinkIfThere(file)
  return error === undefined ? Effect.void : Effect.fail(error)
})

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

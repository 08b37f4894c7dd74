/**
 * The durable task state, `queue.json` (SPEC §6.1, §6.5). Every save is a durable atomic replace (temp
 * file, fsync, rename, directory fsync; mode 0600), so a crash leaves the old queue or the new one. Loading
 * accepts the earlier sidecar's `{"active", "recovering"}` layout, and moves a corrupt file aside instead of
 * crash-looping on it. It stores whole snapshots; deciding what goes in them is TaskFlow's job.
 */
import { Clock, Context, Effect, FileSystem, Layer, Option, Path, Ref, Schema } from "effect"
import { emptyQueue, fromLegacy, QueueFile } from "../domain/Task.ts"
import { ensureDirectory, openDirectory, writeAtomic } from "../platform/atomicWrite.ts"
import { replaceRecycling } from "../platform/recycledWrite.ts"
import { describeOsError } from "../platform/osError.ts"
import { SidecarConfig } from "./SidecarConfig.ts"
import { makeReportBodies } from "./store/ReportBodies.ts"

export class QueueStoreError extends Schema.TaggedError<QueueStoreError>()("QueueStoreError", {
  op: Schema.Literals(["load", "save"]),
  path: Schema.String,
  cause: Schema.Defect()
}) {
  override get message() {
    return `cannot ${this.op} ${this.path}: ${describeOsError(this.cause)}`
  }
}

const encodeJson = (stored: unknown) => JSON.stringify(stored)
const decodeQueue = Schema.decodeUnknownOption(QueueFile)

export class QueueStore extends Context.Service<QueueStore, {
  /** The stored queue; empty when there is none, when it was corrupt (then moved aside), converted when legacy. */
  readonly load: Effect.Effect<QueueFile, QueueStoreError>
  /** Durably replaces the stored queue. Returns only once the new content would survive a power loss. */
  save(queue: QueueFile): Effect.Effect<void, QueueStoreError>
}>()("agent-sidecar/QueueStore") {
  static readonly layer = Layer.effect(QueueStore, Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const { queuePath } = yield* SidecarConfig
    const provide = Effect.provideService(FileSystem.FileSystem, fs)

    const bodies = makeReportBodies(fs, path, queuePath)
    const moveAside = Effect.fn("QueueStore.moveAside")(function*(why: string) {
      const stamp = new Date(yield* Clock.currentTimeMillis).toISOString().replace(/[:.]/g, "-")
      const aside = `${queuePath}.corrupt-${stamp}`
      yield* fs.rename(queuePath, aside)
      yield* Effect.logError("queue file is corrupt; moved aside, starting with an empty queue", { why, movedTo: aside })
    })

    const load = Effect.gen(function*() {
      const text = yield* fs.readFileString(queuePath).pipe(
        Effect.map(Option.some),
        Effect.catchReason("PlatformError", "NotFound", () => Effect.succeedNone)
      )
      if (Option.isNone(text)) return emptyQueue
      let json: unknown
      try {
        json = JSON.parse(text.value)
      } catch (e) {
        yield* moveAside(`not JSON: ${e instanceof Error ? e.message : String(e)}`)
        return emptyQueue
      }
      json = yield* bodies.internalize(json)
      const current = decodeQueue(json)
      if (Option.isSome(current)) return current.value
      const legacy = fromLegacy(json, yield* Clock.currentTimeMillis)
      if (Option.isSome(legacy)) {
        yield* Effect.logWarning("loaded the earlier sidecar's queue layout; its tasks come back as recovering", { tasks: legacy.value.tasks.length })
        return legacy.value
      }
      yield* moveAside("JSON does not match the queue layout")
      return emptyQueue
    }).pipe(
      Effect.mapError((cause) => new QueueStoreError({ op: "load", path: queuePath, cause })),
      Effect.withSpan("QueueStore.load")
    )

    // The folder is made once here, not on every save (a save is on the accept path); if someone removes it
    // later, the save that finds it missing makes it again.
    yield* ensureDirectory(path.dirname(queuePath)).pipe(provide, Effect.ignore)
    // Kept open for the store's life, so each save fsyncs the folder without opening it again.
    const directory = yield* openDirectory(path.dirname(queuePath)).pipe(Effect.option)
    // A span without Effect.fn's two stack captures per call: a save runs three times a task (issue 14).
    const save = Effect.fnUntraced(
      function*(queue: QueueFile) {
        // large results are written to files of their own first (once), so this write stays small
        const stored = yield* bodies.externalize(queue)
        const text = encodeJson(stored)
        // the folder open: the previous queue's inode is the next temp file (recycledWrite.ts)
        // (node:fs itself: no FileSystem to provide on this path, which runs about twice a task)
        const write = Option.isSome(directory) ? replaceRecycling(queuePath, text, directory.value) : writeAtomic(queuePath, text)
        yield* write.pipe(Effect.catchReason("PlatformError", "NotFound", () =>
          ensureDirectory(path.dirname(queuePath)).pipe(provide, Effect.andThen(writeAtomic(queuePath, text)))))
        yield* bodies.tidy(stored.outbox)
      },
      Effect.mapError((cause) => new QueueStoreError({ op: "save", path: queuePath, cause })),
      Effect.withSpan("QueueStore.save", undefined, { captureStackTrace: false })
    )
    return QueueStore.of({ load, save })
  }))

  /** In-memory store for tests; `QueueStore.Memory` exposes what was saved. */
  static readonly layerMemory = (initial: QueueFile = emptyQueue) => Layer.effect(QueueStore, Effect.gen(function*() {
    const ref = yield* Ref.make(initial)
    return QueueStore.of({ load: Ref.get(ref), save: (q) => Ref.set(ref, q) })
  }))
}

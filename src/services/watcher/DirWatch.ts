/**
 * Keeps a watch on `results_dir` armed for as long as its scope lives. The folder can go away under a running
 * daemon (an agent's cleanup `rm -rf`, a person, a tmp cleaner), and a watch dies with the folder it watched:
 * every later `.started` and result would go unseen, and each task would end in `confirmation_timeout`.
 *
 * So the folder is checked every `POLL_MS` (a `stat`: device, inode and birth time, since a recreated folder
 * often gets the old inode number back), and at once when the watch reports the folder itself deleted or moved
 * (an event named as the folder itself: inotify's delete-self / move-self) or any error. When the folder is gone or
 * replaced: log it, close the old watch, make the folder again if missing (0700), arm a new watch, whose first
 * scan reports every file already there, as at start-up, and log that. While no watch can be armed (the folder
 * cannot be made or watched), `results_dir` is degraded in Health, retried every `RETRY_MS`.
 *
 * The watch itself is a parameter (`OpenWatch`): `nodeWatch` live, a fake in tests, so the polling runs under TestClock.
 */
import { Clock, Effect, Exit, FileSystem, Option, Queue, Ref, Schedule, Scope } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { ensureDirectory } from "../../platform/atomicWrite.ts"
import { describeOsError } from "../../platform/osError.ts"
import type { DirHealth } from "./DirHealth.ts"

export const POLL_MS = 1000
export const RETRY_MS = 2000
export const GONE_GRACE_MS = 200

export interface WatchHandlers {
  /** A file in the folder was added or changed (its base name); also each file found by the first scan. */
  readonly file: (name: string) => void
  /** The folder itself was deleted or moved away: re-arm, whatever its identity says now. */
  readonly lost: (why: string) => void
  /** The watcher reported an error: check the folder now. */
  readonly error: (message: string) => void
}

/** Starts watching `dir` (reporting files already there first) and stops when the scope closes. */
export type OpenWatch = (dir: string, on: WatchHandlers) => Effect.Effect<void, Error, Scope.Scope>

const asError = (e: unknown) => e instanceof Error ? e : new Error(String(e))

/**
 * Node's `fs.watch` on the folder itself (inotify on Linux: one watch, one level, which is all results_dir needs).
 * A file's name alone decides whether it is reported (`wanted`), so no event costs a `stat` here: the reader
 * looks at the file once, and a removal of one of the agent's names is just a look that finds nothing. Files
 * already there are reported after the watch is armed (a file landing in between is reported twice, which the
 * reader's per-name check absorbs). Symlinks are reported by name like any file, never followed.
 */
export const nodeWatch = (wanted: (name: string) => boolean): OpenWatch => (dir, on) => Effect.gen(function*() {
  const self = NPath.basename(dir)
  const watcher = yield* Effect.acquireRelease(
    Effect.try({
      try: () => NFS.watch(dir, { persistent: true }, (_event, name) => {
        if (name === null) return
        if (wanted(name)) on.file(name)
        // inotify's delete-self / move-self of the watched folder arrives named as the folder itself (so does a
        // file of that name inside it: a needless but harmless re-arm)
        if (name === self) on.lost("the watcher saw it deleted or moved")
      }),
      catch: asError
    }),
    (w) => Effect.sync(() => w.close())
  )
  watcher.on("error", (err) => on.error(asError(err).message))
  const names = yield* Effect.tryPromise({ try: () => NFS.promises.readdir(dir), catch: asError })
  for (const name of names) if (wanted(name)) on.file(name)
})

type Signal = { readonly why: string; readonly force: boolean }

export interface DirWatch {
  /** Check the folder now; `force` re-arms even if it looks the same (e.g. we just made it again ourselves). */
  readonly check: (why: string, force?: boolean) => Effect.Effect<void>
}

/**
 * Arms the first watch (failing if it cannot: a results_dir that cannot be watched at start-up is a setup
 * error), then keeps it armed in a background fiber of the surrounding scope.
 */
export const superviseWatch = Effect.fn("ResultWatcher.superviseWatch")(function*(options: {
  readonly dir: string
  readonly open: OpenWatch
  readonly onFile: (name: string) => void
  readonly health: DirHealth
}) {
  const { dir, open, health } = options
  const fs = yield* FileSystem.FileSystem
  const signals = yield* Queue.sliding<Signal>(16)
  const offer = (signal: Signal) => { Queue.offerUnsafe(signals, signal) }
  const errors = yield* Queue.sliding<string>(16)
  const handlers: WatchHandlers = {
    file: options.onFile,
    lost: (why) => offer({ why, force: true }),
    error: (message) => { Queue.offerUnsafe(errors, message); offer({ why: `watcher error: ${message}`, force: false }) }
  }

  /**
   * The folder's identity, or none when it is missing or not a folder. A synchronous `stat` (microseconds, once a
   * second): through libuv's thread pool the poll could queue behind `fsync`s, which a disk busy with someone else's
   * writes can hold for seconds. The birth time in nanoseconds, since a folder made again within the same
   * millisecond often gets the old inode number back.
   */
  const identity = Effect.try({
    try: () => {
      const info = NFS.statSync(dir, { bigint: true, throwIfNoEntry: false })
      return info?.isDirectory() === true ? Option.some(`${info.dev}:${info.ino}:${info.birthtimeNs}`) : Option.none<string>()
    },
    catch: asError
  })

  /** Makes the folder if missing and opens a watch on it in a scope of its own; answers that scope and the identity watched. */
  const arm = Effect.gen(function*() {
    yield* ensureDirectory(dir)
    const id = yield* identity
    if (Option.isNone(id)) return yield* Effect.fail(new Error(`${dir} is not a folder`))
    const scope = yield* Scope.make()
    yield* open(dir, handlers).pipe(Scope.provide(scope), Effect.onError(() => Scope.close(scope, Exit.void)))
    return { scope, id: id.value }
  }).pipe(Effect.provideService(FileSystem.FileSystem, fs))

  const current = yield* Ref.make(yield* arm)
  yield* Effect.addFinalizer(() => Effect.flatMap(Ref.get(current), (c) => Scope.close(c.scope, Exit.void)))

  const rearm = (why: string, options: { readonly gone: boolean }) => Effect.gen(function*() {
    const since = yield* Clock.currentTimeMillis
    yield* Effect.logWarning(`results_dir ${dir} ${why}; re-arming its watch`)
    yield* Scope.close((yield* Ref.get(current)).scope, Exit.void)
    // `rm -rf results && mkdir results`: give whoever removed it a moment to make it again before we do
    if (options.gone) yield* Effect.sleep(GONE_GRACE_MS)
    yield* Queue.clear(signals) // the old watch's last words (often both unlinkDir and a raw rename) are answered by this re-arm
    const armed = yield* arm.pipe(
      Effect.tapError((e) => health.watch(Option.some(`cannot watch ${dir}: ${describeOsError(e)}`))),
      Effect.retry(Schedule.spaced(RETRY_MS))
    )
    yield* Ref.set(current, armed)
    yield* health.watch(Option.none())
    const took = (yield* Clock.currentTimeMillis) - since
    yield* Effect.logInfo(`results_dir re-armed: watching ${dir} again, ${took} ms after noticing; the files in it are scanned again`)
  })

  const tick = Effect.gen(function*() {
    const signal = yield* Queue.take(signals).pipe(Effect.timeoutOption(POLL_MS))
    for (const message of yield* Queue.clear(errors)) yield* Effect.logError("results_dir watcher error", { error: message })
    const now = yield* identity.pipe(Effect.orElseSucceed(() => Option.none<string>()))
    const was = (yield* Ref.get(current)).id
    const because = Option.match(signal, { onNone: () => "", onSome: (s) => ` (${s.why})` })
    if (Option.isNone(now)) return yield* rearm(`is gone${because}`, { gone: true })
    if (now.value !== was) return yield* rearm(`was replaced by another folder${because}`, { gone: false })
    if (Option.isSome(signal) && signal.value.force) return yield* rearm(`was deleted or moved and made again${because}`, { gone: false })
  })
  yield* tick.pipe(Effect.forever, Effect.annotateLogs({ fiber: "results_dir watch" }), Effect.forkScoped)

  return { check: (why, force = false) => Queue.offer(signals, { why, force }).pipe(Effect.asVoid) } satisfies DirWatch
})

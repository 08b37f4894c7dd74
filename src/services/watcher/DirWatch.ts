/**
 * Keeps a watch on `results_dir` armed for as long as its scope lives. The folder can go away under a running
 * daemon (an agent's cleanup `rm -rf`, a person, a tmp cleaner), and a watch dies with the folder it watched:
 * every later `.started` and result would go unseen, and each task would end in `confirmation_timeout`.
 *
 * So the folder is checked every `POLL_MS` (a `stat`: device, inode and birth time, since a recreated folder
 * often gets the old inode number back), and at once when the watch reports the folder itself deleted or moved
 * (chokidar's `unlinkDir`, or a raw `rename` of the watched path) or any error. When the folder is gone or
 * replaced: log it, close the old watch, make the folder again if missing (0700), arm a new watch, whose first
 * scan reports every file already there, as at start-up, and log that. While no watch can be armed (the folder
 * cannot be made or watched), `results_dir` is degraded in Health, retried every `RETRY_MS`.
 *
 * The watch itself is a parameter (`OpenWatch`): chokidar live, a fake in tests, so the polling runs under TestClock.
 */
import { watch } from "chokidar"
import { Clock, Effect, Exit, FileSystem, Option, Queue, Ref, Schedule, Scope } from "effect"
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

/** chokidar, one level deep, symlinks reported as themselves; `ignored(path, isDirectory)` drops what is not the agent's. */
export const chokidarWatch = (ignored: (file: string, isDirectory: boolean) => boolean): OpenWatch => (dir, on) =>
  Effect.acquireRelease(
    Effect.callback<ReturnType<typeof watch>, Error>((resume) => {
      const watcher = watch(dir, {
        depth: 0,
        ignoreInitial: false, // files already there are reported too: the rescan after a re-arm
        followSymlinks: false,
        ignored: (p, stats) => p !== dir && ignored(p, stats?.isDirectory() ?? false)
      })
      watcher.on("add", (p) => on.file(NPath.basename(p)))
      watcher.on("change", (p) => on.file(NPath.basename(p)))
      watcher.on("unlinkDir", (p) => { if (p === dir) on.lost("the watcher saw it removed") })
      // inotify's delete-self / move-self of the watched folder arrives as a raw rename of the folder's own name
      watcher.on("raw", (event, p, details) => {
        const watched = (details as { readonly watchedPath?: unknown } | undefined)?.watchedPath
        if (event === "rename" && watched === dir && p === NPath.basename(dir)) on.lost("the watcher saw it deleted or moved")
      })
      watcher.on("error", (err) => on.error(asError(err).message))
      watcher.once("ready", () => resume(Effect.succeed(watcher)))
    }),
    (watcher) => Effect.promise(() => watcher.close())
  ).pipe(Effect.asVoid)

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

  /** The folder's identity, or none when it is missing or not a folder. */
  const identity = fs.stat(dir).pipe(
    Effect.map((info) => info.type === "Directory"
      ? Option.some(`${info.dev}:${Option.getOrElse(info.ino, () => "?")}:${Option.match(info.birthtime, { onNone: () => "?", onSome: (d) => d.getTime() })}`)
      : Option.none<string>()),
    Effect.catchReason("PlatformError", "NotFound", () => Effect.succeed(Option.none<string>()))
  )

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

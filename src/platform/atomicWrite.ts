/**
 * Durable atomic replace of a file: write a fresh temp file (created exclusively, so a planted symlink is
 * never followed) → fsync it → rename over the target → fsync the directory. A crash at any instant leaves
 * the old content or the new, never a torn file (SPEC §6.1). Renaming replaces a symlink at the target
 * instead of writing through it.
 */
import { Effect, FileSystem, PlatformError } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { unlinkIfThere } from "./quickFs.ts"

export const FILE_MODE = 0o600
export const DIR_MODE = 0o700

// Issue 14: the quick steps (create, write, close, rename) are synchronous calls: a few microseconds each on the page
// cache, where every async call is a round trip through libuv's thread pool (a queue save made six of them, three
// times a task). Only the two fsyncs, which wait for the disk for as long as the disk takes, stay off the event loop.

/** Node's errno error as Effect's PlatformError, with the reasons `@effect/platform-node-shared` gives the same codes. */
export const toPlatformError = (method: string, path: string) => (error: unknown): PlatformError.PlatformError => {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  const tag = code === "ENOENT" ? "NotFound"
    : code === "EACCES" || code === "EPERM" ? "PermissionDenied"
    : code === "EEXIST" ? "AlreadyExists"
    : code === "EISDIR" || code === "ENOTDIR" || code === "ELOOP" ? "BadResource"
    : code === "EBUSY" ? "Busy"
    : "Unknown"
  const syscall = (error as NodeJS.ErrnoException | undefined)?.syscall
  return PlatformError.systemError({
    _tag: tag, module: "FileSystem", method, pathOrDescriptor: path, cause: error,
    ...(error instanceof Error ? { description: error.message } : {}),
    ...(syscall !== undefined ? { syscall } : {})
  })
}

export const attempt = <A>(method: string, path: string, f: () => A) => Effect.try({ try: f, catch: toPlatformError(method, path) })

export const fsync = (fd: number, path: string) => Effect.callback<void, PlatformError.PlatformError>((resume) => {
  NFS.fsync(fd, (error) => resume(error === null ? Effect.void : Effect.fail(toPlatformError("sync", path)(error))))
})

/** Opens a folder for `directoryFd` (fsync without opening it each time); closed with the scope. */
export const openDirectory = (dir: string) =>
  Effect.acquireRelease(attempt("open", dir, () => NFS.openSync(dir, "r")), (fd) => Effect.sync(() => NFS.closeSync(fd)))

// Temp names: this process's pid, a tag of this run (a pid may come back after a reboot, beside a crashed run's
// leftover temp file) and a counter.
const RUN = Math.random().toString(36).slice(2, 8)
let counter = 0

// Untraced: it runs inside the caller's span (QueueStore.save), three times a task.
export const writeAtomic = Effect.fnUntraced(function*(file: string, data: string | Uint8Array, options?: {
  readonly sync?: boolean
  /** An already open descriptor of the file's folder (`openDirectory`), to fsync it without opening it each time. */
  readonly directoryFd?: number
}) {
  const sync = options?.sync ?? true
  const dir = NPath.dirname(file)
  const tmp = NPath.join(dir, `.${NPath.basename(file)}.${process.pid}.${RUN}${(counter++).toString(36)}.tmp`)
  const fd = yield* attempt("open", tmp, () => NFS.openSync(tmp, "wx", FILE_MODE))
  yield* Effect.gen(function*() {
    yield* attempt("writeAll", tmp, () => NFS.writeFileSync(fd, data))
    if (sync) yield* fsync(fd, tmp)
  }).pipe(
    Effect.ensuring(Effect.sync(() => NFS.closeSync(fd))),
    Effect.andThen(attempt("rename", tmp, () => NFS.renameSync(tmp, file))),
    Effect.onError(() => Effect.sync(() => unlinkIfThere(tmp)))
  )
  if (!sync) return
  if (options?.directoryFd !== undefined) return yield* fsync(options.directoryFd, dir)
  yield* Effect.scoped(Effect.flatMap(openDirectory(dir), (d) => fsync(d, dir)))
})

/** Creates a directory (and parents) the sidecar owns: mode 0700. */
export const ensureDirectory = (dir: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeDirectory(dir, { recursive: true, mode: DIR_MODE }))

/**
 * Durable atomic replace of a file: write a fresh temp file (created exclusively, so a planted symlink is
 * never followed) → fsync it → rename over the target → fsync the directory. A crash at any instant leaves
 * the old content or the new, never a torn file (SPEC §6.1). Renaming replaces a symlink at the target
 * instead of writing through it.
 */
import { Effect, FileSystem, Path, Random } from "effect"

export const FILE_MODE = 0o600
export const DIR_MODE = 0o700

export const writeAtomic = Effect.fn("writeAtomic")(function*(file: string, data: string | Uint8Array, options?: {
  readonly sync?: boolean
  /** An already open handle on the file's folder, to fsync without opening it each time (hot paths). */
  readonly directory?: FileSystem.File
}) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const sync = options?.sync ?? true
  const dir = path.dirname(file)
  const suffix = (yield* Random.nextIntBetween(0, 2 ** 31)).toString(36)
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${suffix}.tmp`)
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data
  yield* Effect.scoped(Effect.gen(function*() {
    const handle = yield* fs.open(tmp, { flag: "wx", mode: FILE_MODE })
    yield* handle.writeAll(bytes)
    if (sync) yield* handle.sync
  })).pipe(Effect.onError(() => fs.remove(tmp).pipe(Effect.ignore)))
  yield* fs.rename(tmp, file).pipe(Effect.onError(() => fs.remove(tmp).pipe(Effect.ignore)))
  if (sync) yield* options?.directory !== undefined ? options.directory.sync : Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (d) => d.sync))
})

/** Creates a directory (and parents) the sidecar owns: mode 0700. */
export const ensureDirectory = (dir: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeDirectory(dir, { recursive: true, mode: DIR_MODE }))

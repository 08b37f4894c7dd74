/**
 * Small file operations on the sidecar's own local folders (`results_dir`), as synchronous calls (issue 14). Each is
 * a syscall of a few microseconds on a local file system, where Effect's FileSystem (like every async node:fs call)
 * makes a round trip through libuv's thread pool: futex wake-ups on both sides, an eventfd write and an epoll
 * wake-up, which cost more CPU than the operation. A task made about a dozen of them (an lstat per file event, four
 * for reading the result, five for the clean-up), and as many for the wake server's scratch files and the quick
 * steps of a save. Only what can wait on the disk (fsync) stays asynchronous.
 */
import type { FileSystem } from "effect"
import * as NFS from "node:fs"

export interface Look {
  readonly kind: FileSystem.File.Type | "missing"
  readonly size: number
  readonly mtime: number
}

const kindOf = (stats: NFS.Stats): FileSystem.File.Type =>
  stats.isFile() ? "File"
  : stats.isDirectory() ? "Directory"
  : stats.isSymbolicLink() ? "SymbolicLink"
  : stats.isBlockDevice() ? "BlockDevice"
  : stats.isCharacterDevice() ? "CharacterDevice"
  : stats.isFIFO() ? "FIFO"
  : stats.isSocket() ? "Socket"
  : "Unknown"

/** What `lstat` says of `file` (a symlink is never followed); "missing" when it cannot be looked at. */
export const lookAt = (file: string): Look => {
  try {
    const stats = NFS.lstatSync(file, { throwIfNoEntry: false })
    return stats === undefined ? { kind: "missing", size: 0, mtime: 0 } : { kind: kindOf(stats), size: stats.size, mtime: stats.mtimeMs }
  } catch {
    return { kind: "missing", size: 0, mtime: 0 }
  }
}

/** The file's text, or "" when it cannot be read (gone meanwhile, permissions). */
export const readTextOrEmpty = (file: string): string => {
  try {
    return NFS.readFileSync(file, "utf8")
  } catch {
    return ""
  }
}

/** The file's last `bytes` bytes as text; "" when it is empty or cannot be read. */
export const readTailOrEmpty = (file: string, bytes: number): string => {
  let fd: number | undefined
  try {
    fd = NFS.openSync(file, "r")
    const size = NFS.fstatSync(fd).size
    const length = Math.min(size, bytes)
    if (length === 0) return ""
    const buffer = Buffer.alloc(length)
    const read = NFS.readSync(fd, buffer, 0, length, size - length)
    return buffer.toString("utf8", 0, read)
  } catch {
    return ""
  } finally {
    if (fd !== undefined) NFS.closeSync(fd)
  }
}

/**
 * Removes `file`; a missing file is fine, any other failure is returned (callers tidying up may ignore it). Most
 * calls find nothing (a task's `.progress` and `.cancelled`, the queue's stray `.old`: about four a task), and
 * node:fs reports that by throwing, which captured a stack trace each time (10 µs, 60 % of the call): the
 * error is made without one, its code and message are all that is read.
 */
export const unlinkIfThere = (file: string): NodeJS.ErrnoException | undefined => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    NFS.unlinkSync(file)
    return undefined
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    return e.code === "ENOENT" ? undefined : e
  } finally {
    Error.stackTraceLimit = limit
  }
}

/**
 * Writes `data` over an open file from its start and cuts what is left of a longer old content (`oldSize`, its size
 * before). Not truncating first keeps the file's blocks, written again in place; a truncate freed them and the write
 * took new ones (issue 14: the costliest step of a queue save and of a wake request in profiles).
 */
export const writeOver = (fd: number, data: string, oldSize: number): void => {
  const bytes = Buffer.from(data, "utf8")
  let written = 0
  while (written < bytes.length) written += NFS.writeSync(fd, bytes, written, bytes.length - written, written)
  if (oldSize > bytes.length) NFS.ftruncateSync(fd, bytes.length)
}

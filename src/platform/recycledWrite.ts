/**
 * The same durable atomic replace as `writeAtomic` (new content in a file of its own, fsync, rename over the
 * target, folder fsync: a crash leaves the old content or the new, never a torn file), for a file replaced over and
 * over (queue.json, about twice a task): the temp file is not a new inode each time but the target's previous inode,
 * kept under a spare name.
 *
 * Why (issue 14): on ext4 without a journal (this project's CI machines), every inode allocation scans past the
 * inodes freed in the last minutes, so a file created and deleted per save makes each later create slower, the cost
 * piling up over a run of tasks (perf: `ext4_create` → `find_inode_bit` → `recently_deleted`). Recycling costs a
 * `link` and a second `rename` instead, both plain folder updates.
 *
 * One replace, `<dir>/.<name>.spare` and `<dir>/.<name>.old` beside `<dir>/<name>`:
 * 1. the spare is opened without following a symlink and used only if it is a regular file with no other name
 *    (so it can never be the target itself); it is overwritten, cut to the new length and fsynced (else a fresh
 *    temp file is used);
 * 2. `link(target, .old)`: the current inode gets a second name, so the rename does not free it;
 * 3. `rename(spare, target)`: the atomic step; 4. `rename(.old, spare)`: the old inode is the next spare;
 * 5. fsync the folder. A crash between steps leaves the target whole (old or new) and at worst a stray `.old`,
 * which the next replace removes before step 2.
 */
import { Effect } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { attempt, FILE_MODE, fsync, writeAtomic } from "./atomicWrite.ts"
import { unlinkIfThere, writeOver } from "./quickFs.ts"

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = NFS.constants
// Windows has no O_NOFOLLOW: there the spare is not used (a fresh temp file each time, as writeAtomic does)
const canRecycle = O_NOFOLLOW !== undefined

/** The spare's descriptor and its current size, or undefined when there is no usable spare (then a fresh temp file). */
const openSpare = (spare: string): { readonly fd: number; readonly size: number } | undefined => {
  let fd: number
  try {
    fd = NFS.openSync(spare, O_WRONLY | O_NOFOLLOW)
  } catch {
    try {
      return { fd: NFS.openSync(spare, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, FILE_MODE), size: 0 }
    } catch {
      return undefined
    }
  }
  const info = NFS.fstatSync(fd)
  // another name for the same inode (the target's, say) would be overwritten in place: never write into it
  if (!info.isFile() || info.nlink !== 1) {
    NFS.closeSync(fd)
    unlinkIfThere(spare)
    return undefined
  }
  return { fd, size: info.size }
}

export const replaceRecycling = Effect.fnUntraced(function*(file: string, data: string, directoryFd: number) {
  const dir = NPath.dirname(file)
  const spare = NPath.join(dir, `.${NPath.basename(file)}.spare`)
  const old = NPath.join(dir, `.${NPath.basename(file)}.old`)
  const opened = canRecycle ? openSpare(spare) : undefined
  if (opened === undefined) return yield* writeAtomic(file, data, { directoryFd })
  const { fd, size } = opened
  yield* Effect.gen(function*() {
    yield* attempt("writeAll", spare, () => writeOver(fd, data, size))
    yield* fsync(fd, spare)
  }).pipe(Effect.ensuring(Effect.sync(() => NFS.closeSync(fd))), Effect.onError(() => Effect.sync(() => unlinkIfThere(spare))))
  unlinkIfThere(old)
  // No target yet (the first save), or a file system without hard links: the old inode is not kept, the spare
  // simply becomes the target (as a fresh temp file would).
  const kept = (() => {
    try {
      NFS.linkSync(file, old)
      return true
    } catch {
      return false
    }
  })()
  yield* attempt("rename", spare, () => NFS.renameSync(spare, file)).pipe(Effect.onError(() => Effect.sync(() => unlinkIfThere(old))))
  if (kept) yield* attempt("rename", old, () => NFS.renameSync(old, spare)).pipe(Effect.ignore)
  yield* fsync(directoryFd, dir)
})

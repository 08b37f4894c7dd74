/**
 * The wake server's private folder (0700, `<tmpdir>/agent-sidecar-wake-<pid>-<pidns>-XXXXXX`) and the sweep of the
 * folders that crashed sidecars left behind. A clean shutdown removes its own folder (a scope finalizer); a sidecar
 * killed with SIGKILL, or by the OOM killer, cannot, and would leave one folder per crash forever. So the folder's
 * name says who owns it, and every wake server that starts removes the folders whose owner is gone: one readdir of
 * the temp dir, then an lstat and a readdir only for the few names that match. Nothing else is ever touched:
 *
 * - only names that match exactly, of our pid namespace (`pidns`: containers that share a /tmp with separate pid
 *   namespaces cannot tell whether each other's pids are alive, so they leave each other's folders alone);
 * - only real directories (lstat: a symlink is never followed) owned by our uid, in a temp dir that only its owner
 *   or root can rename entries of (sticky, or not writable by others), holding nothing but wake files: request slots
 *   `slot-K.req`/`slot-K.taken`, stderr files `N.err`, and an earlier version's `N.req`/`N.taken`;
 * - never a folder whose pid is alive. A reused pid keeps a dead folder until that pid is free again: a bounded
 *   leak, not one per crash. Our own pid is reused too (a restarted container's sidecar is often pid 1 again), so a
 *   folder with our pid that this process did not make is dead: `ours` lists the ones it made (and says when it is
 *   making one, which it could not list yet).
 */
import { Effect } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { unlinkIfThere } from "../../platform/quickFs.ts"

const FOLDER_PREFIX = "agent-sidecar-wake-"
const FOLDER_NAME = /^agent-sidecar-wake-([1-9][0-9]*)-([0-9]+)-[A-Za-z0-9]{6}$/
const FILE_NAME = /^(?:slot-[0-9]+\.(?:req|taken)|[0-9]+\.(?:req|taken|err))$/

/**
 * The folders this process made and has not removed yet, and how many it is making right now (made but not yet
 * listed). Per process, not per layer (several Wakers may run in one process, e.g. in tests or an embedding
 * application), so it lives on `globalThis`: two copies of this module (a bundle and its sources) still share it.
 */
const ours = ((globalThis as Record<symbol, unknown>)[Symbol.for("agent-sidecar/wake-folders")] ??=
  { folders: new Set<string>(), making: 0 }) as { readonly folders: Set<string>; making: number }

/**
 * This process's pid namespace: the inode number of `/proc/self/ns/pid` (Linux); "0" where there is none to read
 * (other systems, or no /proc mounted), which are taken to have a single pid namespace.
 */
const pidNamespace = (): string => {
  try {
    return /^pid:\[([0-9]+)\]$/.exec(NFS.readlinkSync("/proc/self/ns/pid"))?.[1] ?? "0"
  } catch {
    return "0"
  }
}

/**
 * Makes this process's wake folder with `make(prefix)` (a scoped temp folder), then removes the dead sidecars'
 * folders beside it. Returns the folder and the ones removed.
 */
export const makeWakeFolder = <E, R>(make: (prefix: string) => Effect.Effect<string, E, R>) => Effect.gen(function*() {
  const namespace = pidNamespace()
  const folder = yield* Effect.acquireRelease(
    Effect.sync(() => { ours.making++ }).pipe(
      Effect.andThen(make(`${FOLDER_PREFIX}${process.pid}-${namespace}-`)),
      Effect.tap((folder) => Effect.sync(() => ours.folders.add(folder))),
      Effect.ensuring(Effect.sync(() => { ours.making-- }))),
    (folder) => Effect.sync(() => ours.folders.delete(folder)))
  const swept = yield* Effect.sync(() => sweepDeadFolders(NPath.dirname(folder), namespace))
  return { folder, swept }
})

/** Whether `pid` names a running process (or a zombie: it is not reaped yet, so its pid is not free either). */
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: alive, someone else's. Anything but "no such process" counts as alive.
    return (error as NodeJS.ErrnoException).code !== "ESRCH"
  }
}

/** Whether only its owner (we) or root can rename or remove entries of `dir`, so an entry cannot be swapped under us. */
const entriesAreSafe = (dir: string, uid: number): boolean => {
  const stats = NFS.statSync(dir, { throwIfNoEntry: false }) // the temp dir itself may be a symlink (macOS /tmp)
  if (stats === undefined || !stats.isDirectory() || (stats.uid !== uid && stats.uid !== 0)) return false
  return (stats.mode & 0o1000) !== 0 || (stats.mode & 0o022) === 0
}

/** Removes a dead sidecar's folder: only our uid's real directory holding only wake files. */
const removeFolder = (folder: string, uid: number): boolean => {
  try {
    const stats = NFS.lstatSync(folder)
    if (!stats.isDirectory() || stats.uid !== uid) return false
    const files = NFS.readdirSync(folder)
    if (!files.every((name) => FILE_NAME.test(name))) return false
    for (const name of files) unlinkIfThere(NPath.join(folder, name))
    NFS.rmdirSync(folder)
    return true
  } catch {
    // gone meanwhile (another sidecar swept it), or a new file appeared: the next start tries again
    return false
  }
}

/**
 * Removes the folders in `tmp` that sidecars of this pid namespace and uid left behind when they died; returns the
 * ones removed. Never fails: a folder it cannot judge or remove stays.
 */
export const sweepDeadFolders = (tmp: string, namespace = pidNamespace()): ReadonlyArray<string> => {
  const uid = process.getuid?.()
  if (uid === undefined) return []
  let names: Array<string>
  try {
    if (!entriesAreSafe(tmp, uid)) return []
    names = NFS.readdirSync(tmp)
  } catch {
    return []
  }
  const removed: Array<string> = []
  for (const name of names) {
    const match = FOLDER_NAME.exec(name)
    if (match === null || match[2] !== namespace) continue
    const folder = NPath.join(tmp, name)
    const pid = Number(match[1])
    if (pid === process.pid ? ours.folders.has(folder) || ours.making > 0 : isAlive(pid)) continue
    if (removeFolder(folder, uid)) removed.push(folder)
  }
  return removed
}

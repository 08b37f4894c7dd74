/**
 * The wake server's request slots (issue 14): the files a request travels in, reused from launch to launch. On ext4
 * without a journal every inode allocation scans past the inodes freed in the last minutes (`recently_deleted` in
 * the kernel's `find_inode_bit`), so a file made and removed per task made every later create slower, more so the
 * longer a run went on. A slot is a pair of files that stay: `slot-<k>.req`, the request the sidecar writes in place
 * (truncated, not replaced), and `slot-<k>.taken`, which the server overwrites with the id of the request it is about
 * to read. A launch's stderr file (`<id>.err`) stays fresh per launch: a background agent that inherited it may
 * still write to it, which must not land in a later command's stderr tail.
 *
 * When a slot may be written again: the server reads its lines one at a time, and reads a request to its end (`.`)
 * before it reads the next line; so once a `P` or `X` line came for request `m`, the server is done with the files
 * of every request sent before `m` (a server life starts only once the one before it has exited). Not with `m`'s own file: `P` comes from
 * the background subshell while the server may still be reading the request to its end, and a request rewritten under
 * it would then be read from the old offset, task text parsed as code. So a slot is written again only when (1) its
 * launch let it go (its `P` line came, it was withdrawn, or its scope closed) and (2) a `P` or `X` line came for a
 * later request.
 * Ids are sent in increasing order: each is taken, written and sent in one synchronous step (ForkServer.ts).
 */
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { readTextOrEmpty, unlinkIfThere, writeOver } from "../../platform/quickFs.ts"

export interface Slot {
  readonly index: number
  readonly requestFile: string
  readonly takenFile: string
  /** The id of the last request sent to the server in this slot; 0 before the first. */
  sentId: number
}

export interface SlotPool {
  /** A slot no launch holds and the server is done with, or a new one: the caller holds it until `release`. */
  readonly acquire: () => Slot
  /** The launch no longer touches the slot's files. */
  readonly release: (slot: Slot) => void
  /** A line of the server's about request `id` came: it is done with the requests sent before `id`. */
  readonly passed: (id: number) => void
  /** How many slots there are (each has at most two files). */
  readonly size: () => number
}

export const makeSlotPool = (dir: string): SlotPool => {
  const free: Array<Slot> = []
  let count = 0
  let passedId = 0
  return {
    acquire: () => {
      // The free list stays about as long as the most launches ever waiting at once: a scan is cheap.
      for (let i = free.length - 1; i >= 0; i--) {
        const slot = free[i]!
        if (slot.sentId < passedId || slot.sentId === 0) {
          free.splice(i, 1)
          return slot
        }
      }
      const index = count++
      return {
        index, sentId: 0,
        requestFile: NPath.join(dir, `slot-${index}.req`),
        takenFile: NPath.join(dir, `slot-${index}.taken`)
      }
    },
    release: (slot) => { free.push(slot) },
    passed: (id) => { if (id > passedId) passedId = id },
    size: () => count
  }
}

const WRITE_FLAGS = NFS.constants.O_WRONLY | NFS.constants.O_CREAT | NFS.constants.O_NOFOLLOW

/**
 * Writes `source` into the slot's request file in place. O_CREAT without O_EXCL: the inode is made on the slot's
 * first request (0600, in the server's 0700 folder), or again after a request was taken back (`withdraw`, or a
 * launch that ended before its answer removed the file); on an existing file it makes nothing. O_NOFOLLOW: never
 * through a symlink. No O_TRUNC: the old request is written over in place (`writeOver`).
 */
export const writeRequest = (slot: Slot, source: string): void => {
  const fd = NFS.openSync(slot.requestFile, WRITE_FLAGS, 0o600)
  try {
    writeOver(fd, source, NFS.fstatSync(fd).size)
  } finally {
    NFS.closeSync(fd)
  }
}

/**
 * Takes back request `id`, which the server has not answered: "withdrawn" means it can never run (the caller may
 * run it elsewhere), "taken" that it may be running. The request file goes first, then the taken mark is read.
 *
 * Why "withdrawn" is safe: for each line the server first writes the id into the taken mark, then looks for the
 * request file. The mark not holding `id` here means the server had not finished writing it when we read it; so it
 * looks for the request after we removed it, finds none and skips the line. The server writes the mark over the
 * slot's older id in place, so what counts is its first whole line: caught half-written it holds no whole line that
 * is `id`, or already does (a shared tail, "15\n" → "16\n"), which only answers "taken", the cautious side. Ids
 * only grow, so the new id covers the old one; should a shorter one ever follow, the old one's tail after its line
 * is ignored. Ids are never reused, so a mark left by an earlier request in the slot never holds `id`.
 *
 * Why the file is removed, not emptied in place: a server that already opened it (it marked the request, then we
 * looked) reads on from where it is; a file cut under it would end its command early, and the words read so far
 * would run as a shorter command. A removed file is read whole through the server's open descriptor. This costs an
 * inode for the slot's next request, only after a withdrawal (the server did not answer for seconds). The slot is
 * written again only once the server is past this request's line (see above), so a server that is late to it
 * never reads another request in its place; and `__launch` runs only the id its line names, should it ever.
 */
export const withdraw = (slot: Pick<Slot, "requestFile" | "takenFile">, id: number): "withdrawn" | "taken" => {
  unlinkIfThere(slot.requestFile)
  const mark = readTextOrEmpty(slot.takenFile)
  const end = mark.indexOf("\n")
  return end >= 0 && mark.slice(0, end) === String(id) ? "taken" : "withdrawn"
}

/**
 * The sweep of wake folders that dead sidecars left (waker/wakeFolder.ts), on fabricated folders in a temp dir of
 * the test's own: what it removes, and everything it must leave alone. With real daemons killed with SIGKILL:
 * test/integration/wake-folders.integration.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { sweepDeadFolders } from "../../src/services/waker/wakeFolder.ts"
import { scopedTempDir } from "../support/tempDir.ts"

const NS = "4026531836"

/** The pid of a process that has ended and been reaped. */
const deadPid = () => spawnSync("true").pid

/** A folder `name` in `tmp` holding `files`; its path. */
const folder = (tmp: string, name: string, files: ReadonlyArray<string> = ["slot-0.req", "slot-0.taken", "slot-12.req", "1.err", "2.err"]) => {
  const path = NPath.join(tmp, name)
  NFS.mkdirSync(path, { mode: 0o700 })
  for (const file of files) NFS.writeFileSync(NPath.join(path, file), "x")
  return path
}

describe("sweepDeadFolders", () => {
  it.effect("removes the folders of dead sidecars (and of an earlier process with our pid), nothing else", () => Effect.gen(function*() {
    const tmp = yield* scopedTempDir("wake-sweep-")
    const dead = deadPid()
    const removed = [
      folder(tmp, `agent-sidecar-wake-${dead}-${NS}-Ab12Cd`),
      folder(tmp, `agent-sidecar-wake-${dead}-${NS}-zzzzzz`, []),
      folder(tmp, `agent-sidecar-wake-${dead}-${NS}-0ldV3r`, ["1.req", "1.taken", "1.err"]), // an earlier version's names
      // our pid, but not a folder this process made: a restarted container's sidecar often gets the same pid
      folder(tmp, `agent-sidecar-wake-${process.pid}-${NS}-Ab12Cd`)
    ]
    const elsewhere = folder(tmp, "elsewhere", ["1.req"])
    const kept = [
      folder(tmp, `agent-sidecar-wake-${process.ppid}-${NS}-Ab12Cd`), // alive
      folder(tmp, `agent-sidecar-wake-${dead}-1234-Ab12Cd`), // another pid namespace: cannot tell
      folder(tmp, `agent-sidecar-wake-${dead}-${NS}-Ab12Cd-x`), // not exactly the name
      folder(tmp, `agent-sidecar-wake-${dead}-${NS}-Ab1`),
      folder(tmp, "agent-sidecar-wake-Ab12Cd"), // an older version's name: no pid to judge by
      folder(tmp, `agent-sidecar-wake-0-${NS}-Ab12Cd`),
      folder(tmp, `agent-sidecar-wake-${dead}-${NS}-notes2`, ["slot-0.req", "slot-0.err"]), // not a wake file's name
      folder(tmp, `agent-sidecar-wake-${dead}-${NS}-notes3`, ["slot-.req"]),
      folder(tmp, `agent-sidecar-wake-${dead}-${NS}-notes1`, ["1.req", "notes.txt"]) // not only wake files
    ]
    const link = NPath.join(tmp, `agent-sidecar-wake-${dead}-${NS}-Link01`)
    NFS.symlinkSync(elsewhere, link)
    const file = NPath.join(tmp, `agent-sidecar-wake-${dead}-${NS}-File01`)
    NFS.writeFileSync(file, "x")

    assert.sameMembers([...sweepDeadFolders(tmp, NS)], removed)
    for (const path of removed) assert.isFalse(NFS.existsSync(path), path)
    for (const path of kept) assert.isTrue(NFS.existsSync(path), path)
    assert.sameMembers(NFS.readdirSync(kept.at(-1)!), ["1.req", "notes.txt"], "a folder it does not remove is left whole")
    assert.isTrue(NFS.lstatSync(link).isSymbolicLink(), "a symlink is never followed nor removed")
    assert.deepStrictEqual(NFS.readdirSync(elsewhere), ["1.req"])
    assert.isTrue(NFS.existsSync(file))
    assert.deepStrictEqual(sweepDeadFolders(tmp, NS), [], "a second sweep finds nothing more")
  }))

  it.effect("leaves another user's folder alone", () => Effect.gen(function*() {
    const tmp = yield* scopedTempDir("wake-sweep-")
    const theirs = folder(tmp, `agent-sidecar-wake-${deadPid()}-${NS}-Ab12Cd`)
    // only root can give a folder away; as anyone else, the test's own folders are all there is
    if (process.getuid?.() !== 0) return
    NFS.chownSync(theirs, 4242, 4242)
    assert.deepStrictEqual(sweepDeadFolders(tmp, NS), [])
    assert.isTrue(NFS.existsSync(theirs))
  }))

  it.effect("does nothing in a temp dir where others could swap an entry (writable by others, not sticky)", () => Effect.gen(function*() {
    const tmp = yield* scopedTempDir("wake-sweep-")
    const dead = folder(tmp, `agent-sidecar-wake-${deadPid()}-${NS}-Ab12Cd`)
    NFS.chmodSync(tmp, 0o777)
    assert.deepStrictEqual(sweepDeadFolders(tmp, NS), [])
    NFS.chmodSync(tmp, 0o1777)
    assert.deepStrictEqual(sweepDeadFolders(tmp, NS), [dead])
  }))
})

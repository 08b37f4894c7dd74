/**
 * The wake server's request slots (waker/requestSlots.ts), without processes: when a slot may be written again, the
 * request written in place, and taking back an unanswered request in every state the server can leave the slot
 * in. With the real server script: test/integration/wake-slots.integration.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { makeSlotPool, type Slot, withdraw, writeRequest } from "../../src/services/waker/requestSlots.ts"
import { scopedTempDir } from "../support/tempDir.ts"

/** What ForkServer.launch does with a slot: write request `id`, send its line. */
const send = (slot: Slot, id: number) => { slot.sentId = id }

describe("SlotPool", () => {
  it("hands a slot out again only once its launch let it go and the server answered a later request", () => {
    const pool = makeSlotPool("/d")
    const first = pool.acquire()
    assert.strictEqual(first.requestFile, "/d/slot-0.req")
    assert.strictEqual(first.takenFile, "/d/slot-0.taken")
    send(first, 1)
    pool.passed(1)
    pool.release(first)
    // P 1 came, but the server may still be reading request 1's file to its end
    const second = pool.acquire()
    assert.strictEqual(second.index, 1)
    send(second, 2)
    pool.passed(3) // a later request's answer, while slot 1's launch still waits for its own
    assert.strictEqual(pool.acquire(), first, "the server is past request 1")
    assert.strictEqual(pool.acquire().index, 2, "slot 1 is still held by its launch")
    pool.release(second)
    assert.strictEqual(pool.acquire(), second)
  })

  it("uses two slots for launches one after another, and one more than the most at once", () => {
    const pool = makeSlotPool("/d")
    let id = 0
    for (let i = 0; i < 100; i++) {
      const slot = pool.acquire()
      send(slot, ++id)
      pool.passed(id)
      pool.release(slot)
    }
    assert.strictEqual(pool.size(), 2)
    for (let round = 0; round < 50; round++) {
      const held = [0, 1, 2, 3].map(() => pool.acquire())
      for (const slot of held) send(slot, ++id)
      // answers come in any order; each launch lets go of its slot at its answer
      for (const slot of [held[2]!, held[0]!, held[3]!, held[1]!]) {
        pool.passed(slot.sentId)
        pool.release(slot)
      }
    }
    assert.strictEqual(pool.size(), 5)
  })

  it("hands out at once a slot whose request was never sent, and waits for a later answer after a withdrawal", () => {
    const pool = makeSlotPool("/d")
    const unsent = pool.acquire()
    pool.release(unsent)
    assert.strictEqual(pool.acquire(), unsent)
    send(unsent, 1)
    // withdrawn: no answer for request 1 ever comes
    pool.release(unsent)
    const next = pool.acquire()
    assert.notStrictEqual(next, unsent, "the server may still take request 1 and read its slot")
    send(next, 2)
    pool.passed(2)
    pool.release(next)
    assert.strictEqual(pool.acquire(), unsent, "an answer to request 2 means the server is past line 1")
  })
})

describe("writeRequest and withdraw", () => {
  it.effect("writes the request in place, keeping the slot's file (0600)", () => Effect.gen(function*() {
    const dir = yield* scopedTempDir("request-slots-")
    const slot = makeSlotPool(dir).acquire()
    writeRequest(slot, "__launch '1' long request\n")
    const inode = NFS.statSync(slot.requestFile).ino
    writeRequest(slot, "__launch '2'\n")
    assert.strictEqual(NFS.readFileSync(slot.requestFile, "utf8"), "__launch '2'\n")
    assert.strictEqual(NFS.statSync(slot.requestFile).ino, inode)
    assert.strictEqual(NFS.statSync(slot.requestFile).mode & 0o777, 0o600)
    NFS.unlinkSync(slot.requestFile)
    NFS.symlinkSync(NPath.join(dir, "elsewhere"), slot.requestFile)
    assert.throws(() => writeRequest(slot, "x"), /ELOOP/)
    assert.isFalse(NFS.existsSync(NPath.join(dir, "elsewhere")), "never written through a symlink")
  }))

  it.effect("says withdrawn, and removes the request, in every state the server leaves the mark in before it reads", () => Effect.gen(function*() {
    const dir = yield* scopedTempDir("request-slots-")
    const slot = makeSlotPool(dir).acquire()
    const marks: ReadonlyArray<[string, string | undefined]> = [
      ["the server has not reached the line", undefined],
      ["the mark holds the slot's earlier request", "3\n"],
      ["the server has truncated the mark, not yet written it", ""],
      ["the server is writing the mark", "1"],
      ["the server is writing the mark", "12"],
      ["another request whose id starts like ours", "123\n"]
    ]
    for (const [state, mark] of marks) {
      writeRequest(slot, "__launch '12' ...\n")
      if (mark === undefined) NFS.rmSync(slot.takenFile, { force: true })
      else NFS.writeFileSync(slot.takenFile, mark)
      assert.strictEqual(withdraw(slot, 12), "withdrawn", state)
      assert.isFalse(NFS.existsSync(slot.requestFile), `${state}: a server that marks it now finds no request and skips it`)
    }
  }))

  it.effect("says taken once the server marked the request: it may be running", () => Effect.gen(function*() {
    const dir = yield* scopedTempDir("request-slots-")
    const slot = makeSlotPool(dir).acquire()
    writeRequest(slot, "__launch '7' ...\n")
    NFS.writeFileSync(slot.takenFile, "7\n")
    assert.strictEqual(withdraw(slot, 7), "taken")
    // the mark is written over the slot's older one in place: a tail of a longer old id after the line is not ours
    writeRequest(slot, "__launch '7' ...\n")
    NFS.writeFileSync(slot.takenFile, "7\n3\n")
    assert.strictEqual(withdraw(slot, 7), "taken")
    // a server that opened the file before it went reads it whole, from its descriptor
    assert.isFalse(NFS.existsSync(slot.requestFile))
  }))
})

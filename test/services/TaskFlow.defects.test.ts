/**
 * Defects found at the seams of the old TaskFlow closure (issue 10). Each test failed on that code.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { emptyQueue, type QueueFile } from "../../src/domain/Task.ts"
import { QueueStore, QueueStoreError } from "../../src/services/QueueStore.ts"
import { advanceTo, scriptedWaker, startSidecar, testSettings } from "../support/harness.ts"

const result = { status: "success", output: "done" }

/** A QueueStore whose saves can be made to fail (disk full, file made unwritable). */
const failableStore = Effect.gen(function*() {
  const saved = yield* Ref.make<QueueFile>(emptyQueue)
  const failing = yield* Ref.make(false)
  const layer = Layer.succeed(QueueStore, QueueStore.of({
    load: Ref.get(saved),
    save: (queue) => Effect.gen(function*() {
      if (yield* Ref.get(failing)) return yield* new QueueStoreError({ op: "save", path: "/memory/queue.json", cause: new Error("ENOSPC: no space left on device") })
      yield* Ref.set(saved, queue)
    })
  }))
  return { layer, saved: Ref.get(saved), setFailing: (on: boolean) => Ref.set(failing, on) }
})

describe("TaskFlow defects at the old seams", () => {
  // Old: `task resend` sent a second report around the outbox, and the refusal of one was taken as the answer to
  // the other, whose result was lost. Now resend only moves a report to the front; one report is ever in flight,
  // and a refusal only answers a report of its own kind.
  it.effect("resend of a waiting report never puts a second one in flight; its refusal cannot drop another", () => Effect.gen(function*() {
    const s = yield* startSidecar({ settings: testSettings({ maxActiveTasks: 2 }) })
    yield* s.receive({ type: "identified" })
    for (const id of ["t-1", "t-2"]) {
      yield* s.receive({ type: "task_assign", task_id: id, generation: 1 })
      yield* s.emit({ _tag: "Started", taskId: id })
    }
    yield* s.emit({ _tag: "Succeeded", taskId: "t-1", result })
    yield* s.emit({ _tag: "Failed", taskId: "t-2", reason: "tests failed" })
    assert.isTrue(yield* s.flow.resend("t-2"))
    const reports = () => Effect.map(s.sent, (m) => m.filter((x) => x.type === "task_complete" || x.type === "task_failed").map((x) => x.task_id))
    assert.deepStrictEqual(yield* reports(), ["t-1"], "t-2 is not sent while t-1 is in flight")
    // an old hub's refusal of some task_failed: it cannot be the answer to t-1's task_complete
    yield* s.receive({ type: "error", error: "task_fail_failed: stale_generation" })
    assert.deepStrictEqual((yield* s.flow.snapshot).outbox.map((r) => r.task_id).sort(), ["t-1", "t-2"], "t-1's result is kept")
    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "complete" })
    assert.deepStrictEqual(yield* reports(), ["t-1", "t-2"])
  }))

  // Old: a save that failed when the result arrived was logged "recovered on restart" and nothing retried: the
  // task stayed `working` and every later task was answered `busy`.
  it.effect("a failed save when the result arrives is retried: reported once the disk is back, the slot freed", () => Effect.gen(function*() {
    const store = yield* failableStore
    const s = yield* startSidecar({ store: store.layer, settings: testSettings({ maxActiveTasks: 1 }) })
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1", generation: 3 })
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    yield* store.setFailing(true)
    yield* s.emit({ _tag: "Succeeded", taskId: "t-1", result })
    assert.strictEqual((yield* s.task("t-1"))?.status, "working", "nothing decided that could not be saved")
    assert.deepStrictEqual(yield* s.sentOf("task_complete"), [])
    yield* advanceTo(20_000)
    assert.deepStrictEqual(yield* s.sentOf("task_complete"), [], "still no space: still nothing sent")
    yield* store.setFailing(false)
    // the save-retry schedule backs off to at most 30 s: within a minute of the disk's return the report is out
    let at = 20_000
    while ((yield* s.sentOf("task_complete")).length === 0 && at < 80_000) yield* advanceTo(at += 1_000)
    assert.isAtMost(at, 50_000)
    assert.deepStrictEqual(yield* s.sentOf("task_complete"), [{ type: "task_complete", task_id: "t-1", result, generation: 3 }])
    assert.deepStrictEqual((yield* store.saved).outbox.map((r) => r.task_id), ["t-1"], "the report is durable before it is sent")
    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "complete" })
    yield* s.receive({ type: "task_assign", task_id: "t-2" })
    assert.deepStrictEqual(yield* s.sentOf("task_rejected"), [], "the slot is free again")
  }))

  // Old: after task_cancelled, forget, or a refused report, `<id>.task.json` and `<id>.cancelled` stayed for ever.
  it.effect("cancel, forget and a refused report: the task's files are removed after a grace period", () => Effect.gen(function*() {
    const s = yield* startSidecar({ settings: testSettings({ maxActiveTasks: 3 }) })
    yield* s.receive({ type: "identified" })
    for (const id of ["c", "f", "r"]) yield* s.receive({ type: "task_assign", task_id: id })
    yield* s.receive({ type: "task_cancelled", task_id: "c" })
    assert.isTrue(yield* s.flow.forget("f"))
    yield* s.emit({ _tag: "Succeeded", taskId: "r", result })
    yield* s.receive({ type: "error", error: "task_complete_failed: not_found" })
    const names = () => Effect.map(s.files, (f) => [...f.keys()].sort())
    assert.deepStrictEqual(yield* names(), ["c.cancelled", "c.task.json", "f.task.json", "r.task.json"], "the agent still sees them for a while")
    yield* advanceTo(60_000)
    assert.deepStrictEqual(yield* names(), [])
  }))

  // Old: task_progress queued in the HubClient while the hub was away, and every one was flushed on reconnect.
  it.effect("progress is not queued across a disconnect: only the newest goes out on reconnect", () => Effect.gen(function*() {
    const s = yield* startSidecar()
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    yield* s.hub.disconnect
    for (const [at, percent] of [[10_000, 10], [20_000, 20], [30_000, 30]] as const) {
      yield* advanceTo(at)
      yield* s.emit({ _tag: "Progress", taskId: "t-1", percent })
    }
    yield* s.receive({ type: "identified" })
    assert.deepStrictEqual(yield* s.sentOf("task_progress"), [{ type: "task_progress", task_id: "t-1", progress: 30 }])
  }))

  // Old: the flow fiber and the file fiber could each create a signal set for one task; `.started` landed on one,
  // the flow waited on the other, and the task failed with a false confirmation_timeout. The interleaving needs a
  // scheduler yield inside that lookup, which this in-memory run does not force (this test passed on the old code
  // too); what fixes it is structural: there is no signal map any more, one mailbox decides every input in order
  // and the runner waits on the decided state. This guards the behaviour.
  it.effect(".started arriving with the assign (before any fiber ran) is never lost", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    yield* s.hub.receive({ type: "task_assign", task_id: "t-1" })
    yield* s.agent.emit({ _tag: "Started", taskId: "t-1" })
    yield* advanceTo(120_000)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [])
    assert.strictEqual((yield* s.task("t-1"))?.status, "working")
  }))

  // Old: ids like `...` were accepted, but files starting with `.` are never watched: confirmation_timeout.
  it.effect("task ids starting with '.' are answered invalid_task", () => Effect.gen(function*() {
    const s = yield* startSidecar()
    yield* s.receive({ type: "identified" })
    for (const id of ["...", ".hidden", ".a.b"]) yield* s.receive({ type: "task_assign", task_id: id })
    assert.deepStrictEqual((yield* s.sentOf("task_rejected")).map((m) => [m.task_id, m.reason]),
      [["...", "invalid_task"], [".hidden", "invalid_task"], [".a.b", "invalid_task"]])
    assert.deepStrictEqual((yield* s.flow.snapshot).tasks, [])
  }))
})

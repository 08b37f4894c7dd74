/**
 * What is saved when (issue 14): the accept and the report are on disk before anyone hears of them (see
 * TaskFlow.accept); the lazy changes (a wake attempt, `.started`, the hub's ack) ride along with the next durable
 * save, or are flushed on their own at most FLUSH_AFTER_MS after they were decided.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { advanceTo, controllableStore, scriptedWaker, startSidecar, testSettings } from "../support/harness.ts"
import { FLUSH_AFTER_MS } from "../../src/services/flow/Ledger.ts"

const statusOn = (saved: { readonly tasks: ReadonlyArray<{ readonly task_id: string; readonly status: string }> }, id: string) =>
  saved.tasks.find((t) => t.task_id === id)?.status

/** A sidecar on the in-memory layers with a store that shows what was saved, identified, wakes succeeding. */
const identified = (maxActiveTasks = 1) => Effect.gen(function*() {
  const store = yield* controllableStore
  const waker = yield* scriptedWaker([], "success")
  const s = yield* startSidecar({ waker: waker.layer, store: store.layer, settings: testSettings({ maxActiveTasks }) })
  yield* s.receive({ type: "identified" })
  return { store, s }
})

describe("TaskFlow saves", () => {
  it.effect("the hub's ack is not saved at once while another task works: on disk FLUSH_AFTER_MS later, files then", () => Effect.gen(function*() {
    const { store, s } = yield* identified(2)
    yield* s.receive({ type: "task_assign", task_id: "t-1", generation: 1 })
    yield* s.receive({ type: "task_assign", task_id: "t-2", generation: 1 }) // still working when t-1 is acked
    yield* s.emit({ _tag: "Succeeded", taskId: "t-1", result: { status: "success" } })
    yield* advanceTo(FLUSH_AFTER_MS + 10) // whatever flush the tasks' own steps armed has come and gone
    assert.deepStrictEqual((yield* store.saved).outbox.map((r) => r.task_id), ["t-1"], "the report is durable before it is sent")
    assert.deepStrictEqual(yield* s.sentOf("task_complete"), [{ type: "task_complete", task_id: "t-1", result: { status: "success" }, generation: 1 }])

    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "complete" })
    assert.deepStrictEqual((yield* s.flow.snapshot).outbox, [])
    assert.deepStrictEqual((yield* store.saved).outbox.map((r) => r.task_id), ["t-1"], "not saved at once")
    assert.isTrue((yield* s.files).has("t-1.task.json"), "the files stay while the queue on disk still names the task")
    yield* advanceTo(2 * FLUSH_AFTER_MS + 9)
    assert.deepStrictEqual((yield* store.saved).outbox.map((r) => r.task_id), ["t-1"])
    assert.isTrue((yield* s.files).has("t-1.task.json"))
    yield* advanceTo(2 * FLUSH_AFTER_MS + 10)
    assert.deepStrictEqual((yield* store.saved).outbox, [])
    assert.deepStrictEqual((yield* store.saved).tasks.map((t) => t.task_id), ["t-2"])
    assert.isFalse((yield* s.files).has("t-1.task.json"), "removed once the ack is on disk")
  }))

  it.effect("the ack that leaves the sidecar idle is saved at once, and the task's files go with it", () => Effect.gen(function*() {
    const { store, s } = yield* identified()
    yield* s.receive({ type: "task_assign", task_id: "t-1", generation: 1 })
    yield* s.emit({ _tag: "Succeeded", taskId: "t-1", result: { status: "success" } })
    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "complete" })
    assert.deepStrictEqual(yield* store.saved, { version: 2, tasks: [], outbox: [] })
    assert.isFalse((yield* s.files).has("t-1.task.json"))
  }))

  it.effect("the ack rides along with the next durable save (the next task's accept)", () => Effect.gen(function*() {
    const { store, s } = yield* identified(3)
    yield* s.receive({ type: "task_assign", task_id: "w", generation: 1 }) // keeps working throughout
    yield* s.receive({ type: "task_assign", task_id: "t-1", generation: 1 })
    yield* s.emit({ _tag: "Succeeded", taskId: "t-1", result: { status: "success" } })
    yield* advanceTo(FLUSH_AFTER_MS + 10)
    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "complete" })
    yield* s.receive({ type: "task_assign", task_id: "t-2", generation: 1 })
    const saved = yield* store.saved
    assert.deepStrictEqual(saved.tasks.map((t) => t.task_id), ["w", "t-2"])
    assert.deepStrictEqual(saved.outbox, [])
    assert.isFalse((yield* s.files).has("t-1.task.json"), "t-1's files went with that save")
  }))

  it.effect("a lazy change after a durable save is flushed by the flush already armed: never later than FLUSH_AFTER_MS", () => Effect.gen(function*() {
    const { store, s } = yield* identified()
    yield* s.receive({ type: "task_assign", task_id: "t-1", generation: 1 }) // its wake attempt is lazy: a flush is armed now
    yield* advanceTo(100)
    yield* s.receive({ type: "task_assign", task_id: "t-2", generation: 1 }) // durable: saves everything so far
    yield* advanceTo(200)
    yield* s.emit({ _tag: "Started", taskId: "t-1" }) // lazy
    assert.strictEqual(statusOn(yield* store.saved, "t-1"), "waking_confirmation")
    yield* advanceTo(FLUSH_AFTER_MS)
    assert.strictEqual(statusOn(yield* store.saved, "t-1"), "working", "flushed by the flush armed at 0, 50 ms after the change")
  }))

  it.effect("a task assigned again before its ack reached disk keeps its new files", () => Effect.gen(function*() {
    const { s } = yield* identified(3)
    yield* s.receive({ type: "task_assign", task_id: "w", generation: 1 }) // keeps the ack lazy
    yield* s.receive({ type: "task_assign", task_id: "t-1", generation: 1 })
    yield* s.emit({ _tag: "Succeeded", taskId: "t-1", result: { status: "success" } })
    yield* advanceTo(FLUSH_AFTER_MS + 10)
    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "complete" })
    // the hub hands out the same id again: its accept is the save that takes the ack along
    yield* s.receive({ type: "task_assign", task_id: "t-1", description: "again", generation: 2 })
    assert.strictEqual((yield* s.task("t-1"))?.generation, 2)
    assert.isTrue((yield* s.files).has("t-1.task.json"), "the new assignment's task file stays")
    yield* advanceTo(10 * FLUSH_AFTER_MS)
    assert.isTrue((yield* s.files).has("t-1.task.json"))
    assert.include((yield* s.files).get("t-1.task.json") ?? "", "again")
  }))
})

/**
 * Taking tasks (SPEC §3, §5, §6.1): persist before acknowledge, duplicates, busy, invalid ids, shutting
 * down, and cancelling a task mid-wake.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { advanceTo, controllableStore, scriptedWaker, startSidecar, testSettings } from "../support/harness.ts"

describe("TaskFlow accepting tasks", () => {
  // Guarantee (SPEC §6.1): `task_accepted` is sent only once the queue write has completed; while the write
  // is in progress the hub hears nothing and the agent is not woken.
  it.effect("task_accepted is never sent before the queue write completes", () => Effect.gen(function*() {
    const store = yield* controllableStore
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, store: store.layer })
    yield* s.receive({ type: "identified" })
    yield* store.hold
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    yield* advanceTo(60_000)
    assert.deepStrictEqual(yield* s.sent, [], "nothing sent while the save is blocked")
    assert.strictEqual((yield* waker.calls).length, 0, "not woken before it is durable")
    assert.deepStrictEqual((yield* store.saved).tasks, [])
    yield* store.release
    yield* advanceTo(60_001)
    assert.strictEqual((yield* s.types)[0], "task_accepted")
    assert.deepStrictEqual((yield* store.saved).tasks.map((t) => t.task_id), ["t-1"])
    assert.strictEqual((yield* waker.calls).length, 1)
  }))

  // Guarantee: a task that cannot be persisted is rejected and not held (so it is not lost silently).
  it.effect("a failing queue write: task_rejected and the task is not held", () => Effect.gen(function*() {
    const store = yield* controllableStore
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, store: store.layer })
    yield* s.receive({ type: "identified" })
    yield* store.setFailing(true)
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    assert.deepStrictEqual(yield* s.types, ["task_rejected"])
    assert.isUndefined(yield* s.task("t-1"))
    assert.strictEqual((yield* waker.calls).length, 0)
    // the disk recovers: the same task can be taken now
    yield* store.setFailing(false)
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    assert.deepStrictEqual((yield* s.types).slice(1, 2), ["task_accepted"])
    assert.strictEqual((yield* s.task("t-1"))?.status, "waking_confirmation")
  }))

  // Guarantee (SPEC §5): a repeated task_assign is answered task_accepted again and changes nothing.
  it.effect("duplicate assign: task_accepted again, one task held, woken once", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1", description: "first" })
    yield* advanceTo(1_000)
    yield* s.receive({ type: "task_assign", task_id: "t-1", description: "again" })
    assert.deepStrictEqual((yield* s.sentOf("task_accepted")).length, 2)
    assert.deepStrictEqual((yield* s.flow.snapshot).tasks.map((t) => [t.task_id, t.description]), [["t-1", "first"]])
    assert.strictEqual((yield* waker.calls).length, 1)
    assert.deepStrictEqual(yield* s.sentOf("task_rejected"), [])
  }))

  // Guarantee: with max_active_tasks 1, a second task while one is active is rejected `busy`.
  it.effect("max_active_tasks 1: a second task is rejected busy", () => Effect.gen(function*() {
    const s = yield* startSidecar({ settings: testSettings({ maxActiveTasks: 1 }) })
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    yield* s.receive({ type: "task_assign", task_id: "t-2" })
    assert.deepStrictEqual(yield* s.sentOf("task_rejected"), [{ type: "task_rejected", task_id: "t-2", reason: "busy" }])
    assert.deepStrictEqual((yield* s.flow.snapshot).tasks.map((t) => t.task_id), ["t-1"])
  }))

  // Guarantee (SPEC §3): an id that cannot name a file is rejected `invalid_task` and nothing is written;
  // an unprintable id (a control byte) gets no answer at all.
  it.effect("invalid task ids: invalid_task; an id with a control char: no answer", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    const bad = ["../x", "a/b", ".", "..", "x".repeat(200), ""]
    for (const id of bad) yield* s.receive({ type: "task_assign", task_id: id })
    assert.deepStrictEqual(yield* s.sent, bad.map((id) => ({ type: "task_rejected", task_id: id, reason: "invalid_task" })))
    yield* s.receive({ type: "task_assign", task_id: "a\u0000b" })
    yield* s.receive({ type: "task_assign", task_id: "a\nb" })
    assert.strictEqual((yield* s.sent).length, bad.length, "no answer to an unprintable id")
    assert.deepStrictEqual((yield* s.flow.snapshot).tasks, [])
    assert.strictEqual((yield* s.files).size, 0, "nothing written")
    assert.strictEqual((yield* waker.calls).length, 0)
  }))

  // Guarantee: once the sidecar stops accepting (shutdown, drain), new tasks are rejected `shutting_down`.
  it.effect("after stopAccepting: task_rejected shutting_down", () => Effect.gen(function*() {
    const s = yield* startSidecar()
    yield* s.receive({ type: "identified" })
    yield* s.flow.stopAccepting
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    assert.deepStrictEqual(yield* s.sent, [{ type: "task_rejected", task_id: "t-1", reason: "shutting_down" }])
    assert.deepStrictEqual((yield* s.flow.snapshot).tasks, [])
  }))

  // Guarantee (SPEC §3, §6.8): task_cancelled stops the running wake command (the wake is interrupted),
  // writes `<id>.cancelled`, forgets the task, and no report is ever sent for it.
  it.effect("cancel mid-wake: the wake is interrupted, .cancelled written, task forgotten, no report", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker(["hang"], "success")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    yield* advanceTo(3_000)
    assert.strictEqual((yield* s.task("t-1"))?.status, "waking")
    yield* s.receive({ type: "task_cancelled", task_id: "t-1" })
    assert.deepStrictEqual(yield* waker.interrupted, [{ taskId: "t-1", attempt: 1, at: 3_000 }])
    assert.isTrue((yield* s.files).has("t-1.cancelled"))
    assert.deepStrictEqual(yield* s.flow.snapshot, { version: 2, tasks: [], outbox: [] })
    yield* advanceTo(1_000_000)
    assert.deepStrictEqual((yield* s.types).filter((t) => t === "task_complete" || t === "task_failed" || t === "wake_result"), [])
    assert.strictEqual((yield* waker.calls).length, 1, "no retry after cancel")
    // a late file from the agent changes nothing
    yield* s.emit({ _tag: "Succeeded", taskId: "t-1", result: { status: "success" } })
    assert.deepStrictEqual((yield* s.types).filter((t) => t === "task_complete"), [])
  }))
})

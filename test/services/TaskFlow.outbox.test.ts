/**
 * The outbox of terminal reports (SPEC §6.2): persisted before sending, delayed (never lost) by a
 * disconnected hub, re-sent after 10 s without an answer or after a lost connection, settled by a terminal
 * `task_ack`, dropped when the hub refuses it, and sent one at a time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { advanceTo, type Sidecar, startSidecar, testSettings } from "../support/harness.ts"
import { FLUSH_AFTER_MS } from "../../src/services/flow/Ledger.ts"

const result = { status: "success", output: "done" }

/** Assign `id` (generation 5), let the agent start and succeed. */
const runToResult = (s: Sidecar, id: string) => Effect.gen(function*() {
  yield* s.receive({ type: "task_assign", task_id: id, generation: 5 })
  yield* s.emit({ _tag: "Started", taskId: id })
  yield* s.emit({ _tag: "Succeeded", taskId: id, result })
})

const completes = (s: Sidecar) => Effect.map(s.sentOf("task_complete"), (m) => m.map((r) => r.task_id))

describe("TaskFlow outbox", () => {
  // Guarantee: a result that arrives while the hub is disconnected is kept (in the persisted outbox) and
  // sent once identified; unanswered, it is sent again after exactly 10 s; a terminal task_ack settles it:
  // outbox empty, task forgotten, its files removed.
  it.effect("disconnected → held; identified → sent; no answer in 10 s → re-sent; task_ack → settled", () => Effect.gen(function*() {
    const s = yield* startSidecar()
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1", generation: 5 })
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    yield* s.hub.disconnect
    yield* s.emit({ _tag: "Succeeded", taskId: "t-1", result })
    yield* advanceTo(60_000)
    assert.deepStrictEqual(yield* completes(s), [], "nothing sent while disconnected")
    assert.deepStrictEqual((yield* s.flow.snapshot).outbox, [{ type: "task_complete", task_id: "t-1", result, generation: 5 }])

    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "state_report_ack", task_id: "t-1", action: "continue" }) // the hub still gives t-1 to us (issue 11)
    assert.deepStrictEqual(yield* s.sentOf("task_complete"), [{ type: "task_complete", task_id: "t-1", result, generation: 5 }])
    yield* advanceTo(69_999)
    assert.strictEqual((yield* completes(s)).length, 1)
    yield* advanceTo(70_000)
    assert.strictEqual((yield* completes(s)).length, 2, "re-sent 10 s after the unanswered send")

    assert.isTrue((yield* s.files).has("t-1.task.json"))
    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "complete" })
    assert.deepStrictEqual(yield* s.flow.snapshot, { version: 2, tasks: [], outbox: [] })
    // the ack is saved lazily, and the files go once it is on disk (TaskFlow.saves.test.ts)
    yield* advanceTo(70_000 + FLUSH_AFTER_MS)
    assert.strictEqual((yield* s.files).has("t-1.task.json"), false, "task files removed after the ack")
    yield* advanceTo(200_000)
    assert.strictEqual((yield* completes(s)).length, 2, "no resend after the ack")
  }))

  // Guarantee: a connection lost while a report is in flight means it is sent again once identified.
  it.effect("connection lost with the report in flight: sent again on the next identified", () => Effect.gen(function*() {
    const s = yield* startSidecar()
    yield* s.receive({ type: "identified" })
    yield* runToResult(s, "t-1")
    assert.strictEqual((yield* completes(s)).length, 1)
    yield* advanceTo(2_000)
    yield* s.hub.disconnect
    yield* advanceTo(4_000)
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "state_report_ack", task_id: "t-1", action: "continue" }) // the hub still gives t-1 to us (issue 11)
    assert.strictEqual((yield* completes(s)).length, 2)
    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "complete" })
    assert.deepStrictEqual((yield* s.flow.snapshot).outbox, [])
  }))

  // Guarantee: an `error` frame `task_complete_failed: …` answering the in-flight report means the hub
  // refused it for good: it is dropped (task forgotten) and never sent again.
  it.effect("error task_complete_failed answering the report drops it", () => Effect.gen(function*() {
    const s = yield* startSidecar()
    yield* s.receive({ type: "identified" })
    yield* runToResult(s, "t-1")
    yield* s.receive({ type: "error", error: "task_complete_failed: stale generation" })
    assert.deepStrictEqual(yield* s.flow.snapshot, { version: 2, tasks: [], outbox: [] })
    yield* advanceTo(100_000)
    assert.strictEqual((yield* completes(s)).length, 1, "never re-sent")
  }))

  // Guarantee: an unrelated error frame does not settle the report in flight.
  it.effect("an unrelated error frame leaves the report in flight", () => Effect.gen(function*() {
    const s = yield* startSidecar()
    yield* s.receive({ type: "identified" })
    yield* runToResult(s, "t-1")
    yield* s.receive({ type: "error", error: "rate limited" })
    assert.strictEqual((yield* s.flow.snapshot).outbox.length, 1)
    yield* advanceTo(10_000)
    assert.strictEqual((yield* completes(s)).length, 2)
  }))

  // Guarantee: reports go one at a time: the second is sent only after the hub answered the first.
  it.effect("two finished tasks: the second report is sent only after the first is acked", () => Effect.gen(function*() {
    const s = yield* startSidecar({ settings: testSettings({ maxActiveTasks: 2 }) })
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    yield* s.receive({ type: "task_assign", task_id: "t-2" })
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    yield* s.emit({ _tag: "Started", taskId: "t-2" })
    yield* s.emit({ _tag: "Succeeded", taskId: "t-1", result })
    yield* s.emit({ _tag: "Failed", taskId: "t-2", reason: "tests failed" })
    assert.deepStrictEqual(yield* completes(s), ["t-1"])
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [], "t-2 waits for t-1's answer")
    assert.deepStrictEqual((yield* s.flow.snapshot).outbox.map((r) => r.task_id), ["t-1", "t-2"])
    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "complete" })
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [{ type: "task_failed", task_id: "t-2", reason: "tests failed" }])
    yield* s.receive({ type: "task_ack", task_id: "t-2", status: "failed" })
    assert.deepStrictEqual(yield* s.flow.snapshot, { version: 2, tasks: [], outbox: [] })
  }))

  // Guarantee (SPEC §3): a task_ack without status for the report in flight counts as terminal;
  // `status: "accepted"` does not settle anything.
  it.effect("task_ack accepted settles nothing; task_ack without status for the in-flight report settles it", () => Effect.gen(function*() {
    const s = yield* startSidecar()
    yield* s.receive({ type: "identified" })
    yield* runToResult(s, "t-1")
    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "accepted" })
    assert.strictEqual((yield* s.flow.snapshot).outbox.length, 1)
    yield* s.receive({ type: "task_ack", task_id: "t-1" })
    assert.deepStrictEqual(yield* s.flow.snapshot, { version: 2, tasks: [], outbox: [] })
  }))
})

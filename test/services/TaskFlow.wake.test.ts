/**
 * Waking the agent (SPEC §5): the retry schedule, when retrying stops, the confirmation wait, and a
 * `.started` that arrives while the wake command still runs. All under TestClock: no real time passes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { advanceTo, scriptedWaker, startSidecar } from "../support/harness.ts"

const assign = { type: "task_assign", task_id: "t-1", description: "do it", generation: 3 } as const

describe("TaskFlow wake", () => {
  // Guarantee: with the default delays [5 s, 15 s, 30 s] a failing wake is tried exactly at 0, 5, 20 and 50 s,
  // each outcome goes to the hub as wake_result, and the task then fails `wake_failed_after_4_attempts`.
  it.effect("a wake that always fails is tried at 0, 5, 20, 50 s, then the task fails", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "failed")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    yield* s.receive(assign)
    const count = Effect.map(waker.calls, (c) => c.length)
    assert.strictEqual(yield* count, 1)
    for (const [before, at, n] of [[4_999, 5_000, 2], [19_999, 20_000, 3], [49_999, 50_000, 4]] as const) {
      yield* advanceTo(before)
      assert.strictEqual(yield* count, n - 1, `just before ${at} ms`)
      yield* advanceTo(at)
      assert.strictEqual(yield* count, n, `at ${at} ms`)
    }
    assert.deepStrictEqual((yield* waker.calls).map((c) => [c.at, c.attempt]), [[0, 1], [5_000, 2], [20_000, 3], [50_000, 4]])
    assert.deepStrictEqual(
      (yield* s.sentOf("wake_result")).map((m) => [m.attempt, m.status]),
      [[1, "failed"], [2, "failed"], [3, "failed"], [4, "failed"]]
    )
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [{ type: "task_failed", task_id: "t-1", reason: "wake_failed_after_4_attempts", generation: 3 }])
    yield* s.receive({ type: "task_ack", task_id: "t-1", status: "failed" })
    yield* advanceTo(500_000)
    assert.strictEqual(yield* count, 4, "no attempt after giving up")
    assert.strictEqual((yield* s.sentOf("task_failed")).length, 1)
  }))

  // Guarantee: a successful attempt ends the retries; the task then waits for `.started`.
  it.effect("success on the 3rd attempt stops retrying and waits for confirmation", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker(["failed", "failed", "success"], "failed")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    yield* s.receive(assign)
    yield* advanceTo(20_000)
    assert.strictEqual((yield* waker.calls).length, 3)
    assert.strictEqual((yield* s.task("t-1"))?.status, "waking_confirmation")
    assert.deepStrictEqual((yield* s.sentOf("wake_result")).map((m) => m.status), ["failed", "failed", "success"])
    yield* advanceTo(49_000)
    assert.strictEqual((yield* s.task("t-1"))?.status, "waking_confirmation")
    yield* advanceTo(1_000_000)
    assert.strictEqual((yield* waker.calls).length, 3, "no 4th attempt")
  }))

  // Guarantee: after a successful wake, no `.started` within confirmation_timeout_ms (30 s) fails the task
  // `confirmation_timeout` exactly at 30 s, not a millisecond earlier, and it is not retried.
  it.effect("no .started within 30 s after the wake: confirmation_timeout at exactly 30 s", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    yield* s.receive(assign)
    assert.strictEqual((yield* s.task("t-1"))?.status, "waking_confirmation")
    yield* advanceTo(29_999)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [])
    yield* advanceTo(30_000)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [{ type: "task_failed", task_id: "t-1", reason: "confirmation_timeout", generation: 3 }])
    yield* advanceTo(200_000)
    assert.strictEqual((yield* waker.calls).length, 1, "confirmation_timeout is terminal, not retried")
  }))

  // Guarantee: a `.started` inside the confirmation window moves the task to `working`, and nothing fails later.
  it.effect("a .started at 29 s prevents the confirmation timeout", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    yield* s.receive(assign)
    yield* advanceTo(29_000)
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    assert.strictEqual((yield* s.task("t-1"))?.status, "working")
    yield* advanceTo(30_000)
    yield* advanceTo(1_000_000)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [])
    assert.strictEqual((yield* s.task("t-1"))?.status, "working")
  }))

  // Guarantee (SPEC §4): a `.started` seen while the wake command is still running counts: the task is
  // `working`, and when that command then fails there is no further attempt and no failure.
  it.effect(".started while the wake command still runs counts; no further attempts", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker(["hang"], "success")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    yield* s.receive(assign)
    assert.strictEqual((yield* s.task("t-1"))?.status, "waking")
    yield* advanceTo(1_000)
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    assert.strictEqual((yield* s.task("t-1"))?.status, "working")
    yield* advanceTo(3_000)
    yield* waker.release("failed") // the launcher exits non-zero after all
    yield* advanceTo(1_000_000)
    assert.strictEqual((yield* waker.calls).length, 1, "no retry once the agent is up")
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [])
    assert.strictEqual((yield* s.task("t-1"))?.status, "working")
  }))

  // Guarantee: a `.started` arriving while waiting for the next retry cancels the pending retries.
  it.effect(".started between attempts stops the retries", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "failed")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    yield* s.receive(assign)
    yield* advanceTo(2_000)
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    yield* advanceTo(1_000_000)
    assert.strictEqual((yield* waker.calls).length, 1)
    assert.strictEqual((yield* s.task("t-1"))?.status, "working")
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [])
  }))

  // Guarantee (SPEC §4): a result seen while waiting for the next retry ends the task and the retries:
  // the agent is not woken again for a task that is already finished.
  it.effect("a result between attempts stops the retries", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "failed")
    const s = yield* startSidecar({ waker: waker.layer })
    yield* s.receive({ type: "identified" })
    yield* s.receive(assign)
    yield* advanceTo(2_000)
    yield* s.emit({ _tag: "Succeeded", taskId: "t-1", result: { status: "success" } })
    assert.deepStrictEqual(yield* s.sentOf("task_complete"), [{ type: "task_complete", task_id: "t-1", result: { status: "success" }, generation: 3 }])
    yield* advanceTo(1_000_000)
    assert.strictEqual((yield* waker.calls).length, 1)
    assert.strictEqual((yield* s.sentOf("wake_result")).length, 1)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [])
  }))
})

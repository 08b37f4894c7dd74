/**
 * While `working` (SPEC §2, §3, §5): task_timeout_ms, agent_idle_timeout_ms reset by signs of life, and the
 * `task_progress` relay throttled to once per 5 s. All under TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { advanceTo, scriptedWaker, startSidecar, testSettings } from "../support/harness.ts"

describe("TaskFlow working timeouts", () => {
  // Guarantee: a task `working` for task_timeout_ms (60 s) fails `task_timeout` exactly then, counted from
  // the moment it started working (here 10 s after it was accepted).
  it.effect("task_timeout_ms: task_failed task_timeout exactly 60 s after working began", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, settings: testSettings({ taskTimeoutMs: 60_000 }) })
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    yield* advanceTo(10_000)
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    assert.strictEqual((yield* s.task("t-1"))?.status, "working")
    yield* advanceTo(69_999)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [])
    yield* advanceTo(70_000)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [{ type: "task_failed", task_id: "t-1", reason: "task_timeout" }])
    assert.strictEqual((yield* s.task("t-1"))?.status, "reporting")
  }))

  // Guarantee: agent_idle_timeout_ms (20 s) counts from the last sign of life: a `.progress` at 15 s and
  // at 20 s push `agent_stalled` to exactly 40 s; progress is relayed as task_progress at most once per 5 s.
  it.effect("agent_idle_timeout_ms: progress resets it; stalled 20 s after the last sign; relay throttled", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, settings: testSettings({ agentIdleTimeoutMs: 20_000 }) })
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    assert.strictEqual((yield* s.task("t-1"))?.status, "working")

    yield* advanceTo(15_000)
    yield* s.emit({ _tag: "Progress", taskId: "t-1", percent: 10, message: "reading" })
    yield* advanceTo(19_999)
    yield* s.emit({ _tag: "Progress", taskId: "t-1", percent: 20 }) // within 5 s of the last relay: not relayed
    yield* advanceTo(20_000)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [], "the progress at 15 s reset the idle timer")
    yield* s.emit({ _tag: "Progress", taskId: "t-1", percent: 30 }) // 5 s after the last relay: relayed

    assert.deepStrictEqual(yield* s.sentOf("task_progress"), [
      { type: "task_progress", task_id: "t-1", progress: 10, message: "reading" },
      { type: "task_progress", task_id: "t-1", progress: 30 }
    ])
    yield* advanceTo(39_999)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [])
    yield* advanceTo(40_000)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [{ type: "task_failed", task_id: "t-1", reason: "agent_stalled" }])
  }))

  // Guarantee: without any progress, the idle timeout runs from when the task started working.
  it.effect("agent_idle_timeout_ms without progress: agent_stalled 20 s after working began", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, settings: testSettings({ agentIdleTimeoutMs: 20_000 }) })
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    yield* advanceTo(5_000)
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    yield* advanceTo(24_999)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [])
    yield* advanceTo(25_000)
    assert.deepStrictEqual((yield* s.sentOf("task_failed")).map((m) => m.reason), ["agent_stalled"])
  }))

  // Guarantee (AgentCom's stuck sweep): a working task the hub has heard nothing of for a minute gets a bare
  // task_progress, once a minute, alongside the task clock; the task clock still ends it on time.
  it.effect("keep-alive: a silent working task sends task_progress every 60 s; task_timeout_ms still ends it", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, settings: testSettings({ taskTimeoutMs: 150_000, agentIdleTimeoutMs: 0 }) })
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_assign", task_id: "t-1" })
    yield* s.emit({ _tag: "Started", taskId: "t-1" })
    yield* advanceTo(59_999)
    assert.deepStrictEqual(yield* s.sentOf("task_progress"), [])
    yield* advanceTo(60_000)
    assert.deepStrictEqual(yield* s.sentOf("task_progress"), [{ type: "task_progress", task_id: "t-1" }])
    yield* advanceTo(120_000)
    assert.strictEqual((yield* s.sentOf("task_progress")).length, 2)
    yield* advanceTo(150_000)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [{ type: "task_failed", task_id: "t-1", reason: "task_timeout" }])
    yield* advanceTo(400_000)
    assert.strictEqual((yield* s.sentOf("task_progress")).length, 2, "nothing once the task has ended")
  }))
})

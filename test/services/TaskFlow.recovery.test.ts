/**
 * Crash recovery (SPEC §6.3): tasks found unfinished at start-up become `recovering`, are reported with
 * `task_recovering` once identified, do not count against max_active_tasks, and resume on `task_continue`
 * where they stood; `task_reassign` / `task_cancelled` drop them. A persisted report is simply re-sent.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Ref } from "effect"
import type { QueueFile, Report, TaskRecord } from "../../src/domain/Task.ts"
import { advanceTo, persistedTask, scriptedWaker, type Sidecar, startSidecar, testSettings } from "../support/harness.ts"

const queue = (tasks: ReadonlyArray<TaskRecord>, outbox: ReadonlyArray<Report> = []): QueueFile => ({ version: 2, tasks, outbox })

/** What an earlier run left behind: one task in each unfinished state, plus one finished with its report queued. */
const leftBehind = queue([
  persistedTask("a", "accepted", { generation: 1 }),
  persistedTask("b", "waking_confirmation", { generation: 1 }),
  persistedTask("c", "working", { generation: 1 }),
  persistedTask("d", "reporting", { generation: 2 })
], [{ type: "task_complete", task_id: "d", result: { status: "success", output: "d" }, generation: 2 }])

const putFile = (s: Sidecar, name: string, content: string) => Ref.update(s.agent.files, (m) => new Map([...m, [name, content]]))

describe("TaskFlow recovery", () => {
  // Guarantee: after `identified`, each unfinished task is announced with task_recovering + last_status,
  // the finished one's persisted report is re-sent instead, nothing is woken, and recovering tasks do not
  // count against max_active_tasks (1 here): a new task is accepted.
  it.effect("unfinished tasks: task_recovering once identified; queued report re-sent; new task accepted", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, initialQueue: leftBehind, settings: testSettings({ maxActiveTasks: 1 }) })
    assert.deepStrictEqual((yield* s.flow.snapshot).tasks.map((t) => [t.task_id, t.status, t.last_status]), [
      ["a", "recovering", "accepted"],
      ["b", "recovering", "waking_confirmation"],
      ["c", "recovering", "working"],
      ["d", "reporting", undefined]
    ])
    assert.deepStrictEqual(yield* s.sent, [], "nothing before identified")

    yield* s.receive({ type: "identified" })
    assert.deepStrictEqual(
      (yield* s.sentOf("task_recovering")).map((m) => [m.task_id, m.last_status, m.description, m.metadata]),
      [["a", "accepted", "task a", { origin: "test" }], ["b", "waking_confirmation", "task b", { origin: "test" }], ["c", "working", "task c", { origin: "test" }]]
    )
    // d's report waits for the hub's answer to its state_report (issue 11)
    assert.deepStrictEqual((yield* s.sentOf("state_report")).map((m) => [m.task_id, m.status, m.generation]), [["d", "reporting", 2]])
    yield* s.receive({ type: "state_report_ack", task_id: "d", action: "continue" })
    assert.deepStrictEqual(yield* s.sentOf("task_complete"), [{ type: "task_complete", task_id: "d", result: { status: "success", output: "d" }, generation: 2 }])
    assert.strictEqual((yield* waker.calls).length, 0, "recovering tasks wait for the hub's answer")

    yield* s.receive({ type: "task_assign", task_id: "n" })
    // (d's task_accepted answers the continue: AgentCom's agent state waits for it after a reconnect)
    assert.deepStrictEqual(yield* s.sentOf("task_accepted"), [{ type: "task_accepted", task_id: "d" }, { type: "task_accepted", task_id: "n" }])
    assert.deepStrictEqual(yield* s.sentOf("task_rejected"), [])
  }))

  // Guarantee: task_continue on a task left `accepted` runs the wake flow, and the generation carried by
  // task_continue is the one reported back.
  it.effect("task_continue on an accepted task wakes it; its generation travels back in the report", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, initialQueue: queue([persistedTask("a", "accepted", { generation: 1 })]) })
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_continue", task_id: "a", generation: 9 })
    assert.deepStrictEqual((yield* waker.calls).map((c) => c.taskId), ["a"])
    assert.isTrue((yield* s.files).has("a.task.json"), "the task file is written before waking")
    assert.strictEqual((yield* s.task("a"))?.status, "waking_confirmation")
    yield* s.emit({ _tag: "Started", taskId: "a" })
    yield* s.emit({ _tag: "Succeeded", taskId: "a", result: { status: "success", output: 1 } })
    assert.deepStrictEqual(yield* s.sentOf("task_complete"), [{ type: "task_complete", task_id: "a", result: { status: "success", output: 1 }, generation: 9 }])
  }))

  // Guarantee: task_continue on a task left `waking_confirmation` does not wake it again but starts a fresh
  // 30 s confirmation wait from the task_continue.
  it.effect("task_continue on a waking_confirmation task: a fresh 30 s confirmation wait, no wake", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, initialQueue: queue([persistedTask("b", "waking_confirmation")]) })
    yield* s.receive({ type: "identified" })
    yield* advanceTo(10_000)
    yield* s.receive({ type: "task_continue", task_id: "b" })
    assert.strictEqual((yield* s.task("b"))?.status, "waking_confirmation")
    yield* advanceTo(39_999)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [])
    yield* advanceTo(40_000)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [{ type: "task_failed", task_id: "b", reason: "confirmation_timeout" }])
    assert.strictEqual((yield* waker.calls).length, 0)
  }))

  // Guarantee: task_continue on a task left `working` whose result is already on disk reports it at once.
  it.effect("task_continue on a working task with its result on disk reports it at once", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, initialQueue: queue([persistedTask("c", "working", { generation: 1 })]) })
    yield* putFile(s, "c.json", JSON.stringify({ status: "success", output: "written while we were down" }))
    yield* s.receive({ type: "identified" })
    assert.deepStrictEqual(yield* s.sentOf("task_complete"), [], "not before task_continue")
    yield* s.receive({ type: "task_continue", task_id: "c", generation: 4 })
    assert.deepStrictEqual(yield* s.sentOf("task_complete"), [
      { type: "task_complete", task_id: "c", result: { status: "success", output: "written while we were down" }, generation: 4 }
    ])
    assert.strictEqual((yield* waker.calls).length, 0)
  }))

  // Guarantee: an agent that started while the sidecar was down is not woken again: a `.started` on disk
  // resumes the task (left `accepted`) as `working`.
  it.effect("task_continue with a .started on disk: no wake, the task is working", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, initialQueue: queue([persistedTask("a", "accepted")]) })
    yield* putFile(s, "a.started", "")
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_continue", task_id: "a" })
    assert.strictEqual((yield* s.task("a"))?.status, "working")
    yield* advanceTo(100_000)
    assert.strictEqual((yield* waker.calls).length, 0)
    assert.deepStrictEqual(yield* s.sentOf("task_failed"), [], "no confirmation timeout either")
  }))

  // Guarantee: task_reassign drops a recovering task (another agent has it) and removes its files;
  // task_cancelled drops one too. Neither is reported.
  it.effect("task_reassign and task_cancelled drop recovering tasks and clean their files", () => Effect.gen(function*() {
    const waker = yield* scriptedWaker([], "success")
    const s = yield* startSidecar({ waker: waker.layer, initialQueue: queue([persistedTask("a", "accepted"), persistedTask("c", "working")]) })
    yield* putFile(s, "a.task.json", "{}")
    yield* putFile(s, "a.started", "")
    yield* s.receive({ type: "identified" })
    yield* s.receive({ type: "task_reassign", task_id: "a" })
    // AgentCom may assign the task to us again right after (issue 11): it is let go once the grace has passed
    assert.deepStrictEqual((yield* s.flow.snapshot).tasks.map((t) => t.task_id), ["a", "c"])
    yield* advanceTo(15_000)
    assert.deepStrictEqual((yield* s.flow.snapshot).tasks.map((t) => t.task_id), ["c"])
    yield* s.receive({ type: "task_cancelled", task_id: "c" })
    assert.deepStrictEqual(yield* s.flow.snapshot, { version: 2, tasks: [], outbox: [] })
    yield* advanceTo(100_000)
    assert.deepStrictEqual((yield* s.types).filter((t) => t === "task_complete" || t === "task_failed"), [])
    assert.isFalse((yield* s.files).has("a.task.json"))
    assert.isFalse((yield* s.files).has("a.started"))
    assert.isFalse((yield* s.files).has("a.cancelled"), "the .cancelled file goes after its grace too")
    assert.strictEqual((yield* waker.calls).length, 0)
  }))
})

/**
 * The dev hub's pure task transitions against AgentCom's rules (task_queue.ex, agent_fsm.ex, scheduler.ex,
 * reaper.ex, socket.ex's state_report). No sockets, no clock: time is a number. Identify and validation:
 * state.validation.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { onFrame } from "../../src/hub/frames.ts"
import { cancel } from "../../src/hub/requests.ts"
import type { HubState, Settings } from "../../src/hub/state.ts"
import { disconnect, reap, restart, sweepStuck, tick } from "../../src/hub/timers.ts"
import { holding, Hub, settings } from "./hubDriver.ts"

describe("task lifecycle (task_queue.ex, agent_fsm.ex)", () => {
  it("one task per agent: a second task waits until the first is done", () => {
    const hub = holding().submit("t2")
    assert.strictEqual(hub.task("t2").state, "pending")
    hub.frame(1, { type: "task_complete", task_id: "t1", generation: 1, result: { ok: true } })
    assert.deepStrictEqual(hub.sent(1).map((f) => [f.type, (f as { task_id?: string }).task_id]), [["task_ack", "t1"], ["task_assign", "t2"]])
  })

  it("task_complete keeps tokens_used, verification_report and verification_history", () => {
    const hub = holding().frame(1, {
      type: "task_complete", task_id: "t1", generation: 1, result: { summary: "done" }, tokens_used: 150,
      verification_report: { status: "pass" }, verification_history: [{ run: 1 }]
    })
    assert.deepStrictEqual(hub.sent(1), [{ type: "task_ack", task_id: "t1", status: "complete" }])
    assert.deepInclude(hub.task("t1"), {
      state: "complete", result: { summary: "done" }, tokens_used: 150, verification_report: { status: "pass" }, verification_history: [{ run: 1 }]
    })
    // tokens_used may also come inside the result.
    const other = holding().frame(1, { type: "task_complete", task_id: "t1", generation: 1, result: { tokens_used: 9 } })
    assert.strictEqual(other.task("t1").tokens_used, 9)
  })

  it("reports with an old generation get stale_generation and change nothing; finished and unknown tasks their own reasons", () => {
    const hub = holding()
    const before = hub.task("t1")
    hub.frame(1, { type: "task_complete", task_id: "t1", generation: 0, result: {} })
    assert.deepStrictEqual(hub.sent(), [{ type: "error", error: "task_complete_failed: stale_generation" }])
    hub.frame(1, { type: "task_failed", task_id: "t1", generation: 7, error: "x" })
    assert.deepStrictEqual(hub.sent(), [{ type: "error", error: "task_fail_failed: stale_generation" }])
    assert.deepInclude(hub.task("t1"), { state: before.state, generation: 1, agent: "a" })
    hub.frame(1, { type: "task_complete", task_id: "t1", generation: 1, result: {} })
    hub.frame(1, { type: "task_complete", task_id: "t1", generation: 1, result: {} })
    assert.deepStrictEqual(hub.sent(), [{ type: "error", error: "task_complete_failed: invalid_state" }], "a resent report is refused")
    hub.frame(1, { type: "task_failed", task_id: "nope", generation: 1 })
    assert.deepStrictEqual(hub.sent(), [{ type: "error", error: "task_fail_failed: not_found" }])
  })

  it("reports are not checked against the sender: another agent with the right generation completes the task", () => {
    const hub = holding().identify(2, "b").frame(2, { type: "task_complete", task_id: "t1", generation: 1, result: {} })
    assert.deepStrictEqual(hub.sent(2), [{ type: "task_ack", task_id: "t1", status: "complete" }])
  })

  it("task_failed is retried (new generation, offered again) until max_retries, then dead-lettered", () => {
    const hub = new Hub().identify(1, "a").submit("t1", { max_retries: 2 }).frame(1, { type: "task_accepted", task_id: "t1" })
    hub.frame(1, { type: "task_failed", task_id: "t1", generation: 1, error: "boom" })
    assert.deepStrictEqual(hub.sent(1).map((f) => f.type), ["task_ack", "task_assign"])
    assert.deepInclude(hub.sent(1)[0], { status: "retried" })
    // Bumped by the retry and again by the assignment (task_queue.ex fail_task, assign_task).
    assert.deepInclude(hub.sent(1)[1], { generation: 3 })
    hub.frame(1, { type: "task_accepted", task_id: "t1" }).frame(1, { type: "task_failed", task_id: "t1", generation: 3, reason: "again" })
    assert.deepStrictEqual(hub.sent(1), [{ type: "task_ack", task_id: "t1", status: "dead_letter" }])
    assert.deepInclude(hub.task("t1"), { state: "dead_letter", retry_count: 2, last_error: "again" })
  })
})

describe("take-back (agent_fsm.ex)", () => {
  it("a dropped connection takes the task back at once with a new generation; the returning agent gets it again", () => {
    const hub = holding().run((s, now) => disconnect(s, 1, now, settings))
    assert.deepInclude(hub.task("t1"), { state: "pending", generation: 2, agent: undefined })
    hub.frame(1, { type: "task_complete", task_id: "t1", generation: 1, result: {} })
    hub.identify(2, "a")
    assert.deepStrictEqual(hub.sent(2).map((f) => f.type), ["identified", "task_assign"])
    assert.deepInclude(hub.sent(2)[1], { task_id: "t1", generation: 3 })
    hub.frame(2, { type: "task_complete", task_id: "t1", generation: 1, result: {} })
    assert.deepStrictEqual(hub.sent(2), [{ type: "error", error: "task_complete_failed: stale_generation" }])
  })

  it("a task not accepted within the acceptance timeout is taken back and the agent flagged unresponsive", () => {
    const hub = holding(false).advance(59_999).run((s, now) => tick(s, now, settings))
    assert.strictEqual(hub.task("t1").generation, 1)
    hub.advance(1).run((s, now) => tick(s, now, settings))
    assert.isTrue(hub.agent("a").unresponsive)
    // It is offered again at once to the (now idle) agent, with the generation bumped twice (take-back, assign).
    assert.deepInclude(hub.sent(1)[0], { type: "task_assign", task_id: "t1", generation: 3 })
  })

  it("task_accepted stops the acceptance timer", () => {
    const hub = holding(true).advance(120_000).run((s, now) => tick(s, now, settings))
    assert.deepInclude(hub.task("t1"), { state: "accepted", generation: 1 })
  })

  it("graceful restart: tasks kept, held ones taken back; the returning agent is re-sent task_assign with a new generation", () => {
    const hub = holding().run((s, now) => restart(s, now, settings, "graceful"))
    assert.deepStrictEqual(hub.closes(), [{ _tag: "close", conn: 1, code: 1001, reason: "hub shutting down" }])
    assert.strictEqual(hub.state.agents.size, 0)
    assert.deepInclude(hub.task("t1"), { state: "pending", generation: 2 })
    hub.identify(5, "a")
    assert.deepInclude(hub.sent(5)[1], { type: "task_assign", task_id: "t1", generation: 3 })
  })

  it("crash restart: the task stays assigned; state_report continues it, and only task_accepted keeps it past the timer", () => {
    const hub = holding().run((s, now) => restart(s, now, settings, "crash"))
    assert.deepStrictEqual(hub.closes(), [{ _tag: "terminate", conn: 1 }])
    hub.identify(2, "a")
    assert.deepInclude(hub.agent("a"), { fsm: "assigned", current_task: "t1" })
    hub.frame(2, { type: "state_report", task_id: "t1", status: "working", generation: 1 })
    assert.deepStrictEqual(hub.sent(2), [{ type: "state_report_ack", task_id: "t1", action: "continue" }])
    hub.advance(60_000).run((s, now) => tick(s, now, settings))
    assert.deepInclude(hub.sent(2)[0], { type: "task_assign", task_id: "t1", generation: 3 })
  })
  it("test hook assignDelayMs: a returning agent is offered its task only after the delay, so an old state_report is answered abort first", () => {
    const delayed: Settings = { ...settings, assignDelayMs: 1_000 }
    const on = (conn: number, msg: Record<string, unknown>) => (s: HubState, now: number) => onFrame(s, conn, JSON.stringify(msg), now, delayed)
    const hub = holding().run((s, now) => disconnect(s, 1, now, delayed))
      .run(on(2, { type: "identify", agent_id: "a", token: "secret", name: "a", status: "busy", capabilities: [] }))
    assert.deepStrictEqual(hub.sent(2).map((f) => f.type), ["identified"])
    hub.run(on(2, { type: "state_report", task_id: "t1", status: "working", generation: 1 }))
    assert.deepStrictEqual(hub.sent(2), [{ type: "state_report_ack", task_id: "t1", action: "abort" }])
    hub.advance(999).run((s, now) => tick(s, now, delayed))
    assert.deepStrictEqual(hub.sent(2), [])
    hub.advance(1).run((s, now) => tick(s, now, delayed))
    assert.deepInclude(hub.sent(2)[0], { type: "task_assign", task_id: "t1", generation: 3 })
  })
})

describe("state_report (socket.ex)", () => {
  it("continue only for this agent's assignment at the same generation; abort otherwise", () => {
    const hub = holding().identify(2, "b")
    const ack = (conn: number, msg: Record<string, unknown>) => hub.frame(conn, { type: "state_report", ...msg }).sent(conn)[0]
    assert.deepStrictEqual(ack(1, { task_id: "t1", status: "working", generation: 1 }), { type: "state_report_ack", task_id: "t1", action: "continue" })
    assert.deepInclude(ack(1, { task_id: "t1", generation: 0 }), { action: "abort" })
    assert.deepInclude(ack(1, { task_id: "t1" }), { action: "abort" }, "a missing generation counts as 0")
    assert.deepInclude(ack(2, { task_id: "t1", generation: 1 }), { action: "abort" }, "another agent's task")
    assert.deepInclude(ack(1, { task_id: "nope", generation: 1 }), { action: "abort" })
    hub.frame(1, { type: "task_complete", task_id: "t1", generation: 1, result: {} })
    assert.deepInclude(ack(1, { task_id: "t1", generation: 1 }), { action: "abort" }, "a completed task")
  })
})

describe("task_recovering (task_queue.ex recover_task)", () => {
  it("any held task → task_continue with its generation, whoever holds it; others and unknown → task_reassign", () => {
    const hub = holding().identify(2, "b")
    hub.frame(2, { type: "task_recovering", task_id: "t1" })
    assert.deepStrictEqual(hub.sent(2), [{ type: "task_continue", task_id: "t1", generation: 1 }])
    hub.frame(2, { type: "task_recovering", task_id: "ghost" })
    assert.deepStrictEqual(hub.sent(2), [{ type: "task_reassign", task_id: "ghost" }])
    assert.isFalse(hub.state.tasks.has("ghost"), "an unknown task is not adopted")
    hub.run((s, now) => Result.getOrThrow(cancel(s, "t1", now, settings)))
    assert.deepInclude(hub.sent(1)[0], { type: "task_cancelled", task_id: "t1" })
    hub.frame(1, { type: "task_recovering", task_id: "t1" })
    assert.deepStrictEqual(hub.sent(1), [{ type: "task_reassign", task_id: "t1" }], "cancelled tasks are gone in the real hub")
  })
})

describe("stuck sweep (scheduler.ex)", () => {
  const sweep = (hub: Hub) => hub.run((s, now) => sweepStuck(s, now, settings))

  it("an unaccepted task silent for 10 min is taken back; a working one only after 20 min", () => {
    // Agent `a` never accepts (its acceptance timer is not run here), agent `b` accepted.
    const hub = new Hub().identify(1, "a").submit("t1").identify(2, "b").submit("t2").frame(2, { type: "task_accepted", task_id: "t2" })
    hub.advance(600_001)
    sweep(hub)
    assert.strictEqual(hub.task("t1").generation, 2, "the assigned (not working) agent's task is taken back")
    assert.deepInclude(hub.task("t2"), { state: "accepted", generation: 1 })
    hub.advance(600_000)
    sweep(hub)
    assert.strictEqual(hub.task("t2").generation, 2)
  })

  it("task_progress, task_accepted, wake_result success and a continued state_report count as signs of life; a failed wake does not", () => {
    for (const life of [
      { type: "task_progress", task_id: "t1", progress: 10 },
      { type: "task_accepted", task_id: "t1" },
      { type: "wake_result", task_id: "t1", status: "success", attempt: 1 },
      { type: "state_report", task_id: "t1", generation: 1 }
    ]) {
      const hub = holding().advance(1_100_000).frame(1, life).advance(200_000)
      sweep(hub)
      assert.strictEqual(hub.task("t1").generation, 1, JSON.stringify(life))
    }
    const hub = holding().advance(1_100_000).frame(1, { type: "wake_result", task_id: "t1", status: "failed", attempt: 1 }).advance(200_000)
    sweep(hub)
    assert.strictEqual(hub.task("t1").generation, 2)
  })

  it("a task whose agent is offline is taken back after 10 min (crash restart: nobody came back)", () => {
    const hub = holding().run((s, now) => restart(s, now, settings, "crash")).advance(600_001)
    sweep(hub)
    assert.deepInclude(hub.task("t1"), { state: "pending", generation: 2 })
  })
})

describe("reaper (reaper.ex)", () => {
  it("an agent that has not pinged for 60 s is cut off and its task taken back; other frames are not life", () => {
    const hub = holding().advance(30_000).frame(1, { type: "ping" })
    assert.deepInclude(hub.sent(1)[0], { type: "pong", timestamp: hub.now })
    hub.advance(40_000).frame(1, { type: "task_progress", task_id: "t1" }).advance(20_000)
    hub.run((s, now) => reap(s, now, settings))
    assert.deepStrictEqual(hub.closes(), [])
    hub.advance(1).run((s, now) => reap(s, now, settings))
    assert.deepStrictEqual(hub.closes(), [{ _tag: "terminate", conn: 1 }])
    assert.strictEqual(hub.state.agents.size, 0)
    assert.deepInclude(hub.task("t1"), { state: "pending", generation: 2 })
  })
})

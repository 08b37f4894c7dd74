/**
 * The dev hub's pure transitions against AgentCom's rules (socket.ex, validation.ex, violation_tracker.ex,
 * task_queue.ex, agent_fsm.ex, scheduler.ex, reaper.ex). No sockets, no clock: time is a number.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { onFrame } from "../../src/hub/frames.ts"
import type { HubFrame } from "../../src/hub/inbound.ts"
import { cancel, submit } from "../../src/hub/requests.ts"
import { defaultSettings, emptyState, type HubState, type Out, type Settings, type Step } from "../../src/hub/state.ts"
import { disconnect, reap, restart, sweepStuck, tick } from "../../src/hub/timers.ts"
import { KNOWN_TYPES, validateWsMessage } from "../../src/hub/validation.ts"

const settings: Settings = { ...defaultSettings, token: "secret" }

/** A small driver: the state, the clock, and the outs of the last step. */
class Hub {
  state: HubState = emptyState
  now = 1_000_000
  out: ReadonlyArray<Out> = []
  run(f: (s: HubState, now: number) => Step): this {
    const step = f(this.state, this.now)
    this.state = step.state
    this.out = step.out
    return this
  }
  frame(conn: number, msg: unknown): this {
    return this.run((s, now) => onFrame(s, conn, typeof msg === "string" ? msg : JSON.stringify(msg), now, settings))
  }
  identify(conn: number, agentId: string): this {
    return this.frame(conn, { type: "identify", agent_id: agentId, token: "secret", name: `Agent ${agentId}`, status: "idle", capabilities: [] })
  }
  submit(taskId: string, extra: { agent_id?: string; max_retries?: number } = {}): this {
    return this.run((s, now) => submit(s, taskId, { description: `do ${taskId}`, ...extra }, now, settings))
  }
  advance(ms: number): this {
    this.now += ms
    return this
  }
  sent(conn?: number): ReadonlyArray<HubFrame> {
    return this.out.flatMap((o) => (o._tag === "send" && (conn === undefined || o.conn === conn) ? [o.frame] : []))
  }
  closes(): ReadonlyArray<Out> {
    return this.out.filter((o) => o._tag === "close" || o._tag === "terminate")
  }
  task(id: string) {
    return this.state.tasks.get(id)!
  }
  agent(id: string) {
    return this.state.agents.get(id)!
  }
}

/** One agent `a` on connection 1 holding task `t1` at generation 1. */
const holding = (accepted = true): Hub => {
  const hub = new Hub().identify(1, "a").submit("t1")
  assert.deepInclude(hub.sent(1)[0], { type: "task_assign", task_id: "t1", generation: 1 })
  if (accepted) hub.frame(1, { type: "task_accepted", task_id: "t1" })
  return hub
}

describe("identify", () => {
  it("identified, with the real hub's answers before it and for a wrong token (the connection stays open)", () => {
    const hub = new Hub().frame(1, { type: "ping" })
    assert.deepStrictEqual(hub.sent(), [{ type: "error", error: "not_identified" }])
    hub.frame(1, { type: "identify", agent_id: "a", token: "wrong" })
    assert.deepStrictEqual(hub.sent(), [{ type: "error", error: "invalid_token" }])
    assert.deepStrictEqual(hub.closes(), [])
    hub.identify(1, "a")
    assert.deepStrictEqual(hub.sent(), [{ type: "identified", agent_id: "a" }])
    assert.strictEqual(hub.agent("a").fsm, "idle")
  })
})

describe("validation (validation.ex)", () => {
  it("field types and limits give validation_failed with the hub's error list, in its order", () => {
    const hub = new Hub().identify(1, "a")
    hub.frame(1, { type: "task_failed", task_id: "t", generation: 1.5, reason: "x".repeat(2001) })
    assert.deepStrictEqual(hub.sent(), [{
      type: "error",
      error: "validation_failed",
      message_type: "task_failed",
      errors: [
        { field: "generation", error: "wrong_type", detail: "expected integer, got float", value: 1.5 },
        { field: "reason", error: "too_long", detail: "exceeds maximum length of 2000 characters", value: `${"x".repeat(50)}...` }
      ]
    }])
    hub.frame(1, { type: "task_complete", task_id: "t" })
    assert.deepStrictEqual(hub.sent(), [{
      type: "error", error: "validation_failed", message_type: "task_complete",
      errors: [{ field: "generation", error: "required", detail: "field is required" }]
    }])
  })

  it("limits count characters: agent_id 128, name 256, error 2000; progress must be an integer", () => {
    assert.deepStrictEqual(validateWsMessage({ type: "identify", agent_id: "é".repeat(128), token: "t" }), [])
    assert.deepInclude(validateWsMessage({ type: "identify", agent_id: "a".repeat(129), token: "t" })[0], { field: "agent_id", error: "too_long" })
    assert.deepInclude(validateWsMessage({ type: "identify", agent_id: "a", token: "t", name: "n".repeat(257) })[0], { field: "name", error: "too_long" })
    assert.deepInclude(validateWsMessage({ type: "wake_result", task_id: "t", status: "failed", error: "e".repeat(2001) })[0], { field: "error" })
    assert.deepStrictEqual(validateWsMessage({ type: "task_progress", task_id: "t", progress: 50, message: "free text" }), [])
    assert.deepInclude(validateWsMessage({ type: "task_progress", task_id: "t", progress: 50.5 })[0], { field: "progress", detail: "expected integer, got float" })
    assert.deepInclude(validateWsMessage({ type: "identify", agent_id: "a", token: "t", capabilities: ["x", 3] })[0],
      { field: "capabilities[1]", detail: "expected string, got integer", value: 3 })
  })

  it("unknown types, task_rejected among them, are refused with the known types", () => {
    const hub = new Hub().identify(1, "a").frame(1, { type: "task_rejected", task_id: "t", reason: "busy" })
    assert.deepStrictEqual(hub.sent(), [{
      type: "error", error: "validation_failed", message_type: "task_rejected",
      errors: [{ field: "type", error: "unknown_message_type", detail: "unknown message type 'task_rejected'", known_types: KNOWN_TYPES }]
    }])
    assert.strictEqual(KNOWN_TYPES.length, 19)
    assert.notInclude(KNOWN_TYPES, "task_rejected")
    assert.include(KNOWN_TYPES, "state_report")
  })

  it("not JSON is invalid_json and is not counted; no type is `required` with message_type unknown", () => {
    const hub = new Hub().frame(1, "{nope")
    assert.deepStrictEqual(hub.sent(), [{ type: "error", error: "invalid_json" }])
    assert.isFalse(hub.state.violations.has(1))
    hub.frame(1, { hello: 1 })
    assert.deepStrictEqual(hub.sent(), [{
      type: "error", error: "validation_failed", message_type: "unknown", errors: [{ field: "type", error: "required", detail: "field is required" }]
    }])
  })

  it("the tenth violation within a minute closes the connection 1008; an older window starts over", () => {
    const hub = new Hub().identify(1, "a")
    for (let i = 1; i <= 9; i++) hub.advance(1000).frame(1, { type: "nope" })
    assert.strictEqual(hub.state.violations.get(1)!.count, 9)
    assert.deepStrictEqual(hub.closes(), [])
    hub.advance(1000).frame(1, { type: "nope" })
    assert.deepStrictEqual(hub.sent(), [], "no validation_failed frame for the tenth")
    assert.deepStrictEqual(hub.closes(), [{ _tag: "close", conn: 1, code: 1008, reason: "too many validation errors" }])
    // The agent is cooled down: identify within 30 s is closed.
    hub.run((s, now) => disconnect(s, 1, now, settings)).advance(1000).identify(2, "a")
    assert.deepStrictEqual(hub.closes(), [{ _tag: "close", conn: 2, code: 1008, reason: "cooldown active: retry in 30s" }])
    hub.advance(30_000).identify(3, "a")
    assert.deepStrictEqual(hub.sent(3), [{ type: "identified", agent_id: "a" }])

    const other = new Hub().identify(1, "b")
    for (let i = 1; i <= 9; i++) other.frame(1, { type: "nope" })
    other.advance(60_001).frame(1, { type: "nope" })
    assert.deepStrictEqual(other.state.violations.get(1), { count: 1, window_start: other.now })
    assert.deepStrictEqual(other.closes(), [])
  })
})

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

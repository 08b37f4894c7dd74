/**
 * The dev hub's identify and validation rules against AgentCom's (socket.ex, validation.ex, violation_tracker.ex).
 * No sockets, no clock: time is a number. The task rules: state.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { disconnect } from "../../src/hub/timers.ts"
import { KNOWN_TYPES, validateWsMessage } from "../../src/hub/validation.ts"
import { Hub, settings } from "./hubDriver.ts"

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

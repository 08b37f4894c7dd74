/**
 * What the decider marks durable (issue 14): the decisions whose changes must be on disk before their commands run,
 * and those that ride along with the next save. Pure: no Effect runtime, no clock.
 */
import { describe, expect, it } from "vitest"
import type { Input } from "../../src/domain/flow/Messages.ts"
import { complete, hub, model, run, task } from "./decider.fixtures.ts"

describe("what must be on disk before the commands run (issue 14)", () => {
  const durable = (m: ReturnType<typeof model>, input: Input) => run(m, input).durable
  it("the accept and the report are durable; so is a refusal that drops a report, and a wake that succeeded before .started", () => {
    expect(durable(model([]), hub({ type: "task_assign", task_id: "t", generation: 1 }))).toBe(true)
    expect(durable(model([task("t", "working")]), { _tag: "Agent", event: { _tag: "Succeeded", taskId: "t", result: { status: "success" } } })).toBe(true)
    const inFlight = model([task("a", "reporting")], [complete("a")], { inFlight: { taskId: "a", type: "task_complete", seq: 1, generation: 1 }, sends: 1 })
    expect(durable(inFlight, hub({ type: "error", error: "task_complete_failed: not_found" }))).toBe(true)
    expect(durable(model([task("t", "waking")]), { _tag: "WakeSucceeded", taskId: "t" })).toBe(true)
  })
  it("the hub's terminal ack rides along with the next durable save while other work is held; the last one is saved at once", () => {
    const ack = hub({ type: "task_ack", task_id: "a", status: "complete" })
    const inFlight = { inFlight: { taskId: "a", type: "task_complete", seq: 1, generation: 1 }, sends: 1 } as const
    // another task is working: its next save comes soon (at worst the report is sent once more after a crash)
    const busy = run(model([task("a", "reporting"), task("b", "working")], [complete("a")], inFlight), ack)
    expect(busy.model.queue.outbox).toEqual([])
    expect(busy.durable).toBe(false)
    // the ack that leaves the sidecar idle: no save is coming for it to ride along with
    const last = run(model([task("a", "reporting")], [complete("a")], inFlight), ack)
    expect(last.model.queue).toEqual({ version: 2, tasks: [], outbox: [] })
    expect(last.durable).toBe(true)
  })
  it("a decision that leaves the queue as it was forces nothing out, unless it is a Flush", () => {
    // the agent started (a lazy change) before its wake command exited: the wake's success changes nothing
    expect(durable(model([task("t", "working")]), { _tag: "WakeSucceeded", taskId: "t" })).toBe(false)
    expect(durable(model([task("t", "working")]), hub({ type: "task_ack", task_id: "t", status: "accepted" }))).toBe(false)
    expect(durable(model([task("t", "working")]), { _tag: "Flush" })).toBe(true)
  })
})

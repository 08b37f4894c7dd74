/**
 * The decider against the hub users run (AgentCom): stale-generation refusals and results kept for a task handed
 * back, state_report after identify and the hub's answers to it, keep-alives, and the hub's field limits. The rest
 * of the decider's rules: TaskDecider.test.ts.
 */
import { describe, expect, it } from "vitest"
import { complete, config, hub, model, run, task } from "./decider.fixtures.ts"

describe("the hub users run (AgentCom)", () => {
  const inFlightA = (extra: Partial<Parameters<typeof model>[2]> = {}) =>
    model([task("a", "reporting"), task("b", "reporting")], [complete("a"), { type: "task_failed", task_id: "b", reason: "x", generation: 1 }],
      { inFlight: { taskId: "a", type: "task_complete", seq: 1, generation: 1 }, sends: 1, ...extra })

  it("a stale refusal keeps the result; the task handed back is reported at once under the new generation", () => {
    const refused = run(inFlightA(), hub({ type: "error", error: "task_complete_failed: stale_generation" }))
    expect(refused.tags).toEqual(["Later StaleExpired", "SendReport task_failed b"])
    expect(refused.model.queue.outbox.find((r) => r.task_id === "a")?.stale_at).toBe(1_000)
    const back = run({ ...refused.model, inFlight: undefined }, hub({ type: "task_assign", task_id: "a", generation: 3 }))
    expect(back.tags).toEqual(["Send task_accepted", "SendReport task_complete a"])
    expect(back.sent.at(-1)).toEqual(complete("a", 3))
  })

  it("a stale refusal of a send made before the task was handed back: sent again at once", () => {
    const m = inFlightA()
    const adopted = { ...m, queue: { ...m.queue, outbox: [complete("a", 3), m.queue.outbox[1]!] } }
    const d = run(adopted, hub({ type: "error", error: "task_complete_failed: stale_generation" }))
    expect(d.tags).toEqual(["SendReport task_complete a"])
    expect(d.sent).toEqual([complete("a", 3)])
  })

  it("a kept result the hub never hands back is dropped when its time is up", () => {
    const refused = run(inFlightA(), hub({ type: "error", error: "task_complete_failed: stale_generation" }))
    const expired = run({ ...refused.model, inFlight: undefined }, { _tag: "StaleExpired", taskId: "a" })
    expect(expired.model.queue.tasks.map((t) => t.task_id)).toEqual(["b"])
  })

  it("validation_failed naming the report's type is a refusal; naming another frame's type is not", () => {
    const refusal = { type: "error", error: "validation_failed", message_type: "task_complete", errors: [{ field: "generation" }] } as const
    expect(run(inFlightA(), hub(refusal)).model.queue.outbox.map((r) => r.task_id)).toEqual(["b"])
    expect(run(inFlightA(), hub({ ...refusal, message_type: "task_progress" })).model.queue.outbox.map((r) => r.task_id)).toEqual(["a", "b"])
    expect(run(inFlightA(), hub({ type: "error", error: "unknown_message_type" })).model.queue.outbox.length).toBe(2)
  })

  it("task_recovering carries the description cut to the hub's 10,000 characters", () => {
    const m = model([task("r", "recovering", { description: "d".repeat(12_000) })], [], { identified: false })
    expect(run(m, hub({ type: "identified" })).sent).toMatchObject([{ type: "task_recovering", description: "d".repeat(10_000) }])
  })

  it("identified: state_report for each held task (not the recovering ones)", () => {
    const m = model([task("w", "working", { generation: 4 }), task("r", "recovering")], [], { identified: false })
    const d = run(m, hub({ type: "identified" }))
    expect(d.sent.filter((f) => f.type === "state_report")).toEqual([{ type: "state_report", task_id: "w", status: "working", generation: 4 }])
    expect(d.sent.filter((f) => f.type === "task_recovering").map((f) => f.task_id)).toEqual(["r"])
  })

  const reported = () => run(model([task("w", "working", { generation: 4 })], [], { identified: false }), hub({ type: "identified" })).model
  it("state_report_ack continue: task_accepted again (the hub's agent state waits for it)", () => {
    expect(run(reported(), hub({ type: "state_report_ack", task_id: "w", action: "continue" })).tags).toEqual(["Send task_accepted"])
  })
  it("state_report_ack abort: stopped after the grace, unless the hub handed the task back meanwhile", () => {
    const abort = run(reported(), hub({ type: "state_report_ack", task_id: "w", action: "abort" }))
    expect(abort.tags).toEqual(["Later AbortDue"])
    expect(abort.status("w")).toBe("working")
    const due = { _tag: "AbortDue", taskId: "w", generation: 4 } as const
    expect(run(abort.model, due).tags).toEqual(["Unwatch", "StopWake now", "WriteCancelled", "Later CleanupDue"])
    const handedBack = run(abort.model, hub({ type: "task_assign", task_id: "w", generation: 6 }))
    expect(run(handedBack.model, due).tags).toEqual([])
    expect(handedBack.status("w")).toBe("working")
  })
  it("state_report_ack abort for a task whose report is on the wire: kept, and nothing else is sent before its answer", () => {
    const m = model([task("a", "reporting"), task("b", "reporting")], [complete("a"), complete("b")], {
      inFlight: { taskId: "a", type: "task_complete", seq: 1, generation: 1 }, sends: 1, reported: new Map([["a", 1]])
    })
    const d = run(m, hub({ type: "state_report_ack", task_id: "a", action: "abort" }))
    expect(d.tags).toEqual(["Later StaleExpired"])
    expect(d.model.inFlight?.taskId).toBe("a")
    expect(d.model.queue.outbox.find((r) => r.task_id === "a")?.stale_at).toBe(1_000)
    // its send times out: the next one goes, the kept one waits for the task to be handed back
    expect(run(d.model, { _tag: "ReportUnanswered", seq: 1 }).tags).toEqual(["SendReport task_complete b"])
  })

  it("an abort answering an older report than the generation now held changes nothing", () => {
    const handedBack = run(reported(), hub({ type: "task_assign", task_id: "w", generation: 6 }))
    expect(run(handedBack.model, hub({ type: "state_report_ack", task_id: "w", action: "abort" })).tags).toEqual([])
  })

  it("keep-alive: a working task silent for a minute is reported alive; not more often, not to a hub that is away", () => {
    const m = model([task("w", "working")], [], { life: new Map([["w", { lastSign: 0, lastRelay: 0, pendingProgress: undefined }]]) })
    expect(run(m, { _tag: "KeepAlive", taskId: "w" }, config, 60_000).sent).toEqual([{ type: "task_progress", task_id: "w" }])
    expect(run(m, { _tag: "KeepAlive", taskId: "w" }, config, 59_000).sent).toEqual([])
    expect(run({ ...m, identified: false }, { _tag: "KeepAlive", taskId: "w" }, config, 60_000).sent).toEqual([])
  })

  it("fits the hub's limits: a reason cut to 2,000 characters (kept whole in rejected/), fields lifted to the top", () => {
    const long = "é".repeat(3_000)
    const failed = run(model([task("t", "working")]), { _tag: "Agent", event: { _tag: "Failed", taskId: "t", reason: long } })
    expect(failed.sent).toEqual([{ type: "task_failed", task_id: "t", reason: "é".repeat(2_000), generation: 1 }])
    expect(failed.commands).toContainEqual({ _tag: "KeepText", taskId: "t", label: "reason", text: long })
    const result = { status: "success", tokens_used: 1200, verification_report: { passed: 3 }, verification_history: [{ run: 1 }] }
    const done = run(model([task("t", "working")]), { _tag: "Agent", event: { _tag: "Succeeded", taskId: "t", result } })
    expect(done.sent).toEqual([{ type: "task_complete", task_id: "t", result, generation: 1, tokens_used: 1200, verification_report: { passed: 3 }, verification_history: [{ run: 1 }] }])
    const odd = { status: "success", tokens_used: 12.5, verification_report: "fine", verification_history: [1] }
    expect(run(model([task("t", "working")]), { _tag: "Agent", event: { _tag: "Succeeded", taskId: "t", result: odd } }).sent)
      .toEqual([{ type: "task_complete", task_id: "t", result: odd, generation: 1 }])
  })
})

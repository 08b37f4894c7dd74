/**
 * The task decider as a table: for each (state, input), the new state and the commands (logs aside). Pure: no
 * Effect runtime, no clock.
 */
import { describe, expect, it } from "vitest"
import { transition } from "../../src/domain/TaskState.ts"
import type { TaskStatus } from "../../src/domain/Task.ts"
import type { AgentEvent } from "../../src/domain/AgentFiles.ts"
import type { Input } from "../../src/domain/flow/Messages.ts"
import { complete, config, hub, model, run, task } from "./decider.fixtures.ts"

describe("the transition table", () => {
  const statuses: ReadonlyArray<TaskStatus> = ["accepted", "waking", "waking_confirmation", "working", "reporting", "recovering"]
  it("reporting is final; recovering only resumes or ends; nothing goes back to waking once started", () => {
    for (const event of ["wake_started", "wake_ok", "self_start", "started_seen", "ended", "resume_wake", "resume_confirm", "resume_work"] as const) {
      expect(transition("reporting", event)._tag).toBe("Failure")
    }
    expect(transition("working", "wake_started")._tag).toBe("Failure")
    expect(transition("waking_confirmation", "wake_started")._tag).toBe("Failure")
    expect(transition("recovering", "started_seen")._tag).toBe("Failure")
    for (const from of statuses.filter((s) => s !== "reporting")) expect(transition(from, "ended")).toMatchObject({ success: "reporting" })
  })
})

describe("taking a task", () => {
  it.each([
    ["room left: persisted, answered, task file written, woken", model([]), "t-1", ["Send task_accepted", "WriteTaskFile", "RunWake"], "accepted"],
    ["no room: busy", model([task("x", "working")]), "t-1", ["Send task_rejected"], undefined],
    ["not accepting: shutting_down", model([], [], { accepting: false }), "t-1", ["Send task_rejected"], undefined],
    ["already held: accepted again, nothing else", model([task("t-1", "working")]), "t-1", ["Send task_accepted"], "working"],
    ["an id that cannot name a file: invalid_task", model([]), "../x", ["Send task_rejected"], undefined],
    ["an id starting with a dot: invalid_task", model([]), "...", ["Send task_rejected"], undefined],
    ["an unprintable id: no answer", model([]), "a\u0000b", [], undefined]
  ] as const)("%s", (_, m, id, commands, status) => {
    const d = run(m, hub({ type: "task_assign", task_id: id, generation: 4 }))
    expect(d.tags).toEqual(commands)
    expect(d.status(id)).toBe(status)
  })

  it("max_pending_reports: with that many reports waiting for the hub, new tasks are refused busy", () => {
    const waiting = model(["a", "b", "c"].map((id) => task(id, "reporting")), ["a", "b", "c"].map((id) => complete(id)))
    expect(run(waiting, hub({ type: "task_assign", task_id: "n" })).tags).toEqual(["Send task_rejected"])
    expect(run({ ...waiting, queue: { ...waiting.queue, outbox: waiting.queue.outbox.slice(1) } }, hub({ type: "task_assign", task_id: "n" })).status("n")).toBe("accepted")
  })

  it("a recovering task does not count against max_active_tasks; a reporting one does not either", () => {
    expect(run(model([task("r", "recovering"), task("d", "reporting")]), hub({ type: "task_assign", task_id: "n" })).status("n")).toBe("accepted")
  })

  it("without a wake command the agent starts itself: working at once, its clocks watched", () => {
    const d = run(model([]), hub({ type: "task_assign", task_id: "t-1" }), { ...config, wakes: false })
    expect(d.tags).toEqual(["Send task_accepted", "WriteTaskFile", "Watch work"])
    expect(d.status("t-1")).toBe("working")
  })

  it("fields of the wrong type: invalid_task", () => {
    expect(run(model([]), hub({ type: "task_assign", task_id: "t-1", description: 5 })).tags).toEqual(["Send task_rejected"])
  })
})

describe("waking", () => {
  const waking = (status: TaskStatus) => model([task("t-1", status)])
  it.each([
    ["an attempt starts: waking", waking("accepted"), { _tag: "WakeAttemptStarted", taskId: "t-1", attempt: 1 }, ["Reply true"], "waking"],
    ["an attempt after the agent started: refused", waking("working"), { _tag: "WakeAttemptStarted", taskId: "t-1", attempt: 2 }, ["Reply false"], "working"],
    ["an attempt ended: wake_result", waking("waking"), { _tag: "WakeAttemptEnded", taskId: "t-1", attempt: 1, outcome: { status: "failed", exitCode: 1, stderrTail: "" } }, ["Send wake_result", "Reply true"], "waking"],
    ["the wake succeeded: wait for .started", waking("waking"), { _tag: "WakeSucceeded", taskId: "t-1" }, ["Watch confirm"], "waking_confirmation"],
    ["attempts ran out: task_failed", waking("waking"), { _tag: "WakeExhausted", taskId: "t-1", attempts: 4 }, ["Unwatch", "StopWake graceful", "SendReport task_failed t-1"], "reporting"],
    ["attempts ran out after the agent started: nothing", waking("working"), { _tag: "WakeExhausted", taskId: "t-1", attempts: 4 }, [], "working"],
    ["no .started in time: confirmation_timeout", waking("waking_confirmation"), { _tag: "PhaseTimedOut", taskId: "t-1", failure: { kind: "confirmation_timeout" } }, ["Unwatch", "StopWake graceful", "SendReport task_failed t-1"], "reporting"],
    ["a confirmation timer that lost the race: nothing", waking("working"), { _tag: "PhaseTimedOut", taskId: "t-1", failure: { kind: "confirmation_timeout" } }, [], "working"],
    ["working too long: task_timeout", waking("working"), { _tag: "PhaseTimedOut", taskId: "t-1", failure: { kind: "task_timeout" } }, ["Unwatch", "StopWake graceful", "SendReport task_failed t-1"], "reporting"],
    ["the task file cannot be written: the task fails", waking("accepted"), { _tag: "TaskFileFailed", taskId: "t-1", error: "ENOSPC" }, ["Unwatch", "StopWake graceful", "SendReport task_failed t-1"], "reporting"]
  ] as const)("%s", (_, m, input, commands, status) => {
    const d = run(m, input)
    expect(d.tags).toEqual(commands)
    expect(d.status("t-1")).toBe(status)
  })

  it("the failure reasons on the wire", () => {
    const reason = (input: Parameters<typeof run>[1], status: TaskStatus) =>
      run(model([task("t-1", status)]), input).sent.flatMap((f) => f.type === "task_failed" ? [f.reason] : [])
    expect(reason({ _tag: "WakeExhausted", taskId: "t-1", attempts: 4 }, "waking")).toEqual(["wake_failed_after_4_attempts"])
    expect(reason({ _tag: "PhaseTimedOut", taskId: "t-1", failure: { kind: "agent_stalled" } }, "working")).toEqual([])
  })

  it("agent_stalled only when the last sign of life is old enough", () => {
    const m = model([task("t-1", "working")], [], { life: new Map([["t-1", { lastSign: 0, lastRelay: 0, pendingProgress: undefined }]]) })
    const stalled = { _tag: "PhaseTimedOut", taskId: "t-1", failure: { kind: "agent_stalled" } } as const
    expect(run(m, stalled, config, 19_999).status("t-1")).toBe("working")
    expect(run(m, stalled, config, 20_000).sent).toMatchObject([{ type: "task_failed", reason: "agent_stalled" }])
  })
})

describe("the agent's files", () => {
  const agent = (event: AgentEvent): Input => ({ _tag: "Agent", event })
  it.each([
    [".started while waking: working, no more attempts", "waking", { _tag: "Started", taskId: "t-1" }, ["StopWake graceful", "Watch work"], "working"],
    [".started for a recovering task: waits for the hub", "recovering", { _tag: "Started", taskId: "t-1" }, [], "recovering"],
    ["a success result: task_complete", "working", { _tag: "Succeeded", taskId: "t-1", result: { status: "success" } }, ["Unwatch", "StopWake graceful", "SendReport task_complete t-1"], "reporting"],
    ["a result before .started counts", "waking_confirmation", { _tag: "Failed", taskId: "t-1", reason: "tests failed" }, ["Unwatch", "StopWake graceful", "SendReport task_failed t-1"], "reporting"],
    ["an unusable result: moved aside, task_failed", "working", { _tag: "Invalid", taskId: "t-1", reason: "result_parse_error: x" }, ["RejectResult", "Unwatch", "StopWake graceful", "SendReport task_failed t-1"], "reporting"],
    ["a second result once reporting: nothing", "reporting", { _tag: "Succeeded", taskId: "t-1", result: {} }, [], "reporting"]
  ] as const)("%s", (_, status, event, commands, next) => {
    const d = run(model([task("t-1", status)]), agent(event))
    expect(d.tags).toEqual(commands)
    expect(d.status("t-1")).toBe(next)
  })

  it("progress: an integer 0–100, at most one per 5 s; while the hub is away only the newest waits", () => {
    const progress = (percent: number) => agent({ _tag: "Progress", taskId: "t-1", percent })
    const first = run(model([task("t-1", "working")]), progress(33.3))
    expect(first.sent).toEqual([{ type: "task_progress", task_id: "t-1", progress: 33 }])
    expect(run(first.model, progress(140), config, 2_000).sent).toEqual([])
    const away = run({ ...first.model, identified: false }, progress(140), config, 9_000)
    expect(away.sent).toEqual([])
    const back = run(away.model, { _tag: "Link", up: true }, config, 10_000)
    expect(back.sent).toEqual([{ type: "task_progress", task_id: "t-1", progress: 100 }])
  })
})

describe("the outbox", () => {
  const two = model([task("a", "reporting"), task("b", "reporting")], [complete("a"), { type: "task_failed", task_id: "b", reason: "x", generation: 1 }],
    { inFlight: { taskId: "a", type: "task_complete", seq: 1, generation: 1 }, sends: 1 })
  it.each([
    ["terminal ack of the report in flight: settled, next one sent", hub({ type: "task_ack", task_id: "a", status: "complete" }), ["Unwatch", "StopWake graceful", "SendReport task_failed b", "CleanupOnceSaved"], ["b"]],
    ["task_ack accepted: nothing", hub({ type: "task_ack", task_id: "a", status: "accepted" }), [], ["a", "b"]],
    ["an ack without status for a report not in flight: nothing", hub({ type: "task_ack", task_id: "b" }), [], ["a", "b"]],
    ["a refusal of the kind in flight: dropped, files later", hub({ type: "error", error: "task_complete_failed: not_found" }), ["Unwatch", "StopWake graceful", "SendReport task_failed b", "Later CleanupDue"], ["b"]],
    ["a refusal of another kind: not ours", hub({ type: "error", error: "task_fail_failed: not_found" }), [], ["a", "b"]],
    ["no answer in time: sent again", { _tag: "ReportUnanswered", seq: 1 }, ["SendReport task_complete a"], ["a", "b"]],
    ["a late timer of an earlier send: nothing", { _tag: "ReportUnanswered", seq: 0 }, [], ["a", "b"]],
    ["the connection dropped: nothing in flight", { _tag: "Link", up: false }, [], ["a", "b"]],
    ["operator resend of the waiting one: only reordered", { _tag: "Operator", op: "resend", taskId: "b" }, ["Reply true"], ["b", "a"]]
  ] as const)("%s", (_, input, commands, outbox) => {
    const d = run(two, input)
    expect(d.tags).toEqual(commands)
    expect(d.model.queue.outbox.map((r) => r.task_id)).toEqual(outbox)
  })

  it("a report unanswered maxReportTries times is parked, and the next one flows; resend unparks it", () => {
    const m = { ...two, tries: new Map([["a", config.maxReportTries]]) }
    const d = run(m, { _tag: "ReportUnanswered", seq: 1 })
    expect(d.tags).toEqual(["SendReport task_failed b"])
    expect(d.model.queue.outbox.find((r) => r.task_id === "a")?.parked_at).toBe(1_000)
    const again = run({ ...d.model, inFlight: undefined }, { _tag: "Operator", op: "resend", taskId: "a" })
    expect(again.model.queue.outbox[0]).toEqual(complete("a"))
    expect(again.tags).toEqual(["SendReport task_complete a", "Reply true"])
  })

  it("nothing goes out while the hub is away; once identified, a report waits for its task's state_report answer", () => {
    const away = model([task("a", "reporting")], [complete("a")], { identified: false })
    expect(run(away, { _tag: "Link", up: true }).tags).toEqual([])
    const identified = run(away, hub({ type: "identified" }))
    expect(identified.tags).toEqual(["Send state_report", "Later ReconcileDue"])
    expect(run(identified.model, hub({ type: "state_report_ack", task_id: "a", action: "continue" })).tags).toEqual(["Send task_accepted", "SendReport task_complete a"])
    // an older hub that does not answer state_report holds the report up only for reconcileWaitMs
    expect(run(identified.model, { _tag: "ReconcileDue" }).tags).toEqual(["SendReport task_complete a"])
  })
})

describe("recovery and the hub's instructions", () => {
  const recovering = (last: TaskStatus) => model([task("t-1", "recovering", { last_status: last })])
  it("identified: task_recovering for each recovering task", () => {
    expect(run(recovering("working"), hub({ type: "identified" })).sent).toMatchObject([{ type: "task_recovering", task_id: "t-1", last_status: "working" }])
  })
  it("task_continue: adopts the generation and looks at the files first", () => {
    const d = run(recovering("working"), hub({ type: "task_continue", task_id: "t-1", generation: 7 }))
    expect(d.tags).toEqual(["Inspect"])
    expect(d.model.queue.tasks[0]?.generation).toBe(7)
  })
  it.each([
    ["a result on disk: reported", "accepted", true, { _tag: "Succeeded", taskId: "t-1", result: {} }, ["Unwatch", "StopWake graceful", "SendReport task_complete t-1"], "reporting"],
    [".started on disk: working, never woken", "accepted", true, undefined, ["Watch work", "Rescan"], "working"],
    ["was working: working", "working", false, undefined, ["Watch work", "Rescan"], "working"],
    ["was waiting for .started: the wait again", "waking_confirmation", false, undefined, ["Watch confirm", "Rescan"], "waking_confirmation"],
    ["never woken: woken now", "waking", false, undefined, ["WriteTaskFile", "RunWake", "Rescan"], "accepted"]
  ] as const)("inspected, %s", (_, last, started, result, commands, status) => {
    const d = run(recovering(last), { _tag: "Inspected", taskId: "t-1", started, result })
    expect(d.tags).toEqual(commands)
    expect(d.status("t-1")).toBe(status)
  })
  it("task_reassign lets a recovering task go after a grace (unless assigned again), ignores an active one", () => {
    const reassigned = run(recovering("working"), hub({ type: "task_reassign", task_id: "t-1" }))
    expect(reassigned.tags).toEqual(["Later AbortDue"])
    const due = { _tag: "AbortDue", taskId: "t-1", generation: 1 } as const
    expect(run(reassigned.model, due).tags).toEqual(["Unwatch", "StopWake now", "WriteCancelled", "Later CleanupDue"])
    const assigned = run(reassigned.model, hub({ type: "task_assign", task_id: "t-1", generation: 3 }))
    expect(assigned.tags).toEqual(["Send task_accepted", "Inspect"])
    expect(run(assigned.model, due).tags).toEqual([])
    expect(run(model([task("t-1", "working")]), hub({ type: "task_reassign", task_id: "t-1" })).tags).toEqual([])
  })
  it("task_cancelled: stopped now, .cancelled written, files removed after the grace", () => {
    const d = run(model([task("t-1", "waking")]), hub({ type: "task_cancelled", task_id: "t-1" }))
    expect(d.tags).toEqual(["Unwatch", "StopWake now", "WriteCancelled", "Later CleanupDue"])
    expect(d.model.queue.tasks).toEqual([])
  })
  it("operator forget and cancel answer whether the task was there", () => {
    expect(run(model([task("t-1", "working")]), { _tag: "Operator", op: "forget", taskId: "t-1" }).tags).toEqual(["Unwatch", "StopWake now", "Later CleanupDue", "Reply true"])
    expect(run(model([]), { _tag: "Operator", op: "cancel", taskId: "t-1" }).tags).toEqual(["Reply false"])
  })
  it("a cleanup that comes due after the id was taken again removes nothing", () => {
    expect(run(model([task("t-1", "working")]), { _tag: "CleanupDue", taskId: "t-1" }).tags).toEqual([])
    expect(run(model([]), { _tag: "CleanupDue", taskId: "t-1" }).tags).toEqual(["Cleanup"])
  })
})

describe("a failed save", () => {
  const assign = hub({ type: "task_assign", task_id: "t-1" })
  it("of a new task: busy, nothing held", () => {
    const d = run(model([]), { _tag: "SaveFailed", input: assign, error: "ENOSPC", retrying: false })
    expect(d.tags).toEqual(["Send task_rejected"])
    expect(d.model.queue.tasks).toEqual([])
  })
  it("of anything else: decided again later; a retry already under way is left to run", () => {
    const result = { _tag: "Agent", event: { _tag: "Succeeded", taskId: "t-1", result: {} } } as const
    expect(run(model([task("t-1", "working")]), { _tag: "SaveFailed", input: result, error: "ENOSPC", retrying: false }).tags).toEqual(["Retry Agent"])
    expect(run(model([task("t-1", "working")]), { _tag: "SaveFailed", input: result, error: "ENOSPC", retrying: true }).tags).toEqual([])
  })
})

describe("trace marks (one trace per task)", () => {
  it("begins at acceptance and at resumption; ends with how the task ended", () => {
    expect(run(model([]), hub({ type: "task_assign", task_id: "t-1", generation: 2 })).traces).toEqual(["begin"])
    const recovering = model([task("t-1", "recovering", { last_status: "working" })])
    expect(run(recovering, { _tag: "Inspected", taskId: "t-1", started: true, result: undefined }).traces).toEqual(["begin"])
    const reporting = model([task("a", "reporting")], [complete("a")], { inFlight: { taskId: "a", type: "task_complete", seq: 1, generation: 1 }, sends: 1 })
    expect(run(reporting, hub({ type: "task_ack", task_id: "a", status: "complete" })).traces).toEqual(["end acknowledged"])
    expect(run(reporting, hub({ type: "error", error: "task_complete_failed: not_found" })).traces).toEqual(["end refused"])
    expect(run(model([task("t-1", "working")]), hub({ type: "task_cancelled", task_id: "t-1" })).traces).toEqual(["end cancelled"])
    expect(run(model([task("t-1", "working")]), { _tag: "Operator", op: "forget", taskId: "t-1" }).traces).toEqual(["end forgotten"])
  })
})

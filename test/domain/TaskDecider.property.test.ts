/**
 * The decider over random histories: hub messages, agent events, phase ends, operator commands, connection
 * changes, failed saves and restarts, checked after every step against the guarantees of SPEC §6.
 */
import fc from "fast-check"
import { describe, it } from "vitest"
import type { AgentEvent } from "../../src/domain/AgentFiles.ts"
import type { Input } from "../../src/domain/flow/Messages.ts"
import { initialModel, type Model } from "../../src/domain/flow/Model.ts"
import type { HubMessage } from "../../src/domain/Protocol.ts"
import { activeCount, toRecovering } from "../../src/domain/QueueOps.ts"
import type { QueueFile } from "../../src/domain/Task.ts"
import { decide } from "../../src/domain/TaskDecider.ts"
import { config } from "./decider.fixtures.ts"

const ids = ["a", "b", "c"] as const
const id = fc.constantFrom(...ids)
const gen = fc.integer({ min: 1, max: 6 })

const hubMessage: fc.Arbitrary<HubMessage> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constant("task_assign" as const), task_id: id, generation: gen }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant("task_ack" as const), task_id: id, status: fc.constantFrom("complete", "failed", "accepted", "retried") }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("task_ack" as const), task_id: id }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("error" as const), error: fc.constantFrom("task_complete_failed: not_found", "task_fail_failed: invalid_state", "task_complete_failed: stale_generation", "task_fail_failed: stale_generation", "rate limited") }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("error" as const), error: fc.constant("validation_failed"), message_type: fc.constantFrom("task_complete", "task_failed", "task_progress") }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("state_report_ack" as const), task_id: id, action: fc.constantFrom("continue", "abort") }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("task_continue" as const), task_id: id, generation: gen }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("task_reassign" as const), task_id: id }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("task_cancelled" as const), task_id: id }) },
  { weight: 2, arbitrary: fc.constant({ type: "identified" as const }) }
)

const agentEvent: fc.Arbitrary<AgentEvent> = fc.oneof(
  fc.record({ _tag: fc.constant("Started" as const), taskId: id }),
  fc.record({ _tag: fc.constant("Progress" as const), taskId: id, percent: fc.double({ min: -10, max: 200, noNaN: true }) }),
  fc.record({ _tag: fc.constant("Succeeded" as const), taskId: id, result: fc.constant({ status: "success" }) }),
  fc.record({ _tag: fc.constant("Failed" as const), taskId: id, reason: fc.constantFrom("tests failed", "x".repeat(3000)) }),
  fc.record({ _tag: fc.constant("Invalid" as const), taskId: id, reason: fc.constant("result_parse_error: not JSON") })
)

type Step = { readonly input: Input; readonly saveFails: boolean } | { readonly restart: true }

const input: fc.Arbitrary<Input> = fc.oneof(
  { weight: 6, arbitrary: hubMessage.map((message): Input => ({ _tag: "Hub", message })) },
  { weight: 5, arbitrary: agentEvent.map((event): Input => ({ _tag: "Agent", event })) },
  { weight: 2, arbitrary: fc.boolean().map((up): Input => ({ _tag: "Link", up })) },
  { weight: 1, arbitrary: fc.record({ taskId: id, attempt: fc.integer({ min: 1, max: 4 }) }).map((x): Input => ({ _tag: "WakeAttemptStarted", ...x })) },
  { weight: 1, arbitrary: id.map((taskId): Input => ({ _tag: "WakeSucceeded", taskId })) },
  { weight: 1, arbitrary: id.map((taskId): Input => ({ _tag: "WakeExhausted", taskId, attempts: 4 })) },
  { weight: 1, arbitrary: fc.record({ taskId: id, kind: fc.constantFrom("confirmation_timeout", "task_timeout", "agent_stalled") as fc.Arbitrary<"confirmation_timeout" | "task_timeout" | "agent_stalled"> })
    .map(({ taskId, kind }): Input => ({ _tag: "PhaseTimedOut", taskId, failure: { kind } })) },
  { weight: 1, arbitrary: id.map((taskId): Input => ({ _tag: "Inspected", taskId, started: false, result: undefined })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 30 }).map((seq): Input => ({ _tag: "ReportUnanswered", seq })) },
  { weight: 1, arbitrary: fc.record({ taskId: id, generation: fc.option(gen, { nil: undefined }) }).map((x): Input => ({ _tag: "AbortDue", ...x })) },
  { weight: 1, arbitrary: id.map((taskId): Input => ({ _tag: "StaleExpired", taskId })) },
  { weight: 1, arbitrary: id.map((taskId): Input => ({ _tag: "KeepAlive", taskId })) },
  { weight: 1, arbitrary: fc.constant<Input>({ _tag: "Flush" }) },
  { weight: 1, arbitrary: fc.constant<Input>({ _tag: "ReconcileDue" }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("cancel", "forget", "resend") as fc.Arbitrary<"cancel" | "forget" | "resend">, taskId: id })
    .map((x): Input => ({ _tag: "Operator", ...x })) }
)

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 20, arbitrary: fc.record({ input, saveFails: fc.integer({ min: 0, max: 6 }).map((n) => n === 0) }) },
  { weight: 1, arbitrary: fc.constant({ restart: true as const }) }
)

/** Inputs that may make the sidecar forget a task it accepted: the hub settled it or said so, or the operator did. */
const mayForget = (i: Input): boolean =>
  (i._tag === "Hub" && ["task_ack", "error", "task_cancelled", "task_reassign"].includes(i.message.type)) ||
  (i._tag === "Operator" && i.op !== "resend") ||
  // the grace after the hub's own word (state_report_ack abort, a stale refusal) ran out
  i._tag === "AbortDue" || i._tag === "StaleExpired"

const fail = (why: string, history: ReadonlyArray<unknown>): never => {
  throw new Error(`${why}\nafter: ${JSON.stringify(history, null, 1).slice(-3000)}`)
}

const check = (steps: ReadonlyArray<Step>) => {
  let model: Model = initialModel({ version: 2, tasks: [], outbox: [] })
  let saved: QueueFile = model.queue
  let now = 0
  let outstanding: { readonly taskId: string; readonly seq: number; readonly type: "task_complete" | "task_failed" } | undefined
  const newest = new Map<string, number>()
  const history: Array<unknown> = []
  // inputs whose save failed: the interpreter feeds them again on its retry schedule (here: before the next step)
  let retries: ReadonlyArray<Input> = []
  const expanded = (s: Step): ReadonlyArray<Step> => {
    if ("restart" in s || s.saveFails) return [s]
    const due = retries.map((input): Step => ({ input, saveFails: false }))
    retries = []
    return [...due, s]
  }
  for (const s of steps.flatMap((x) => expanded(x))) {
    now += 1_000
    if ("restart" in s) {
      history.push("restart")
      model = initialModel(toRecovering(saved, now))
      outstanding = undefined
      retries = [] // a retry does not outlive the process
      continue
    }
    history.push(s.input)
    const before = model
    let d = decide(before, s.input, now, config)
    // a lazy decision is not written now: what is on disk stays as it was until a durable one or a flush
    if (d.model.queue !== saved && d.durable) {
      if (s.saveFails) {
        d = decide(before, { _tag: "SaveFailed", input: s.input, error: "ENOSPC", retrying: false }, now, config)
        if (d.model.queue !== before.queue) fail("a failed save changed the queue", history)
        for (const c of d.commands) if (c._tag === "Retry") retries = [...retries, c.input]
        for (const c of d.commands) {
          if (c._tag === "SendReport" || (c._tag === "Send" && c.frame.type !== "task_rejected")) fail(`sent ${c._tag} after a failed save`, history)
        }
      } else saved = d.model.queue
    }
    model = d.model
    const held = (q: QueueFile, t: string) => q.tasks.some((x) => x.task_id === t)

    // an accepted task is forgotten only on the hub's or the operator's word
    for (const t of before.queue.tasks) {
      if (!held(model.queue, t.task_id) && !mayForget(s.input)) fail(`${t.task_id} forgotten on ${s.input._tag}`, history)
    }
    // the newest generation the hub gave for a held task (once that decision is saved)
    if (!s.saveFails && s.input._tag === "Hub" && (s.input.message.type === "task_assign" || s.input.message.type === "task_continue")) {
      const g: unknown = s.input.message.generation
      if (typeof g === "number" && held(model.queue, s.input.message.task_id)) newest.set(s.input.message.task_id, g)
    }
    for (const t of ids) if (!held(model.queue, t)) newest.delete(t)

    // one report in flight: a new send only once the last one was answered, timed out, or its connection lost
    if (outstanding !== undefined) {
      const o = outstanding
      // the hub's answer: an ack (the report leaves the outbox), or a refusal of its kind (which may keep it, as a
      // stale one is kept for the task to be handed back); else its time ran out or its connection went
      const refusal = s.input._tag === "Hub" && s.input.message.type === "error" && (
        (s.input.message.error ?? "").startsWith(o.type === "task_complete" ? "task_complete_failed" : "task_fail_failed") ||
        (s.input.message.error === "validation_failed" && s.input.message.message_type === o.type))
      const answered = !saved.outbox.some((r) => r.task_id === o.taskId) || refusal ||
        (s.input._tag === "ReportUnanswered" && s.input.seq === o.seq) || (s.input._tag === "Link" && !s.input.up)
      if (answered) outstanding = undefined
    }
    const reports = d.commands.flatMap((c) => c._tag === "SendReport" ? [c] : [])
    if (reports.length > 1) fail("two reports sent in one step", history)
    for (const r of reports) {
      if (outstanding !== undefined) fail(`report for ${r.report.task_id} sent while ${outstanding.taskId}'s is in flight`, history)
      outstanding = { taskId: r.report.task_id, seq: r.seq, type: r.report.type }
      // nothing is sent that the saved state does not imply, and it carries the newest generation
      const stored = saved.outbox.find((x) => x.task_id === r.report.task_id)
      if (stored === undefined || stored.type !== r.report.type) fail(`report for ${r.report.task_id} not saved before sending`, history)
      const g = newest.get(r.report.task_id)
      if (g !== undefined && r.report.generation !== g) fail(`report carries generation ${r.report.generation}, the hub's newest is ${g}`, history)
    }
    for (const c of d.commands) {
      if (c._tag === "Send" && c.frame.type === "task_accepted" && !held(saved, c.frame.task_id)) fail(`task_accepted for ${c.frame.task_id} before it was saved`, history)
      // what only matters now (progress, wake outcomes) is not sent into a connection known to be down
      if (c._tag === "Send" && (c.frame.type === "task_progress" || c.frame.type === "wake_result") && !model.identified) fail(`${c.frame.type} sent to a hub that is away`, history)
    }
    // a new task is taken only with room left (a recovering task resumed on the hub's word may go over it)
    const fresh = model.queue.tasks.filter((t) => !held(before.queue, t.task_id))
    if (fresh.length > 0 && activeCount(before.queue) >= config.maxActiveTasks) fail("a new task taken over max_active_tasks", history)
    if (new Set(model.queue.tasks.map((t) => t.task_id)).size !== model.queue.tasks.length) fail("a task held twice", history)
    for (const r of model.queue.outbox) if (!held(model.queue, r.task_id)) fail("a report for a task not held", history)
  }
}

describe("the task decider over random histories", () => {
  it("keeps every guarantee after every step", () => {
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), check), { numRuns: Number(process.env["DECIDER_RUNS"] ?? 3000) })
  })
})

/**
 * Issue 11 end to end: the real dev hub (AgentCom's rules: take-back with a generation bump on disconnect,
 * stale_generation, validation_failed, acceptance timer, retries, state_report), the real daemon as a child process,
 * a shell agent, and a relay between them that records the wire and can cut the network. Assertions are on what
 * the hub ends up with, what crossed the wire, and the sidecar's files.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import {
  agentWorkingOn, assertCompletedOnce, assertNextTaskFlows, go, refusals, resultsFile, task, waitFor, waitTask, waitUntil, wakes, wire,
  type World, world
} from "../support/agentcom.ts"
import { isAlive } from "../support/proc.ts"

/** Submits a task and waits until the agent has started it and the hub has it accepted by the agent. */
const working = (w: World, description: string) => Effect.gen(function*() {
  const id = yield* w.hub.submit({ description })
  yield* waitFor(() => NFS.existsSync(resultsFile(w.dir, `${id}.started`)), `${id} started by the agent`)
  yield* waitUntil(agentWorkingOn(w.hub, id), `${id} accepted by the agent`)
  return id
})

/** The sidecar identified again after `before` identifies, and the hub sees it working on `id` again. */
const backAtWork = (w: World, id: string, before: number) => Effect.gen(function*() {
  yield* waitFor(() => wire(w.relay, "hub", "identified").length > before, "the sidecar identified again", 15_000)
  yield* waitUntil(agentWorkingOn(w.hub, id), `the sidecar holds ${id} again (accepted on its new connection)`, 15_000)
})

const identifies = (w: World) => wire(w.relay, "hub", "identified").length

describe.concurrent("AgentCom hub, issue 11 (dev hub, real daemon, real files)", () => {
  for (const mode of ["graceful", "crash"] as const) {
    it.live(`hub restart (${mode}) while the agent works: complete once, woken once, nothing refused; the next task flows`, () =>
      Effect.gen(function*() {
        // crash: the hub keeps the task assigned and runs its acceptance timer; the sidecar's state_report (continue)
        // and a new task_accepted must keep it, so the task is not taken back.
        const w = yield* world({ acceptanceTimeoutMs: 5_000 })
        yield* w.start
        const id = yield* working(w, "held")
        const before = identifies(w)
        const generation = (yield* task(w.hub, id)).generation
        yield* w.hub.restart(mode)
        yield* backAtWork(w, id, before)
        if (mode === "crash") {
          const t = yield* task(w.hub, id)
          assert.strictEqual(t.generation, generation, `kept through the crash, not taken back: ${JSON.stringify(t.timeline)}`)
        }
        go(w.dir)
        yield* assertCompletedOnce(w, id)
        yield* assertNextTaskFlows(w)
      }), 40_000)
  }

  it.live("network drop (relay cut, connections refused for 3 s) while the agent works: complete once, woken once; the next task flows", () =>
    Effect.gen(function*() {
      const w = yield* world()
      yield* w.start
      const id = yield* working(w, "held")
      const before = identifies(w)
      w.relay.cut(3_000)
      yield* waitTask(w.hub, id, (t) => t.state === "pending", "taken back by the hub at the drop")
      yield* backAtWork(w, id, before)
      go(w.dir)
      yield* assertCompletedOnce(w, id)
      yield* assertNextTaskFlows(w)
    }), 40_000)

  it.live("agent fails with a 3,000-character reason: no validation_failed, dead-lettered with ≤ 2,000 characters, full reason in the log; the next task flows", () =>
    Effect.gen(function*() {
      const w = yield* world()
      const reason = Array.from({ length: 400 }, (_, i) => `step-${i}-failed`).join(" ").slice(0, 3_000)
      assert.strictEqual(reason.length, 3_000)
      NFS.writeFileSync(NPath.join(w.dir, "result-fail-long.json"), JSON.stringify({ status: "failed", reason }))
      yield* w.start
      const id = yield* w.hub.submit({ description: "result-fail-long", max_retries: 1 })
      const t = yield* waitTask(w.hub, id, (t) => t.state === "dead_letter" || refusals(w.relay).length > 0, "dead-lettered (or refused)")
      assert.deepStrictEqual(refusals(w.relay), [], "frames the hub refused")
      assert.strictEqual(t.state, "dead_letter")
      assert.isAtMost(t.last_error!.length, 2_000)
      assert.isTrue(reason.startsWith(t.last_error!.slice(0, 1_000)), "the hub's reason is the start of the agent's")
      const log = NPath.join(w.dir, "sidecar.log")
      yield* waitFor(() => NFS.existsSync(log) && NFS.readFileSync(log, "utf8").includes(reason), "the full reason in sidecar.log")
      assert.strictEqual(wakes(w.dir, id), 1)
      yield* assertNextTaskFlows(w)
    }), 40_000)

  it.live("agent writes {\"percent\": 33.3}: the hub gets progress 33, an integer, and nothing is refused", () =>
    Effect.gen(function*() {
      const w = yield* world()
      yield* w.start
      const id = yield* w.hub.submit({ description: "progress" })
      const t = yield* waitTask(w.hub, id, (t) => t.progress !== undefined || refusals(w.relay).length > 0, "progress (or a refusal)")
      assert.deepStrictEqual(refusals(w.relay), [], "frames the hub refused")
      assert.strictEqual(t.progress, 33)
      const sent = wire(w.relay, "sidecar", "task_progress", id).map((f) => f.json["progress"]).filter((p) => p !== undefined)
      assert.isNotEmpty(sent)
      assert.isTrue(sent.every((p) => p === 33), `progress on the wire: ${JSON.stringify(sent)}`)
      go(w.dir)
      yield* assertCompletedOnce(w, id)
    }), 40_000)

  it.live("a result with verification_report, verification_history and tokens_used: the hub stores them from the top level of task_complete", () =>
    Effect.gen(function*() {
      const w = yield* world()
      const report = { status: "pass", summary: { total: 2, passed: 2, failed: 0 } }
      const history = [{ attempt: 1, status: "pass" }]
      NFS.writeFileSync(NPath.join(w.dir, "result-verified.json"),
        JSON.stringify({ status: "success", output: "ok", tokens_used: 1234, verification_report: report, verification_history: history }))
      yield* w.start
      const id = yield* w.hub.submit({ description: "result-verified" })
      const t = yield* assertCompletedOnce(w, id)
      assert.deepStrictEqual(t.verification_report, report)
      assert.deepStrictEqual(t.verification_history, history)
      assert.strictEqual(t.tokens_used, 1234)
      const frame = wire(w.relay, "sidecar", "task_complete", id)[0]!.json
      assert.deepStrictEqual([frame["tokens_used"], frame["verification_report"], frame["verification_history"]], [1234, report, history],
        "lifted to the top level of task_complete")
    }), 40_000)

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it.live(`sidecar restart (${signal}) mid-task: the task completes, the agent is woken once`, () =>
      Effect.gen(function*() {
        const w = yield* world()
        const first = yield* w.start
        const id = yield* working(w, "held")
        const before = identifies(w)
        first.process.kill(signal)
        const code = yield* first.exited
        if (signal === "SIGTERM") assert.strictEqual(code, 0, first.output())
        yield* waitTask(w.hub, id, (t) => t.state === "pending", "taken back by the hub when the sidecar went away")
        yield* w.start
        yield* backAtWork(w, id, before)
        go(w.dir)
        yield* assertCompletedOnce(w, id)
        yield* assertNextTaskFlows(w)
      }), 40_000)
  }

  it.live("state_report_ack abort (task cancelled on the hub while the sidecar was cut off): the agent's work stops, .cancelled is written, no report", () =>
    Effect.gen(function*() {
      const w = yield* world()
      yield* w.start
      const id = yield* working(w, "held-fg")
      const pid = Number(NFS.readFileSync(NPath.join(w.dir, "wake.pid"), "utf8"))
      w.relay.cut()
      yield* waitTask(w.hub, id, (t) => t.state === "pending", "taken back by the hub at the drop")
      yield* Effect.orDie(w.hub.cancel(id))
      w.relay.allow()
      yield* waitFor(() => wire(w.relay, "hub", "state_report_ack", id).some((f) => f.json["action"] === "abort"),
        "the hub answered state_report abort (the sidecar must state_report its held task after identified)")
      const cancelled = resultsFile(w.dir, `${id}.cancelled`)
      // The sidecar waits a grace (about 15 s) for a re-assign before it stops the task.
      yield* waitFor(() => NFS.existsSync(cancelled), `${id}.cancelled written`, 25_000)
      yield* waitFor(() => !isAlive(pid), "the wake command stopped", 5_000)
      go(w.dir)
      yield* Effect.sleep(1_000)
      assert.deepStrictEqual(wire(w.relay, "sidecar", undefined, id).filter((f) => f.json.type === "task_complete" || f.json.type === "task_failed"), [],
        "no report for an aborted task")
      assert.isFalse(NFS.existsSync(resultsFile(w.dir, `${id}.json`)), "the agent did not finish")
      const t = yield* task(w.hub, id)
      assert.strictEqual(t.state, "cancelled")
      assert.deepStrictEqual(refusals(w.relay), [], "frames the hub refused")
      assert.strictEqual(wakes(w.dir, id), 1)
    }), 45_000)

  it.live("an abort racing a re-assign (old-generation state_report answered abort, then task_assign): the work goes on and completes under the new generation", () =>
    Effect.gen(function*() {
      // The hub offers tasks to a returning agent only 1.5 s after it identified, so the abort comes first.
      const w = yield* world({ assignDelayMs: 1_500 })
      yield* w.start
      const id = yield* working(w, "held")
      const before = identifies(w)
      w.relay.cut(500)
      yield* waitTask(w.hub, id, (t) => t.state === "pending", "taken back by the hub at the drop")
      yield* waitFor(() => wire(w.relay, "hub", "state_report_ack", id).some((f) => f.json["action"] === "abort"),
        "the hub answered state_report abort (the sidecar must state_report its held task after identified)")
      const abortAt = wire(w.relay, "hub", "state_report_ack", id).find((f) => f.json["action"] === "abort")!.at
      yield* backAtWork(w, id, before)
      const reassigned = wire(w.relay, "hub", "task_assign", id).at(-1)!
      assert.isAbove(reassigned.at, abortAt, "the re-assign came after the abort")
      // Past the sidecar's grace for an abort: the work must still be going on.
      yield* Effect.sleep(Math.max(0, abortAt + 17_000 - Date.now()))
      assert.isFalse(NFS.existsSync(resultsFile(w.dir, `${id}.cancelled`)), "the re-assigned task was not stopped")
      const t = yield* task(w.hub, id)
      assert.strictEqual(t.generation, reassigned.json["generation"])
      go(w.dir)
      yield* assertCompletedOnce(w, id)
    }), 45_000)
})

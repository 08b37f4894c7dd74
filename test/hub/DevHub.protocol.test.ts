import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { agent, connect, events, eventually, request, taskOf, withHub } from "./client.ts"

describe("DevHub protocol v1 (raw ws client)", () => {
  it.live("identify → identified; the agent is listed", () =>
    withHub((hub) => Effect.gen(function*() {
      yield* agent(hub.wsUrl, "alpha")
      const agents = (yield* request(`${hub.url}/api/agents`)).body as ReadonlyArray<Record<string, unknown>>
      assert.strictEqual(agents.length, 1)
      assert.deepInclude(agents[0], { agent_id: "alpha", name: "Agent alpha", status: "idle", capabilities: ["code"], tasks: 0 })
      assert.isNumber(agents[0]!["connected_at"])
      assert.isNumber(agents[0]!["last_seen"])
    })))

  it.live("a wrong token gets invalid_token and the connection stays open, as on AgentCom's hub", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* connect(hub.wsUrl)
      yield* client.send({ type: "identify", agent_id: "alpha", token: "wrong", name: "a", status: "idle", capabilities: [], client_type: "sidecar" })
      assert.deepStrictEqual(yield* client.expect("error"), { type: "error", error: "invalid_token" })
      assert.deepStrictEqual(yield* hub.agents, [])
      yield* client.send({ type: "identify", agent_id: "alpha", token: "secret" })
      yield* client.expect("identified")
    })))

  it.live("without a configured token any token is accepted", () =>
    withHub((hub) => Effect.asVoid(agent(hub.wsUrl, "alpha", "anything")), { token: undefined }))

  it.live("a WebSocket from another origin (a web page) is refused at the upgrade", () =>
    withHub((hub) => Effect.gen(function*() {
      const refused = yield* Effect.flip(connect(hub.wsUrl, { origin: "http://evil.example" }))
      assert.match(refused.message, /Unexpected server response: 403/)
      const wrongPath = yield* Effect.flip(connect(hub.wsUrl.replace(/\/ws$/, "/other")))
      assert.match(wrongPath.message, /Unexpected server response: 404/)
    })))

  it.live("frames before identify are answered not_identified; the connection goes on", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* connect(hub.wsUrl)
      yield* client.send({ type: "ping" })
      assert.deepStrictEqual(yield* client.expect("error"), { type: "error", error: "not_identified" })
      yield* client.send({ type: "identify", agent_id: "a", token: "secret" })
      yield* client.expect("identified")
    })))

  it.live("ping → pong with the hub's time", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* agent(hub.wsUrl, "alpha")
      const before = Date.now()
      yield* client.send({ type: "ping" })
      const pong = yield* client.expect("pong")
      assert.isTrue(typeof pong.timestamp === "number" && pong.timestamp >= before && pong.timestamp <= Date.now() + 1, JSON.stringify(pong))
    })))

  it.live("assign → accepted → ack; wake and progress make it working; complete → ack complete, with tokens and verification kept", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* agent(hub.wsUrl, "alpha")
      const taskId = yield* hub.submit({ description: "write tests", metadata: { priority: 2 } })
      const assign = yield* client.expect("task_assign")
      assert.deepInclude(assign, { task_id: taskId, description: "write tests", metadata: { priority: 2 }, generation: 1, repo: null, file_hints: [] })
      assert.isNumber(assign["assigned_at"])
      yield* client.send({ type: "task_accepted", task_id: taskId })
      assert.deepStrictEqual(yield* client.expect("task_ack"), { type: "task_ack", task_id: taskId, status: "accepted" })
      assert.strictEqual((yield* taskOf(hub, taskId)).state, "accepted")
      yield* client.send({ type: "wake_result", task_id: taskId, status: "success", attempt: 1 })
      yield* client.send({ type: "task_progress", task_id: taskId, progress: 40, message: "halfway" })
      yield* client.send({ type: "ping" })
      yield* client.expect("pong") // frames are handled in order: the two above are in by now
      const working = yield* taskOf(hub, taskId)
      assert.deepInclude(working, { state: "working", agent: "alpha", progress: 40, progress_message: "halfway" })
      assert.deepStrictEqual(working.timeline.slice(-2).map((e) => [e.event, e.detail]), [["wake", "attempt 1: success"], ["progress", "40% halfway"]])
      assert.deepInclude((yield* hub.agents)[0], { status: "busy", fsm: "working" })

      yield* client.send({
        type: "task_complete", task_id: taskId, result: { status: "success", output: 42 }, generation: 1, tokens_used: 150,
        verification_report: { status: "pass" }, verification_history: [{ status: "fail" }, { status: "pass" }]
      })
      assert.deepStrictEqual(yield* client.expect("task_ack"), { type: "task_ack", task_id: taskId, status: "complete" })
      const listed = ((yield* request(`${hub.url}/api/tasks`)).body as ReadonlyArray<Record<string, unknown>>)[0]
      assert.deepInclude(listed, {
        state: "complete", result: { status: "success", output: 42 }, tokens_used: 150, verification_report: { status: "pass" },
        verification_history: [{ status: "fail" }, { status: "pass" }]
      })
      assert.deepStrictEqual(events(yield* taskOf(hub, taskId)), ["submitted", "assigned", "accepted", "wake", "progress", "complete"])
      // A report resent after a lost ack is refused: the task is no longer assigned.
      yield* client.send({ type: "task_complete", task_id: taskId, result: { status: "success", output: 42 }, generation: 1 })
      assert.deepStrictEqual(yield* client.expect("error"), { type: "error", error: "task_complete_failed: invalid_state" })
    })))

  it.live("task_failed → retried with a new generation, then dead_letter after max_retries", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* agent(hub.wsUrl, "alpha")
      const taskId = yield* hub.submit({ description: "doomed", max_retries: 2 })
      yield* client.expect("task_assign")
      yield* client.send({ type: "task_accepted", task_id: taskId })
      yield* client.expect("task_ack")
      yield* client.send({ type: "task_failed", task_id: taskId, reason: "wake_failed_after_4_attempts", generation: 1 })
      assert.deepStrictEqual(yield* client.expect("task_ack"), { type: "task_ack", task_id: taskId, status: "retried" })
      assert.deepInclude(yield* client.expect("task_assign"), { task_id: taskId, generation: 3 })
      yield* client.send({ type: "task_accepted", task_id: taskId })
      yield* client.expect("task_ack")
      yield* client.send({ type: "task_failed", task_id: taskId, error: "still broken", generation: 3 })
      assert.deepStrictEqual(yield* client.expect("task_ack"), { type: "task_ack", task_id: taskId, status: "dead_letter" })
      assert.deepInclude(yield* taskOf(hub, taskId), { state: "dead_letter", last_error: "still broken", retry_count: 2 })
    })))

  it.live("reports with a stale generation or for unknown tasks get the hub's *_failed errors", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* agent(hub.wsUrl, "alpha")
      const taskId = yield* hub.submit({ description: "x" })
      yield* client.expect("task_assign")
      yield* client.send({ type: "task_complete", task_id: taskId, result: {}, generation: 7 })
      assert.deepStrictEqual(yield* client.expect("error"), { type: "error", error: "task_complete_failed: stale_generation" })
      yield* client.send({ type: "task_failed", task_id: taskId, reason: "r", generation: 0 })
      assert.deepStrictEqual(yield* client.expect("error"), { type: "error", error: "task_fail_failed: stale_generation" })
      yield* client.send({ type: "task_complete", task_id: "t-unknown", result: {}, generation: 1 })
      assert.deepStrictEqual(yield* client.expect("error"), { type: "error", error: "task_complete_failed: not_found" })
      assert.deepInclude(yield* taskOf(hub, taskId), { state: "assigned", generation: 1 }, "refused reports change nothing")
    })))

  it.live("task_rejected is unknown to the hub: validation_failed, and the task waits for the acceptance timer", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x" })
      assert.strictEqual((yield* a.expect("task_assign")).generation, 1)
      yield* a.send({ type: "task_rejected", task_id: taskId, reason: "busy" })
      const refused = yield* a.expect("error")
      assert.deepInclude(refused, { error: "validation_failed", message_type: "task_rejected" })
      assert.deepInclude((refused as { errors: ReadonlyArray<unknown> }).errors[0], { field: "type", error: "unknown_message_type" })
      // Not accepted within the (here 300 ms) acceptance timeout: taken back and offered again.
      assert.deepInclude(yield* a.expect("task_assign"), { task_id: taskId, generation: 3 })
      assert.includeMembers(events(yield* taskOf(hub, taskId)), ["reclaimed"])
      assert.isTrue((yield* hub.agents)[0]!.unresponsive)
    }), { acceptanceTimeoutMs: 300 }))

  it.live("ten validation failures within a minute close the connection (1008) and the agent's task is taken back", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x" })
      yield* a.expect("task_assign")
      for (let i = 0; i < 9; i++) {
        yield* a.send({ type: "task_progress", task_id: taskId, progress: "half" })
        assert.deepInclude(yield* a.expect("error"), { error: "validation_failed", message_type: "task_progress" })
      }
      yield* a.send({ type: "task_progress", task_id: taskId, progress: "half" })
      assert.deepStrictEqual(yield* a.closed, { code: 1008, reason: "too many validation errors" })
      yield* eventually(taskOf(hub, taskId), (t) => t.state === "pending" && t.generation === 2, "taken back")
    })))

  it.live("a task for a named agent waits for that agent", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x", agent_id: "b" })
      yield* a.expectSilence(300)
      const b = yield* agent(hub.wsUrl, "b")
      assert.deepInclude(yield* b.expect("task_assign"), { task_id: taskId, generation: 1 })
    })))

  it.live("a dropped holder loses its task at once (new generation); back again it is assigned it anew and its old report is stale", () =>
    withHub((hub) => Effect.gen(function*() {
      const first = yield* agent(hub.wsUrl, "alpha")
      const taskId = yield* hub.submit({ description: "survive a disconnect" })
      yield* first.expect("task_assign")
      yield* first.send({ type: "task_accepted", task_id: taskId })
      yield* first.expect("task_ack")
      yield* first.kill
      yield* eventually(taskOf(hub, taskId), (t) => t.state === "pending" && t.generation === 2, "taken back")
      const again = yield* agent(hub.wsUrl, "alpha")
      assert.deepInclude(yield* again.expect("task_assign"), { task_id: taskId, generation: 3 })
      yield* again.send({ type: "state_report", task_id: taskId, status: "working", generation: 1 })
      assert.deepStrictEqual(yield* again.expect("state_report_ack"), { type: "state_report_ack", task_id: taskId, action: "abort" })
      yield* again.send({ type: "state_report", task_id: taskId, status: "working", generation: 3 })
      assert.deepStrictEqual(yield* again.expect("state_report_ack"), { type: "state_report_ack", task_id: taskId, action: "continue" })
      yield* again.send({ type: "task_complete", task_id: taskId, result: {}, generation: 1 })
      assert.deepStrictEqual(yield* again.expect("error"), { type: "error", error: "task_complete_failed: stale_generation" })
      yield* again.send({ type: "task_complete", task_id: taskId, result: {}, generation: 3 })
      assert.deepStrictEqual(yield* again.expect("task_ack"), { type: "task_ack", task_id: taskId, status: "complete" })
    })))

  it.live("task_recovering: any held task → task_continue (whoever holds it); an unknown task → task_reassign", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "a's" })
      yield* a.expect("task_assign")
      const b = yield* agent(hub.wsUrl, "b")
      yield* b.send({ type: "task_recovering", task_id: taskId, description: "a's", metadata: {}, last_status: "working" })
      assert.deepStrictEqual(yield* b.expect("task_continue"), { type: "task_continue", task_id: taskId, generation: 1 })
      yield* b.send({ type: "task_recovering", task_id: "t-old", description: "from before", metadata: { k: 1 }, last_status: "working" })
      assert.deepStrictEqual(yield* b.expect("task_reassign"), { type: "task_reassign", task_id: "t-old" })
      yield* b.expectSilence(200)
      assert.strictEqual((yield* hub.tasks).length, 1, "an unknown task is not adopted")
    })))

  it.live("restart: connections dropped, tasks kept; the agent coming back is assigned its task with a new generation", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x" })
      yield* a.expect("task_assign")
      const res = yield* request(`${hub.url}/api/hub/restart`, { method: "POST", body: { mode: "graceful" } })
      assert.deepStrictEqual([res.status, res.body], [200, { restarted: "graceful" }])
      assert.deepStrictEqual(yield* a.closed, { code: 1001, reason: "hub shutting down" })
      const back = yield* agent(hub.wsUrl, "a")
      assert.deepInclude(yield* back.expect("task_assign"), { task_id: taskId, generation: 3 })
    })))

  it.live("the reaper cuts off an agent that stops pinging, and its task is taken back", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x" })
      yield* a.expect("task_assign")
      assert.strictEqual((yield* a.closed).code, 1006)
      yield* eventually(taskOf(hub, taskId), (t) => t.state === "pending" && t.generation === 2, "taken back")
    }), { reaperTtlMs: 200, reaperSweepMs: 100 }))

  it.live("cancel sends task_cancelled to the holder; a later report is refused as not_found", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x" })
      yield* a.expect("task_assign")
      const res = yield* request(`${hub.url}/api/tasks/${taskId}/cancel`, { method: "POST", body: {} })
      assert.strictEqual(res.status, 200)
      assert.deepInclude(yield* a.expect("task_cancelled"), { type: "task_cancelled", task_id: taskId })
      assert.strictEqual((yield* taskOf(hub, taskId)).state, "cancelled")
      yield* a.send({ type: "task_complete", task_id: taskId, result: {}, generation: 1 })
      assert.deepStrictEqual(yield* a.expect("error"), { type: "error", error: "task_complete_failed: not_found" })
    })))

  it.live("a second connection with the same agent id replaces the first (close 4000) without taking its task back", () =>
    withHub((hub) => Effect.gen(function*() {
      const old = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x" })
      yield* old.expect("task_assign")
      yield* agent(hub.wsUrl, "a")
      assert.deepStrictEqual(yield* old.closed, { code: 4000, reason: "replaced by a newer connection" })
      assert.deepStrictEqual((yield* hub.agents).map((x) => [x.agent_id, x.fsm]), [["a", "assigned"]])
      assert.deepInclude(yield* taskOf(hub, taskId), { state: "assigned", generation: 1 })
    })))

  it.live("not JSON is invalid_json; a JSON value that is not an object ends the connection (1011)", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      yield* a.sendText("{not json")
      assert.deepStrictEqual(yield* a.expect("error"), { type: "error", error: "invalid_json" })
      // A result 10k levels deep would overflow JSON.stringify wherever the hub shows or sends it again (a dev hub guard).
      yield* a.sendText(`{"type":"task_complete","task_id":"t-1","generation":1,"result":${"[".repeat(10_000)}${"]".repeat(10_000)}}`)
      assert.deepStrictEqual(yield* a.expect("error"), { type: "error", error: "invalid_json" })
      assert.strictEqual((yield* request(`${hub.url}/api/tasks`)).status, 200)
      yield* a.sendText("[1, 2]")
      assert.strictEqual((yield* a.closed).code, 1011)
    })))
})

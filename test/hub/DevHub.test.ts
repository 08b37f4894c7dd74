import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { TaskView } from "../../src/hub/DevHub.ts"
import { pageHtml } from "../../src/hub/page.ts"
import { agent, connect, eventually, getWithHost, type Hub, request, withHub } from "./client.ts"

const taskOf = (hub: Hub, id: string): Effect.Effect<TaskView> => Effect.orDie(hub.task(id))
const events = (t: TaskView) => t.timeline.map((e) => e.event)

describe("DevHub HTTP API", () => {
  it.live("POST /api/tasks queues a task that GET /api/tasks lists", () =>
    withHub((hub) => Effect.gen(function*() {
      const created = yield* request(`${hub.url}/api/tasks`, { body: { description: "fix the build", metadata: { repo: "x" }, agent_id: "a1" } })
      assert.strictEqual(created.status, 201)
      const taskId = (created.body as { task_id: string }).task_id
      assert.match(taskId, /^t-[A-Za-z0-9._-]{1,126}$/)
      const listed = yield* request(`${hub.url}/api/tasks`)
      assert.strictEqual(listed.status, 200)
      const [task] = listed.body as ReadonlyArray<Record<string, unknown>>
      assert.deepInclude(task, { task_id: taskId, description: "fix the build", metadata: { repo: "x" }, agent_id: "a1", state: "pending", generation: 0 })
      assert.deepStrictEqual((task!["timeline"] as ReadonlyArray<{ event: string }>).map((e) => e.event), ["submitted"])
      assert.deepStrictEqual((yield* request(`${hub.url}/api/agents`)).body, [])
    })))

  it.live("refuses bad requests with a status and an error", () =>
    withHub((hub) => Effect.gen(function*() {
      const tasks = `${hub.url}/api/tasks`
      const cases: ReadonlyArray<readonly [string, Effect.Effect<{ status: number; body: unknown }>, number, RegExp]> = [
        ["bad JSON", request(tasks, { body: "{nope" }), 400, /invalid JSON/],
        ["missing description", request(tasks, { body: { metadata: {} } }), 400, /description/],
        ["blank description", request(tasks, { body: { description: "  " } }), 400, /non-empty/],
        ["metadata nested 10k deep", request(tasks, { body: `{"description":"x","metadata":{"a":${"[".repeat(10_000)}${"]".repeat(10_000)}}}` }), 400,
          /nested deeper than 64/],
        ["metadata not an object", request(tasks, { body: { description: "x", metadata: [1] } }), 400, /metadata/],
        ["bad agent id", request(tasks, { body: { description: "x", agent_id: "../etc" } }), 400, /agent_id/],
        ["not JSON content", request(tasks, { body: "{}", headers: { "content-type": "text/plain" } }), 415, /application\/json/],
        ["too large", request(tasks, { body: { description: "x".repeat(1024 * 1024 + 1) } }), 413, /over 1048576 bytes/],
        ["cross-origin", request(tasks, { body: { description: "x" }, headers: { origin: "http://evil.example" } }), 403, /cross-origin/],
        ["foreign Host (DNS rebinding)", getWithHost(tasks, "evil.example:80"), 421, /Host/],
        ["unknown route", request(`${hub.url}/api/nope`), 404, /no route/],
        ["wrong method", request(`${hub.url}/api/tasks/t-1/cancel`), 405, /POST/]
      ]
      for (const [name, call, status, error] of cases) {
        const res = yield* call
        assert.strictEqual(res.status, status, name)
        assert.match((res.body as { error: string }).error, error, name)
      }
      assert.deepStrictEqual(yield* hub.tasks, [], "no task was created by a refused request")
    })))

  it.live("cancels a pending task once; unknown and finished tasks are refused", () =>
    withHub((hub) => Effect.gen(function*() {
      const taskId = yield* hub.submit({ description: "later" })
      const cancelled = yield* request(`${hub.url}/api/tasks/${taskId}/cancel`, { method: "POST", body: {} })
      assert.deepStrictEqual([cancelled.status, cancelled.body], [200, { task_id: taskId, state: "cancelled" }])
      const task = yield* taskOf(hub, taskId)
      assert.strictEqual(task.state, "cancelled")
      assert.deepStrictEqual(events(task), ["submitted", "cancelled"])
      const again = yield* request(`${hub.url}/api/tasks/${taskId}/cancel`, { method: "POST", body: {} })
      assert.deepStrictEqual([again.status, again.body], [409, { error: `task ${taskId} is already cancelled` }])
      const unknown = yield* request(`${hub.url}/api/tasks/t-nope/cancel`, { method: "POST", body: {} })
      assert.deepStrictEqual([unknown.status, unknown.body], [404, { error: "unknown task t-nope" }])
    })))

  it.live("serves the live page with a CSP that allows only its own script", () =>
    withHub((hub) => Effect.gen(function*() {
      const page = yield* request(`${hub.url}/`)
      assert.strictEqual(page.status, 200)
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
      assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'sha256-[A-Za-z0-9+/=]+'/)
      assert.include(page.body as string, "<form id=\"submit\">")
      assert.notInclude(pageHtml, "innerHTML", "task text must never be parsed as HTML")
    })))

  it.live("streams a snapshot on connect and after each change (SSE)", () =>
    withHub((hub) => Effect.gen(function*() {
      const res = yield* Effect.promise(() => fetch(`${hub.url}/api/events`))
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/)
      const reader = res.body!.getReader()
      const decoder = new TextDecoder()
      let buffer = ""
      const nextSnapshot = Effect.promise(async () => {
        for (;;) {
          const match = /^data: (.*)$/m.exec(buffer)
          if (match !== null) {
            buffer = buffer.slice(match.index + match[0].length)
            return JSON.parse(match[1]!) as { tasks: ReadonlyArray<TaskView>; agents: ReadonlyArray<unknown>; grace_ms: number }
          }
          const { value, done } = await reader.read()
          if (done) throw new Error("event stream ended")
          buffer += decoder.decode(value, { stream: true })
        }
      })
      const first = yield* nextSnapshot
      assert.deepStrictEqual([first.tasks, first.agents, first.grace_ms], [[], [], 5000])
      const taskId = yield* hub.submit({ description: "watch me" })
      const second = yield* nextSnapshot
      assert.deepStrictEqual(second.tasks.map((t) => [t.task_id, t.state]), [[taskId, "pending"]])
      yield* Effect.promise(() => reader.cancel())
    })))
})

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

  it.live("a wrong token gets auth_failed and close code 4001", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* connect(hub.wsUrl)
      yield* client.send({ type: "identify", agent_id: "alpha", token: "wrong", name: "a", status: "idle", capabilities: [], client_type: "sidecar" })
      assert.deepStrictEqual(yield* client.expect("error"), { type: "error", error: "auth_failed: invalid token" })
      assert.strictEqual((yield* client.closed).code, 4001)
      assert.deepStrictEqual(yield* hub.agents, [])
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

  it.live("a first frame other than identify is refused and the connection closed", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* connect(hub.wsUrl)
      yield* client.send({ type: "ping" })
      assert.deepStrictEqual(yield* client.expect("error"), { type: "error", error: "identify_required: the first frame must be identify" })
      assert.strictEqual((yield* client.closed).code, 1008)
    })))

  it.live("ping → pong with the hub's time", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* agent(hub.wsUrl, "alpha")
      const before = Date.now()
      yield* client.send({ type: "ping" })
      const pong = yield* client.expect("pong")
      assert.isTrue(typeof pong.timestamp === "number" && pong.timestamp >= before && pong.timestamp <= Date.now() + 1, JSON.stringify(pong))
    })))

  it.live("assign → accepted → ack; wake and progress make it working; complete → ack complete", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* agent(hub.wsUrl, "alpha")
      const taskId = yield* hub.submit({ description: "write tests", metadata: { priority: 2 } })
      const assign = yield* client.expect("task_assign")
      assert.deepInclude(assign, { task_id: taskId, description: "write tests", metadata: { priority: 2 }, generation: 1 })
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
      assert.strictEqual(((yield* hub.agents)[0])?.status, "busy")

      yield* client.send({ type: "task_complete", task_id: taskId, result: { status: "success", output: 42 }, generation: 1 })
      assert.deepStrictEqual(yield* client.expect("task_ack"), { type: "task_ack", task_id: taskId, status: "complete" })
      const done = yield* taskOf(hub, taskId)
      assert.deepInclude(done, { state: "complete", result: { status: "success", output: 42 } })
      assert.deepStrictEqual(events(done), ["submitted", "assigned", "accepted", "wake", "progress", "complete"])
      // A report resent after a lost ack is acknowledged again, not refused.
      yield* client.send({ type: "task_complete", task_id: taskId, result: { status: "success", output: 42 }, generation: 1 })
      assert.deepStrictEqual(yield* client.expect("task_ack"), { type: "task_ack", task_id: taskId, status: "complete" })
    })))

  it.live("task_failed → ack failed with the reason kept", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* agent(hub.wsUrl, "alpha")
      const taskId = yield* hub.submit({ description: "doomed" })
      yield* client.expect("task_assign")
      yield* client.send({ type: "task_failed", task_id: taskId, reason: "wake_failed_after_4_attempts", generation: 1 })
      assert.deepStrictEqual(yield* client.expect("task_ack"), { type: "task_ack", task_id: taskId, status: "failed" })
      assert.deepInclude(yield* taskOf(hub, taskId), { state: "failed", reason: "wake_failed_after_4_attempts" })
    })))

  it.live("reports with a stale generation or for unknown tasks get the hub's *_failed errors", () =>
    withHub((hub) => Effect.gen(function*() {
      const client = yield* agent(hub.wsUrl, "alpha")
      const taskId = yield* hub.submit({ description: "x" })
      yield* client.expect("task_assign")
      yield* client.send({ type: "task_complete", task_id: taskId, result: {}, generation: 7 })
      assert.deepStrictEqual(yield* client.expect("error"),
        { type: "error", error: `task_complete_failed: stale generation 7 for task ${taskId} (current 1)` })
      yield* client.send({ type: "task_failed", task_id: taskId, reason: "r", generation: 0 })
      assert.deepStrictEqual(yield* client.expect("error"),
        { type: "error", error: `task_fail_failed: stale generation 0 for task ${taskId} (current 1)` })
      yield* client.send({ type: "task_complete", task_id: "t-unknown", result: {}, generation: 1 })
      assert.deepStrictEqual(yield* client.expect("error"), { type: "error", error: "task_complete_failed: unknown task t-unknown" })
      assert.strictEqual((yield* taskOf(hub, taskId)).state, "assigned", "refused reports change nothing")
    })))

  it.live("task_rejected re-queues the task; it is offered again, to another agent first", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const b = yield* agent(hub.wsUrl, "b")
      const taskId = yield* hub.submit({ description: "x" })
      assert.strictEqual((yield* a.expect("task_assign")).generation, 1, "the longest-connected idle agent is offered it first")
      yield* a.send({ type: "task_rejected", task_id: taskId, reason: "busy" })
      const offered = yield* b.expect("task_assign")
      assert.deepInclude(offered, { task_id: taskId, generation: 2 })
      yield* a.expectSilence(200)
      const task = yield* taskOf(hub, taskId)
      assert.deepStrictEqual(events(task), ["submitted", "assigned", "rejected", "assigned"])
      assert.match(task.timeline[2]!.detail ?? "", /^by a: busy/)
    })))

  it.live("a lone agent that rejected is offered the task again after the delay", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x" })
      yield* a.expect("task_assign")
      yield* a.send({ type: "task_rejected", task_id: taskId, reason: "busy" })
      yield* a.send({ type: "ping" })
      yield* a.expect("pong")
      assert.strictEqual((yield* taskOf(hub, taskId)).state, "pending")
      assert.deepInclude(yield* a.expect("task_assign"), { task_id: taskId, generation: 2 })
    })))

  it.live("a task for a named agent waits for that agent", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x", agent_id: "b" })
      yield* a.expectSilence(300)
      const b = yield* agent(hub.wsUrl, "b")
      assert.deepInclude(yield* b.expect("task_assign"), { task_id: taskId, generation: 1 })
    })))

  it.live("task_recovering: the holder back within the grace period gets task_continue and can finish", () =>
    withHub((hub) => Effect.gen(function*() {
      const first = yield* agent(hub.wsUrl, "alpha")
      const taskId = yield* hub.submit({ description: "survive a restart" })
      yield* first.expect("task_assign")
      yield* first.send({ type: "task_accepted", task_id: taskId })
      yield* first.expect("task_ack")
      yield* first.kill
      yield* eventually(taskOf(hub, taskId), (t) => t.agent_disconnected_at !== undefined, "marked disconnected")
      const again = yield* agent(hub.wsUrl, "alpha")
      yield* again.send({ type: "task_recovering", task_id: taskId, description: "survive a restart", metadata: {}, last_status: "working" })
      assert.deepStrictEqual(yield* again.expect("task_continue"), { type: "task_continue", task_id: taskId, generation: 1 })
      yield* again.send({ type: "task_complete", task_id: taskId, result: { status: "success" }, generation: 1 })
      assert.deepStrictEqual(yield* again.expect("task_ack"), { type: "task_ack", task_id: taskId, status: "complete" })
      assert.includeMembers(events(yield* taskOf(hub, taskId)), ["agent_disconnected", "agent_reconnected", "recovered", "complete"])
    })))

  it.live("task_recovering: someone else's task → task_reassign; an unknown task → task_reassign, then adopted", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "a's" })
      yield* a.expect("task_assign")
      const b = yield* agent(hub.wsUrl, "b")
      yield* b.send({ type: "task_recovering", task_id: taskId, description: "a's", metadata: {}, last_status: "working" })
      assert.deepStrictEqual(yield* b.expect("task_reassign"), { type: "task_reassign", task_id: taskId })
      assert.strictEqual((yield* taskOf(hub, taskId)).agent, "a", "the holder keeps it")

      yield* b.send({ type: "task_recovering", task_id: "t-old", description: "from before", metadata: { k: 1 }, last_status: "working" })
      assert.deepStrictEqual(yield* b.expect("task_reassign"), { type: "task_reassign", task_id: "t-old" })
      // b is the idle agent, so the adopted task comes back to it as a fresh assignment.
      assert.deepInclude(yield* b.expect("task_assign"), { task_id: "t-old", description: "from before", metadata: { k: 1 }, generation: 1 })
      assert.deepStrictEqual(events(yield* taskOf(hub, "t-old")), ["adopted", "assigned"])
    })))

  it.live("a holder gone past the grace period loses the task: re-queued, reassigned, its late report refused", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x" })
      yield* a.expect("task_assign")
      yield* a.kill
      const b = yield* agent(hub.wsUrl, "b")
      yield* b.expectSilence(300) // still within a's 1 s grace
      assert.deepInclude(yield* b.expect("task_assign"), { task_id: taskId, generation: 2 })
      assert.includeMembers(events(yield* taskOf(hub, taskId)), ["agent_disconnected", "requeued"])
      const late = yield* agent(hub.wsUrl, "a")
      yield* late.send({ type: "task_complete", task_id: taskId, result: {}, generation: 1 })
      assert.deepStrictEqual(yield* late.expect("error"),
        { type: "error", error: `task_complete_failed: task ${taskId} is assigned to another agent` })
    }), { graceMs: 1000 }))

  it.live("cancel sends task_cancelled to the holder; a later report is refused", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      const taskId = yield* hub.submit({ description: "x" })
      yield* a.expect("task_assign")
      const res = yield* request(`${hub.url}/api/tasks/${taskId}/cancel`, { method: "POST", body: {} })
      assert.strictEqual(res.status, 200)
      assert.deepStrictEqual(yield* a.expect("task_cancelled"), { type: "task_cancelled", task_id: taskId })
      assert.strictEqual((yield* taskOf(hub, taskId)).state, "cancelled")
      yield* a.send({ type: "task_complete", task_id: taskId, result: {}, generation: 1 })
      assert.deepStrictEqual(yield* a.expect("error"), { type: "error", error: `task_complete_failed: task ${taskId} is cancelled` })
    })))

  it.live("a second connection with the same agent id replaces the first (close 4000)", () =>
    withHub((hub) => Effect.gen(function*() {
      const old = yield* agent(hub.wsUrl, "a")
      yield* agent(hub.wsUrl, "a")
      assert.deepStrictEqual(yield* old.closed, { code: 4000, reason: "replaced by a newer connection" })
      assert.deepStrictEqual((yield* hub.agents).map((x) => x.agent_id), ["a"])
    })))

  it.live("an invalid frame is answered invalid_message and the connection goes on", () =>
    withHub((hub) => Effect.gen(function*() {
      const a = yield* agent(hub.wsUrl, "a")
      yield* a.sendText("{not json")
      assert.match((yield* a.expect("error")).error ?? "", /^invalid_message: not JSON/)
      yield* a.sendText(JSON.stringify({ type: "task_complete" }))
      assert.match((yield* a.expect("error")).error ?? "", /^invalid_message: task_complete: Missing key/)
      // A result 10k levels deep would overflow JSON.stringify wherever the hub shows or sends it again.
      yield* a.sendText(`{"type":"task_complete","task_id":"t-1","generation":1,"result":${"[".repeat(10_000)}${"]".repeat(10_000)}}`)
      assert.strictEqual((yield* a.expect("error")).error, "invalid_message: nested deeper than 64 levels")
      assert.strictEqual((yield* request(`${hub.url}/api/tasks`)).status, 200)
      yield* a.sendText(JSON.stringify({ type: "from_the_future" }))
      yield* a.send({ type: "ping" })
      yield* a.expect("pong") // the unknown type was ignored without an answer
    })))
})

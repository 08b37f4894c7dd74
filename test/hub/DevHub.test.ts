import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { TaskView } from "../../src/hub/DevHub.ts"
import { pageHtml } from "../../src/hub/page.ts"
import { events, getWithHost, request, taskOf, withHub } from "./client.ts"

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
            return JSON.parse(match[1]!) as { tasks: ReadonlyArray<TaskView>; agents: ReadonlyArray<unknown>; settings: Record<string, number> }
          }
          const { value, done } = await reader.read()
          if (done) throw new Error("event stream ended")
          buffer += decoder.decode(value, { stream: true })
        }
      })
      const first = yield* nextSnapshot
      assert.deepStrictEqual([first.tasks, first.agents], [[], []])
      assert.deepInclude(first.settings, { acceptance_timeout_ms: 60_000, stuck_threshold_ms: 600_000, reaper_ttl_ms: 60_000, max_retries: 3 })
      const taskId = yield* hub.submit({ description: "watch me" })
      const second = yield* nextSnapshot
      assert.deepStrictEqual(second.tasks.map((t) => [t.task_id, t.state]), [[taskId, "pending"]])
      yield* Effect.promise(() => reader.cancel())
    })))
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startDaemon } from "../support/daemon.ts"

describe("agent-sidecar dev (hub + sidecar + example agent, one process)", () => {
  it.live("a task submitted over HTTP completes, with the example agent's output", () => Effect.gen(function*() {
    const dev = yield* startDaemon(["dev", "--port", "0"])
    yield* dev.waitForOutput(/Open the live page:\s+http:\/\/127\.0\.0\.1:\d+\//, 20_000)
    const base = /Open the live page:\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(dev.output())![1]!
    assert.include(dev.output(), `curl -s -X POST ${base}/api/tasks`)
    const created = yield* Effect.promise(() => fetch(`${base}/api/tasks`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ description: "hello dev mode" })
    }).then(async (r) => ({ status: r.status, body: await r.json() as { task_id: string } })))
    assert.strictEqual(created.status, 201)
    const task = yield* Effect.gen(function*() {
      while (true) {
        const tasks = yield* Effect.promise(() => fetch(`${base}/api/tasks`).then((r) => r.json() as Promise<Array<{ task_id: string; state: string; result?: unknown }>>))
        const t = tasks.find((x) => x.task_id === created.body.task_id)
        if (t !== undefined && t.state === "complete") return t
        yield* Effect.sleep(100)
      }
    }).pipe(Effect.timeout(15_000))
    assert.deepStrictEqual(task.result, { status: "success", output: { reversed: "edom ved olleh", words: 3 } })
    dev.process.kill("SIGTERM")
    assert.strictEqual(yield* dev.exited, 0)
  }))
})

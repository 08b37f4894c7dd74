import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NFS from "node:fs"
import { makeFakeHub } from "../support/FakeHub.ts"
import { exists, readJson, script, settingsFor, startSidecar, tempDir } from "../support/sidecar.ts"

const assign = (task_id: string, extra: Record<string, unknown> = {}) => ({ type: "task_assign", task_id, description: "do it", generation: 3, ...extra })

describe("task lifecycle against a real hub, real files and a real wake script", () => {
  it.live("success: accepted, woken, started, result reported, acked, files cleaned", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const wake = script(dir, "wake.sh", `cd "$RESULTS_DIR"; echo started > "$TASK_ID.started.tmp" && mv "$TASK_ID.started.tmp" "$STARTED_FILE"; printf '{"status":"success","output":"%s"}' "$TASK_DESCRIPTION" > r.tmp && mv r.tmp "$RESULT_FILE"`)
    yield* startSidecar(settingsFor(dir, hub.url, { wakeCommand: [wake] }))
    const identify = yield* hub.waitFor((f) => f.type === "identify")
    assert.strictEqual(identify["agent_id"], "agent-1")
    assert.strictEqual(identify["client_type"], "sidecar")
    assert.strictEqual(identify["protocol_version"], 1)
    hub.send(assign("t-1"))
    yield* hub.waitFor((f) => f.type === "task_accepted" && f["task_id"] === "t-1")
    const complete = yield* hub.waitFor((f) => f.type === "task_complete")
    assert.deepStrictEqual(complete["result"], { status: "success", output: "do it" })
    assert.strictEqual(complete["generation"], 3)
    const wakeResult = yield* hub.waitFor((f) => f.type === "wake_result")
    assert.strictEqual(wakeResult["status"], "success")
    assert.strictEqual(wakeResult["attempt"], 1)
    // files are removed only after the hub's ack
    yield* Effect.gen(function*() {
      while (exists(`${dir}/results/t-1.json`)) yield* Effect.sleep(10)
    }).pipe(Effect.timeout(5000))
    assert.isFalse(exists(`${dir}/results/t-1.task.json`))
    const queue = readJson(`${dir}/queue.json`) as { tasks: Array<unknown>; outbox: Array<unknown> }
    assert.strictEqual(queue.tasks.length, 0)
    assert.strictEqual(queue.outbox.length, 0)
    assert.strictEqual((NFS.statSync(`${dir}/queue.json`).mode & 0o777), 0o600)
  }))
})

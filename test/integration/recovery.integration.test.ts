import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as NFS from "node:fs"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { isAlive } from "../support/proc.ts"
import { script, settingsFor, startSidecar, tempDir } from "../support/sidecar.ts"

const waitUntil = (check: () => boolean, what: string, timeoutMs = 10_000) => Effect.gen(function*() {
  while (!check()) yield* Effect.sleep(10)
}).pipe(Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(new Error(`timed out: ${what}`)) }))

const writeResult = (dir: string, id: string, body: unknown) => {
  NFS.writeFileSync(`${dir}/results/.${id}.tmp`, JSON.stringify(body))
  NFS.renameSync(`${dir}/results/.${id}.tmp`, `${dir}/results/${id}.json`)
}

describe("recovery and hub outages (real hub, real files)", () => {
  it.live("hub down when the result arrives: the report reaches the restarted hub; a hub restart before the ack re-sends it, settled once", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub({ ackReports: false })
    const dir = yield* tempDir
    yield* startSidecar(settingsFor(dir, hub.url))
    yield* hub.waitFor((f) => f.type === "identify")
    hub.send({ type: "task_assign", task_id: "t-1", description: "x", generation: 7 })
    yield* hub.waitFor((f) => f.type === "task_accepted")
    yield* hub.stop
    writeResult(dir, "t-1", { status: "success", output: "done" })
    yield* Effect.sleep(300)
    yield* hub.start
    const first = yield* hub.waitFor((f) => f.type === "task_complete")
    assert.strictEqual(first["generation"], 7)
    // the hub goes away again before acking: the report must come again
    yield* hub.stop
    yield* hub.start
    yield* hub.waitFor((f) => f.type === "task_complete", { count: 2 })
    hub.send({ type: "task_ack", task_id: "t-1", status: "complete" })
    yield* waitUntil(() => !NFS.existsSync(`${dir}/results/t-1.json`), "files removed after the ack")
    const queue = JSON.parse(NFS.readFileSync(`${dir}/queue.json`, "utf8"))
    assert.deepStrictEqual(queue.outbox, [])
    // settled: no further sends, even across another reconnect
    const sent = hub.count((f) => f.type === "task_complete")
    hub.dropConnections()
    yield* hub.waitFor((f) => f.type === "identify", { count: 4 })
    yield* Effect.sleep(200)
    assert.strictEqual(hub.count((f) => f.type === "task_complete"), sent)
  }))

  it.live("a result written while the daemon is stopped is reported after restart and task_continue; legacy queue layout recovers", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const settings = settingsFor(dir, hub.url)
    const first = yield* Scope.make()
    yield* startSidecar(settings).pipe(Scope.provide(first))
    hub.send({ type: "task_assign", task_id: "t-1", description: "x", generation: 2 })
    yield* hub.waitFor((f) => f.type === "task_accepted")
    yield* waitUntil(() => NFS.readFileSync(`${dir}/queue.json`, "utf8").includes(`"status":"working"`), "task working")
    yield* Scope.close(first, Exit.void)
    writeResult(dir, "t-1", { status: "failed", reason: "tests do not pass" })
    yield* startSidecar(settings)
    const recovering = yield* hub.waitFor((f) => f.type === "task_recovering")
    assert.deepStrictEqual({ ...recovering, protocol_version: 1 }, { type: "task_recovering", task_id: "t-1", description: "x", metadata: {}, last_status: "working", protocol_version: 1 })
    const failed = yield* hub.waitFor((f) => f.type === "task_failed")
    assert.deepStrictEqual([failed["reason"], failed["generation"]], ["tests do not pass", 2])
  }))

  it.live("the earlier sidecar's queue.json: its active task comes back as recovering and is reported to the hub", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub({ continueRecovering: false })
    const dir = yield* tempDir
    NFS.writeFileSync(`${dir}/queue.json`, JSON.stringify({ active: { task_id: "old-1", description: "legacy", status: "working" }, recovering: {} }))
    yield* startSidecar(settingsFor(dir, hub.url))
    const recovering = yield* hub.waitFor((f) => f.type === "task_recovering")
    assert.strictEqual(recovering["task_id"], "old-1")
    assert.strictEqual(recovering["last_status"], "working")
    // no answer: it stays recovering, and is reported again on the next connection
    hub.dropConnections()
    yield* hub.waitFor((f) => f.type === "task_recovering", { count: 2 })
    hub.send({ type: "task_reassign", task_id: "old-1" })
    // let go after the 15 s grace in which AgentCom may assign it to us again (issue 11)
    yield* waitUntil(() => JSON.parse(NFS.readFileSync(`${dir}/queue.json`, "utf8")).tasks.length === 0, "reassigned task forgotten", 25_000)
  }))

  it.live("a wake command that forks is stopped as a whole process group, on timeout and on SIGTERM", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const wake = script(dir, "forking.sh", `sleep 30 & echo $! >> "${dir}/grandchildren"; sleep 30`)
    yield* startSidecar(settingsFor(dir, hub.url, { wakeCommand: [wake], wakeTimeoutMs: 300, wakeRetryDelaysMs: [], killGraceMs: 200 }))
    hub.send({ type: "task_assign", task_id: "t-1" })
    const result = yield* hub.waitFor((f) => f.type === "wake_result")
    assert.strictEqual(result["status"], "timeout")
    assert.strictEqual((yield* hub.waitFor((f) => f.type === "task_failed"))["reason"], "wake_failed_after_1_attempts")
    const grandchild = Number(NFS.readFileSync(`${dir}/grandchildren`, "utf8").trim())
    yield* waitUntil(() => !isAlive(grandchild), "grandchild killed with its group", 3000)

    // SIGTERM of the daemon while a wake command runs: graceful exit 0, the group is gone, the task is recovered next time
    const hub2 = yield* makeFakeHub()
    const dir2 = yield* tempDir
    const wake2 = script(dir2, "forking.sh", `sleep 30 & echo $! >> "${dir2}/grandchildren"; sleep 30`)
    const config = writeConfig(dir2, { hub_url: hub2.url, wake_command: [wake2], kill_grace_ms: 500, reconnect_initial_ms: 50 })
    const daemon = yield* startDaemon(["run", "--config", config])
    yield* hub2.waitFor((f) => f.type === "identify")
    hub2.send({ type: "task_assign", task_id: "t-2" })
    yield* waitUntil(() => NFS.existsSync(`${dir2}/grandchildren`), "wake command running")
    const grandchild2 = Number(NFS.readFileSync(`${dir2}/grandchildren`, "utf8").trim())
    const started = Date.now()
    daemon.process.kill("SIGTERM")
    assert.strictEqual(yield* daemon.exited, 0, daemon.output())
    assert.isBelow(Date.now() - started, 5000)
    yield* waitUntil(() => !isAlive(grandchild2), "grandchild killed on shutdown", 3000)
    const queue = JSON.parse(NFS.readFileSync(`${dir2}/queue.json`, "utf8"))
    assert.deepStrictEqual(queue.tasks.map((t: { task_id: string }) => t.task_id), ["t-2"], "the task is kept for recovery")
  }))
})

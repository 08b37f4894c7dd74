import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NFS from "node:fs"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { tempDir } from "../support/sidecar.ts"

const fastHub = { heartbeat_interval_ms: 1000, heartbeat_timeout_ms: 500, reconnect_initial_ms: 50, reconnect_max_ms: 200 }

describe("the daemon as a process", () => {
  it.live("identifies, survives the hub restarting, and on SIGTERM closes with 1000 and exits 0 within 5 s", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const config = writeConfig(dir, { hub_url: hub.url, log_file: "./logs/sidecar.log", ...fastHub })
    const daemon = yield* startDaemon(["run", "--config", config])
    const identify = yield* hub.waitFor((f) => f.type === "identify")
    assert.strictEqual(identify["token"], "secret-token-123")
    yield* hub.waitFor((f) => f.type === "ping")
    yield* hub.stop
    yield* Effect.sleep(300)
    yield* hub.start
    yield* hub.waitFor((f) => f.type === "identify", { count: 2 })
    const started = Date.now()
    daemon.process.kill("SIGTERM")
    const code = yield* daemon.exited
    assert.strictEqual(code, 0, daemon.output())
    assert.isBelow(Date.now() - started, 5000)
    yield* Effect.sleep(50)
    assert.include(hub.closeCodes, 1000)
    assert.notInclude(daemon.output(), "secret-token-123", "the token never reaches stdout")
    assert.isFalse(NFS.existsSync(`${dir}/queue.json.lock`), "lock released")
    // the log folder is created (0700), the log is JSON lines (0600) without the token
    assert.strictEqual(NFS.statSync(`${dir}/logs`).mode & 0o777, 0o700)
    assert.strictEqual(NFS.statSync(`${dir}/logs/sidecar.log`).mode & 0o777, 0o600)
    const log = NFS.readFileSync(`${dir}/logs/sidecar.log`, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { msg: unknown; service?: unknown })
    assert.isTrue(log.some((l) => l.msg === "identified by the hub" && l.service === "HubClient"))
    assert.notInclude(JSON.stringify(log), "secret-token-123")
  }))

  it.live("a second daemon on the same state exits 75 naming the holder; a stale lock is taken over", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const config = writeConfig(dir, { hub_url: hub.url, ...fastHub })
    const first = yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify")
    const second = yield* startDaemon(["run", "--config", config])
    assert.strictEqual(yield* second.exited, 75)
    assert.include(second.output(), `pid ${first.pid}`)
    first.process.kill("SIGKILL")
    yield* first.exited
    // the dead daemon's lock is stale now
    assert.isTrue(NFS.existsSync(`${dir}/queue.json.lock`))
    const third = yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify", { count: 2 })
    assert.strictEqual(NFS.readFileSync(`${dir}/queue.json.lock`, "utf8").trim(), String(third.pid))
    third.process.kill("SIGTERM")
    assert.strictEqual(yield* third.exited, 0)
  }))

  it.live("an invalid config lists every problem by key, exits 78 and starts nothing", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const config = writeConfig(dir, { agent_id: "bad id!", hub_url: "http://x", max_active_tasks: 0, log_level: "loud", wake_command: 5 })
    const daemon = yield* startDaemon(["run", "--config", config])
    assert.strictEqual(yield* daemon.exited, 78)
    const out = daemon.output()
    for (const key of ["agent_id", "hub_url", "max_active_tasks", "log_level", "wake_command"]) assert.include(out, `${key}:`)
    assert.notInclude(out, "    at ", "no stack trace")
    assert.isFalse(NFS.existsSync(`${dir}/queue.json`), "nothing started")
  }))

  it.live("operator controls: live status, task cancel, drain (no new tasks, active ones finish, exit 0)", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const config = writeConfig(dir, { hub_url: hub.url, max_active_tasks: 2, ...fastHub })
    const daemon = yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify")
    hub.send({ type: "task_assign", task_id: "t-1", description: "first" })
    yield* hub.waitFor((f) => f.type === "task_accepted")
    const cli = (...args: Array<string>) => Effect.gen(function*() {
      const run = yield* startDaemon([...args, "--config", config])
      const code = yield* run.exited
      return { code, out: run.output() }
    })
    const status = yield* cli("status", "--json")
    assert.strictEqual(status.code, 0, status.out)
    const view = JSON.parse(status.out)
    assert.strictEqual(view.source, "daemon")
    assert.strictEqual(view.connection.status, "identified")
    assert.deepStrictEqual(view.queue.tasks.map((t: { task_id: string; status: string }) => [t.task_id, t.status]), [["t-1", "working"]])
    assert.notInclude(status.out, "secret-token-123")
    const human = yield* cli("status")
    assert.include(human.out, "hub: identified")
    assert.include(human.out, "t-1  working")

    assert.strictEqual((yield* cli("task", "cancel", "t-1")).code, 0)
    assert.isTrue(NFS.existsSync(`${dir}/results/t-1.cancelled`))
    assert.strictEqual((yield* cli("task", "cancel", "t-1")).code, 1, "unknown task now")

    hub.send({ type: "task_assign", task_id: "t-2", description: "second" })
    yield* hub.waitFor((f) => f.type === "task_accepted" && f["task_id"] === "t-2")
    assert.strictEqual((yield* cli("drain")).code, 0)
    yield* Effect.sleep(200)
    hub.send({ type: "task_assign", task_id: "t-3" })
    const rejected = yield* hub.waitFor((f) => f.type === "task_rejected")
    assert.deepStrictEqual([rejected["task_id"], rejected["reason"]], ["t-3", "shutting_down"])
    assert.strictEqual(daemon.process.exitCode, null, "still running while t-2 is active")
    NFS.writeFileSync(`${dir}/results/t-2.json`, JSON.stringify({ status: "success", output: 1 }))
    assert.strictEqual(yield* daemon.exited, 0, daemon.output())
    assert.strictEqual(hub.count((f) => f.type === "task_complete" && f["task_id"] === "t-2"), 1)
  }))

  it.live("http_addr serves /healthz, /readyz, /status and Prometheus /metrics", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const port = 20000 + (process.pid % 20000)
    const config = writeConfig(dir, { hub_url: hub.url, http_addr: `127.0.0.1:${port}`, ...fastHub })
    const daemon = yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify")
    hub.send({ type: "task_assign", task_id: "t-1" })
    yield* hub.waitFor((f) => f.type === "task_accepted")
    const get = (path: string) => Effect.promise(() => fetch(`http://127.0.0.1:${port}${path}`).then(async (r) => ({ status: r.status, text: await r.text() })))
    yield* daemon.waitForOutput("status endpoint")
    assert.strictEqual((yield* get("/healthz")).status, 200)
    const ready = yield* get("/readyz")
    assert.strictEqual(ready.status, 200, ready.text)
    let status = yield* get("/status")
    while (JSON.parse(status.text).queue.tasks[0]?.status !== "working") status = yield* Effect.andThen(Effect.sleep(20), get("/status"))
    assert.strictEqual(JSON.parse(status.text).queue.tasks[0].task_id, "t-1")
    assert.notInclude(status.text, "secret-token-123")
    const metrics = (yield* get("/metrics")).text
    assert.include(metrics, `agent_sidecar_tasks{status="working"} 1`)
    assert.include(metrics, "agent_sidecar_hub_identified 1")
    assert.include(metrics, "agent_sidecar_hub_frames_dropped_total 0")
    assert.include(metrics, `agent_sidecar_degraded{part="queue"} 0`)
    yield* hub.stop
    yield* Effect.sleep(300)
    assert.strictEqual((yield* get("/readyz")).status, 503, "not ready without the hub")
    daemon.process.kill("SIGTERM")
    assert.strictEqual(yield* daemon.exited, 0)
  }))
})

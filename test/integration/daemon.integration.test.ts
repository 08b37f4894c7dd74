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
    const config = writeConfig(dir, { hub_url: hub.url, ...fastHub })
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
})

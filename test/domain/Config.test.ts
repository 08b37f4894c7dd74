import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Result } from "effect"
import * as NFS from "node:fs"
import { applyEnv, decodeConfigFile, toSettings } from "../../src/domain/Config.ts"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { SidecarConfig } from "../../src/services/SidecarConfig.ts"
import { tempDir } from "../support/sidecar.ts"

const valid = { agent_id: "agent-1", token: "tok-secret", hub_url: "wss://hub.example/ws" }

const problemsOf = (input: unknown) => {
  const r = decodeConfigFile(input)
  return Result.isFailure(r) ? r.failure.map((p) => p.key) : []
}

describe("config", () => {
  it("defaults are applied and relative paths resolve against the config file's folder", () => {
    const r = decodeConfigFile(valid)
    assert.isTrue(Result.isSuccess(r))
    if (!Result.isSuccess(r)) return
    const s = toSettings(r.success, "/etc/sidecar", "tok-secret")
    assert.strictEqual(s.resultsDir, "/etc/sidecar/results")
    assert.strictEqual(s.queuePath, "/etc/sidecar/queue.json")
    assert.deepStrictEqual(s.wakeRetryDelaysMs, [5000, 15000, 30000])
    assert.strictEqual(s.confirmationTimeoutMs, 30000)
    assert.strictEqual(s.maxActiveTasks, 1)
    assert.strictEqual(s.name, "agent-1")
    assert.strictEqual(String(s.token), "<redacted>")
    assert.notInclude(JSON.stringify(s), "tok-secret")
    assert.strictEqual(Redacted.value(s.token), "tok-secret")
  })

  it.each([
    [{ ...valid, agent_id: "has space" }, "agent_id"],
    [{ ...valid, agent_id: "x".repeat(65) }, "agent_id"],
    [{ ...valid, hub_url: "http://hub" }, "hub_url"],
    [{ token: "t", hub_url: "ws://h" }, "agent_id"],
    [{ agent_id: "a", token: "t" }, "hub_url"],
    [{ ...valid, wake_command: 5 }, "wake_command"],
    [{ ...valid, wake_command: [] }, "wake_command"],
    // AgentCom's limits: it drops an agent silent for 60 s and refuses an identify with a name or token over 256
    [{ ...valid, heartbeat_interval_ms: 30_001 }, "heartbeat_interval_ms"],
    [{ ...valid, name: "n".repeat(257) }, "name"],
    [{ ...valid, token: "t".repeat(257) }, "token"],
    [{ ...valid, wake_retry_delays_ms: [5000, -1] }, "wake_retry_delays_ms.1"],
    [{ ...valid, max_active_tasks: 0 }, "max_active_tasks"],
    [{ ...valid, log_level: "loud" }, "log_level"],
    [{ ...valid, heartbeat_interval_ms: "30s" }, "heartbeat_interval_ms"],
    [{ ...valid, http_addr: "localhost" }, "http_addr"],
    [{ ...valid, capabilities: "all" }, "capabilities"]
  ] as const)("names the key of each invalid value: %j", (input, key) => {
    const keys = problemsOf(input)
    assert.isTrue(keys.some((k) => k === key || k.startsWith(`${key}.`)), `${JSON.stringify(keys)} should name ${key}`)
  })

  it("lists every problem at once", () => {
    assert.deepStrictEqual(problemsOf({ agent_id: "bad id", hub_url: "ftp://x", max_active_tasks: 0 }).sort(), ["agent_id", "hub_url", "max_active_tasks"])
  })

  it("SIDECAR_* environment variables override the file", () => {
    const merged = applyEnv(valid, { SIDECAR_HUB_URL: "ws://other/ws", SIDECAR_TOKEN: "env-token", SIDECAR_AGENT_ID: "", OTHER: "x" })
    assert.deepStrictEqual(merged, { agent_id: "agent-1", token: "env-token", hub_url: "ws://other/ws" })
  })

  it.live("load: unknown keys warn, token_file is read, a missing token is an error with its key", () => Effect.gen(function*() {
    const dir = yield* tempDir
    NFS.writeFileSync(`${dir}/token`, "from-file\n", { mode: 0o600 })
    NFS.writeFileSync(`${dir}/config.json`, JSON.stringify({ agent_id: "a", hub_url: "ws://h/ws", token_file: "token", frobnicate: true }), { mode: 0o600 })
    const loaded = yield* SidecarConfig.load(`${dir}/config.json`, {})
    assert.strictEqual(Redacted.value(loaded.settings.token), "from-file")
    assert.deepStrictEqual(loaded.warnings, ["unknown config key \"frobnicate\" ignored"])
    NFS.writeFileSync(`${dir}/c2.json`, JSON.stringify({ agent_id: "a", hub_url: "ws://h/ws" }), { mode: 0o644 })
    NFS.chmodSync(`${dir}/c2.json`, 0o644)
    const error = yield* Effect.flip(SidecarConfig.load(`${dir}/c2.json`, {}))
    assert.strictEqual(error._tag, "ConfigInvalid")
    assert.include(error.message, "token:")
    const viaEnv = yield* SidecarConfig.load(`${dir}/c2.json`, { SIDECAR_TOKEN: "env-tok" })
    assert.strictEqual(Redacted.value(viaEnv.settings.token), "env-tok")
    assert.isTrue(viaEnv.warnings.some((w) => w.includes("readable by other users")))
    // issue 13: the missing token is listed with every other problem, not only once the rest is valid
    NFS.writeFileSync(`${dir}/c4.json`, JSON.stringify({ agent_id: "has space", hub_url: "http://h" }), { mode: 0o600 })
    const all = yield* Effect.flip(SidecarConfig.load(`${dir}/c4.json`, {}))
    assert.deepStrictEqual(all._tag === "ConfigInvalid" ? all.problems.map((p) => p.key).sort() : [], ["agent_id", "hub_url", "token"])
    const notJson = `${dir}/c3.json`
    NFS.writeFileSync(notJson, "{ nope", { mode: 0o600 })
    assert.include((yield* Effect.flip(SidecarConfig.load(notJson, {}))).message, "not valid JSON")
  }).pipe(Effect.provide(PlatformLayer)))
})

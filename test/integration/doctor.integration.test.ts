import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NFS from "node:fs"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { script, tempDir } from "../support/sidecar.ts"

const doctor = (config: string) => Effect.gen(function*() {
  const run = yield* startDaemon(["doctor", "--config", config])
  return { code: yield* run.exited, out: run.output() }
})
const line = (out: string, check: string) => out.split("\n").find((l) => l.includes(` ${check} `) || l.includes(` ${check.padEnd(13)}`)) ?? ""

describe("agent-sidecar doctor", () => {
  it.live("all checks pass on a good setup", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const wake = script(dir, "wake.sh", "exit 0")
    const r = yield* doctor(writeConfig(dir, { hub_url: hub.url, wake_command: [wake] }))
    assert.strictEqual(r.code, 0, r.out)
    for (const check of ["config", "hub", "wake command", "results_dir", "file events", "state lock"]) assert.match(line(r.out, check), /^ok/, `${check}\n${r.out}`)
    assert.notInclude(r.out, "secret-token-123")
    assert.strictEqual(hub.count((f) => f.type === "identify"), 1)
    assert.strictEqual(hub.count((f) => f.type !== "identify"), 0, "doctor sends nothing but identify")
  }))

  it.live("each check fails when its condition is broken, with a fix", () => Effect.gen(function*() {
    const refusing = yield* makeFakeHub({ identify: false })
    const dir = yield* tempDir
    NFS.writeFileSync(`${dir}/not-a-dir`, "")
    // hub that answers identify with an error; a wake command that does not exist; results_dir under a file
    const config = writeConfig(dir, { hub_url: refusing.url, wake_command: ["/nonexistent/agent"], results_dir: "./not-a-dir/results" })
    const hubErrors = Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      if (refusing.count((f) => f.type === "identify") > 0) refusing.send({ type: "error", error: "auth_failed: invalid token" })
      yield* Effect.sleep(50)
    })))
    yield* hubErrors
    // the state lock held by a live process (this test runner)
    NFS.writeFileSync(`${dir}/queue.json.lock`, `${process.pid}\n`)
    const r = yield* doctor(config)
    assert.strictEqual(r.code, 1, r.out)
    assert.match(line(r.out, "config"), /^ok/)
    for (const check of ["hub", "wake command", "results_dir", "file events", "state lock"]) assert.match(line(r.out, check), /^FAIL/, `${check}\n${r.out}`)
    assert.include(r.out, "auth_failed")
    assert.include(r.out, `held by running pid ${process.pid}`)
    assert.strictEqual(r.out.split("\n").filter((l) => l.trim().startsWith("fix:")).length, 5)

    // hub unreachable
    const dir2 = yield* tempDir
    const r2 = yield* doctor(writeConfig(dir2, { hub_url: "ws://127.0.0.1:1/ws" }))
    assert.match(line(r2.out, "hub"), /^FAIL/)
    // invalid config: exit 78
    const r3 = yield* doctor(writeConfig(dir2, { hub_url: "nope" }, "bad.json"))
    assert.strictEqual(r3.code, 78)
    assert.include(r3.out, "hub_url:")
  }))
})

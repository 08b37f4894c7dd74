import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as NFS from "node:fs"
import { startDaemon } from "../support/daemon.ts"
import { tempDir } from "../support/sidecar.ts"

const cli = (...args: Array<string>) => Effect.gen(function*() {
  const run = yield* startDaemon(args)
  return { code: yield* run.exited, out: run.output() }
})

describe("command line", () => {
  it.live("--help works for every command; --version prints the version; errors are one line", () => Effect.gen(function*() {
    const root = yield* cli("--help")
    assert.strictEqual(root.code, 0)
    const commands = ["run", "status", "report", "hub", "dev", "doctor", "task", "drain", "service"]
    for (const c of commands) assert.include(root.out, `  ${c} `)
    for (const args of [...commands.map((c) => [c]), ["task", "cancel"], ["service", "install"]]) {
      const r = yield* cli(...args, "--help")
      assert.strictEqual(r.code, 0, `${args.join(" ")}: ${r.out}`)
      assert.include(r.out, `agent-sidecar ${args.join(" ")}`, args.join(" "))
    }
    assert.include((yield* cli("--version")).out, "0.1.0")
    const missing = yield* cli("status", "--config", "/nonexistent/config.json")
    assert.strictEqual(missing.code, 78)
    assert.strictEqual(missing.out.trim().split("\n").length, 2, missing.out)
    assert.include(missing.out, "file not found")
  }), 60_000)

  it.live("report writes atomically: a concurrent reader never sees a partial file", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const target = `${dir}/t-1.json`
    const big = JSON.stringify({ lines: Array.from({ length: 3_000 }, (_, i) => `line ${i} of the agent's output`) })
    const reads = { ok: 0, missing: 0, torn: 0 }
    const reader = yield* Effect.forkChild(Effect.forever(Effect.gen(function*() {
      try {
        const text = NFS.readFileSync(target, "utf8")
        JSON.parse(text)
        reads.ok++
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") reads.missing++
        else reads.torn++
      }
      yield* Effect.yieldNow
    })))
    for (let i = 0; i < 3; i++) {
      const r = yield* cli("report", "success", "t-1", "--output", big, "--results-dir", dir)
      assert.strictEqual(r.code, 0, r.out)
    }
    yield* Fiber.interrupt(reader)
    assert.strictEqual(reads.torn, 0)
    assert.isAbove(reads.ok, 0)
    const written = JSON.parse(NFS.readFileSync(target, "utf8"))
    assert.strictEqual(written.status, "success")
    assert.strictEqual(written.output.lines.length, 3_000)
    assert.strictEqual(NFS.statSync(target).mode & 0o777, 0o600)
    // the other kinds
    assert.strictEqual((yield* cli("report", "started", "t-1", "--results-dir", dir)).code, 0)
    assert.isTrue(NFS.existsSync(`${dir}/t-1.started`))
    assert.strictEqual((yield* cli("report", "progress", "t-1", "--percent", "40", "--message", "half", "--results-dir", dir)).code, 0)
    assert.deepStrictEqual(JSON.parse(NFS.readFileSync(`${dir}/t-1.progress`, "utf8")), { percent: 40, message: "half" })
    assert.strictEqual((yield* cli("report", "failed", "t-2", "--reason", "no tests", "--results-dir", dir)).code, 0)
    assert.deepStrictEqual(JSON.parse(NFS.readFileSync(`${dir}/t-2.json`, "utf8")), { status: "failed", reason: "no tests" })
    const bad = yield* cli("report", "started", "../escape", "--results-dir", dir)
    assert.strictEqual(bad.code, 2)
    assert.isFalse(NFS.existsSync(`${dir}/../escape.started`))
  }), 60_000)
})

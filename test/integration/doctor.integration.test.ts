import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as NFS from "node:fs"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { script, tempDir } from "../support/sidecar.ts"

const doctor = (config: string) => Effect.gen(function*() {
  const run = yield* startDaemon(["doctor", "--config", config])
  return { code: yield* run.exited, out: run.output() }
})
const isMountPoint = (dir: string) => NFS.readFileSync("/proc/self/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === dir)
/** Mounts a tmpfs at `dir` for the scope (false, with a message, where the machine does not allow it). */
const tmpfs = (dir: string, options: string) => Effect.acquireRelease(
  Effect.sync(() => {
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir], { stdio: "pipe" })
      return true
    } catch (e) {
      console.log(`skipped: cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`)
      return false
    }
  }),
  // (a test may have unmounted it already)
  (mounted) => Effect.sync(() => { if (mounted) NFS.existsSync(dir) && isMountPoint(dir) && execFileSync("umount", ["-l", dir], { stdio: "pipe" }) })
)
const line = (out: string, check: string) => out.split("\n").find((l) => l.includes(` ${check} `) || l.includes(` ${check.padEnd(13)}`)) ?? ""

describe("agent-sidecar doctor", () => {
  // issue 13: a string wake_command is read as /bin/sh would, quotes and env VAR=… included
  it.live("a string wake command with a quoted path containing spaces and env VAR=… resolves", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    NFS.mkdirSync(`${dir}/node 24/bin`, { recursive: true })
    const program = script(`${dir}/node 24/bin`, "node", "exit 0")
    const r = yield* doctor(writeConfig(dir, { hub_url: hub.url, wake_command: `env MODE="fast run" '${program}' agent.mjs "\${TASK_ID}"` }))
    assert.match(line(r.out, "wake command"), /^ok/, r.out)
    assert.include(r.out, `resolves to ${program}`)
  }))

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

  it.live("refuses a hub frame far over max_message_bytes before buffering it, as the daemon does", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub({ identify: false })
    const dir = yield* tempDir
    // once identify arrives: a frame 200 KB over the limit (past the 64 KB slack), then the answer
    yield* Effect.forkScoped(Effect.gen(function*() {
      while (hub.count((f) => f.type === "identify") === 0) yield* Effect.sleep(20)
      hub.send({ type: "task_progress", pad: "x".repeat(200_000) })
      hub.send({ type: "identified" })
    }))
    const r = yield* doctor(writeConfig(dir, { hub_url: hub.url, max_message_bytes: 4096 }))
    assert.match(line(r.out, "hub"), /^FAIL.*sent a frame over max_message_bytes \(4096 bytes\)/, r.out)
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

  it.live("a results_dir that is not writable or full is named with its cause and the fix", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const results = `${dir}/results`
    NFS.mkdirSync(results, { mode: 0o700 })
    const fixOf = (out: string, check: string) => out.split("\n")[out.split("\n").indexOf(line(out, check)) + 1] ?? ""
    const config = writeConfig(dir, { hub_url: hub.url })
    if (process.getuid?.() !== 0) {
      // not root: a folder without write permission
      NFS.chmodSync(results, 0o500)
      const r = yield* doctor(config)
      NFS.chmodSync(results, 0o700)
      assert.match(line(r.out, "results_dir"), /^FAIL.*permission denied \(EACCES\)/, r.out)
      assert.match(fixOf(r.out, "results_dir"), /chmod 700/)
      return console.log("skipped the read-only and full file system cases: they need root to mount a tmpfs")
    }
    // read-only
    if (!(yield* tmpfs(results, "ro,size=64k,mode=0700"))) return
    const ro = yield* doctor(config)
    assert.strictEqual(ro.code, 1, ro.out)
    assert.match(line(ro.out, "results_dir"), /^FAIL.*read-only file system \(EROFS\)/, ro.out)
    assert.match(fixOf(ro.out, "results_dir"), /fix: .*read-only file system: point results_dir at a writable/)
    assert.match(line(ro.out, "file events"), /^FAIL.*no file can be written in results_dir/, ro.out)
    execFileSync("umount", [results])
    // full
    yield* tmpfs(results, "size=64k,mode=0700")
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${results}/filler`, "bs=4k", "count=64"], { stdio: "pipe" })
    } catch { /* no space left, as wanted */ }
    const full = yield* doctor(config)
    assert.strictEqual(full.code, 1, full.out)
    assert.match(line(full.out, "results_dir"), /^FAIL.*no space left on device \(ENOSPC\)/, full.out)
    assert.match(fixOf(full.out, "results_dir"), /fix: free space on the file system holding .*df -h/)
    // room again, but a 64 KiB folder cannot take a result: nearly full; file events still work
    NFS.rmSync(`${results}/filler`)
    const small = yield* doctor(config)
    assert.match(line(small.out, "results_dir"), /^FAIL.*nearly full: \d+ KiB free/, small.out)
    assert.match(line(small.out, "file events"), /^ok/, small.out)
  }))
})

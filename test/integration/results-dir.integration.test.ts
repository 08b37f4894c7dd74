/**
 * results_dir going away under the running daemon (issue 12): deleted and recreated, deleted while a task
 * works, and (as root) a tiny tmpfs that fills up. The real daemon, a FakeHub and shell wake scripts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as NFS from "node:fs"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { type FakeHub, makeFakeHub } from "../support/FakeHub.ts"
import { script, tempDir } from "../support/sidecar.ts"

const fastHub = { heartbeat_interval_ms: 1000, heartbeat_timeout_ms: 500, reconnect_initial_ms: 50, reconnect_max_ms: 200 }
/** The agent: says started, then writes a success result, both atomically (temp file + rename). */
const AGENT = `cd "$RESULTS_DIR" && echo s > ".$TASK_ID.s" && mv ".$TASK_ID.s" "$STARTED_FILE" && printf '{"status":"success","output":"%s"}' "$TASK_ID" > ".$TASK_ID.r" && mv ".$TASK_ID.r" "$RESULT_FILE"`

const until = (what: string, check: () => boolean, timeoutMs = 5000) => Effect.gen(function*() {
  while (!check()) yield* Effect.sleep(20)
}).pipe(Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(new Error(`timed out: ${what}`)) }))

const report = (hub: FakeHub, taskId: string) =>
  hub.waitFor((f) => (f.type === "task_complete" || f.type === "task_failed") && f["task_id"] === taskId, { timeoutMs: 8000 })

const assertCompletes = (hub: FakeHub, taskId: string) => Effect.gen(function*() {
  hub.send({ type: "task_assign", task_id: taskId, description: "x", generation: 1 })
  const r = yield* report(hub, taskId)
  assert.strictEqual(r.type, "task_complete", `${taskId}: ${JSON.stringify(r)}`)
})

/**
 * `rm -rf folder`, checked. Node 24's `rmSync` (recursive) returns without an error and leaves the folder in place
 * when a file in it is unlinked meanwhile (its `remove_all` stops at the ENOENT, which `rmSync` takes as done), and
 * the daemon's clean-up after a report's ack does exactly that: the cause of the two CI failures of this file.
 */
const removeFolder = (folder: string) => {
  for (let attempt = 1; NFS.existsSync(folder); attempt++) {
    assert.isAtMost(attempt, 10, `${folder} still there after ${attempt - 1} rmSync calls`)
    NFS.rmSync(folder, { recursive: true, force: true })
  }
}

/**
 * What to know if the daemon ever does not notice in time: whether the folder is there again, and what each of the
 * daemon's threads is doing (state and kernel wait channel).
 */
const diagnosis = (pid: number, folder: string): string => {
  const read = (file: string) => { try { return NFS.readFileSync(file, "utf8").trim() } catch (e) { return String(e) } }
  const there = NFS.statSync(folder, { bigint: true, throwIfNoEntry: false })
  const threads = (() => { try { return NFS.readdirSync(`/proc/${pid}/task`) } catch { return [] } })().map((tid) => {
    const stat = read(`/proc/${pid}/task/${tid}/stat`)
    return `${read(`/proc/${pid}/task/${tid}/comm`)} ${stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)} ${read(`/proc/${pid}/task/${tid}/wchan`)}`
  })
  return `\n${folder}: ${there === undefined ? "missing" : `there (ino ${there.ino}, born ${there.birthtimeNs})`}; daemon threads: ${threads.join(", ")}`
}

const taskStatus = (dir: string, taskId: string): string | undefined => {
  try {
    const q = JSON.parse(NFS.readFileSync(`${dir}/queue.json`, "utf8")) as { tasks: Array<{ task_id: string; status: string }> }
    return q.tasks.find((t) => t.task_id === taskId)?.status
  } catch {
    return undefined
  }
}

describe("results_dir deleted or full under the running daemon", () => {
  it.live("deleted (and recreated) while idle: the watch is re-armed and later tasks complete", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const results = `${dir}/results`
    const wake = script(dir, "wake.sh", AGENT)
    const config = writeConfig(dir, { hub_url: hub.url, wake_command: [wake], confirmation_timeout_ms: 4000, ...fastHub })
    const daemon = yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify")
    yield* assertCompletes(hub, "t-0")

    // removed and left missing: the daemon makes it again (0700), says so, and watches the new one
    removeFolder(results)
    const gone = Date.now()
    yield* daemon.waitForOutput(/results_dir re-armed/, 5000).pipe(
      Effect.mapError((e) => new Error(`${e.message}${diagnosis(daemon.pid, results)}`)))
    const rearmedMs = Date.now() - gone
    assert.isTrue(NFS.existsSync(results), "recreated")
    assert.strictEqual(NFS.statSync(results).mode & 0o777, 0o700)
    assert.match(daemon.output(), /results_dir .*(gone|replaced|lost)/)
    yield* assertCompletes(hub, "t-1")

    // removed and made again at once by someone else (often with the same inode number)
    const before = daemon.output().split("re-armed").length
    removeFolder(results)
    // recursive: the daemon may already have made it again in between (under load, the two calls are not instant)
    NFS.mkdirSync(results, { recursive: true })
    const made = Date.now()
    yield* until("re-armed again", () => daemon.output().split("re-armed").length > before)
    const replacedMs = Date.now() - made
    yield* assertCompletes(hub, "t-2")
    yield* assertCompletes(hub, "t-3")
    assert.strictEqual(hub.count((f) => f.type === "task_failed"), 0)
    console.log(`re-armed ${rearmedMs} ms after results_dir was removed, ${replacedMs} ms after it was replaced`)
  }))

  it.live("deleted while a task works: the result written into the recreated folder completes it", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const results = `${dir}/results`
    // the agent starts, and its result comes later (written by the test, as the agent)
    const wake = script(dir, "wake.sh", `cd "$RESULTS_DIR" && echo s > ".$TASK_ID.s" && mv ".$TASK_ID.s" "$STARTED_FILE"`)
    const config = writeConfig(dir, { hub_url: hub.url, wake_command: [wake], ...fastHub })
    yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify")
    hub.send({ type: "task_assign", task_id: "t-1", description: "x", generation: 1 })
    yield* until("t-1 working", () => taskStatus(dir, "t-1") === "working")
    // the agent cleans up, and some time later writes its result (making the folder if it is missing)
    removeFolder(results)
    yield* Effect.sleep(300)
    NFS.mkdirSync(results, { recursive: true })
    NFS.writeFileSync(`${results}/.t-1.tmp`, JSON.stringify({ status: "success", output: "made it" }))
    NFS.renameSync(`${results}/.t-1.tmp`, `${results}/t-1.json`)
    const r = yield* report(hub, "t-1")
    assert.strictEqual(r.type, "task_complete", JSON.stringify(r))
    assert.deepStrictEqual(r["result"], { status: "success", output: "made it" })
  }))

  it.live("a full results_dir (tmpfs, as root): the task fails task_file_unwritable, and once space is back the next completes", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const results = `${dir}/results`
    NFS.mkdirSync(results)
    const mounted = yield* Effect.acquireRelease(
      Effect.sync(() => {
        try {
          execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", results], { stdio: "pipe" })
          return true
        } catch (e) {
          console.log(`skipped: cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`)
          return false
        }
      }),
      (ok) => Effect.sync(() => { if (ok) execFileSync("umount", ["-l", results], { stdio: "pipe" }) })
    )
    if (!mounted) return
    const hub = yield* makeFakeHub()
    const wake = script(dir, "wake.sh", AGENT)
    const config = writeConfig(dir, { hub_url: hub.url, wake_command: [wake], confirmation_timeout_ms: 4000, ...fastHub })
    const daemon = yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify")
    // fill it: the file name is none of the agent's, so the watcher ignores it
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${results}/filler`, "bs=4k", "count=64"], { stdio: "pipe" })
    } catch { /* ENOSPC: full, as wanted */ }
    hub.send({ type: "task_assign", task_id: "t-1", description: "x", generation: 1 })
    const failed = yield* report(hub, "t-1")
    assert.strictEqual(failed.type, "task_failed")
    assert.strictEqual(failed["reason"], "task_file_unwritable")
    assert.include(daemon.output(), "no space left on device (ENOSPC)", daemon.output())
    yield* daemon.waitForOutput("degraded: results_dir")
    NFS.rmSync(`${results}/filler`)
    yield* assertCompletes(hub, "t-2")
    yield* daemon.waitForOutput("recovered: results_dir")
    assert.strictEqual(hub.count((f) => f.type === "task_rejected"), 0, "no slot held by the failed task")
  }))
})

/**
 * Path safety (issue "Hostile input and secrets", part 2; SPEC §3, §4, §6.9) with a real sidecar, a real
 * ws hub (FakeHub), real files and a real wake script.
 *
 * Task ids name files, so an id that could leave `results_dir` is answered `invalid_task` (or dropped when
 * unprintable) and nothing is written anywhere. The sidecar only creates files inside `results_dir` and beside
 * `queue_path`, with modes 0600 / 0700. Symlinks an attacker plants in `results_dir` are never followed: a
 * `<id>.json` pointing at a file outside is not read as the agent's result, a `rejected` symlink is not written
 * through, and files the sidecar writes replace a planted symlink instead of writing into its target.
 *
 * The state lives three levels below the temp dir (`state/s/results`), so that even `../../x` would land
 * inside the tree that is listed before and after.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NFS from "node:fs"
import type { Settings } from "../../src/domain/Config.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { listTree, mode, waitUntil } from "../support/security.ts"
import { readJson, script, settingsFor, startSidecar, tempDir } from "../support/sidecar.ts"

const assign = (task_id: string, extra: Record<string, unknown> = {}) => ({ type: "task_assign", task_id, description: "do it", ...extra })

/** A hub, a temp dir and a running sidecar whose wake script runs `body` (with the usual task variables). */
const setup = (body: string, overrides: Partial<Settings> = {}) => Effect.gen(function*() {
  const hub = yield* makeFakeHub()
  const dir = yield* tempDir
  NFS.mkdirSync(`${dir}/bin`)
  NFS.mkdirSync(`${dir}/outside`)
  const wake = script(`${dir}/bin`, "wake.sh", body)
  const state = `${dir}/state/s`
  const results = `${state}/results`
  yield* startSidecar(settingsFor(dir, hub.url, { wakeCommand: [wake], resultsDir: results, queuePath: `${state}/queue.json`, wakeRetryDelaysMs: [], ...overrides }))
  yield* hub.waitFor((f) => f.type === "identify")
  yield* waitUntil("queue.json exists", () => NFS.existsSync(`${state}/queue.json`) && NFS.existsSync(results))
  return { hub, dir, state, results }
})

/** Writes .started atomically, and a success result unless NO_RESULT is set. */
const agentScript = `cd "$RESULTS_DIR" || exit 1
echo started > ".s-$TASK_ID" && mv ".s-$TASK_ID" "$STARTED_FILE"
printf '{"status":"success","output":"ok"}' > ".r-$TASK_ID" && mv ".r-$TASK_ID" "$RESULT_FILE"`
const startOnlyScript = `cd "$RESULTS_DIR" || exit 1
echo started > ".s-$TASK_ID" && mv ".s-$TASK_ID" "$STARTED_FILE"`

/** The tree, less the queue's spare temp file (recycledWrite.ts), which the valid task's saves make. */
const treeWithoutSpare = (dir: string) => listTree(dir).filter((p) => !p.endsWith(".queue.json.spare (file)"))

const isFor = (type: string, id: string) => (f: { type: string; [k: string]: unknown }) => f.type === type && f["task_id"] === id

describe("task ids are restricted (protection: isValidTaskId in TaskFlow.onAssign, before anything is written)", () => {
  it.live("../x, a/b, .., ., /etc/passwd and friends: task_rejected invalid_task, nothing written anywhere", () => Effect.gen(function*() {
    const { hub, dir, state } = yield* setup(agentScript)
    const ids = ["../x", "../../x", "../../../x", "a/b", "..", ".", "/etc/passwd", "a\\b", "x/../../y", "", " x", "*", "~"]
    const before = listTree(dir)
    const queueBefore = NFS.readFileSync(`${state}/queue.json`, "utf8")
    for (const id of ids) hub.send(assign(id))
    for (const id of ids) {
      const answer = yield* hub.waitFor(isFor("task_rejected", id))
      assert.strictEqual(answer["reason"], "invalid_task", JSON.stringify(id))
    }
    assert.strictEqual(hub.count((f) => f.type === "task_accepted"), 0)
    assert.deepStrictEqual(listTree(dir), before, "files were created or removed for an invalid id")
    assert.strictEqual(NFS.readFileSync(`${state}/queue.json`, "utf8"), queueBefore)
    assert.isFalse(NFS.existsSync("/etc/passwd.task.json"))
  }))

  it.live("a 300-character id: task_rejected invalid_task, nothing written", () => Effect.gen(function*() {
    const { hub, dir } = yield* setup(agentScript)
    const id = "a".repeat(300)
    const before = treeWithoutSpare(dir)
    hub.send(assign(id))
    hub.send(assign("after-long"))
    yield* hub.waitFor(isFor("task_complete", "after-long"))
    assert.strictEqual(hub.count(isFor("task_accepted", id)), 0)
    yield* waitUntil("after-long's files are cleaned up", () => !treeWithoutSpare(dir).some((p) => p.includes("after-long")))
    assert.deepStrictEqual(treeWithoutSpare(dir), before, "files were created or removed for the 300-character id")
    const answer = hub.frames.find((f) => f["task_id"] === id)
    assert.isDefined(answer, "the 300-character id was never answered")
    assert.strictEqual(answer?.type, "task_rejected")
    assert.strictEqual(answer?.["reason"], "invalid_task")
  }))

  it.live("ids with NUL or control bytes: no answer, nothing written, and the daemon serves the next valid task", () => Effect.gen(function*() {
    const { hub, dir } = yield* setup(agentScript)
    const ids = ["a\u0000b", "\u0000", "../x\u0000.json", "a\nb", "\u001b[31mred", "ｘ"]
    const before = treeWithoutSpare(dir)
    for (const id of ids) hub.send(assign(id))
    hub.send(assign("next-ok"))
    const complete = yield* hub.waitFor(isFor("task_complete", "next-ok"))
    assert.deepStrictEqual(complete["result"], { status: "success", output: "ok" })
    for (const id of ids) assert.strictEqual(hub.count((f) => f["task_id"] === id), 0, `answered ${JSON.stringify(id)}`)
    yield* waitUntil("next-ok's files are cleaned up", () => !treeWithoutSpare(dir).some((p) => p.includes("next-ok")))
    assert.deepStrictEqual(treeWithoutSpare(dir), before)
  }))
})

describe("files only inside results_dir and beside queue_path, 0600 / 0700 (protection: writeAtomic FILE_MODE, ensureDirectory DIR_MODE)", () => {
  it.live("a held task: everything the sidecar created is under state/s; task.json and queue.json 0600; its directories 0700", () => Effect.gen(function*() {
    const { hub, dir, state, results } = yield* setup(startOnlyScript)
    hub.send(assign("held-1", { metadata: { k: "v" } }))
    yield* hub.waitFor(isFor("wake_result", "held-1"))
    yield* waitUntil("task.json exists", () => NFS.existsSync(`${results}/held-1.task.json`))
    for (const entry of listTree(dir)) {
      const inBin = entry.startsWith("bin") || entry.startsWith("outside")
      const inState = entry.startsWith("state/s/") || entry === "state (dir)" || entry === "state/s (dir)"
      assert.isTrue(inBin || inState, `created outside results_dir / beside queue_path: ${entry}`)
      if (entry.startsWith("state/s/results/")) assert.notInclude(entry.slice("state/s/results/".length), "/", `nested under results_dir: ${entry}`)
    }
    assert.strictEqual(mode(`${results}/held-1.task.json`), 0o600, "task.json mode")
    assert.strictEqual(mode(`${state}/queue.json`), 0o600, "queue.json mode")
    assert.strictEqual(mode(results), 0o700, "results_dir mode")
    assert.strictEqual(mode(state), 0o700, "queue_path's directory mode")
    assert.strictEqual(mode(`${dir}/state`), 0o700, "parent created for queue_path")
    const task = readJson(`${results}/held-1.task.json`) as Record<string, unknown>
    assert.strictEqual(task["task_id"], "held-1")
  }))
})

describe("planted symlinks in results_dir are never followed (protection: lstat in ResultWatcher, rename-over in writeAtomic)", () => {
  it.live("<id>.json -> a file outside with valid success JSON, or -> /etc/passwd: task_failed result_parse_error, targets untouched", () => Effect.gen(function*() {
    const { hub, dir, results } = yield* setup(startOnlyScript, { maxActiveTasks: 2 })
    const outside = `${dir}/outside/result.json`
    const content = JSON.stringify({ status: "success", output: "read through a symlink" })
    NFS.writeFileSync(outside, content)
    const passwd = NFS.readFileSync("/etc/passwd", "utf8")
    hub.send(assign("sym-1"))
    hub.send(assign("pw-1"))
    yield* waitUntil(".started written", () => NFS.existsSync(`${results}/sym-1.started`) && NFS.existsSync(`${results}/pw-1.started`))
    NFS.symlinkSync(outside, `${results}/sym-1.json`)
    NFS.symlinkSync("/etc/passwd", `${results}/pw-1.json`)
    const ends = yield* Effect.forEach(["sym-1", "pw-1"], (id) =>
      hub.waitFor((f) => (f.type === "task_failed" || f.type === "task_complete") && f["task_id"] === id, { timeoutMs: 2_000 }).pipe(
        Effect.map((end) => ({ id, end })),
        Effect.catch(() => Effect.succeed({ id, end: undefined }))
      ), { concurrency: "unbounded" })
    // whatever happened, nothing outside was read as a success, changed or moved
    assert.strictEqual(hub.count((f) => f.type === "task_complete"), 0, "a planted symlink was read as the result")
    assert.strictEqual(NFS.readFileSync(outside, "utf8"), content, "the outside file changed")
    assert.isTrue(NFS.lstatSync(outside).isFile(), "the outside file was moved or replaced")
    assert.strictEqual(NFS.readFileSync("/etc/passwd", "utf8"), passwd)
    for (const { id, end } of ends) {
      assert.isDefined(end, `${id}: a planted <id>.json symlink was never reported (the task hangs)`)
      assert.strictEqual(end?.type, "task_failed", id)
      assert.match(String(end?.["reason"]), /^result_parse_error/, id)
      assert.notInclude(String(end?.["reason"]), "root:", `${id}: the reason quotes /etc/passwd`)
    }
  }))

  it.live("after a restart (rescan of recovered tasks): symlinked results are invalid, never read; outside files untouched", () => Effect.gen(function*() {
    // The rescan path hands file names straight to the result reader (no watcher filter in front of it), so
    // this is where the reader's own lstat check is the only thing between a planted symlink and a success.
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    NFS.mkdirSync(`${dir}/bin`)
    NFS.mkdirSync(`${dir}/outside`)
    const results = `${dir}/state/s/results`
    const settings = settingsFor(dir, hub.url, {
      wakeCommand: [script(`${dir}/bin`, "wake.sh", startOnlyScript)], resultsDir: results, queuePath: `${dir}/state/s/queue.json`,
      wakeRetryDelaysMs: [], maxActiveTasks: 2
    })
    const outside = `${dir}/outside/result.json`
    const content = JSON.stringify({ status: "success", output: "read through a symlink" })
    NFS.writeFileSync(outside, content)
    const passwd = NFS.readFileSync("/etc/passwd", "utf8")
    yield* Effect.scoped(Effect.gen(function*() {
      yield* startSidecar(settings)
      hub.send(assign("r-1"))
      hub.send(assign("r-2"))
      yield* waitUntil(".started written", () => NFS.existsSync(`${results}/r-1.started`) && NFS.existsSync(`${results}/r-2.started`))
      NFS.symlinkSync(outside, `${results}/r-1.json`)
      NFS.symlinkSync("/etc/passwd", `${results}/r-2.json`)
      yield* Effect.sleep(100)
    }))
    yield* startSidecar(settings) // recovers r-1, r-2; FakeHub answers task_continue; their files are rescanned
    for (const id of ["r-1", "r-2"]) {
      const end = yield* hub.waitFor((f) => (f.type === "task_failed" || f.type === "task_complete") && f["task_id"] === id, { timeoutMs: 5_000 })
      assert.strictEqual(end.type, "task_failed", `${id}: a planted symlink was read as the result: ${JSON.stringify(end)}`)
      assert.match(String(end["reason"]), /^result_parse_error/)
    }
    assert.strictEqual(hub.count((f) => f.type === "task_complete"), 0)
    assert.strictEqual(NFS.readFileSync(outside, "utf8"), content)
    assert.isTrue(NFS.lstatSync(outside).isFile())
    assert.strictEqual(NFS.readFileSync("/etc/passwd", "utf8"), passwd)
  }))

  it.live("`rejected` -> a directory outside: nothing is written through it", () => Effect.gen(function*() {
    const { hub, dir, results } = yield* setup(startOnlyScript)
    const outsideDir = `${dir}/outside/rejected-target`
    NFS.mkdirSync(outsideDir)
    NFS.symlinkSync(outsideDir, `${results}/rejected`)
    hub.send(assign("rj-1"))
    yield* waitUntil(".started written", () => NFS.existsSync(`${results}/rj-1.started`))
    NFS.writeFileSync(`${results}/.rj-1.tmp`, "this is { not json")
    NFS.renameSync(`${results}/.rj-1.tmp`, `${results}/rj-1.json`)
    const end = yield* hub.waitFor(isFor("task_failed", "rj-1"))
    assert.match(String(end["reason"]), /^result_parse_error/)
    yield* Effect.sleep(200)
    assert.deepStrictEqual(NFS.readdirSync(outsideDir), [], "a file was written through the planted `rejected` symlink")
    assert.isTrue(NFS.lstatSync(`${results}/rejected`).isSymbolicLink())
  }))

  it.live("<id>.task.json and <id>.cancelled -> files outside: replaced, their targets untouched", () => Effect.gen(function*() {
    const { hub, dir, results } = yield* setup(startOnlyScript)
    const victimTask = `${dir}/outside/victim-task.txt`
    const victimCancel = `${dir}/outside/victim-cancel.txt`
    NFS.writeFileSync(victimTask, "original task victim")
    NFS.writeFileSync(victimCancel, "original cancel victim")
    NFS.symlinkSync(victimTask, `${results}/tf-1.task.json`)
    NFS.symlinkSync(victimCancel, `${results}/tf-1.cancelled`)
    hub.send(assign("tf-1"))
    yield* hub.waitFor(isFor("wake_result", "tf-1"))
    yield* waitUntil("task.json replaced", () => NFS.lstatSync(`${results}/tf-1.task.json`).isFile())
    assert.strictEqual(NFS.readFileSync(victimTask, "utf8"), "original task victim", "task.json was written through a symlink")
    assert.strictEqual(mode(`${results}/tf-1.task.json`), 0o600)
    hub.send({ type: "task_cancelled", task_id: "tf-1" })
    yield* waitUntil(".cancelled replaced", () => NFS.lstatSync(`${results}/tf-1.cancelled`).isFile())
    assert.strictEqual(NFS.readFileSync(victimCancel, "utf8"), "original cancel victim", ".cancelled was written through a symlink")
  }))
})

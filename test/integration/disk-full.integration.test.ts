/**
 * A full disk under the state (issue 12, items 1 and 6), for real: `queue.json` on a tmpfs of 256 KiB that the
 * test fills up. While it is full the daemon answers new tasks `busy`, holds the finished result back (nothing
 * is sent that is not saved), says "no space left on device (ENOSPC)" once, and /readyz answers 503. Once
 * space is back, without a restart, the result is reported and new tasks are taken.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as NFS from "node:fs"
import * as Net from "node:net"
import * as OS from "node:os"
import * as NPath from "node:path"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { script, tempDir } from "../support/sidecar.ts"

/** Mounting a tmpfs needs root (CI runs as root); elsewhere the test says why it is skipped. */
const canMount = (() => {
  const probe = NFS.mkdtempSync(NPath.join(OS.tmpdir(), "tmpfs-probe-"))
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]).status === 0
  if (mounted) spawnSync("umount", [probe])
  NFS.rmSync(probe, { recursive: true, force: true })
  if (!mounted) console.warn("disk-full test skipped: cannot mount a tmpfs here (needs root)")
  return mounted
})()

const freePort = () => new Promise<number>((resolve) => {
  const server = Net.createServer().listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resolve(port))
  })
})

const readyz = (port: number) => Effect.promise(() => fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status).catch(() => 0))

describe("a full disk under queue.json", () => {
  it.live.skipIf(!canMount)("holds the result while full; reports it and takes tasks again once space is back, no restart", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const state = `${dir}/state`
    NFS.mkdirSync(state)
    assert.strictEqual(spawnSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", state]).status, 0)
    yield* Effect.addFinalizer(() => Effect.sync(() => spawnSync("umount", ["-l", state])))
    const wake = script(dir, "wake.sh", `cd "$RESULTS_DIR"; echo s > .s && mv .s "$STARTED_FILE"
(while [ -d "${dir}" ] && [ ! -e "${dir}/go-$TASK_ID" ]; do sleep 0.05; done; [ -e "${dir}/go-$TASK_ID" ] || exit 0
printf '{"status":"success","output":"kept"}' > .r && mv .r "$RESULT_FILE") >/dev/null 2>&1 &`)
    const port = yield* Effect.promise(freePort)
    const config = writeConfig(dir, {
      hub_url: hub.url, wake_command: [wake], results_dir: `${dir}/results`, queue_path: `${state}/queue.json`,
      log_file: `${dir}/sidecar.log`, max_active_tasks: 2, http_addr: `127.0.0.1:${port}`, reconnect_initial_ms: 50
    })
    yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify")
    hub.send({ type: "task_assign", task_id: "t-1", generation: 1 })
    yield* hub.waitFor((f) => f.type === "task_accepted" && f["task_id"] === "t-1")
    yield* hub.waitFor((f) => f.type === "wake_result" && f["task_id"] === "t-1")

    // fill the disk, then let the agent finish. The queue's spare inode (recycledWrite.ts) goes first: its page would
    // otherwise hold the next small queue, and a full disk must mean no save can succeed
    NFS.rmSync(`${state}/.queue.json.spare`, { force: true })
    spawnSync("dd", ["if=/dev/zero", `of=${state}/filler`, "bs=4k"], { stdio: "ignore" })
    // and the last pages: until not even a small file can be written
    for (let i = 0; ; i++) {
      try { NFS.writeFileSync(`${state}/filler-${i}`, "x".repeat(512)) } catch { break }
    }
    NFS.writeFileSync(`${dir}/go-t-1`, "")
    hub.send({ type: "task_assign", task_id: "t-2", generation: 1 })
    const rejected = yield* hub.waitFor((f) => f.type === "task_rejected" && f["task_id"] === "t-2")
    assert.strictEqual(rejected["reason"], "busy")
    yield* Effect.sleep(1500)
    assert.isUndefined(hub.frames.find((f) => f.type === "task_complete"), "nothing sent that could not be saved")
    assert.strictEqual(yield* readyz(port), 503)
    const log = NFS.readFileSync(`${dir}/sidecar.log`, "utf8")
    assert.include(log, "no space left on device (ENOSPC)")
    assert.strictEqual(log.split("\n").filter((l) => l.includes("degraded: queue")).length, 1, "named once for the episode")

    // space is back: no restart
    const freedAt = Date.now()
    for (const name of NFS.readdirSync(state)) if (name.startsWith("filler")) NFS.rmSync(`${state}/${name}`)
    const complete = yield* hub.waitFor((f) => f.type === "task_complete" && f["task_id"] === "t-1", { timeoutMs: 20_000 })
    assert.deepStrictEqual(complete["result"], { status: "success", output: "kept" })
    assert.isBelow(Date.now() - freedAt, 10_000)
    hub.send({ type: "task_assign", task_id: "t-3", generation: 1 })
    yield* hub.waitFor((f) => f.type === "task_accepted" && f["task_id"] === "t-3")
    yield* Effect.sleep(200)
    assert.strictEqual(yield* readyz(port), 200)
    // the log file is written in batches: give it a moment
    yield* Effect.gen(function*() {
      while (!NFS.readFileSync(`${dir}/sidecar.log`, "utf8").includes("recovered: queue works again")) yield* Effect.sleep(50)
    }).pipe(Effect.timeout(5_000))
  }), 40_000)
})

/**
 * Kill -9 the daemon at random instants across a stream of tasks, restarting it each time, with a hub that
 * answers task_recovering with task_continue. Holds SPEC §6.1-6.3: every accepted task ends with a settled
 * terminal report, queue.json always parses, and no task is woken again once its agent has started.
 * CRASH_KILLS=100 runs the long version.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Random } from "effect"
import * as NFS from "node:fs"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { script, tempDir } from "../support/sidecar.ts"

const KILLS = Number(process.env["CRASH_KILLS"] ?? 20)
const TASKS = 24

describe("crash safety", () => {
  it.live(`survives kill -9 at ${KILLS} random instants without losing or double-waking a task`, () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const journal = `${dir}/agent-journal.log`
    // The agent: logs its wake, says started, works a little, writes the result atomically.
    const agent = script(dir, "agent.sh", [
      `echo "wake $TASK_ID" >> "${journal}"`,
      `echo started > "$STARTED_FILE.tmp" && mv "$STARTED_FILE.tmp" "$STARTED_FILE"`,
      `echo "started $TASK_ID" >> "${journal}"`,
      `( sleep 0.$(( $(od -An -N1 -tu1 /dev/urandom) % 4 + 1 )); printf '{"status":"success","output":"%s"}' "$TASK_ID" > "$RESULT_FILE.tmp" && mv "$RESULT_FILE.tmp" "$RESULT_FILE" ) >/dev/null 2>&1 &`
    ].join("\n"))
    const config = writeConfig(dir, {
      hub_url: hub.url, wake_command: [agent], max_active_tasks: 3, wake_retry_delays_ms: [200, 400],
      confirmation_timeout_ms: 10_000, heartbeat_interval_ms: 1000, heartbeat_timeout_ms: 800, reconnect_initial_ms: 50, reconnect_max_ms: 200
    })
    const ids = Array.from({ length: TASKS }, (_, i) => `t-${i + 1}`)
    const accepted = () => new Set(hub.frames.filter((f) => f.type === "task_accepted").map((f) => f["task_id"] as string))
    const reported = () => new Set(hub.frames.filter((f) => f.type === "task_complete" || f.type === "task_failed").map((f) => f["task_id"] as string))
    // The hub keeps offering every task until the sidecar accepts it (a busy or crashed sidecar misses some).
    const offer = Effect.forever(Effect.gen(function*() {
      const got = accepted()
      for (const id of ids.filter((id) => !got.has(id)).slice(0, 3)) hub.send({ type: "task_assign", task_id: id, description: `task ${id}`, generation: 1 })
      yield* Effect.sleep(150)
    }))
    yield* Effect.forkScoped(offer)

    for (let kill = 0; kill < KILLS; kill++) {
      const identifies = hub.count((f) => f.type === "identify")
      const daemon = yield* startDaemon(["run", "--config", config])
      // a random instant once it is up: accepting, waking, working or reporting
      yield* hub.waitFor((f) => f.type === "identify", { count: identifies + 1 })
      yield* Effect.sleep(yield* Random.nextIntBetween(0, 700))
      daemon.process.kill("SIGKILL")
      yield* daemon.exited
      if (NFS.existsSync(`${dir}/queue.json`)) {
        const text = NFS.readFileSync(`${dir}/queue.json`, "utf8")
        assert.doesNotThrow(() => JSON.parse(text), `queue.json torn after kill ${kill + 1}`)
      }
    }
    const settledBeforeLast = reported().size
    // Let a last daemon finish everything.
    const last = yield* startDaemon(["run", "--config", config])
    yield* Effect.gen(function*() {
      while (reported().size < TASKS || JSON.parse(NFS.readFileSync(`${dir}/queue.json`, "utf8")).tasks.length > 0) yield* Effect.sleep(50)
    }).pipe(Effect.timeoutOrElse({ duration: 30_000, orElse: () => Effect.fail(new Error(`not settled: reported ${[...reported()].join(",")}\n${last.output().slice(-3000)}`)) }))

    // every task was accepted and reported, successfully, with no contradicting reports
    assert.deepStrictEqual([...accepted()].sort(), [...ids].sort())
    for (const id of ids) {
      const reports = hub.frames.filter((f) => (f.type === "task_complete" || f.type === "task_failed") && f["task_id"] === id)
      assert.isTrue(reports.every((r) => r.type === "task_complete"), `${id}: ${JSON.stringify(reports)}`)
      assert.deepStrictEqual(reports[0]!["result"], { status: "success", output: id })
    }
    // no task was woken again once its agent had said it started
    const lines = NFS.readFileSync(journal, "utf8").trim().split("\n")
    for (const id of ids) {
      const startedAt = lines.indexOf(`started ${id}`)
      const rewoken = lines.slice(startedAt + 1).filter((l) => l === `wake ${id}`)
      assert.strictEqual(rewoken.length, 0, `${id} woken again after it started:\n${lines.join("\n")}`)
    }
    console.log(`crash test: ${KILLS} kills, ${settledBeforeLast}/${TASKS} tasks reported before the last start, ${lines.filter((l) => l.startsWith("wake")).length} wakes, ${hub.count((f) => f.type === "task_recovering")} task_recovering`)
    const queue = JSON.parse(NFS.readFileSync(`${dir}/queue.json`, "utf8"))
    assert.deepStrictEqual({ tasks: queue.tasks.length, outbox: queue.outbox.length }, { tasks: 0, outbox: 0 })
  }), 120_000)
})

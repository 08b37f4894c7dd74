/**
 * Logs people and tools can read (issue 13): the real daemon (bin/agent-sidecar.js) writes each line to
 * log_file when it is logged, so a `kill -9` right after an event finds its line there, with `task_id` at the
 * top level (`jq -r .task_id`). stdout is the same JSON when it is not a terminal, or short human lines with
 * `--log-format human`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NFS from "node:fs"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { tempDir } from "../support/sidecar.ts"

type Line = Record<string, unknown> & { readonly time: string; readonly level: string; readonly msg: string }

/** `jq`-style: every line is one JSON object on its own. */
const parseLines = (text: string): Array<Line> => text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Line)

const TASKS = 20

describe("logs", () => {
  // The decider logs "task accepted" before the frame goes out, and each line is written when it is logged: so
  // the kill -9 lands the moment the hub has the task's own task_accepted.
  it.live(`kill -9 right after the hub has task_accepted: the "task accepted" line is already in log_file, task_id at the top`, () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const config = writeConfig(dir, { hub_url: hub.url, log_file: "./logs/sidecar.log", max_active_tasks: TASKS })
    const daemon = yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify")
    hub.send({ type: "task_assign", task_id: "t-1", description: "first", generation: 1 })
    yield* hub.waitFor((f) => f.type === "task_accepted" && f["task_id"] === "t-1")
    daemon.process.kill("SIGKILL")
    assert.strictEqual(yield* daemon.exited, "SIGKILL")

    const log = parseLines(NFS.readFileSync(`${dir}/logs/sidecar.log`, "utf8"))
    const accepted = log.filter((l) => l.msg === "task accepted" && l.task_id === "t-1")
    assert.strictEqual(accepted.length, 1, `no "task accepted" line for t-1 in:\n${log.map((l) => JSON.stringify(l)).join("\n")}`)
    const line = accepted[0]!
    assert.strictEqual(line.level, "info")
    assert.strictEqual(line.service, "TaskFlow")
    assert.strictEqual(line.agent_id, "agent-1")
    assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.deepStrictEqual(Object.keys(line).slice(0, 3), ["time", "level", "msg"])
    // stdout is a pipe here: the same JSON lines as the file
    const stdout = parseLines(daemon.output().split("\n").filter((l) => l.startsWith("{")).join("\n"))
    assert.isTrue(stdout.some((l) => l.msg === "task accepted" && l.task_id === "t-1"))
    assert.notInclude(NFS.readFileSync(`${dir}/logs/sidecar.log`, "utf8"), "secret-token-123")
  }))

  it.live(`a burst of ${TASKS} tasks, kill -9 right after the next one's task_accepted: every "task accepted" line is there`, () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const config = writeConfig(dir, { hub_url: hub.url, log_file: "./sidecar.log", max_active_tasks: TASKS + 1 })
    const daemon = yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify")
    const ids = Array.from({ length: TASKS }, (_, i) => `b-${i + 1}`)
    for (const id of [...ids, "trigger"]) hub.send({ type: "task_assign", task_id: id, description: id, generation: 1 })
    yield* hub.waitFor((f) => f.type === "task_accepted" && f["task_id"] === "trigger")
    daemon.process.kill("SIGKILL")
    yield* daemon.exited
    const taskIds = parseLines(NFS.readFileSync(`${dir}/sidecar.log`, "utf8")).filter((l) => l.msg === "task accepted").map((l) => l.task_id)
    assert.includeMembers(taskIds, ids)
  }))

  it.live("--log-format human: short lines on stdout; log_file is still JSON", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const config = writeConfig(dir, { hub_url: hub.url, log_file: "./sidecar.log" })
    const daemon = yield* startDaemon(["run", "--config", config, "--log-format", "human"])
    yield* hub.waitFor((f) => f.type === "identify")
    hub.send({ type: "task_assign", task_id: "t-h", description: "human", generation: 1 })
    yield* daemon.waitForOutput(/^\d\d:\d\d:\d\d INFO task accepted .*task_id=t-h/m)
    assert.match(daemon.output(), /^\d\d:\d\d:\d\d INFO identified by the hub .*service=HubClient/m)
    assert.notMatch(daemon.output(), /^\{/m, "no JSON on stdout")
    assert.isTrue(parseLines(NFS.readFileSync(`${dir}/sidecar.log`, "utf8")).some((l) => l.msg === "task accepted" && l.task_id === "t-h"))
    daemon.process.kill("SIGTERM")
    assert.strictEqual(yield* daemon.exited, 0)
  }))

  // stdout lines are written straight to fd 1 while the stream is empty (issue 14): a reader that goes away
  // (EPIPE) must cost the lines on stdout, never the daemon or its log_file
  it.live("stdout's reader goes away: the daemon keeps taking tasks, and log_file keeps every line", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    const config = writeConfig(dir, { hub_url: hub.url, log_file: "./sidecar.log", max_active_tasks: 10 })
    const daemon = yield* startDaemon(["run", "--config", config])
    yield* hub.waitFor((f) => f.type === "identify")
    daemon.process.stdout!.destroy()
    for (const id of ["p-1", "p-2", "p-3"]) {
      hub.send({ type: "task_assign", task_id: id, description: id, generation: 1 })
      yield* hub.waitFor((f) => f.type === "task_accepted" && f["task_id"] === id)
    }
    assert.isNull(daemon.process.exitCode, "the daemon is still running")
    const accepted = parseLines(NFS.readFileSync(`${dir}/sidecar.log`, "utf8")).filter((l) => l.msg === "task accepted").map((l) => l.task_id)
    assert.deepStrictEqual(accepted, ["p-1", "p-2", "p-3"])
    daemon.process.kill("SIGTERM")
    assert.strictEqual(yield* daemon.exited, 0)
  }))
})

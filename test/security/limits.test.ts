/**
 * Size and shape limits (issue "Hostile input and secrets", part 3; SPEC §3, §4, §6.6) with a real sidecar,
 * a real ws hub, real files and a real wake script.
 *
 * Frames over `max_message_bytes`, non-JSON, binary frames, numbers where strings belong, deeply nested JSON:
 * each is logged once with its reason and gets the protocol's answer (dropped, or `task_rejected`
 * `invalid_task` when the task can be named), the connection stays up (one connection, one `identify`), and
 * the next valid task completes. Result files over `max_result_bytes` (or otherwise unusable) end the task with
 * `task_failed` `result_parse_error…` and are moved to `results_dir/rejected/`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NFS from "node:fs"
import { type HostileHub, makeHostileHub, readJsonLog, startLoggedSidecar, waitUntil } from "../support/security.ts"
import { script, settingsFor, tempDir } from "../support/sidecar.ts"
import type { Settings } from "../../src/domain/Config.ts"

const MAX_MESSAGE = 65_536

/** .started, then the result: `payloads/<id>` if the test put one there, else a plain success. Both atomically. */
const agentScript = `cd "$RESULTS_DIR" || exit 1
echo started > ".s-$TASK_ID" && mv ".s-$TASK_ID" "$STARTED_FILE"
if [ -f "../payloads/$TASK_ID" ]; then cp "../payloads/$TASK_ID" ".r-$TASK_ID"; else printf '{"status":"success","output":"ok"}' > ".r-$TASK_ID"; fi
mv ".r-$TASK_ID" "$RESULT_FILE"`

const assign = (task_id: string, extra: Record<string, unknown> = {}) => JSON.stringify({ type: "task_assign", task_id, description: "do it", ...extra })
const isFor = (type: string, id: unknown) => (f: { type: string; [k: string]: unknown }) => f.type === type && f["task_id"] === id
const deep = (levels: number, open: string, close: string, leaf = "1") => open.repeat(levels) + leaf + close.repeat(levels)

/**
 * Runs `body` against a live, logged sidecar (log_file in the temp dir), then stops it (flushing the log) and
 * returns the log's JSON lines. `payloads/<id>` files let a test choose what the agent writes as its result.
 */
const withSidecar = <A>(overrides: Partial<Settings>, body: (ctx: { hub: HostileHub; dir: string; results: string }) => Effect.Effect<A, unknown>) =>
  Effect.gen(function*() {
    const hub = yield* makeHostileHub()
    const dir = yield* tempDir
    NFS.mkdirSync(`${dir}/payloads`)
    const results = `${dir}/results`
    const logFile = `${dir}/sidecar.log`
    const settings = settingsFor(dir, hub.url, {
      wakeCommand: [script(dir, "wake.sh", agentScript)], wakeRetryDelaysMs: [], logFile, logLevel: "info", maxMessageBytes: MAX_MESSAGE, ...overrides
    })
    const value = yield* Effect.scoped(Effect.gen(function*() {
      yield* startLoggedSidecar(settings)
      yield* hub.waitFor((f) => f.type === "identify")
      return yield* body({ hub, dir, results })
    }))
    return { value, log: readJsonLog(logFile), hub, dir, results }
  })

/** The log entries (JSON lines) whose text mentions `needle`. */
const entriesMentioning = (log: ReadonlyArray<Record<string, unknown>>, needle: string) => log.filter((e) => JSON.stringify(e).includes(needle))

/** The connection survived: one connection, one identify (no reconnect), and a fresh task still completes. */
const stillServing = (hub: HostileHub, id: string) => Effect.gen(function*() {
  hub.send(assign(id))
  const done = yield* hub.waitFor(isFor("task_complete", id), { timeoutMs: 2_500 })
  assert.deepStrictEqual(done["result"], { status: "success", output: "ok" })
  assert.strictEqual(hub.connections(), 1, "the connection was dropped")
  assert.strictEqual(hub.count((f) => f.type === "identify"), 1, "the sidecar reconnected")
})

describe("hostile frames: one log line each, the right answer, the connection stays up (protection: decodeFrame + validateAssignment in HubClient/TaskFlow)", () => {
  it.live("oversize, non-JSON, binary, numbers where strings belong, deep nesting without a task to persist", () => Effect.gen(function*() {
    const { log, hub } = yield* withSidecar({}, ({ hub }) => Effect.gen(function*() {
      // over max_message_bytes: must be dropped before it is parsed (else "big" would be accepted)
      hub.send(assign("big", { description: "x".repeat(MAX_MESSAGE + 10) }))
      // not JSON, including one that tries to forge a log line
      hub.send("{not json")
      hub.send(`nope\n{"level":"ERROR","message":"forged-log-line"}\n`)
      // binary frame
      hub.sendBinary(new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x22]))
      // numbers where strings belong
      hub.send(JSON.stringify({ type: "task_assign", task_id: 5, description: "five" }))
      hub.send(JSON.stringify({ type: "task_ack", task_id: 5, status: "complete" }))
      hub.send(JSON.stringify({ type: "task_cancelled", task_id: ["x"] }))
      hub.send(JSON.stringify({ type: 7 }))
      hub.send(assign("num-desc", { description: 7 }))
      hub.send(assign("num-meta", { metadata: "not an object" }))
      hub.send(assign("num-gen", { generation: "3" }))
      // deep nesting where no task has to be persisted
      hub.send(deep(10_000, "[", "]", ""))
      hub.send(`{"type":"from_the_future","x":${deep(10_000, "[", "]", "")}}`)
      hub.send(`{"type":"task_ack","task_id":"t","status":${deep(10_000, "[", "]", "")}}`)
      for (const id of ["num-desc", "num-meta", "num-gen"]) {
        const answer = yield* hub.waitFor(isFor("task_rejected", id))
        assert.strictEqual(answer["reason"], "invalid_task", id)
      }
      yield* stillServing(hub, "after-1")
    }))
    for (const id of ["big", 5]) assert.strictEqual(hub.count((f) => f["task_id"] === id), 0, `answered ${JSON.stringify(id)}`)
    // one clear log line per hostile frame, with its reason
    const expectOnce = (needle: string, count = 1) =>
      assert.strictEqual(entriesMentioning(log, needle).length, count, `log lines mentioning ${JSON.stringify(needle)}:\n${entriesMentioning(log, needle).map((e) => JSON.stringify(e).slice(0, 300)).join("\n")}`)
    expectOnce("over max_message_bytes")
    expectOnce("frame is not JSON", 2)
    expectOnce("binary frame dropped")
    expectOnce("frame is not a JSON object")
    expectOnce("frame has no string")
    expectOnce(`\\"task_assign\\" frame has fields of the wrong type`)
    expectOnce(`\\"task_ack\\" frame has fields of the wrong type`, 2)
    expectOnce(`\\"task_cancelled\\" frame has fields of the wrong type`)
    for (const id of ["num-desc", "num-meta", "num-gen"]) assert.isAtLeast(entriesMentioning(log, id).length, 1, `no log line for ${id}`)
    // a frame cannot forge log lines: every line is one JSON object, none of them the forged one
    assert.isFalse(log.some((e) => e["msg"] === "forged-log-line" || e["message"] === "forged-log-line" || JSON.stringify(e).startsWith('{"level":"ERROR","message":"forged')))
  }))

  it.live("a task_assign with 10k-deep JSON in an extra field: answered task_rejected invalid_task, the daemon keeps serving", () => Effect.gen(function*() {
    // Accepting it would mean persisting JSON that JSON.stringify cannot write (it overflows at ~5k levels):
    // the hub-message handler must not die over it, and the task must be refused at the door.
    const { hub, log } = yield* withSidecar({}, ({ hub }) => Effect.gen(function*() {
      hub.send(`{"type":"task_assign","task_id":"deep","description":"d","metadata":{"x":${deep(10_000, "[", "]", "")}}}`)
      yield* stillServing(hub, "after-deep")
    }))
    const answer = hub.frames.find((f) => f["task_id"] === "deep")
    assert.strictEqual(answer?.type, "task_rejected", `answer to "deep": ${JSON.stringify(answer)}`)
    assert.strictEqual(answer?.["reason"], "invalid_task")
    assert.isAtLeast(entriesMentioning(log, "deep").length, 1)
  }))

  it.live("a text frame that is not valid UTF-8: the daemon keeps serving (a protocol-level close is allowed, a crash is not)", () => Effect.gen(function*() {
    yield* withSidecar({}, ({ hub }) => Effect.gen(function*() {
      hub.sendRawText(new Uint8Array([0x7b, 0x22, 0x74, 0xc3, 0x28, 0xff, 0xfe, 0x22, 0x7d]))
      // The WebSocket layer may close the connection (RFC 6455: invalid UTF-8 in a text frame is close 1007);
      // the sidecar must reconnect and go on. Re-sending the assign is harmless (an assign for a held task is
      // answered task_accepted again), and covers a send that fell between two connections.
      yield* Effect.gen(function*() {
        while (hub.count(isFor("task_accepted", "after-utf8")) === 0) {
          hub.send(assign("after-utf8"))
          yield* Effect.sleep(200)
        }
      }).pipe(Effect.timeout(2_500))
      // at most one protocol close (1007) and one reconnect, not a crash loop
      assert.isAtMost(hub.count((f) => f.type === "identify"), 2)
      assert.isTrue(hub.closeCodes.every((c) => c === 1007), `close codes ${JSON.stringify(hub.closeCodes)}`)
      yield* hub.waitFor(isFor("task_complete", "after-utf8"), { timeoutMs: 2_500 })
    }))
  }))
})

describe("result files: over max_result_bytes or unusable → task_failed result_parse_error, moved to rejected/ (protection: size check + judge in ResultWatcher)", () => {
  it.live("a 4 KiB success result with max_result_bytes 1024: task_failed, file kept in rejected/", () => Effect.gen(function*() {
    const { hub, results } = yield* withSidecar({ maxResultBytes: 1024 }, ({ hub, dir, results }) => Effect.gen(function*() {
      NFS.writeFileSync(`${dir}/payloads/too-big`, JSON.stringify({ status: "success", output: "y".repeat(4096) }))
      hub.send(assign("too-big"))
      const end = yield* hub.waitFor((f) => (f.type === "task_failed" || f.type === "task_complete") && f["task_id"] === "too-big")
      assert.strictEqual(end.type, "task_failed", "an oversize result was accepted")
      assert.match(String(end["reason"]), /^result_parse_error.*max_result_bytes/)
      yield* waitUntil("moved to rejected/", () => NFS.existsSync(`${results}/rejected`) && NFS.readdirSync(`${results}/rejected`).length === 1)
      yield* stillServing(hub, "after-big")
      return results
    }))
    const kept = NFS.readdirSync(`${results}/rejected`)
    assert.strictEqual(kept.length, 1)
    assert.match(kept[0]!, /^too-big\.json\./)
    assert.strictEqual(NFS.statSync(`${results}/rejected/${kept[0]}`).size > 4096, true)
    assert.strictEqual(NFS.lstatSync(`${results}/rejected`).mode & 0o777, 0o700)
    assert.isFalse(NFS.existsSync(`${results}/too-big.json`))
    assert.strictEqual(hub.count(isFor("task_complete", "too-big")), 0)
  }))

  it.live("a success result 10k levels deep: task_failed result_parse_error, and the daemon keeps serving", () => Effect.gen(function*() {
    yield* withSidecar({}, ({ hub, dir }) => Effect.gen(function*() {
      NFS.writeFileSync(`${dir}/payloads/deep-ok`, `{"status":"success","output":${deep(10_000, '{"a":', "}")}}`)
      hub.send(assign("deep-ok"))
      const end = yield* hub.waitFor((f) => (f.type === "task_failed" || f.type === "task_complete") && f["task_id"] === "deep-ok", { timeoutMs: 2_500 })
      assert.strictEqual(end.type, "task_failed")
      assert.match(String(end["reason"]), /^result_parse_error/)
      yield* stillServing(hub, "after-deep-ok")
    }))
  }))

  it.live("a failed result whose reason is 10k levels deep: the task is reported, and the daemon keeps serving", () => Effect.gen(function*() {
    yield* withSidecar({}, ({ hub, dir }) => Effect.gen(function*() {
      NFS.writeFileSync(`${dir}/payloads/deep-fail`, `{"status":"failed","reason":${deep(10_000, '{"a":', "}")}}`)
      hub.send(assign("deep-fail"))
      const end = yield* hub.waitFor(isFor("task_failed", "deep-fail"), { timeoutMs: 2_500 })
      assert.isBelow(String(end["reason"]).length, 5000)
      yield* stillServing(hub, "after-deep-fail")
    }))
  }))
})

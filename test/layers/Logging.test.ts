/**
 * The log shape (issue 13): flat JSON lines (`time`, `level`, `msg`, annotations, fields at the top level), the
 * human line for terminals, collisions kept apart, a Cause as a string, secrets scrubbed on both sinks, and each
 * line in the file as soon as it is logged.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Console, Effect, Formatter, Layer, Redacted } from "effect"
import { TestConsole } from "effect/testing"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { type LogRecord, LoggingLayer, type LogFormat, renderJson } from "../../src/layers/Logging.ts"
import { scopedTempDir } from "../support/tempDir.ts"

/** `logs/sidecar.log` in a new temp folder, removed when the test ends. */
const tempLogFile = Effect.map(scopedTempDir("sidecar-log-"), (dir) => NPath.join(dir, "logs", "sidecar.log"))
const readLines = (file: string) => NFS.readFileSync(file, "utf8").split("\n").filter((l) => l !== "")

/** Runs `body` with the real LoggingLayer (file + captured stdout); returns what each sink got. */
const logged = <A>(format: LogFormat, body: (file: string) => Effect.Effect<A>, secrets: Array<string> = []) => Effect.gen(function*() {
  const file = yield* tempLogFile
  const console = yield* TestConsole.make
  const layer = LoggingLayer({ logLevel: "debug", logFile: file, secrets: secrets.map((s) => Redacted.make(s)) }, { format }).pipe(
    Layer.provide(Layer.succeed(Console.Console, console))
  )
  const value = yield* Effect.scoped(body(file).pipe(Effect.provide(layer), Effect.provideService(Console.Console, console)))
  const stdout = (yield* console.logLines).map(String)
  return { value, file, stdout, lines: readLines(file) }
})

describe("log lines", () => {
  it.effect("JSON: time, level, msg first; annotations and fields at the top level; jq-style access works", () => Effect.gen(function*() {
    const { lines, stdout } = yield* logged("json", () =>
      Effect.logInfo("task accepted", { task_id: "t-1", generation: 2 }).pipe(
        Effect.annotateLogs({ service: "TaskFlow", fiber: "hub messages" }),
        Effect.annotateLogs({ agent_id: "agent-1" })
      ))
    assert.strictEqual(lines.length, 1)
    const line = JSON.parse(lines[0]!) as Record<string, unknown>
    assert.deepStrictEqual(Object.keys(line).slice(0, 3), ["time", "level", "msg"])
    assert.deepStrictEqual(line, {
      time: "1970-01-01T00:00:00.000Z", level: "info", msg: "task accepted",
      agent_id: "agent-1", service: "TaskFlow", fiber: "hub messages", task_id: "t-1", generation: 2
    })
    // `jq -r .task_id`: every line parses alone and the field is at the top
    assert.deepStrictEqual(lines.map((l) => (JSON.parse(l) as { task_id?: unknown }).task_id), ["t-1"])
    assert.deepStrictEqual(stdout, lines, "stdout (not a terminal) gets the same JSON as the file")
  }))

  it.effect("levels are lower case; fields that would overwrite time/level/msg are prefixed, not lost", () => Effect.gen(function*() {
    const { lines } = yield* logged("json", () => Effect.gen(function*() {
      yield* Effect.logWarning("clash", { time: "forged", level: "error", msg: "forged msg", task_id: "t-2" })
      yield* Effect.logError("ann clash").pipe(Effect.annotateLogs({ level: "annotated" }))
      yield* Effect.logDebug("quiet")
    }))
    const [clash, ann, debug] = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.strictEqual(clash!["level"], "warn")
    assert.strictEqual(clash!["msg"], "clash")
    assert.strictEqual(clash!["time"], "1970-01-01T00:00:00.000Z")
    assert.strictEqual(clash!["field_time"], "forged")
    assert.strictEqual(clash!["field_level"], "error")
    assert.strictEqual(clash!["field_msg"], "forged msg")
    assert.strictEqual(clash!["task_id"], "t-2")
    assert.strictEqual(ann!["level"], "error")
    assert.strictEqual(ann!["field_level"], "annotated")
    assert.strictEqual(debug!["level"], "debug")
  }))

  it.effect("message parts: first string is msg, plain objects spread, anything else under details; a Cause is a string", () => Effect.gen(function*() {
    const { lines } = yield* logged("json", () => Effect.gen(function*() {
      yield* Effect.logError("handling failed", { task_id: "t-3" }, Cause.fail(new Error("boom")))
      yield* Effect.logInfo("several", "second string", 42, { a: 1 }, { b: 2 })
      yield* Effect.logWarning("an error value", new Error("bad thing"))
      yield* Effect.logInfo({ only: "fields" })
      yield* Effect.logInfo("own cause field", { cause: "a string" })
      yield* Effect.logInfo("details field clash", new Error("x"), { details: "mine" })
    }))
    const [failed, several, errorValue, onlyFields, ownCause, detailsClash] = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.strictEqual(failed!["msg"], "handling failed")
    assert.strictEqual(failed!["task_id"], "t-3")
    assert.typeOf(failed!["cause"], "string")
    assert.include(failed!["cause"] as string, "boom")
    assert.deepStrictEqual({ ...several }, { time: several!["time"], level: "info", msg: "several", a: 1, b: 2, details: ["second string", 42] })
    assert.deepInclude(errorValue!["details"] as object, { name: "Error", message: "bad thing" })
    assert.strictEqual(onlyFields!["msg"], "")
    assert.strictEqual(onlyFields!["only"], "fields")
    assert.strictEqual(ownCause!["cause"], "a string", "no Cause: a field may be called cause")
    assert.strictEqual(detailsClash!["field_details"], "mine")
    assert.deepInclude(detailsClash!["details"] as object, { message: "x" })
  }))

  it.effect("a newline in a message cannot forge a line, in either format", () => Effect.gen(function*() {
    const forged = `nope\n{"time":"x","level":"error","msg":"forged"}`
    const json = yield* logged("json", () => Effect.logInfo(forged, { note: "a\nb" }))
    assert.strictEqual(json.lines.length, 1)
    assert.strictEqual((JSON.parse(json.lines[0]!) as { msg: string }).msg, forged)
    const human = yield* logged("human", () => Effect.logInfo(forged, { note: "a\nb" }))
    assert.strictEqual(human.stdout.length, 1)
    assert.notInclude(human.stdout[0]!, "\n")
  }))

  it.effect("human: a short line, time level msg key=value; the file still gets JSON", () => Effect.gen(function*() {
    const { lines, stdout } = yield* logged("human", () => Effect.gen(function*() {
      yield* Effect.logInfo("task accepted", { task_id: "t-1" }).pipe(Effect.annotateLogs({ service: "TaskFlow", agent_id: "agent-1" }))
      yield* Effect.logWarning("connection closed", { why: "code 1006 (abnormal)", attempts: 3, ok: false })
      yield* Effect.logError("failed", Cause.fail(new Error("boom")))
    }))
    assert.match(stdout[0]!, /^\d\d:\d\d:\d\d INFO task accepted service=TaskFlow agent_id=agent-1 task_id=t-1$/)
    assert.match(stdout[1]!, /^\d\d:\d\d:\d\d WARN connection closed why="code 1006 \(abnormal\)" attempts=3 ok=false$/)
    assert.match(stdout[2]!, /^\d\d:\d\d:\d\d ERROR failed\n {4}Error: boom/)
    assert.strictEqual((JSON.parse(lines[0]!) as { task_id: string }).task_id, "t-1")
  }))

  it.effect("secrets are scrubbed on both sinks, also where JSON escapes them", () => Effect.gen(function*() {
    const quoted = `pa"ss\\word`
    for (const format of ["json", "human"] as const) {
      const { lines, stdout } = yield* logged(format, () => Effect.gen(function*() {
        yield* Effect.logInfo("token secret-token-123 in msg", { header: "Bearer secret-token-123" })
        yield* Effect.logInfo(`quoted ${quoted}`, { q: quoted })
      }), ["secret-token-123", quoted])
      const all = [...lines, ...stdout].join("\n")
      assert.notInclude(all, "secret-token-123")
      assert.notInclude(all, "ss\\\\word")
      assert.notInclude(all, "ss\\word")
      assert.include(all, "<redacted>")
    }
  }))

  it.effect("each line is in the file when the log call returns (no batching); file 0600, folder 0700", () => Effect.gen(function*() {
    const { value } = yield* logged("json", (file) => Effect.gen(function*() {
      const seen: Array<number> = []
      for (let i = 0; i < 3; i++) {
        yield* Effect.logInfo("step", { i })
        seen.push(readLines(file).length)
      }
      return { seen, mode: NFS.statSync(file).mode & 0o777, dirMode: NFS.statSync(NPath.dirname(file)).mode & 0o777 }
    }))
    assert.deepStrictEqual(value.seen, [1, 2, 3])
    assert.strictEqual(value.mode, 0o600)
    assert.strictEqual(value.dirMode, 0o700)
  }))
})

describe("renderJson", () => {
  const record = (extra: Record<string, unknown>): LogRecord => Object.assign(Object.create(null) as Record<string, unknown>,
    { time: "2026-11-28T00:00:00.000Z", level: "info", msg: "m \"q\" \n é" }, extra) as LogRecord
  it("writes a flat record exactly as formatJson does (its fast path), and keeps formatJson for the rest", () => {
    for (const extra of [{}, { task_id: "t-1", n: 3, ok: true, none: null, nan: Number.NaN, weird: "\u0000\u2028<" }]) {
      const r = record(extra)
      assert.strictEqual(renderJson(r), Formatter.formatJson(r))
    }
    const secret = record({ token: Redacted.make("s3cret"), nested: { a: 1 } })
    assert.strictEqual(renderJson(secret), Formatter.formatJson(secret))
    assert.notInclude(renderJson(secret), "s3cret")
  })
})

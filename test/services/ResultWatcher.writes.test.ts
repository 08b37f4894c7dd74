/**
 * The sidecar's writes into a results_dir that vanished (issue 12, item 3): the folder is made again (0700) and
 * the write retried once, instead of failing the task; events for files in the new folder arrive.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer, Option, Stream } from "effect"
import * as NFS from "node:fs"
import { defaultSettings } from "../../src/domain/Config.ts"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { Health } from "../../src/services/Health.ts"
import { ResultWatcher } from "../../src/services/ResultWatcher.ts"
import { SETTLE_MS } from "../../src/services/watcher/AgentFileReader.ts"
import { SidecarConfig } from "../../src/services/SidecarConfig.ts"

const withWatcher = <A, E>(use: (w: ResultWatcher["Service"], results: string) => Effect.Effect<A, E>) => Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "rw-writes-" })
  const settings = defaultSettings(dir, { resultsDir: `${dir}/results` })
  const layer = ResultWatcher.layer.pipe(Layer.provide([SidecarConfig.layer(settings), Health.layer, PlatformLayer]))
  return yield* ResultWatcher.use((w) => use(w, settings.resultsDir)).pipe(Effect.provide(layer))
}).pipe(Effect.scoped, Effect.provide(PlatformLayer))

describe("ResultWatcher: writing into a results_dir that vanished", () => {
  it.live("writeTask, writeCancelled, keepText and reject make the folder again and succeed", () => withWatcher((w, results) => Effect.gen(function*() {
    NFS.rmSync(results, { recursive: true })
    yield* w.writeTask("t-1", { task_id: "t-1" })
    assert.deepStrictEqual(JSON.parse(NFS.readFileSync(`${results}/t-1.task.json`, "utf8")), { task_id: "t-1" })
    assert.strictEqual(NFS.statSync(results).mode & 0o777, 0o700)
    NFS.rmSync(results, { recursive: true })
    yield* w.writeCancelled("t-1")
    assert.isTrue(NFS.existsSync(`${results}/t-1.cancelled`))
    NFS.rmSync(results, { recursive: true })
    yield* w.keepText("t-1", "reason", "a long reason")
    assert.strictEqual(NFS.readdirSync(`${results}/rejected`).length, 1)
    NFS.rmSync(results, { recursive: true })
    yield* w.reject("t-1") // nothing to move: not an error
    yield* w.cleanup("t-1")
  })))

  it.live("after the folder was removed and made again, a result written into it is an event", () => withWatcher((w, results) => Effect.gen(function*() {
    NFS.rmSync(results, { recursive: true })
    yield* Effect.sleep(300)
    NFS.mkdirSync(results, { recursive: true })
    NFS.writeFileSync(`${results}/.t-2.tmp`, JSON.stringify({ status: "success", output: 1 }))
    NFS.renameSync(`${results}/.t-2.tmp`, `${results}/t-2.json`)
    const event = yield* w.events.pipe(Stream.filter((e) => e.taskId === "t-2"), Stream.runHead, Effect.timeoutOption("4 seconds"))
    assert.deepStrictEqual(Option.flatten(event).pipe(Option.map((e) => e._tag)), Option.some("Succeeded"))
  })))
})

describe("ResultWatcher: the agent's files, looked at as they come (issue 14: no fiber unless a result must settle)", () => {
  const firstEvent = (w: ResultWatcher["Service"], taskId: string) =>
    w.events.pipe(Stream.filter((e) => e.taskId === taskId), Stream.runHead, Effect.timeoutOption("4 seconds"), Effect.map(Option.flatten))

  it.live("a .started and an atomically written result are events at once", () => withWatcher((w, results) => Effect.gen(function*() {
    NFS.writeFileSync(`${results}/t-5.started`, "")
    assert.deepStrictEqual(Option.map(yield* firstEvent(w, "t-5"), (e) => e._tag), Option.some("Started"))
    NFS.writeFileSync(`${results}/.t-6.tmp`, JSON.stringify({ status: "success", output: "at once" }))
    NFS.renameSync(`${results}/.t-6.tmp`, `${results}/t-6.json`)
    assert.deepStrictEqual(Option.map(yield* firstEvent(w, "t-6"), (e) => e._tag), Option.some("Succeeded"))
  })))

  it.live("a result written in two steps is read once whole, never judged on its first half", () => withWatcher((w, results) => Effect.gen(function*() {
    NFS.writeFileSync(`${results}/t-3.json`, `{"status":"succ`)
    yield* Effect.sleep(100)
    NFS.appendFileSync(`${results}/t-3.json`, `ess","output":"late"}`)
    const event = yield* firstEvent(w, "t-3")
    assert.deepStrictEqual(event, Option.some({ _tag: "Succeeded", taskId: "t-3", result: { status: "success", output: "late" } }))
  })))

  it.live("a result that never parses is judged once it has stopped changing", () => withWatcher((w, results) => Effect.gen(function*() {
    const start = Date.now()
    NFS.writeFileSync(`${results}/t-4.json`, "not json")
    const event = yield* firstEvent(w, "t-4")
    assert.deepStrictEqual(Option.map(event, (e) => e._tag), Option.some("Invalid"))
    assert.isAtLeast(Date.now() - start, SETTLE_MS, "not before the settle time")
  })))
})

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

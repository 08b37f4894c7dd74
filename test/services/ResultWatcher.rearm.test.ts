/**
 * The results_dir watch is re-armed when its folder goes away (issue 12, item 3): the polling under TestClock,
 * with a fake watch (so only the poll can notice) on a real temp folder.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import * as NFS from "node:fs"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { Health } from "../../src/services/Health.ts"
import { makeDirHealth } from "../../src/services/watcher/DirHealth.ts"
import { GONE_GRACE_MS, type OpenWatch, POLL_MS, RETRY_MS, superviseWatch, type WatchHandlers } from "../../src/services/watcher/DirWatch.ts"

/** A watch that only counts how often it was opened (and closed) and hands its handlers to the test. */
const fakeWatch = () => {
  const state = { opened: 0, closed: 0, handlers: undefined as WatchHandlers | undefined }
  const open: OpenWatch = (_dir, on) => Effect.acquireRelease(
    Effect.sync(() => { state.opened++; state.handlers = on }),
    () => Effect.sync(() => { state.closed++ })
  )
  return { state, open }
}

/** Real I/O runs beside TestClock: wait for it in real time. */
const eventually = (what: string, check: () => boolean | Effect.Effect<boolean>) => TestClock.withLive(Effect.gen(function*() {
  const now = () => { const r = check(); return typeof r === "boolean" ? Effect.succeed(r) : r }
  for (let i = 0; i < 200 && !(yield* now()); i++) yield* Effect.sleep(10)
  assert.isTrue(yield* now(), what)
}))

const setup = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = `${yield* fs.makeTempDirectoryScoped({ prefix: "rearm-" })}/results`
  const health = yield* Health
  const watch = fakeWatch()
  const checker = yield* superviseWatch({ dir, open: watch.open, onFile: () => {}, health: yield* makeDirHealth(health) })
  return { dir, health, watch, checker }
})

const TestLayer = Layer.merge(PlatformLayer, Health.layer)

describe("ResultWatcher: re-arming the results_dir watch", () => {
  it.effect("a folder replaced behind the watch's back is noticed by the next poll and watched again", () => Effect.gen(function*() {
    const { dir, watch } = yield* setup
    assert.strictEqual(watch.state.opened, 1)
    // moved away and a new one made: no event reaches the (fake) watch, only the poll can see it
    NFS.renameSync(dir, `${dir}.old`)
    NFS.mkdirSync(dir)
    yield* TestClock.adjust(POLL_MS - 1)
    yield* TestClock.withLive(Effect.sleep(50))
    assert.strictEqual(watch.state.opened, 1, "not before the poll")
    yield* TestClock.adjust(1)
    yield* eventually("re-armed by the poll", () => watch.state.opened === 2)
    assert.strictEqual(watch.state.closed, 1, "the old watch is closed")
    // nothing changes: no more re-arms
    yield* TestClock.adjust(POLL_MS * 3)
    yield* TestClock.withLive(Effect.sleep(50))
    assert.strictEqual(watch.state.opened, 2)
  }).pipe(Effect.scoped, Effect.provide(TestLayer)))

  it.effect("a folder that is gone is made again (0700); one that cannot be made is a Health fault until it can", () => Effect.gen(function*() {
    const { dir, health, watch } = yield* setup
    NFS.rmSync(dir, { recursive: true })
    NFS.writeFileSync(dir, "a file where the folder was")
    yield* TestClock.adjust(POLL_MS)
    yield* eventually("the grace is being waited out", () => watch.state.closed === 1)
    yield* TestClock.adjust(GONE_GRACE_MS)
    yield* TestClock.withLive(Effect.sleep(20))
    yield* eventually("degraded", () => Effect.map(health.faults, (f) => f.length === 1))
    const [fault] = yield* health.faults
    assert.strictEqual(fault!.part, "results_dir")
    assert.include(fault!.cause, `cannot watch ${dir}`)
    NFS.rmSync(dir)
    yield* TestClock.adjust(RETRY_MS)
    yield* eventually("re-armed after the retry", () => watch.state.opened === 2)
    assert.deepStrictEqual(yield* health.faults, [])
    assert.strictEqual(NFS.statSync(dir).mode & 0o777, 0o700)
  }).pipe(Effect.scoped, Effect.provide(TestLayer)))

  it.effect("the watch saying its folder was deleted re-arms at once, even when the new folder looks the same", () => Effect.gen(function*() {
    const { watch } = yield* setup
    watch.state.handlers!.lost("deleted")
    watch.state.handlers!.lost("deleted, said twice")
    yield* eventually("re-armed without the clock moving", () => watch.state.opened === 2)
    yield* TestClock.withLive(Effect.sleep(50))
    assert.strictEqual(watch.state.opened, 2, "one re-arm for both signals")
    // an error alone, with the folder unchanged, does not re-arm
    watch.state.handlers!.error("EMFILE")
    yield* TestClock.withLive(Effect.sleep(50))
    assert.strictEqual(watch.state.opened, 2)
  }).pipe(Effect.scoped, Effect.provide(TestLayer)))

  it.effect("Health: results_dir is degraded while the watch or the writes fail, and works again only when both do", () => Effect.gen(function*() {
    const health = yield* Health
    const dir = yield* makeDirHealth(health)
    const causes = Effect.map(health.faults, (fs) => fs.map((f) => `${f.part}: ${f.cause}`))
    yield* dir.write(Option.some("cannot write t.task.json: no space left on device (ENOSPC)"))
    yield* dir.watch(Option.some("cannot watch /r: permission denied (EACCES)"))
    assert.deepStrictEqual(yield* causes, ["results_dir: cannot watch /r: permission denied (EACCES)"])
    yield* dir.write(Option.none())
    assert.deepStrictEqual(yield* causes, ["results_dir: cannot watch /r: permission denied (EACCES)"], "a good write does not hide a dead watch")
    yield* dir.write(Option.some("cannot write t.task.json: no space left on device (ENOSPC)"))
    yield* dir.watch(Option.none())
    assert.deepStrictEqual(yield* causes, ["results_dir: cannot write t.task.json: no space left on device (ENOSPC)"], "nor a re-armed watch a full disk")
    yield* dir.write(Option.none())
    assert.deepStrictEqual(yield* health.faults, [])
  }).pipe(Effect.provide(Health.layer)))
})

import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import fs, * as NFS from "node:fs"
import { syncBuiltinESMExports } from "node:module"
import { defaultSettings } from "../../src/domain/Config.ts"
import { emptyQueue, type QueueFile } from "../../src/domain/Task.ts"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { QueueStore } from "../../src/services/QueueStore.ts"
import { SidecarConfig } from "../../src/services/SidecarConfig.ts"
import { tempDir } from "../support/sidecar.ts"

/**
 * Records the durability-relevant node:fs calls, in order, around the real ones (writeAtomic calls node:fs directly:
 * issue 14), for the life of the scope. `syncBuiltinESMExports` makes `import fs, * as NFS from "node:fs"
import { syncBuiltinESMExports } from "node:module"` see them.
 */
const spyNodeFs = (calls: Array<string>) => Effect.acquireRelease(Effect.sync(() => {
  const name = (p: NFS.PathLike) => String(p).split("/").pop()!.replace(/\.\d+\.[a-z0-9]+\.tmp$/, ".TMP")
  const fds = new Map<number, string>()
  const original = { openSync: fs.openSync, writeFileSync: fs.writeFileSync, writeSync: fs.writeSync, fsync: fs.fsync, renameSync: fs.renameSync, linkSync: fs.linkSync }
  fs.openSync = (path: NFS.PathLike, flags?: NFS.OpenMode, mode?: NFS.Mode | null) => {
    const fd = original.openSync(path, flags ?? "r", mode)
    fds.set(fd, name(path))
    calls.push(`open ${name(path)} ${String(flags ?? "r")}`)
    return fd
  }
  fs.writeFileSync = (file: NFS.PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView, options?: NFS.WriteFileOptions) => {
    calls.push(`write ${typeof file === "number" ? fds.get(file) : name(file as NFS.PathLike)}`)
    original.writeFileSync(file, data, options)
  }
  fs.writeSync = ((fd: number, ...rest: Array<unknown>) => {
    calls.push(`write ${fds.get(fd)}`)
    return (original.writeSync as (fd: number, ...rest: Array<unknown>) => number)(fd, ...rest)
  }) as typeof fs.writeSync
  fs.fsync = ((fd: number, callback: NFS.NoParamCallback) => {
    calls.push(`fsync ${fds.get(fd)}`)
    original.fsync(fd, callback)
  }) as typeof fs.fsync
  fs.renameSync = (from: NFS.PathLike, to: NFS.PathLike) => {
    calls.push(`rename ${name(from)} -> ${name(to)}`)
    original.renameSync(from, to)
  }
  fs.linkSync = (existing: NFS.PathLike, added: NFS.PathLike) => {
    original.linkSync(existing, added)
    calls.push(`link ${name(existing)} -> ${name(added)}`) // only a link made (the first save has no queue to link)
  }
  syncBuiltinESMExports()
  return original
}), (original) => Effect.sync(() => {
  Object.assign(fs, original)
  syncBuiltinESMExports()
}))

const task = (id: string): QueueFile["tasks"][number] => ({
  task_id: id, description: "d", metadata: {}, assignment: { task_id: id }, status: "working", accepted_at: 1, updated_at: 1, timeline: []
})

const storeIn = (dir: string) => QueueStore.layer.pipe(Layer.provide(SidecarConfig.layer(defaultSettings(dir))))

describe("QueueStore (real files)", () => {
  it.live("save: temp file written and fsynced, then renamed, then the directory fsynced; the old inode is the next temp file", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const calls: Array<string> = []
    yield* spyNodeFs(calls)
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = NFS.constants
    const saves = Effect.gen(function*() {
      yield* QueueStore.use((s) => s.save({ ...emptyQueue, tasks: [task("t-1")] }))
      const first = NFS.statSync(`${dir}/queue.json`).ino
      yield* QueueStore.use((s) => s.save({ ...emptyQueue, tasks: [task("t-2")] }))
      return first
    })
    const first = yield* saves.pipe(Effect.provide(storeIn(dir).pipe(Layer.provide(PlatformLayer))))
    const dirName = dir.split("/").pop()!
    assert.deepStrictEqual(calls, [
      `open ${dirName} r`, // the folder is opened once, when the store starts
      // the first save: no spare yet, a new temp file (created exclusively, never through a symlink)
      `open .queue.json.spare ${O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW}`,
      "write .queue.json.spare",
      "fsync .queue.json.spare",
      "rename .queue.json.spare -> queue.json",
      `fsync ${dirName}`,
      // the second: the spare does not exist yet either (the first save had no old queue to keep)
      `open .queue.json.spare ${O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW}`,
      "write .queue.json.spare",
      "fsync .queue.json.spare",
      "link queue.json -> .queue.json.old", // the old queue keeps a name: its inode is not freed
      "rename .queue.json.spare -> queue.json",
      "rename .queue.json.old -> .queue.json.spare",
      `fsync ${dirName}`
    ])
    assert.strictEqual(NFS.statSync(`${dir}/queue.json`).mode & 0o777, 0o600)
    assert.strictEqual(NFS.statSync(`${dir}/.queue.json.spare`).ino, first, "the first queue's inode waits as the spare")
    assert.deepStrictEqual(NFS.readdirSync(dir).sort(), [".queue.json.spare", "queue.json"], "no other file left behind")
    assert.include(NFS.readFileSync(`${dir}/queue.json`, "utf8"), "t-2")

    // the third save writes into that spare: no new inode
    calls.length = 0
    yield* QueueStore.use((s) => s.save({ ...emptyQueue, tasks: [task("t-3")] })).pipe(Effect.provide(storeIn(dir).pipe(Layer.provide(PlatformLayer))))
    assert.include(calls, `open .queue.json.spare ${O_WRONLY | O_NOFOLLOW}`)
    assert.strictEqual(NFS.statSync(`${dir}/queue.json`).ino, first)
    assert.include(NFS.readFileSync(`${dir}/queue.json`, "utf8"), "t-3")

    // a spare that held a longer queue: written over and cut to the new length, nothing of the old one left
    const long: QueueFile = { ...emptyQueue, tasks: ["a", "b", "c", "d", "e"].map(task) }
    const layer = storeIn(dir).pipe(Layer.provide(PlatformLayer))
    yield* QueueStore.use((s) => Effect.andThen(s.save(long), s.save(long))).pipe(Effect.provide(layer))
    const short: QueueFile = { ...emptyQueue, tasks: [task("z")] }
    yield* QueueStore.use((s) => s.save(short)).pipe(Effect.provide(layer))
    assert.strictEqual(NFS.readFileSync(`${dir}/queue.json`, "utf8"), JSON.stringify(short))
    assert.deepStrictEqual(yield* QueueStore.use((s) => s.load).pipe(Effect.provide(layer)), short)
  }))

  it.live("a spare that is not a plain file of its own is never written into: a fresh temp file is used", () => Effect.gen(function*() {
    const layer = (dir: string) => storeIn(dir).pipe(Layer.provide(PlatformLayer))
    // a second name of queue.json itself (writing into it would tear the queue before the new one is durable)
    const dir = yield* tempDir
    yield* QueueStore.use((s) => s.save({ ...emptyQueue, tasks: [task("t-1")] })).pipe(Effect.provide(layer(dir)))
    NFS.linkSync(`${dir}/queue.json`, `${dir}/.queue.json.spare`)
    yield* QueueStore.use((s) => s.save({ ...emptyQueue, tasks: [task("t-2")] })).pipe(Effect.provide(layer(dir)))
    assert.include(NFS.readFileSync(`${dir}/queue.json`, "utf8"), "t-2")
    // a symlink planted as the spare: not followed, its target untouched
    const other = yield* tempDir
    NFS.writeFileSync(`${other}/precious`, "keep me")
    NFS.rmSync(`${dir}/.queue.json.spare`, { force: true })
    NFS.symlinkSync(`${other}/precious`, `${dir}/.queue.json.spare`)
    yield* QueueStore.use((s) => s.save({ ...emptyQueue, tasks: [task("t-3")] })).pipe(Effect.provide(layer(dir)))
    assert.strictEqual(NFS.readFileSync(`${other}/precious`, "utf8"), "keep me")
    assert.include(NFS.readFileSync(`${dir}/queue.json`, "utf8"), "t-3")
  }))

  it.live("round trip, and a missing file loads as empty", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const layer = storeIn(dir).pipe(Layer.provide(PlatformLayer))
    assert.deepStrictEqual(yield* QueueStore.use((s) => s.load).pipe(Effect.provide(layer)), emptyQueue)
    const q: QueueFile = { version: 2, tasks: [task("t-1")], outbox: [{ type: "task_failed", task_id: "t-1", reason: "x", generation: 4 }] }
    yield* QueueStore.use((s) => s.save(q)).pipe(Effect.provide(layer))
    assert.deepStrictEqual(yield* QueueStore.use((s) => s.load).pipe(Effect.provide(layer)), q)
  }))

  it.live("a corrupt file is moved aside with an error log, never a crash", () => Effect.gen(function*() {
    for (const corrupt of ["{\"version\": 2, \"tasks\": [", "[1,2,3]", "{\"version\": 2, \"tasks\": 5}"]) {
      const dir = yield* tempDir
      NFS.writeFileSync(`${dir}/queue.json`, corrupt)
      const loaded = yield* QueueStore.use((s) => s.load).pipe(Effect.provide(storeIn(dir).pipe(Layer.provide(PlatformLayer))))
      assert.deepStrictEqual(loaded, emptyQueue)
      const aside = NFS.readdirSync(dir).filter((f) => f.startsWith("queue.json.corrupt-"))
      assert.strictEqual(aside.length, 1, corrupt)
      assert.strictEqual(NFS.readFileSync(`${dir}/${aside[0]}`, "utf8"), corrupt, "kept for a person to read")
      assert.isFalse(NFS.existsSync(`${dir}/queue.json`))
    }
  }))

  it.live("the earlier sidecar's {active, recovering} layout loads, its tasks as recovering", () => Effect.gen(function*() {
    const dir = yield* tempDir
    NFS.writeFileSync(`${dir}/queue.json`, JSON.stringify({
      active: { "t-1": { task_id: "t-1", description: "fix the bug", metadata: { repo: "x" }, status: "working", generation: 2 } },
      recovering: [{ id: "t-2", description: "old", status: "waking" }, { task_id: "../evil", description: "dropped" }]
    }))
    const loaded = yield* QueueStore.use((s) => s.load).pipe(Effect.provide(storeIn(dir).pipe(Layer.provide(PlatformLayer))))
    assert.deepStrictEqual(loaded.tasks.map((t) => [t.task_id, t.status, t.last_status, t.description, t.generation]), [
      ["t-1", "recovering", "working", "fix the bug", 2],
      ["t-2", "recovering", "waking", "old", undefined]
    ])
    assert.deepStrictEqual(loaded.tasks[0]!.metadata, { repo: "x" })
  }))
})

describe("QueueStore: large results in files of their own (issue 12)", () => {
  it.live("a 2 MB result is written once to its own file; queue.json stays small; loads back; removed once settled", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const calls: Array<string> = []
    const big = { status: "success", output: "x".repeat(2 * 1024 * 1024) }
    const withReport: QueueFile = {
      version: 2,
      tasks: [{ ...task("t-1"), status: "reporting" }],
      outbox: [{ type: "task_complete", task_id: "t-1", result: big, generation: 2 }]
    }
    yield* spyNodeFs(calls)
    const layer = storeIn(dir).pipe(Layer.provide(PlatformLayer))
    yield* QueueStore.use((s) => Effect.gen(function*() {
      yield* s.save(withReport)
      yield* s.save({ ...withReport, tasks: [...withReport.tasks, task("t-2")] })
      yield* s.save({ ...withReport, tasks: [...withReport.tasks, task("t-2"), task("t-3")] })
    })).pipe(Effect.provide(layer))
    assert.isBelow(NFS.statSync(`${dir}/queue.json`).size, 4096, "queue.json carries only the result's file name")
    const bodies = NFS.readdirSync(`${dir}/queue.json.reports`)
    assert.strictEqual(bodies.length, 1)
    assert.strictEqual(calls.filter((c) => c.startsWith("write") && c.includes(".reports") === false && c.includes("t-1.")).length, 1, "the result is written once, not on every save")
    const loaded = yield* QueueStore.use((s) => s.load).pipe(Effect.provide(storeIn(dir).pipe(Layer.provide(PlatformLayer))))
    assert.deepStrictEqual(loaded.outbox, withReport.outbox)
    yield* QueueStore.use((s) => s.save(emptyQueue)).pipe(Effect.provide(storeIn(dir).pipe(Layer.provide(PlatformLayer))))
    assert.deepStrictEqual(NFS.readdirSync(`${dir}/queue.json.reports`), [], "settled: its file is gone")
  }))

  it.live("a small result is measured once, not on every save while its report waits", () => Effect.gen(function*() {
    const dir = yield* tempDir
    // JSON.stringify calls toJSON once for each time the result is encoded: to measure it, or as part of queue.json
    let encoded = 0
    const small = { status: "success", output: "done", toJSON() { encoded++; return { status: this.status, output: this.output } } }
    const withReport: QueueFile = {
      version: 2,
      tasks: [{ ...task("t-1"), status: "reporting" }],
      outbox: [{ type: "task_complete", task_id: "t-1", result: small, generation: 2 }]
    }
    yield* QueueStore.use((s) => Effect.gen(function*() {
      yield* s.save(withReport)
      yield* s.save({ ...withReport, tasks: [...withReport.tasks, task("t-2")] })
      yield* s.save({ ...withReport, tasks: [...withReport.tasks, task("t-2"), task("t-3")] })
    })).pipe(Effect.provide(storeIn(dir).pipe(Layer.provide(PlatformLayer))))
    assert.strictEqual(encoded, 3 + 1, "once in each of the three queue.json files, and once measured")
    assert.deepStrictEqual(JSON.parse(NFS.readFileSync(`${dir}/queue.json`, "utf8")).outbox[0].result, { status: "success", output: "done" })
  }))
})

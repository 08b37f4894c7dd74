/**
 * Large report results live in files of their own beside `queue.json` (`<queue>.reports/`), so a 9.5 MB result
 * is written once, durably, and every later save of the queue only carries its file name. The result objects
 * are immutable and kept across decisions, so a WeakMap from result to file name makes "already written" a
 * lookup, not a re-encode; and one from result to "inline" makes "small enough" one too (a 60 KB result was
 * encoded again, just to be measured, by every save while its report waited in the outbox).
 */
import { Effect, FileSystem, Path } from "effect"
import type { QueueFile, Report } from "../../domain/Task.ts"
import { ensureDirectory, writeAtomic } from "../../platform/atomicWrite.ts"

/** Results whose JSON is longer than this go to their own file. */
export const INLINE_RESULT_LIMIT = 64 * 1024

/** The outbox entry as stored: a large result is replaced by `result: null` and the name of its file. */
export type StoredReport = Report & { readonly result_file?: string }

export const makeReportBodies = (fs: FileSystem.FileSystem, path: Path.Path, queuePath: string) => {
  const dir = `${queuePath}.reports`
  const written = new WeakMap<object, string>()
  const inline = new WeakSet<object>()
  let counter = 0
  const provide = <A, E>(e: Effect.Effect<A, E, FileSystem.FileSystem | Path.Path>) =>
    e.pipe(Effect.provideService(FileSystem.FileSystem, fs), Effect.provideService(Path.Path, path))

  /** The queue as it goes to disk: large results written (durably) first, then referenced. */
  const externalize = (queue: QueueFile) => Effect.gen(function*() {
    const outbox: Array<StoredReport> = []
    for (const report of queue.outbox) {
      const result: unknown = report.type === "task_complete" ? report.result : undefined
      if (report.type !== "task_complete" || typeof result !== "object" || result === null || inline.has(result)) {
        outbox.push(report)
        continue
      }
      let file = written.get(result)
      if (file === undefined) {
        const json = JSON.stringify(result)
        if (json.length <= INLINE_RESULT_LIMIT) {
          inline.add(result)
          outbox.push(report)
          continue
        }
        file = `${report.task_id}.${Date.now().toString(36)}-${counter++}.json`
        yield* provide(ensureDirectory(dir))
        yield* provide(writeAtomic(path.join(dir, file), json))
        written.set(result, file)
      }
      outbox.push({ ...report, result: null, result_file: file })
    }
    return { ...queue, outbox }
  })

  /** After a save: files no longer referenced are removed (a crash before this leaves them: the next start's
   *  first save tidies). Only when the set of files changed, so a plain save costs no folder listing. */
  let lastRefs: string | undefined
  const tidy = (stored: ReadonlyArray<StoredReport>) => Effect.gen(function*() {
    const keep = new Set(stored.flatMap((r) => r.result_file !== undefined ? [r.result_file] : []))
    const refs = [...keep].sort().join("\n")
    if (refs === lastRefs) return
    lastRefs = refs
    const names = yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed(() => [] as Array<string>))
    for (const name of names) if (!keep.has(name)) yield* fs.remove(path.join(dir, name)).pipe(Effect.ignore)
  })

  /** The stored outbox with its results read back; a lost file leaves a result saying so, never a crash. */
  const internalize = (json: unknown) => Effect.gen(function*() {
    if (typeof json !== "object" || json === null || !Array.isArray((json as { outbox?: unknown }).outbox)) return json
    const o = json as { outbox: Array<Record<string, unknown>> }
    const outbox = []
    for (const entry of o.outbox) {
      const file = entry["result_file"]
      if (typeof file !== "string" || file.includes("/")) {
        outbox.push(entry)
        continue
      }
      const { result_file: _f, ...rest } = entry
      const text = yield* fs.readFileString(path.join(dir, file)).pipe(Effect.option)
      let result: unknown = { status: "unknown", error: `result file ${file} was lost` }
      if (text._tag === "Some") {
        try { result = JSON.parse(text.value) } catch { /* keeps the note above */ }
      }
      if (typeof result === "object" && result !== null) written.set(result, file)
      outbox.push({ ...rest, result })
    }
    return { ...o, outbox }
  })

  return { externalize, internalize, tidy }
}

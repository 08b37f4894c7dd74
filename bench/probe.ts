/**
 * `--profile` only: timestamps from inside the in-process sidecar without touching src/. A Tracer that
 * records every span's start and end (Effect.fn spans: QueueStore.save, writeAtomic, Waker.wake, …) and a
 * wrapper on `fs.watch`'s listener (when the sidecar's watch hears of a file: `rename`/`change`).
 */
import { type Exit, Tracer } from "effect"
import { syncBuiltinESMExports } from "node:module"
import NFS from "node:fs"
import { performance } from "node:perf_hooks"

export interface SpanRecord {
  readonly name: string
  readonly start: number
  end: number
}

export interface FileEventRecord {
  readonly event: string
  readonly path: string
  readonly at: number
}

export const spans: Array<SpanRecord> = []
export const fileEvents: Array<FileEventRecord> = []

class TimedSpan extends Tracer.NativeSpan {
  readonly record: SpanRecord
  constructor(options: ConstructorParameters<typeof Tracer.NativeSpan>[0]) {
    super(options)
    this.record = { name: options.name, start: performance.now(), end: Number.NaN }
  }
  override end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    if (Number.isNaN(this.record.end)) {
      this.record.end = performance.now()
      spans.push(this.record)
    }
    super.end(endTime, exit)
  }
}

export const recordingTracer = Tracer.make({ span: (options) => new TimedSpan(options) })

let installed = false
/** Wraps every `fs.watch` listener made from now on, once for the whole process (ESM importers see it too). */
export const recordFileEvents = (): void => {
  if (installed) return
  installed = true
  const original = NFS.watch
  const wrapped = (path: string, options: object, listener: (event: string, name: string | null) => void) =>
    original(path, options, (event: string, name: string | null) => {
      if (name !== null) fileEvents.push({ event, path: name, at: performance.now() })
      listener(event, name)
    })
  ;(NFS as unknown as { watch: typeof wrapped }).watch = wrapped
  syncBuiltinESMExports()
}

export const clear = (): void => {
  spans.length = 0
  fileEvents.length = 0
}

/** Spans that started inside [from, to]. */
export const spansIn = (from: number, to: number): Array<SpanRecord> => spans.filter((s) => s.start >= from && s.start <= to)

/**
 * `--profile` only: timestamps from inside the in-process sidecar without touching src/. A Tracer that
 * records every span's start and end (Effect.fn spans: QueueStore.save, writeAtomic, Waker.wake, …) and a
 * wrapper on chokidar's event publication (when the sidecar's watcher reports `add`/`change`).
 */
import { FSWatcher } from "chokidar"
import { type Exit, Tracer } from "effect"
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
/** Wraps chokidar's publication once for the whole process. */
export const recordFileEvents = (): void => {
  if (installed) return
  installed = true
  const proto = FSWatcher.prototype as unknown as { emitWithAll: (event: string, args: Array<unknown>) => void }
  const original = proto.emitWithAll
  proto.emitWithAll = function(this: unknown, event: string, args: Array<unknown>) {
    if (event === "add" || event === "change") fileEvents.push({ event, path: String(args[0]), at: performance.now() })
    return original.call(this, event, args)
  }
}

export const clear = (): void => {
  spans.length = 0
  fileEvents.length = 0
}

/** Spans that started inside [from, to]. */
export const spansIn = (from: number, to: number): Array<SpanRecord> => spans.filter((s) => s.start >= from && s.start <= to)

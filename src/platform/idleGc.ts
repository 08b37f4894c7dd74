/**
 * Gives the memory of a burst back as soon as the daemon is idle again (issue 14). V8's memory reducer does it on
 * its own, but on a timer: 8 s after its last look, and again 8 s later if anything allocated meanwhile. So RSS 10 s
 * after 1,000 tasks read 76 MB or 85 MB depending on where that timer stood. Here: every `every`, if no task is
 * held and the heap has grown by more than `slackBytes` since the last collection, one full, memory-reducing GC
 * (a few ms on this heap). A busy daemon is never collected by this; an idle one at most once per burst.
 */
import { type Duration, Effect, Schedule } from "effect"
import * as NV8 from "node:v8"
import * as NVm from "node:vm"

type Gc = (options: { readonly type: "major"; readonly execution: "sync"; readonly flavor: "last-resort" }) => void

/** V8's `gc()`, exposed to this process now (a new context gets it once the flag is set; that context costs some
 *  memory, so it is made only when first needed); undefined if refused. */
const exposeGc = (): Gc | undefined => {
  try {
    NV8.setFlagsFromString("--expose-gc")
    const gc: unknown = NVm.runInNewContext("gc")
    return typeof gc === "function" ? (gc as Gc) : undefined
  } catch {
    return undefined
  }
}

const heapTotal = () => NV8.getHeapStatistics().total_heap_size

export const collectWhenIdle = (options: {
  /** True while the daemon holds no work (no task, no report waiting). */
  readonly idle: Effect.Effect<boolean>
  readonly every: Duration.Input
  readonly slackBytes: number
  /** For tests: the heap's size and the collector (default: V8's). */
  readonly heapSize?: () => number
  readonly collector?: () => Gc | undefined
}) => Effect.gen(function*() {
  const heapSize = options.heapSize ?? heapTotal
  const collector = options.collector ?? exposeGc
  let gc: Gc | undefined
  let after = heapSize()
  const look = Effect.flatMap(options.idle, (idle) => Effect.suspend(() => {
    if (!idle || heapSize() - after <= options.slackBytes) return Effect.void
    gc ??= collector()
    if (gc === undefined) return Effect.fail("no gc() in this V8" as const)
    gc({ type: "major", execution: "sync", flavor: "last-resort" })
    after = heapSize()
    return Effect.void
  }))
  return yield* Effect.repeat(look, Schedule.spaced(options.every)).pipe(
    Effect.catch(() => Effect.logDebug("no gc() in this V8: the memory reducer alone gives memory back"))
  )
})

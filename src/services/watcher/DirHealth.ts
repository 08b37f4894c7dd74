/**
 * `results_dir` in Health has two sources of trouble: the watch (it cannot be armed) and the sidecar's writes
 * (task files, `.cancelled`, `rejected/`: e.g. no space left). The part is degraded while either is, and works
 * again once both are fine, so a good write does not hide a dead watch, nor a re-armed watch a full disk.
 */
import { Effect, Option, Ref } from "effect"
import type { Health } from "../Health.ts"

export interface DirHealth {
  /** The watch's trouble now (none: armed). */
  watch(cause: Option.Option<string>): Effect.Effect<void>
  /** The last write's trouble (none: it worked). */
  write(cause: Option.Option<string>): Effect.Effect<void>
}

export const makeDirHealth = (health: Health["Service"]) => Effect.gen(function*() {
  const state = yield* Ref.make({ watch: Option.none<string>(), write: Option.none<string>() })
  const set = (key: "watch" | "write") => (cause: Option.Option<string>) => Effect.gen(function*() {
    const before = yield* Ref.getAndUpdate(state, (s) => ({ ...s, [key]: cause }))
    const other = key === "watch" ? before.write : before.watch
    // each failure counts in Health; a success only ends the fault when the other source is fine too
    // (the watch's trouble is shown first: without a watch, every task is at stake)
    if (Option.isSome(cause)) return yield* health.fault("results_dir", key === "watch" ? cause.value : Option.getOrElse(before.watch, () => cause.value))
    if (Option.isNone(other)) return yield* health.ok("results_dir")
    if (Option.isSome(before[key])) yield* health.fault("results_dir", other.value) // now the other one is the trouble
  })
  return { watch: set("watch"), write: set("write") } satisfies DirHealth
})

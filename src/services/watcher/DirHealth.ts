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
    const next = yield* Ref.updateAndGet(state, (s) => ({ ...s, [key]: cause }))
    const worst = Option.orElse(next.watch, () => next.write)
    yield* Option.match(worst, { onNone: () => health.ok("results_dir"), onSome: (c) => health.fault("results_dir", c) })
  })
  return { watch: set("watch"), write: set("write") } satisfies DirHealth
})

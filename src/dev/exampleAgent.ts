/**
 * The example agent of `agent-sidecar dev`, in-process: a Waker that, instead of running a command, starts a
 * fiber behaving like `examples/node-agent.mjs` — it writes `.started`, `.progress` and the result into
 * `results_dir` atomically, so the real ResultWatcher and the whole file protocol are exercised. It is also
 * the smallest example of embedding the sidecar with your own Waker (SPEC §8).
 */
import { Effect, FileSystem, Layer, Path } from "effect"
import { taskFileNames } from "../domain/AgentFiles.ts"
import { writeAtomic } from "../platform/atomicWrite.ts"
import { SidecarConfig } from "../services/SidecarConfig.ts"
import { Waker } from "../services/Waker.ts"

export const exampleAgentWaker = Layer.effect(Waker, Effect.gen(function*() {
  const config = yield* SidecarConfig
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  // agents outlive a wake call (as a background process would), but not the sidecar
  const scope = yield* Effect.scope
  const put = (name: string, value: unknown) =>
    writeAtomic(path.join(config.resultsDir, name), JSON.stringify(value), { sync: false }).pipe(
      Effect.provideService(FileSystem.FileSystem, fs),
      Effect.provideService(Path.Path, path)
    )

  const work = (taskId: string, description: string) => Effect.gen(function*() {
    const names = taskFileNames(taskId)
    yield* put(names.startedFile, { agent: "example", pid: process.pid })
    yield* put(names.progressFile, { percent: 30, message: "thinking about it" })
    yield* Effect.sleep("1200 millis")
    yield* put(names.progressFile, { percent: 90, message: "writing the answer" })
    yield* Effect.sleep("300 millis")
    yield* /\bfail\b/i.test(description)
      ? put(names.resultFile, { status: "failed", reason: "the task asked me to fail" })
      : put(names.resultFile, {
        status: "success",
        output: { reversed: [...description].reverse().join(""), words: description.split(/\s+/).filter(Boolean).length }
      })
  }).pipe(Effect.catch((e) => Effect.logError("example agent failed", { error: e.message })))

  return Waker.of({
    wakes: true,
    wake: (request) => work(request.taskId, request.description).pipe(
      Effect.forkIn(scope),
      Effect.as({ status: "success" as const, exitCode: 0, stderrTail: "" })
    )
  })
}))


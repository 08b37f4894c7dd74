/**
 * `node bench/wake-micro.ts`: the Waker's own CPU per wake (this process only; the wake server's counted apart),
 * through the fork server: N wakes (env N, default 1000) of `/bin/true`, C at a time (env C, default 4), logs off.
 */
import { Effect, Layer, References } from "effect"
import { defaultSettings } from "../src/domain/Config.ts"
import { NodeServicesLayer } from "../src/layers/Platform.ts"
import { SidecarConfig } from "../src/services/SidecarConfig.ts"
import { Waker } from "../src/services/Waker.ts"
import { threadCpuPer, threadCpuSeconds, wakeServerCpuSeconds } from "./memory.ts"

const n = Number(process.env.N ?? 1000)
const c = Number(process.env.C ?? 4)
const settings = defaultSettings("/tmp/wake-micro", { wakeCommand: ["/bin/true"], logFile: undefined, maxActiveTasks: c })

const program = Effect.gen(function*() {
  const waker = yield* Waker
  const one = (i: number) => waker.wake({
    taskId: `t-${i}`, description: `task ${i}`, taskJson: JSON.stringify({ task_id: `t-${i}` }), taskFile: "/tmp/x.task.json",
    resultsDir: "/tmp", startedFile: "/tmp/x.started", resultFile: "/tmp/x.json", attempt: 1
  }).pipe(Effect.flatMap((o) => o.status === "success" ? Effect.void : Effect.die(new Error(JSON.stringify(o)))))
  const run = (count: number) => Effect.forEach(Array.from({ length: count }, (_, i) => i), one, { concurrency: c, discard: true })
  yield* run(100)
  const s0 = wakeServerCpuSeconds(process.pid)
  const threads0 = threadCpuSeconds(process.pid)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  yield* run(n)
  const cpu = process.cpuUsage(c0)
  console.log(`${n} wakes in ${((performance.now() - t0) / 1000).toFixed(2)} s: CPU per wake ${((cpu.user + cpu.system) / 1000 / n).toFixed(3)} ms ` +
    `(user ${(cpu.user / 1000 / n).toFixed(3)}, sys ${(cpu.system / 1000 / n).toFixed(3)}); wake server ${((wakeServerCpuSeconds(process.pid) - s0) * 1000 / n).toFixed(3)} ms`)
  console.log(`by thread: ${threadCpuPer(threads0, threadCpuSeconds(process.pid), n)}`)
}).pipe(
  Effect.provide(Waker.layer.pipe(Layer.provide(Layer.mergeAll(SidecarConfig.layer(settings), NodeServicesLayer)))),
  Effect.scoped,
  Effect.provideService(References.MinimumLogLevel, "Warn")
)

Effect.runPromise(program).catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})

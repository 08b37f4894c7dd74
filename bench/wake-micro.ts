/**
 * `node bench/wake-micro.ts`: the Waker's own CPU per wake (this process only; the wake server's counted apart),
 * through the fork server: N wakes (env N, default 1000) of `/bin/true`, C at a time (env C, default 4), logs off.
 */
import { Effect, Layer, References } from "effect"
import * as NFS from "node:fs"
import { defaultSettings } from "../src/domain/Config.ts"
import { NodeServicesLayer } from "../src/layers/Platform.ts"
import { SidecarConfig } from "../src/services/SidecarConfig.ts"
import { Waker } from "../src/services/Waker.ts"

const n = Number(process.env.N ?? 1000)
const c = Number(process.env.C ?? 4)
const settings = defaultSettings("/tmp/wake-micro", { wakeCommand: ["/bin/true"], logFile: undefined, maxActiveTasks: c })

const serverCpu = (): number => {
  let sum = 0
  for (const pid of NFS.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!NFS.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("agent-sidecar-wake-server")) continue
      const stat = NFS.readFileSync(`/proc/${pid}/stat`, "utf8")
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number)
      if (f[1] === process.pid) sum += (f[11]! + f[12]!) / 100
    } catch { /* gone */ }
  }
  return sum
}

const program = Effect.gen(function*() {
  const waker = yield* Waker
  const one = (i: number) => waker.wake({
    taskId: `t-${i}`, description: `task ${i}`, taskJson: JSON.stringify({ task_id: `t-${i}` }), taskFile: "/tmp/x.task.json",
    resultsDir: "/tmp", startedFile: "/tmp/x.started", resultFile: "/tmp/x.json", attempt: 1
  }).pipe(Effect.flatMap((o) => o.status === "success" ? Effect.void : Effect.die(new Error(JSON.stringify(o)))))
  const run = (count: number) => Effect.forEach(Array.from({ length: count }, (_, i) => i), one, { concurrency: c, discard: true })
  yield* run(100)
  const s0 = serverCpu()
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  yield* run(n)
  const cpu = process.cpuUsage(c0)
  const byThread = NFS.readdirSync("/proc/self/task").map((tid) => {
    const stat = NFS.readFileSync(`/proc/self/task/${tid}/stat`, "utf8")
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number)
    return `${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))} ${((f[11]! + f[12]!) * 10).toFixed(0)} ms`
  })
  console.log(`threads (whole run): ${byThread.join(", ")}`)
  console.log(`${n} wakes in ${((performance.now() - t0) / 1000).toFixed(2)} s: CPU per wake ${((cpu.user + cpu.system) / 1000 / n).toFixed(3)} ms ` +
    `(user ${(cpu.user / 1000 / n).toFixed(3)}, sys ${(cpu.system / 1000 / n).toFixed(3)}); wake server ${((serverCpu() - s0) * 1000 / n).toFixed(3)} ms`)
}).pipe(
  Effect.provide(Waker.layer.pipe(Layer.provide(Layer.mergeAll(SidecarConfig.layer(settings), NodeServicesLayer)))),
  Effect.scoped,
  Effect.provideService(References.MinimumLogLevel, "Warn")
)

Effect.runPromise(program).catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})

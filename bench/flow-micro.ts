/**
 * `node bench/flow-micro.ts`: the interpreter's own CPU per task, without I/O: TaskFlow on the in-memory layers
 * (no sockets, files or processes), N tasks (env N, default 3000) one after another, logs off (LOGS=1: on), each assign → wake → `.started`
 * → result → report → ack. What is left is the decider, the mailbox, the Ledger and the runner's fibers.
 */
import { Context, Effect, Layer, Ref, References } from "effect"
import { defaultSettings } from "../src/domain/Config.ts"
import { sidecarLayerMemory } from "../src/layers/Sidecar.ts"
import { HubClientMemory } from "../src/services/HubClient.ts"
import { AgentFilesMemory } from "../src/services/ResultWatcher.ts"
import { Waker } from "../src/services/Waker.ts"

const n = Number(process.env.N ?? 3000)
const settings = defaultSettings("/tmp/flow-micro", { wakeCommand: ["wake"], logFile: undefined, maxActiveTasks: 4 })

const program = Effect.gen(function*() {
  const ctx = yield* Layer.build(sidecarLayerMemory(settings, {
    waker: Waker.layerFrom(() => Effect.succeed({ status: "success", exitCode: 0, stderrTail: "" }))
  }))
  const hub = Context.get(ctx, HubClientMemory)
  const agent = Context.get(ctx, AgentFilesMemory)
  yield* hub.receive({ type: "identified" })
  // what the sidecar sent is cleared after each task, so looking for the report stays cheap
  const reported = Effect.map(Ref.get(hub.sent), (sent) => sent.some((m) => m.type === "task_complete"))
  const one = (id: string) => Effect.gen(function*() {
    yield* hub.receive({ type: "task_assign", task_id: id, description: `task ${id}`, generation: 1 })
    yield* agent.emit({ _tag: "Started", taskId: id })
    yield* agent.emit({ _tag: "Succeeded", taskId: id, result: { status: "success", output: id } })
    while (!(yield* reported)) yield* Effect.yieldNow
    yield* Ref.set(hub.sent, [])
    yield* hub.receive({ type: "task_ack", task_id: id, status: "complete" })
  })
  const run = (prefix: string, count: number) => Effect.gen(function*() {
    for (let i = 0; i < count; i++) yield* one(`${prefix}-${i}`)
  })
  yield* run("warm", 300)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  yield* run("t", n)
  const c = process.cpuUsage(c0)
  console.log(`${n} tasks in ${((performance.now() - t0) / 1000).toFixed(2)} s: CPU per task ${((c.user + c.system) / 1000 / n).toFixed(3)} ms (user ${(c.user / 1000 / n).toFixed(3)})`)
}).pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, process.env.LOGS === "1" ? "Info" : "Warn"))

Effect.runPromise(program).catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})

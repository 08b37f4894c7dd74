import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { TestClock } from "effect/testing"
import { defaultSettings } from "../../src/domain/Config.ts"
import { sidecarLayerMemory } from "../../src/layers/Sidecar.ts"
import { HubClientMemory } from "../../src/services/HubClient.ts"
import { AgentFilesMemory } from "../../src/services/ResultWatcher.ts"
import { TaskFlow } from "../../src/services/TaskFlow.ts"
import { FLUSH_AFTER_MS } from "../../src/services/flow/Ledger.ts"
import { Waker } from "../../src/services/Waker.ts"

const settings = defaultSettings("/tmp/unused", { wakeCommand: ["wake"] })
const okWaker = Waker.layerFrom(() => Effect.succeed({ status: "success", exitCode: 0, stderrTail: "" }))

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

describe("TaskFlow (in-memory layers)", () => {
  it.effect("assign → accepted → woken → started → result → task_complete → ack → forgotten", () => Effect.gen(function*() {
    const ctx = yield* Layer.build(sidecarLayerMemory(settings, { waker: okWaker }))
    const hub = ctx.mapUnsafe.get(HubClientMemory.key) as HubClientMemory["Service"]
    const agent = ctx.mapUnsafe.get(AgentFilesMemory.key) as AgentFilesMemory["Service"]
    const flow = ctx.mapUnsafe.get(TaskFlow.key) as TaskFlow["Service"]
    yield* hub.receive({ type: "identified" })
    yield* hub.receive({ type: "task_assign", task_id: "t-1", description: "hello", generation: 2 })
    yield* settle
    const types = () => Ref.get(hub.sent).pipe(Effect.map((s) => s.map((m) => m.type)))
    assert.deepStrictEqual(yield* types(), ["task_accepted", "wake_result"])
    assert.strictEqual((yield* flow.snapshot).tasks[0]?.status, "waking_confirmation")
    assert.isTrue((yield* Ref.get(agent.files)).has("t-1.task.json"))
    yield* agent.emit({ _tag: "Started", taskId: "t-1" })
    yield* settle
    assert.strictEqual((yield* flow.snapshot).tasks[0]?.status, "working")
    yield* agent.emit({ _tag: "Succeeded", taskId: "t-1", result: { status: "success", output: 42 } })
    yield* settle
    const sent = yield* Ref.get(hub.sent)
    assert.deepStrictEqual(sent.at(-1), { type: "task_complete", task_id: "t-1", result: { status: "success", output: 42 }, generation: 2 })
    assert.strictEqual((yield* flow.snapshot).outbox.length, 1)
    yield* hub.receive({ type: "task_ack", task_id: "t-1", status: "complete" })
    yield* settle
    assert.deepStrictEqual(yield* flow.snapshot, { version: 2, tasks: [], outbox: [] })
    // the ack is saved lazily, and the files go once it is on disk (TaskFlow.saves.test.ts)
    yield* TestClock.adjust(FLUSH_AFTER_MS)
    yield* settle
    assert.isFalse((yield* Ref.get(agent.files)).has("t-1.task.json"))
  }))
})

/**
 * Embedding the sidecar in an Effect application (SPEC §8), as an example.
 *
 * The host brings its own `Waker`: instead of running a wake command it forks an in-process agent, so no
 * process is spawned. The agent talks to the sidecar through the agent file exchange — here its in-memory
 * version (`AgentFilesMemory`), and the hub is the in-memory one too, so the example runs under TestClock.
 * In production the host would use `sidecarLayer(settings, { waker: InProcessWaker })` from `src/layers/Sidecar.ts`
 * (real hub socket, real `results_dir`) and its agent would write `<id>.started` / `<id>.json` there.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { TestClock } from "effect/testing"
import { defaultSettings } from "../../src/domain/Config.ts"
import { sidecarLayerMemory } from "../../src/layers/Sidecar.ts"
import { HubClientMemory } from "../../src/services/HubClient.ts"
import { AgentFilesMemory } from "../../src/services/ResultWatcher.ts"
import { Waker } from "../../src/services/Waker.ts"
import { settle } from "../support/harness.ts"

/** The host's agent: says it started, works for 2 s, then reports its output. */
const inProcessAgent = (files: AgentFilesMemory["Service"], taskId: string, description: string) => Effect.gen(function*() {
  yield* files.emit({ _tag: "Started", taskId })
  yield* Effect.sleep("2 seconds")
  yield* files.emit({ _tag: "Succeeded", taskId, result: { status: "success", output: `done: ${description}` } })
})

/** A Waker that starts the agent as a fiber of the host (in the layer's scope) and reports the wake a success. */
const InProcessWaker = Layer.effect(Waker, Effect.gen(function*() {
  const files = yield* AgentFilesMemory
  const scope = yield* Effect.scope
  return Waker.of({
    wakes: true,
    wake: (request) => inProcessAgent(files, request.taskId, request.description).pipe(
      Effect.forkIn(scope),
      Effect.as({ status: "success" as const, stderrTail: "" })
    )
  })
}))

/** The whole sidecar as one layer, in memory, with the host's Waker (the agent file exchange is shared by the
 *  sidecar and the agent). */
const Sidecar = sidecarLayerMemory(defaultSettings("/tmp/embedded", { wakeCommand: "in-process", logFile: undefined }), { waker: InProcessWaker })

describe("embedding the sidecar", () => {
  // Guarantee (SPEC §8): an Effect application runs the sidecar with its own in-process Waker, no process
  // spawned, and the hub receives the agent's output as task_complete.
  it.effect("an Effect app runs the sidecar with an in-process agent", () => Effect.gen(function*() {
    const hub = yield* HubClientMemory // plays the hub
    yield* hub.receive({ type: "identified" })
    yield* hub.receive({ type: "task_assign", task_id: "job-1", description: "write a haiku" })
    yield* settle // the sidecar accepts, wakes (forks the agent); the agent starts
    yield* TestClock.adjust("2 seconds") // the agent works
    yield* settle

    const sent = yield* Ref.get(hub.sent)
    assert.deepStrictEqual(sent.map((m) => m.type), ["task_accepted", "wake_result", "task_complete"])
    assert.deepStrictEqual(sent.at(-1), {
      type: "task_complete",
      task_id: "job-1",
      result: { status: "success", output: "done: write a haiku" }
    })
  }).pipe(Effect.provide(Sidecar)))
})

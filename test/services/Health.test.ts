/**
 * A full disk is named and logged once per episode (issue 12): the queue part is degraded while saves fail,
 * with the OS reason, and recovers by itself when space is back.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { describeOsError } from "../../src/platform/osError.ts"
import { QueueStore, QueueStoreError } from "../../src/services/QueueStore.ts"
import { emptyQueue, type QueueFile } from "../../src/domain/Task.ts"
import { advanceTo, startSidecar, testSettings } from "../support/harness.ts"

const enospc = () => Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28, syscall: "write" })

describe("Health", () => {
  it("names the OS reason however deep it is wrapped", () => {
    const wrapped = new QueueStoreError({ op: "save", path: "/state/queue.json", cause: { _tag: "PlatformError", reason: { _tag: "Unknown", cause: enospc() } } })
    assert.strictEqual(wrapped.message, "cannot save /state/queue.json: no space left on device (ENOSPC)")
    assert.strictEqual(describeOsError(Object.assign(new Error("x"), { code: "EROFS" })), "read-only file system (EROFS)")
    assert.strictEqual(describeOsError(new Error("plain")), "plain")
  })

  it.effect("a queue that cannot be saved: degraded with the cause, once; healthy again when a save succeeds", () => Effect.gen(function*() {
    const saved = yield* Ref.make<QueueFile>(emptyQueue)
    const failing = yield* Ref.make(false)
    const store = Layer.succeed(QueueStore, QueueStore.of({
      load: Ref.get(saved),
      save: (q) => Effect.flatMap(Ref.get(failing), (f) => f ? Effect.fail(new QueueStoreError({ op: "save", path: "/m/queue.json", cause: enospc() })) : Ref.set(saved, q))
    }))
    const s = yield* startSidecar({ store, settings: testSettings({ maxActiveTasks: 3 }) })
    yield* s.receive({ type: "identified" })
    yield* Ref.set(failing, true)
    for (const id of ["a", "b", "c"]) yield* s.receive({ type: "task_assign", task_id: id })
    assert.deepStrictEqual((yield* s.sentOf("task_rejected")).map((m) => m.reason), ["busy", "busy", "busy"])
    const faults = yield* s.health.faults
    assert.deepStrictEqual(faults.map((f) => [f.part, f.cause, f.count]), [["queue", "cannot save /m/queue.json: no space left on device (ENOSPC)", 3]])
    yield* Ref.set(failing, false)
    yield* advanceTo(1_000)
    yield* s.receive({ type: "task_assign", task_id: "d" })
    assert.deepStrictEqual(yield* s.health.faults, [])
  }))
})

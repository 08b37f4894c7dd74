/** The idle collection (issue 14): only when idle, only after the heap grew, once per growth; under TestClock. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Ref } from "effect"
import { TestClock } from "effect/testing"
import { collectWhenIdle } from "../../src/platform/idleGc.ts"

describe("collectWhenIdle", () => {
  it.effect("collects once the daemon is idle after its heap grew, then not again until it grows again", () => Effect.gen(function*() {
    const idle = yield* Ref.make(false)
    let heap = 10
    let collections = 0
    const collector = () => () => {
      collections++
      heap = 12 // a collection gives most of it back
    }
    yield* collectWhenIdle({ idle: Ref.get(idle), every: "2 seconds", slackBytes: 4, heapSize: () => heap, collector }).pipe(Effect.forkChild({ startImmediately: true }))
    heap = 30 // a burst
    yield* TestClock.adjust("10 seconds")
    assert.strictEqual(collections, 0, "never while the daemon holds work")
    yield* Ref.set(idle, true)
    yield* TestClock.adjust("2 seconds")
    assert.strictEqual(collections, 1, "once idle")
    yield* TestClock.adjust("20 seconds")
    assert.strictEqual(collections, 1, "not again without growth")
    heap = 15 // within the slack
    yield* TestClock.adjust("4 seconds")
    assert.strictEqual(collections, 1)
    heap = 20
    yield* TestClock.adjust("2 seconds")
    assert.strictEqual(collections, 2, "the next burst")
  }))

  it.effect("without a gc() in this V8 it stops looking, quietly", () => Effect.gen(function*() {
    let asked = 0
    const collector = () => { asked++; return undefined }
    const fiber = yield* collectWhenIdle({ idle: Effect.succeed(true), every: "2 seconds", slackBytes: -1, heapSize: () => 1, collector })
      .pipe(Effect.forkChild({ startImmediately: true }))
    yield* TestClock.adjust("10 seconds")
    assert.strictEqual(asked, 1)
    assert.isTrue(fiber.pollUnsafe() !== undefined, "the loop ended")
  }))
})

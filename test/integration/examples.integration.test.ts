import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NPath from "node:path"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { tempDir } from "../support/sidecar.ts"

const examples = NPath.resolve(import.meta.dirname, "../../examples")

describe("the example agents, as real wake commands of a real daemon", () => {
  it.live("examples/node-agent.mjs and examples/shell-agent.sh complete tasks; run --once exits after one", () => Effect.gen(function*() {
    for (const [name, wake] of [
      ["node", [process.execPath, `${examples}/node-agent.mjs`]],
      ["shell", [`${examples}/shell-agent.sh`]]
    ] as const) {
      const hub = yield* makeFakeHub()
      const dir = yield* tempDir
      const config = writeConfig(dir, { hub_url: hub.url, wake_command: wake, reconnect_initial_ms: 50 })
      const daemon = yield* startDaemon(["run", "--once", "--config", config])
      yield* hub.waitFor((f) => f.type === "identify")
      hub.send({ type: "task_assign", task_id: `${name}-1`, description: "make it so", generation: 1 })
      const done = yield* hub.waitFor((f) => f.type === "task_complete", { timeoutMs: 15_000 })
      const output = (done["result"] as { output: Record<string, unknown> }).output
      assert.strictEqual(output["words"], 3, name)
      if (name === "node") assert.strictEqual(output["reversed"], "os ti ekam")
      assert.isAtLeast(hub.count((f) => f.type === "task_progress"), 1, `${name}: progress relayed`)
      // --once: reported and acknowledged → exit 0
      assert.strictEqual(yield* daemon.exited, 0, daemon.output())
    }
  }), 60_000)
})

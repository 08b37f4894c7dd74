/** `status` names parked reports and the ones kept after a stale refusal, so an operator sees what waits on them. */
import { describe, expect, it } from "vitest"
import { formatStatus } from "../../src/cli/status.ts"

describe("status", () => {
  it("lists parked and stale-kept reports", () => {
    const task = (id: string) => ({ task_id: id, description: id, metadata: {}, assignment: {}, status: "reporting" as const, accepted_at: 0, updated_at: 0, timeline: [] })
    const text = formatStatus({
      version: 2,
      tasks: [task("p"), task("s"), task("ok")],
      outbox: [
        { type: "task_complete", task_id: "p", result: {}, parked_at: 5 },
        { type: "task_failed", task_id: "s", reason: "x", stale_at: 6 },
        { type: "task_complete", task_id: "ok", result: {} }
      ]
    }, 10_000, "live")
    expect(text.split("\n")[1]).toBe("tasks: 3   reports pending: 3   PARKED (the hub never answered; agent-sidecar task resend ID): p   kept after a stale refusal: s")
  })
})

/** The dev hub's pure transitions driven by hand (state.test.ts, state.validation.test.ts): a state, a clock, the outs. */
import { assert } from "@effect/vitest"
import { onFrame } from "../../src/hub/frames.ts"
import type { HubFrame } from "../../src/hub/inbound.ts"
import { submit } from "../../src/hub/requests.ts"
import { defaultSettings, emptyState, type HubState, type Out, type Settings, type Step } from "../../src/hub/state.ts"

export const settings: Settings = { ...defaultSettings, token: "secret" }

/** A small driver: the state, the clock, and the outs of the last step. */
export class Hub {
  state: HubState = emptyState
  now = 1_000_000
  out: ReadonlyArray<Out> = []
  run(f: (s: HubState, now: number) => Step): this {
    const step = f(this.state, this.now)
    this.state = step.state
    this.out = step.out
    return this
  }
  frame(conn: number, msg: unknown): this {
    return this.run((s, now) => onFrame(s, conn, typeof msg === "string" ? msg : JSON.stringify(msg), now, settings))
  }
  identify(conn: number, agentId: string): this {
    return this.frame(conn, { type: "identify", agent_id: agentId, token: "secret", name: `Agent ${agentId}`, status: "idle", capabilities: [] })
  }
  submit(taskId: string, extra: { agent_id?: string; max_retries?: number } = {}): this {
    return this.run((s, now) => submit(s, taskId, { description: `do ${taskId}`, ...extra }, now, settings))
  }
  advance(ms: number): this {
    this.now += ms
    return this
  }
  sent(conn?: number): ReadonlyArray<HubFrame> {
    return this.out.flatMap((o) => (o._tag === "send" && (conn === undefined || o.conn === conn) ? [o.frame] : []))
  }
  closes(): ReadonlyArray<Out> {
    return this.out.filter((o) => o._tag === "close" || o._tag === "terminate")
  }
  task(id: string) {
    return this.state.tasks.get(id)!
  }
  agent(id: string) {
    return this.state.agents.get(id)!
  }
}

/** One agent `a` on connection 1 holding task `t1` at generation 1. */
export const holding = (accepted = true): Hub => {
  const hub = new Hub().identify(1, "a").submit("t1")
  assert.deepInclude(hub.sent(1)[0], { type: "task_assign", task_id: "t1", generation: 1 })
  if (accepted) hub.frame(1, { type: "task_accepted", task_id: "t1" })
  return hub
}


/**
 * Helpers for the AgentCom integration tests: the real dev hub in-process on a free port, a wire-recording relay
 * in front of it, the real daemon as a child process, and a shell agent whose behaviour follows the task's
 * description.
 */
import { assert } from "@effect/vitest"
import { Context, Effect, Layer, References, type Scope } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { DevHub, type DevHubOptions, type TaskView } from "../../src/hub/DevHub.ts"
import { type Daemon, startDaemon, writeConfig } from "./daemon.ts"
import { script, tempDir } from "./sidecar.ts"
import { makeRelay, type Relay, type WireFrame } from "./WsRelay.ts"

export type Hub = DevHub["Service"]
export const TOKEN = "secret-token-123"
export const AGENT = "agent-1"

/**
 * The agent, run as the wake command. Every wake appends the task id to `wakes`. By description:
 * - `quick`: started and a success result at once;
 * - `held`: a background worker (the wake command exits at once) writes `.started`, waits for the file `go`,
 *   then writes a success result;
 * - `held-fg`: the same, but in the wake command itself, which keeps running (its pid in `wake.pid`);
 * - `progress`: like `held`, and writes `{"percent": 33.3}` to `.progress` before waiting;
 * - `result-<name>`: started, and the result is the test's file `result-<name>.json`.
 * Workers give up when the test's directory is gone.
 */
const agentBody = (dir: string) => `D='${dir}'
echo "$TASK_ID" >> "$D/wakes"
cd "$RESULTS_DIR" || exit 1
put() { printf '%s' "$2" > ".$TASK_ID.$1.tmp" && mv ".$TASK_ID.$1.tmp" "$TASK_ID.$1"; }
waitgo() { while [ ! -e "$D/go" ]; do [ -d "$D" ] || exit 0; sleep 0.05; done; }
case "$TASK_DESCRIPTION" in
  quick) put started x; put json '{"status":"success","output":"quick"}' ;;
  held) ( put started x; waitgo; put json '{"status":"success","output":"held"}' ) </dev/null >/dev/null 2>&1 & ;;
  held-fg) echo $$ > "$D/wake.pid"; put started x; waitgo; put json '{"status":"success","output":"held"}' ;;
  progress) ( put started x; put progress '{"percent": 33.3}'; waitgo; put json '{"status":"success","output":"progress"}' ) </dev/null >/dev/null 2>&1 & ;;
  result-*) put started x; put json "$(cat "$D/$TASK_DESCRIPTION.json")" ;;
  *) exit 3 ;;
esac`

export interface World {
  readonly hub: Hub
  readonly relay: Relay
  readonly dir: string
  readonly config: string
  /** Starts the daemon (again) on the same config and state. */
  readonly start: Effect.Effect<Daemon, never, Scope.Scope>
}

/** A dev hub (quiet logs), a relay in front of it, a temp dir with the agent script and a config; no daemon yet. */
export const world = (hubOptions: Partial<DevHubOptions> = {}): Effect.Effect<World, unknown, Scope.Scope> => Effect.gen(function*() {
  const hub = yield* Layer.build(DevHub.layer({ port: 0, token: TOKEN, ...hubOptions })).pipe(
    Effect.map((ctx) => Context.get(ctx, DevHub)),
    Effect.provideService(References.MinimumLogLevel, "Error")
  )
  const relay = yield* makeRelay(hub.wsUrl)
  const dir = yield* tempDir
  const agent = script(dir, "agent.sh", agentBody(dir))
  const config = writeConfig(dir, {
    agent_id: AGENT,
    token: TOKEN,
    hub_url: relay.url,
    wake_command: [agent],
    wake_retry_delays_ms: [],
    confirmation_timeout_ms: 15_000,
    log_file: "sidecar.log",
    heartbeat_interval_ms: 1_000,
    heartbeat_timeout_ms: 1_000,
    reconnect_initial_ms: 100,
    reconnect_max_ms: 400,
    kill_grace_ms: 500
  })
  // Let background workers end with the test (they also stop when the directory goes).
  yield* Effect.addFinalizer(() => Effect.sync(() => NFS.existsSync(dir) && NFS.writeFileSync(NPath.join(dir, "go"), "")))
  return { hub, relay, dir, config, start: startDaemon(["run", "--config", config]) }
})

export const waitUntil = <E, R>(check: Effect.Effect<boolean, E, R>, what: string, timeoutMs = 10_000) =>
  Effect.gen(function*() {
    while (!(yield* check)) yield* Effect.sleep(25)
  }).pipe(Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(new Error(`timed out after ${timeoutMs} ms: ${what}`)) }))

export const waitFor = (check: () => boolean, what: string, timeoutMs = 10_000) => waitUntil(Effect.sync(check), what, timeoutMs)

export const task = (hub: Hub, id: string): Effect.Effect<TaskView> => Effect.orDie(hub.task(id))

/** Waits until the hub's view of the task passes `pred`, and returns it. */
export const waitTask = (hub: Hub, id: string, pred: (t: TaskView) => boolean, what: string, timeoutMs = 10_000) =>
  waitUntil(Effect.map(task(hub, id), pred), `${id} ${what}`, timeoutMs).pipe(Effect.andThen(task(hub, id)))

/** The hub has the agent connected and working on `id` (it accepted the task on its current connection). */
export const agentWorkingOn = (hub: Hub, id: string) =>
  Effect.map(hub.agents, (agents) => agents.some((a) => a.agent_id === AGENT && a.fsm === "working" && a.current_task === id))

export const isFinal = (t: TaskView): boolean => t.state === "complete" || t.state === "dead_letter" || t.state === "cancelled"

/** How many times the agent was woken for `id`. */
export const wakes = (dir: string, id: string): number => {
  const path = NPath.join(dir, "wakes")
  return NFS.existsSync(path) ? NFS.readFileSync(path, "utf8").split("\n").filter((l) => l === id).length : 0
}

export const go = (dir: string): void => NFS.writeFileSync(NPath.join(dir, "go"), "")
export const resultsFile = (dir: string, name: string): string => NPath.join(dir, "results", name)

/** Frames on the wire, filtered. */
export const wire = (relay: Relay, from: WireFrame["from"], type?: string, taskId?: string): ReadonlyArray<WireFrame> =>
  relay.frames().filter((f) => f.from === from && (type === undefined || f.json.type === type) && (taskId === undefined || f.json["task_id"] === taskId))

/** What the hub refused: every `error` frame it sent (validation_failed, `task_complete_failed: stale_generation`, …). */
export const refusals = (relay: Relay): ReadonlyArray<WireFrame["json"]> => wire(relay, "hub", "error").map((f) => f.json)

/**
 * The common end of a task that must have gone through: complete exactly once in the hub, the agent woken once,
 * nothing refused, and the last report carried the hub's current generation.
 */
export const assertCompletedOnce = (w: World, id: string) => Effect.gen(function*() {
  const t = yield* waitTask(w.hub, id, isFinal, "finished in the hub", 15_000)
  assert.strictEqual(t.state, "complete", JSON.stringify(t.timeline))
  assert.strictEqual(t.timeline.filter((e) => e.event === "complete").length, 1)
  assert.deepStrictEqual(t.timeline.filter((e) => e.event === "report_refused"), [], "a report the hub refused")
  assert.deepStrictEqual(refusals(w.relay), [], "frames the hub refused")
  assert.strictEqual(wakes(w.dir, id), 1, "agent woken once")
  const last = wire(w.relay, "sidecar", "task_complete", id).at(-1)
  assert.strictEqual(last?.json["generation"], t.generation, "the report carried the hub's current generation")
  return t
})

/** A second task after the scenario flows to completion. */
export const assertNextTaskFlows = (w: World) => Effect.gen(function*() {
  const id = yield* w.hub.submit({ description: "quick" })
  yield* assertCompletedOnce(w, id)
})

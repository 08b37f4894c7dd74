/**
 * The sidecar's figures, measured against the real thing: `SidecarLive(settings)` built in this process,
 * talking over loopback WebSocket to the bench hub, with real files in a temp dir. Each task runs alone
 * (max_active_tasks 1): the next is assigned only once the previous one's ack cycle is over (state
 * dropped, files cleaned up).
 */
import { Context, Effect, Layer, Stream } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { performance } from "node:perf_hooks"
import { defaultSettings, type Settings } from "../src/domain/Config.ts"
import type { QueueFile } from "../src/domain/Task.ts"
import { LoggingLayer } from "../src/layers/Logging.ts"
import { SidecarLive } from "../src/program.ts"
import { HubClient } from "../src/services/HubClient.ts"
import { TaskFlow } from "../src/services/TaskFlow.ts"
import type { BenchHub, Frame, Received } from "./hub.ts"
import { recordingTracer } from "./probe.ts"

export const WARMUP_TASKS = 5

/** One measured task: when the clock started, when the hub got the answer, and the task's id. */
export interface Iteration {
  readonly id: string
  readonly t0: number
  readonly t1: number
  /** When the hub received task_accepted (instant-agent runs). */
  readonly acceptedAt?: number
  /** When the hub received the terminal report. */
  readonly reportedAt: number
  /** When the task was forgotten and its files removed (after the hub's ack). */
  readonly settledAt: number
}

export interface Phase {
  readonly samples: Array<number>
  readonly iterations: Array<Iteration>
}

type Flow = (typeof TaskFlow)["Service"]

export const benchSettings = (dir: string, hubUrl: string, overrides: Partial<Settings> = {}): Settings =>
  defaultSettings(dir, { hubUrl, agentId: "bench-agent", logFile: undefined, logLevel: "warning", maxActiveTasks: 1, ...overrides })

/** Builds the live sidecar, runs `body` against it, then closes its scope (graceful shutdown). */
const withSidecar = <A>(settings: Settings, profile: boolean, body: (flow: Flow) => Promise<A>): Promise<A> => {
  const program = Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(SidecarLive(settings))
    const hub = Context.get(context, HubClient)
    yield* hub.changes.pipe(Stream.filter((s) => s.status === "identified"), Stream.runHead, Effect.timeout("10 seconds"))
    return yield* Effect.tryPromise({ try: () => body(Context.get(context, TaskFlow)), catch: (e) => e })
  })).pipe(Effect.provide(LoggingLayer(settings)))
  return Effect.runPromise(profile ? Effect.withTracer(program, recordingTracer) : program)
}

const run = <A>(effect: Effect.Effect<A, unknown>): Promise<A> => Effect.runPromise(effect)

const holds = (q: QueueFile, id: string) => q.tasks.some((t) => t.task_id === id) || q.outbox.some((r) => r.task_id === id)

const waitStatus = (flow: Flow, id: string, status: string) =>
  run(flow.changes.pipe(
    Stream.filter((q) => q.tasks.some((t) => t.task_id === id && t.status === status)),
    Stream.runHead,
    Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.fail(new Error(`task ${id} never reached ${status}`)) })
  ))

/** The ack cycle is over: the task is forgotten and its files are gone. */
const waitForgotten = async (flow: Flow, id: string, resultsDir: string) => {
  await run(flow.changes.pipe(
    Stream.filter((q) => !holds(q, id)),
    Stream.runHead,
    Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.fail(new Error(`task ${id} was never settled`)) })
  ))
  const deadline = performance.now() + 5000
  while (NFS.existsSync(NPath.join(resultsDir, `${id}.json`)) || NFS.existsSync(NPath.join(resultsDir, `${id}.task.json`))) {
    if (performance.now() > deadline) throw new Error(`files of ${id} were not cleaned up`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

const assign = (id: string) => ({ type: "task_assign", task_id: id, description: `bench task ${id}`, metadata: { bench: true }, generation: 1 })

const reportFor = (id: string) => (f: Frame) => (f.type === "task_complete" || f.type === "task_failed") && f["task_id"] === id

const expectComplete = (r: Received): Received => {
  if (r.frame.type !== "task_complete") throw new Error(`task ${String(r.frame["task_id"])} failed: ${String(r.frame["reason"])}`)
  return r
}

/** The agent's side: result under a dot-name (ignored by the watcher), then one rename into place. Returns the time just before the rename. */
export const agentWritesResult = (resultsDir: string, id: string): number => {
  const tmp = NPath.join(resultsDir, `.${id}.json.tmp`)
  NFS.writeFileSync(tmp, JSON.stringify({ status: "success", output: `done ${id}` }))
  const before = performance.now()
  NFS.renameSync(tmp, NPath.join(resultsDir, `${id}.json`))
  return before
}

/** Self-start sidecar: assign → task_accepted latency, then result rename → task_complete latency. */
export const acceptAndDetect = (hub: BenchHub, dir: string, n: number, profile: boolean): Promise<{ accept: Phase; detect: Phase }> => {
  const settings = benchSettings(dir, hub.url)
  return withSidecar(settings, profile, async (flow) => {
    const accept: Phase = { samples: [], iterations: [] }
    for (let i = 0; i < n + WARMUP_TASKS; i++) {
      const id = `acc-${i}`
      const mark = hub.mark()
      const t0 = hub.send(assign(id))
      const accepted = await hub.waitFor((f) => f.type === "task_accepted" && f["task_id"] === id, mark)
      // let the agent finish it, so the next assign has room
      await waitStatus(flow, id, "working")
      agentWritesResult(settings.resultsDir, id)
      const complete = expectComplete(await hub.waitFor(reportFor(id), mark))
      await waitForgotten(flow, id, settings.resultsDir)
      if (i >= WARMUP_TASKS) {
        accept.samples.push(accepted.at - t0)
        accept.iterations.push({ id, t0, t1: accepted.at, reportedAt: complete.at, settledAt: performance.now() })
      }
    }
    const detect: Phase = { samples: [], iterations: [] }
    for (let i = 0; i < n + WARMUP_TASKS; i++) {
      const id = `det-${i}`
      const mark = hub.mark()
      hub.send(assign(id))
      await hub.waitFor((f) => f.type === "task_accepted" && f["task_id"] === id, mark)
      await waitStatus(flow, id, "working")
      const t0 = agentWritesResult(settings.resultsDir, id)
      const complete = expectComplete(await hub.waitFor(reportFor(id), mark))
      await waitForgotten(flow, id, settings.resultsDir)
      if (i >= WARMUP_TASKS) {
        detect.samples.push(complete.at - t0)
        detect.iterations.push({ id, t0, t1: complete.at, reportedAt: complete.at, settledAt: performance.now() })
      }
    }
    return { accept, detect }
  })
}

const AGENT_SCRIPT = `#!/bin/sh
# An instant agent: .started, then the result, each written atomically (temp file + mv), exit 0.
tmp="$RESULTS_DIR/.$TASK_ID.$$"
: > "$tmp.started" && mv "$tmp.started" "$STARTED_FILE" || exit 1
printf '{"status":"success","output":"done %s"}' "$TASK_ID" > "$tmp.result" && mv "$tmp.result" "$RESULT_FILE" || exit 1
`

/** Sidecar with a wake command whose agent answers at once: task_assign sent → task_complete received. */
export const instantAgent = (hub: BenchHub, dir: string, n: number, profile: boolean): Promise<Phase> => {
  NFS.mkdirSync(dir, { recursive: true })
  const script = NPath.join(dir, "agent.sh")
  NFS.writeFileSync(script, AGENT_SCRIPT, { mode: 0o755 })
  const settings = benchSettings(dir, hub.url, { wakeCommand: ["/bin/sh", script] })
  return withSidecar(settings, profile, async (flow) => {
    const phase: Phase = { samples: [], iterations: [] }
    for (let i = 0; i < n + WARMUP_TASKS; i++) {
      const id = `run-${i}`
      const mark = hub.mark()
      const t0 = hub.send(assign(id))
      const complete = expectComplete(await hub.waitFor(reportFor(id), mark))
      const accepted = await hub.waitFor((f) => f.type === "task_accepted" && f["task_id"] === id, mark)
      await waitForgotten(flow, id, settings.resultsDir)
      if (i >= WARMUP_TASKS) {
        phase.samples.push(complete.at - t0)
        phase.iterations.push({ id, t0, t1: complete.at, acceptedAt: accepted.at, reportedAt: complete.at, settledAt: performance.now() })
      }
    }
    return phase
  })
}

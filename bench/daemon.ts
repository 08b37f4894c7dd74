/**
 * The issue-14 harness: a sidecar daemon in its own process, as users run it, against the bench hub, measured
 * from the hub's side only, so the same code measures agent-sidecar (`bin/agent-sidecar.js run`) and the earlier
 * AgentCom sidecar (`--peer DIR`: its `index.js`, copied into a temp dir because it keeps `config.json` and
 * `queue.json` beside itself). Per subject, two daemons:
 *
 *   self-start  no wake command: assign → task_accepted, then the agent's result rename → task_complete
 *   instant     an instant agent as wake command: idle RSS (after settling), assign → task_complete one at a time,
 *               then a run of tasks `concurrency` at a time (its CPU time from /proc/PID/stat, that run only),
 *               RSS after it (after settling), and after a flood of bad frames
 *
 * Between two tasks the harness waits until the task's files are gone (both sidecars remove them once done).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import type { BenchHub, Frame } from "./hub.ts"
import { badFrame, cpuSeconds, HOOK, sample, type Sample } from "./memory.ts"
import { agentWritesResult } from "./sidecar.ts"

const BIN = fileURLToPath(new URL("../bin/agent-sidecar.js", import.meta.url))

export interface Subject {
  readonly name: string
  /** Tasks the daemon runs at once (the peer runs one). */
  readonly maxActive: number
  /** Spawns the daemon in `dir`; `wake` is the instant agent's script, or undefined for a self-starting agent. */
  readonly spawn: (hub: BenchHub, dir: string, agentId: string, wake: string | undefined) => { readonly child: ChildProcess; readonly resultsDir: string }
}

const AGENT_SCRIPT = `#!/bin/sh
# An instant agent: .started, then the result, each written atomically (temp file + mv), exit 0.
# The task id is $TASK_ID (agent-sidecar's environment) or $1 (the earlier sidecar's \${TASK_ID} in its command).
id="\${TASK_ID:-$1}"
dir="\${RESULTS_DIR:-$BENCH_RESULTS_DIR}"
tmp="$dir/.$id.$$"
: > "$tmp.started" && mv "$tmp.started" "$dir/$id.started" || exit 1
printf '{"status":"success","output":"done %s"}' "$id" > "$tmp.result" && mv "$tmp.result" "$dir/$id.json" || exit 1
`

const writeScript = (dir: string): string => {
  const script = NPath.join(dir, "agent.sh")
  NFS.writeFileSync(script, process.env.BENCH_NOOP_AGENT === "1" ? "#!/bin/sh\nexit 0\n" : AGENT_SCRIPT, { mode: 0o755 })
  return script
}

/** agent-sidecar as users run it: the bin, default logging (info, stdout and ./sidecar.log). BENCH_DAEMON_ARGS: extra
 *  Node flags for it, space-separated (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`). */
export const ours: Subject = {
  name: "agent-sidecar",
  maxActive: 4,
  spawn: (hub, dir, agentId, wake) => {
    NFS.writeFileSync(NPath.join(dir, "config.json"), JSON.stringify({
      agent_id: agentId, token: "bench-token", hub_url: hub.url, results_dir: "./results", queue_path: "./queue.json",
      max_active_tasks: 4, ...(process.env.BENCH_LOG_LEVEL !== undefined ? { log_level: process.env.BENCH_LOG_LEVEL } : {}), ...(wake !== undefined ? { wake_command: ["/bin/sh", wake] } : {})
    }, null, 2), { mode: 0o600 })
    const env = { ...process.env, AGENT_SIDECAR_FROM_SOURCE: process.env.BENCH_FROM_SOURCE === "1" ? "1" : "0" }
    const child = spawn(process.execPath, [...((process.env.BENCH_DAEMON_ARGS ?? "").split(" ").filter((a) => a !== "")), "--import", HOOK, BIN, "run", "--config", NPath.join(dir, "config.json")],
      { cwd: dir, env, stdio: ["ignore", "pipe", "pipe", "ipc"] })
    return { child, resultsDir: NPath.join(dir, "results") }
  }
}

/** The AgentCom sidecar (`sidecar/` at b40ae8b, `npm i` done in `peerDir`): its index.js beside its config, its node_modules linked. */
export const peer = (peerDir: string): Subject => {
  const source = NPath.resolve(peerDir)
  if (!NFS.existsSync(NPath.join(source, "index.js")) || !NFS.existsSync(NPath.join(source, "node_modules"))) {
    throw new Error(`--peer ${peerDir}: expected the AgentCom sidecar folder with index.js and node_modules (npm i done)`)
  }
  return {
    name: "AgentCom sidecar",
    maxActive: 1,
    spawn: (hub, dir, agentId, wake) => {
      NFS.copyFileSync(NPath.join(source, "index.js"), NPath.join(dir, "index.js"))
      NFS.copyFileSync(NPath.join(source, "package.json"), NPath.join(dir, "package.json"))
      NFS.symlinkSync(NPath.join(source, "node_modules"), NPath.join(dir, "node_modules"))
      const resultsDir = NPath.join(dir, "results")
      NFS.writeFileSync(NPath.join(dir, "config.json"), JSON.stringify({
        agent_id: agentId, token: "bench-token", hub_url: hub.url, results_dir: "./results", log_file: "./sidecar.log",
        capabilities: [], ...(wake !== undefined ? { wake_command: `/bin/sh ${wake} \${TASK_ID}` } : {})
      }, null, 2))
      const env = { ...process.env, BENCH_RESULTS_DIR: resultsDir }
      const child = spawn(process.execPath, ["--import", HOOK, NPath.join(dir, "index.js")], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe", "ipc"] })
      return { child, resultsDir }
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const isReport = (f: Frame) => f.type === "task_complete" || f.type === "task_failed"

const assign = (id: string) => ({ type: "task_assign", task_id: id, description: `bench task ${id}`, metadata: { bench: true }, generation: 1 })

/** Both sidecars remove `<id>.json` and `<id>.started` once the task is done. */
const waitFilesGone = async (resultsDir: string, id: string) => {
  const deadline = performance.now() + 10_000
  while (NFS.existsSync(NPath.join(resultsDir, `${id}.json`)) || NFS.existsSync(NPath.join(resultsDir, `${id}.started`))) {
    if (performance.now() > deadline) throw new Error(`files of ${id} were not cleaned up`)
    await sleep(1)
  }
}

/** Offers a task until it is taken (a sidecar still finishing the previous one may refuse it as busy); the time of the first offer. */
const offer = async (hub: BenchHub, id: string): Promise<{ t0: number; accepted: number }> => {
  for (let attempt = 0; attempt < 200; attempt++) {
    const mark = hub.mark()
    const t0 = hub.send(assign(id))
    const answer = await hub.waitFor((f) => f["task_id"] === id && (f.type === "task_accepted" || f.type === "task_rejected"), mark)
    if (answer.frame.type === "task_accepted") return { t0, accepted: answer.at }
    await sleep(5)
  }
  throw new Error(`task ${id} refused 200 times`)
}

const expectComplete = (frame: Frame) => {
  if (frame.type !== "task_complete") throw new Error(`task ${String(frame["task_id"])} failed: ${String(frame["reason"])}`)
}

/** Runs `n` tasks, `concurrency` at a time; each one's time from its first task_assign to task_complete at the hub. */
export const runTasks = async (hub: BenchHub, n: number, concurrency: number, prefix: string): Promise<Array<number>> => {
  const took: Array<number> = []
  let next = 0
  const one = async (): Promise<void> => {
    while (next < n) {
      const id = `${prefix}-${next++}`
      const t0 = performance.now()
      for (let attempt = 0; ; attempt++) {
        const mark = hub.mark()
        hub.send(assign(id))
        const answer = await hub.waitFor((f) => f["task_id"] === id && (f.type === "task_rejected" || isReport(f)), mark, 15_000)
        if (answer.frame.type === "task_complete") {
          took.push(answer.at - t0)
          break
        }
        if (answer.frame.type === "task_failed") throw new Error(`task ${id} failed: ${String(answer.frame["reason"])}`)
        if (attempt >= 400) throw new Error(`task ${id} refused 400 times: ${String(answer.frame["reason"])}`)
        await sleep(5)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, one))
  return took
}

interface Running {
  readonly child: ChildProcess
  readonly resultsDir: string
  readonly startupMs: number
  readonly orDied: <A>(p: Promise<A>) => Promise<A>
  readonly stdoutBytes: () => number
  /** SIGTERM → exit: how long, and how. */
  readonly stop: () => Promise<{ ms: number; code: number | null; signal: string | null; stderr: string }>
}

export const startDaemon = async (subject: Subject, hub: BenchHub, dir: string, agentId: string, wake: boolean): Promise<Running> => {
  NFS.mkdirSync(NPath.join(dir, "results"), { recursive: true })
  const script = wake ? writeScript(dir) : undefined
  const mark = hub.mark()
  const started = performance.now()
  const { child, resultsDir } = subject.spawn(hub, dir, agentId, script)
  let stdoutBytes = 0
  child.stdout!.on("data", (chunk: Buffer) => { stdoutBytes += chunk.length })
  // BENCH_STDOUT=FILE: a copy of the daemon's stdout (e.g. V8's --trace-gc lines) for looking into a run
  if (process.env.BENCH_STDOUT !== undefined) child.stdout!.pipe(NFS.createWriteStream(process.env.BENCH_STDOUT))
  let stderr = ""
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => { stderr = (stderr + chunk).slice(-4000) })
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, at: performance.now() })))
  let stopping = false
  const died = exited.then((e): never => {
    throw new Error(`${subject.name} exited (code ${e.code}, signal ${e.signal}): ${stderr.trim()}`)
  })
  died.catch(() => {})
  const orDied = <A>(p: Promise<A>): Promise<A> => stopping ? p : Promise.race([p, died])
  const identify = await orDied(hub.waitFor((f) => f.type === "identify" && f["agent_id"] === agentId, mark, 15_000))
  await sleep(1000) // its file watcher may still be starting
  return {
    child, resultsDir, startupMs: identify.at - started, orDied, stdoutBytes: () => stdoutBytes,
    stop: async () => {
      stopping = true
      const at = performance.now()
      child.kill("SIGTERM")
      let timer: NodeJS.Timeout | undefined
      const exit = await Promise.race([exited, new Promise<{ code: null; signal: string; at: number }>((resolve) => {
        timer = setTimeout(() => resolve({ code: null, signal: "none within 10 s of SIGTERM", at: performance.now() }), 10_000)
      })])
      clearTimeout(timer)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      return { ms: exit.at - at, code: exit.code, signal: exit.signal, stderr: stderr.trim() }
    }
  }
}

export interface HarnessOptions {
  readonly accept: number
  readonly detect: number
  readonly instant: number
  readonly warmup: number
  readonly tasks: number
  readonly floodFrames: number
  readonly settleMs: number
}

export interface HarnessResult {
  readonly subject: string
  readonly accept: Array<number>
  readonly detect: Array<number>
  readonly instant: Array<number>
  readonly startupMs: number
  readonly idle: Sample
  readonly afterTasks: Sample
  /** A string when the daemon did not survive the flood (what it died of). */
  readonly afterFlood: Sample | string
  readonly tasks: number
  readonly concurrency: number
  readonly tasksMs: number
  readonly taskSamples: Array<number>
  /** The daemon's CPU time (user + system) over the run of tasks only, in seconds. */
  readonly tasksCpuS: number
  readonly floodFrames: number
  readonly floodMs: number
  readonly stdoutBytes: number
  readonly shutdown: { readonly ms: number; readonly code: number | null; readonly signal: string | null; readonly stderr: string }
}

export const runHarness = async (subject: Subject, hub: BenchHub, dir: string, o: HarnessOptions,
  progress: (what: string) => void): Promise<HarnessResult> => {
  // self-start: accept and detection latencies
  progress(`${subject.name}: ${o.accept} accepts, ${o.detect} detections (+${o.warmup} warm-up each)`)
  const selfStart = await startDaemon(subject, hub, NPath.join(dir, "self-start"), "bench-self", false)
  const accept: Array<number> = []
  const detect: Array<number> = []
  try {
    for (let i = 0; i < o.accept + o.warmup; i++) {
      const id = `acc-${i}`
      const mark = hub.mark()
      const { t0, accepted } = await selfStart.orDied(offer(hub, id))
      agentWritesResult(selfStart.resultsDir, id)
      expectComplete((await selfStart.orDied(hub.waitFor((f) => isReport(f) && f["task_id"] === id, mark))).frame)
      await selfStart.orDied(waitFilesGone(selfStart.resultsDir, id))
      if (i >= o.warmup) accept.push(accepted - t0)
    }
    for (let i = 0; i < o.detect + o.warmup; i++) {
      const id = `det-${i}`
      const mark = hub.mark()
      await selfStart.orDied(offer(hub, id))
      // the self-starting agent's status settles right after the accept; give it that moment
      await sleep(2)
      const t0 = agentWritesResult(selfStart.resultsDir, id)
      const complete = await selfStart.orDied(hub.waitFor((f) => isReport(f) && f["task_id"] === id, mark))
      expectComplete(complete.frame)
      await selfStart.orDied(waitFilesGone(selfStart.resultsDir, id))
      if (i >= o.warmup) detect.push(complete.at - t0)
    }
  } finally {
    await selfStart.stop()
  }

  // instant agent: idle memory, one-at-a-time latency, a run of tasks (CPU), memory after it and after a flood
  progress(`${subject.name}: idle, ${o.instant} instant-agent tasks, ${o.tasks} tasks ${subject.maxActive} at a time, ${o.floodFrames} bad frames (${o.settleMs / 1000} s to settle before each reading)`)
  const daemon = await startDaemon(subject, hub, NPath.join(dir, "instant"), "bench-instant", true)
  let result: Omit<HarnessResult, "shutdown">
  try {
    const { child, orDied } = daemon
    await sleep(o.settleMs)
    const idle = await orDied(sample(child, false))
    const instant: Array<number> = []
    for (let i = 0; i < o.instant + o.warmup; i++) {
      const id = `run-${i}`
      const mark = hub.mark()
      const { t0 } = await orDied(offer(hub, id))
      const complete = await orDied(hub.waitFor((f) => isReport(f) && f["task_id"] === id, mark))
      expectComplete(complete.frame)
      await orDied(waitFilesGone(daemon.resultsDir, id))
      if (i >= o.warmup) instant.push(complete.at - t0)
    }
    const cpu0 = cpuSeconds(child.pid!)
    const t0 = performance.now()
    const taskSamples = await orDied(runTasks(hub, o.tasks, subject.maxActive, "mem"))
    const tasksMs = performance.now() - t0
    const tasksCpuS = cpuSeconds(child.pid!) - cpu0
    await sleep(o.settleMs)
    const afterTasks = await orDied(sample(child, false))
    // the flood: a sidecar that dies of it is a finding, not a failure of the bench
    const f0 = performance.now()
    let afterFlood: Sample | string
    let floodMs = Number.NaN
    try {
      for (let i = 0; i < o.floodFrames; i++) hub.sendRaw(badFrame(i))
      await orDied(runTasks(hub, 1, 1, "after-flood"))
      floodMs = performance.now() - f0
      await sleep(o.settleMs)
      afterFlood = await orDied(sample(child, false))
    } catch (error) {
      if (child.exitCode === null && child.signalCode === null) throw error
      afterFlood = `exited during the flood: ${String(error).split("\n").find((l) => /Error:/.test(l) && !l.includes("exited (code")) ?? String(error).slice(0, 200)}`
    }
    result = {
      subject: subject.name, accept, detect, instant, startupMs: selfStart.startupMs, idle, afterTasks, afterFlood,
      tasks: o.tasks, concurrency: subject.maxActive, tasksMs, taskSamples, tasksCpuS, floodFrames: o.floodFrames, floodMs,
      stdoutBytes: daemon.stdoutBytes()
    }
  } catch (error) {
    await daemon.stop()
    throw error
  }
  return { ...result, shutdown: await daemon.stop() }
}

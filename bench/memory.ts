/**
 * Memory of the daemon as users run it (issue 12): `bin/agent-sidecar.js run --config …` in its own process,
 * against the bench hub, with an instant agent (a wake command that writes `.started` and the result at once)
 * and the default logging (info, to stdout and `./sidecar.log`). RSS is read from /proc three times, each after
 * the daemon has been left alone to settle: idle after `identified`, after a run of tasks, and after a flood of
 * bad frames from the hub. Beside it, a bare `node` process (the floor no Node daemon can go under).
 *
 * The daemon is started with a small preload (HOOK_SOURCE) and an IPC channel, so the bench can also read
 * `process.memoryUsage()` (heap, external, array buffers) from inside it; that hook changes nothing else.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import type { BenchHub, Frame } from "./hub.ts"

const BIN = fileURLToPath(new URL("../bin/agent-sidecar.js", import.meta.url))

/**
 * Preloaded into the daemon (`--import data:…`, with an IPC channel): answers each message from the bench with
 * `process.memoryUsage()` and the V8 heap spaces, after a full GC when the daemon runs with `--expose-gc` and
 * the message asks for one. Plain JavaScript in a data: URL: a `.ts` preload would load Node's type stripper,
 * which alone adds about 19 MB of RSS. The channel is unref'd, so it never keeps the daemon alive.
 */
const HOOK_SOURCE = `
import { getHeapSpaceStatistics } from "node:v8"
if (process.send !== undefined) {
  process.on("message", (message) => {
    const gcRan = message.gc === true && typeof globalThis.gc === "function"
    if (gcRan) globalThis.gc()
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]))
    process.send({ ...process.memoryUsage(), spaces, gcRan })
  })
  process.channel?.unref() // after the listener: adding a "message" listener refs the channel
}
`
const HOOK = `data:text/javascript,${encodeURIComponent(HOOK_SOURCE)}`

const MB = 1024 * 1024

/** One reading, in MB: the kernel's view (/proc) and V8's (process.memoryUsage from the hook). */
export interface Sample {
  readonly rss: number
  /** Peak RSS so far (VmHWM). */
  readonly hwm: number
  /** Anonymous (heap, malloc) and file-backed (code) parts of RSS, from /proc/PID/smaps_rollup. */
  readonly anon: number
  readonly file: number
  /** Freed with MADV_FREE but still counted in RSS until the kernel needs the memory. */
  readonly lazyFree: number
  readonly heapUsed: number
  readonly heapTotal: number
  readonly external: number
  readonly arrayBuffers: number
  /** CPU time the daemon has used so far (user + system), in seconds. */
  readonly cpuS: number
}

export interface MemoryResult {
  readonly idle: Sample
  readonly afterTasks: Sample
  readonly afterFlood: Sample
  readonly tasks: number
  readonly tasksMs: number
  /** Each task's time from task_assign to task_complete at the hub (`concurrency` in flight). */
  readonly taskSamples: ReadonlyArray<number>
  readonly floodFrames: number
  readonly floodMs: number
  /** stdout the daemon wrote over the whole run (its log lines), in bytes. */
  readonly stdoutBytes: number
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stderr: string
}

export interface MemoryOptions {
  readonly tasks: number
  readonly floodFrames: number
  /** How long the daemon is left alone before each reading. */
  readonly settleMs: number
  /** Tasks in flight at once (the daemon runs with max_active_tasks = this). */
  readonly concurrency?: number
  /** Extra Node flags for the daemon (before bin/agent-sidecar.js) and extra environment. */
  readonly nodeArgs?: ReadonlyArray<string>
  readonly env?: Record<string, string>
  /** Ask the hook for a full GC before each reading (needs `--expose-gc` in nodeArgs). */
  readonly gcBeforeSample?: boolean
}

const kB = (text: string, field: string): number => {
  const line = text.split("\n").find((l) => l.startsWith(`${field}:`))
  if (line === undefined) throw new Error(`no ${field} in /proc`)
  return Number(line.replace(/\D+/g, "")) * 1024
}

/** utime + stime from /proc/PID/stat (fields 14 and 15, counted after the command name's closing paren). */
const cpuSeconds = (pid: number): number => {
  const stat = NFS.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100 // clock ticks; USER_HZ is 100 on Linux
}

const procSample = (pid: number) => {
  const status = NFS.readFileSync(`/proc/${pid}/status`, "utf8")
  const rollup = NFS.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8")
  return {
    rss: kB(status, "VmRSS") / MB, hwm: kB(status, "VmHWM") / MB,
    anon: kB(rollup, "Anonymous") / MB, file: (kB(rollup, "Rss") - kB(rollup, "Anonymous")) / MB,
    lazyFree: kB(rollup, "LazyFree") / MB, cpuS: cpuSeconds(pid)
  }
}

const hookSample = (child: ChildProcess, gc: boolean): Promise<NodeJS.MemoryUsage> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the memory hook did not answer within 5 s")), 5000)
    child.once("message", (m) => { clearTimeout(timer); resolve(m as NodeJS.MemoryUsage) })
    child.send({ gc })
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const sample = async (child: ChildProcess, gc: boolean): Promise<Sample> => {
  const usage = await hookSample(child, gc)
  const proc = procSample(child.pid!)
  return {
    ...proc, heapUsed: usage.heapUsed / MB, heapTotal: usage.heapTotal / MB,
    external: usage.external / MB, arrayBuffers: usage.arrayBuffers / MB
  }
}

const AGENT_SCRIPT = `#!/bin/sh
# An instant agent: .started, then the result, each written atomically (temp file + mv), exit 0.
tmp="$RESULTS_DIR/.$TASK_ID.$$"
: > "$tmp.started" && mv "$tmp.started" "$STARTED_FILE" || exit 1
printf '{"status":"success","output":"done %s"}' "$TASK_ID" > "$tmp.result" && mv "$tmp.result" "$RESULT_FILE" || exit 1
`

/** Bad frames of the kinds a broken hub sends: not JSON, not an object, no type, wrong fields, unknown type. */
const badFrame = (i: number): string => {
  switch (i % 5) {
    case 0: return `{"type":"task_assign","task_id":"flood-${i}"` // cut off: not JSON
    case 1: return `[${i}]`
    case 2: return JSON.stringify({ task_id: `flood-${i}`, description: "no type" })
    case 3: return JSON.stringify({ type: "task_assign", task_id: i, description: ["wrong"], protocol_version: 1 })
    default: return JSON.stringify({ type: `no_such_type_${i % 97}`, task_id: `flood-${i}`, protocol_version: 1 })
  }
}

const isReport = (f: Frame) => f.type === "task_complete" || f.type === "task_failed"

/**
 * Runs `n` tasks through the daemon, `concurrency` at a time; a refused one (busy) is offered again. Returns each
 * task's time from its first task_assign to its task_complete at the hub.
 */
const runTasks = async (hub: BenchHub, n: number, concurrency: number, prefix: string): Promise<Array<number>> => {
  const took: Array<number> = []
  let next = 0
  const one = async (): Promise<void> => {
    while (next < n) {
      const id = `${prefix}-${next++}`
      const t0 = performance.now()
      for (let attempt = 0; ; attempt++) {
        const mark = hub.mark()
        hub.send({ type: "task_assign", task_id: id, description: `bench task ${id}`, metadata: { bench: true }, generation: 1 })
        const answer = await hub.waitFor((f) => f["task_id"] === id && (f.type === "task_rejected" || isReport(f)), mark, 15_000)
        if (answer.frame.type === "task_complete") {
          took.push(answer.at - t0)
          break
        }
        if (answer.frame.type === "task_failed") throw new Error(`task ${id} failed: ${String(answer.frame["reason"])}`)
        if (attempt >= 100) throw new Error(`task ${id} refused 100 times: ${String(answer.frame["reason"])}`)
        await sleep(5) // refused (busy while the previous one's ack cycle ends): offer it again
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, one))
  return took
}

export const daemonMemory = async (hub: BenchHub, dir: string, options: MemoryOptions): Promise<MemoryResult> => {
  const concurrency = options.concurrency ?? 4
  NFS.mkdirSync(dir, { recursive: true })
  const script = NPath.join(dir, "agent.sh")
  NFS.writeFileSync(script, AGENT_SCRIPT, { mode: 0o755 })
  const config = NPath.join(dir, "config.json")
  NFS.writeFileSync(config, JSON.stringify({
    agent_id: "bench-memory", token: "bench-token", hub_url: hub.url, results_dir: "./results", queue_path: "./queue.json",
    wake_command: ["/bin/sh", script], max_active_tasks: concurrency
  }, null, 2), { mode: 0o600 })
  const mark = hub.mark()
  const env = { ...process.env, AGENT_SIDECAR_FROM_SOURCE: "0", ...options.env }
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), "--import", HOOK, BIN, "run", "--config", config],
    { cwd: dir, env, stdio: ["ignore", "pipe", "pipe", "ipc"] })
  let stdoutBytes = 0
  child.stdout!.on("data", (chunk: Buffer) => { stdoutBytes += chunk.length })
  let stderr = ""
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => { stderr = (stderr + chunk).slice(-4000) })
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })))
  const died = exited.then((e): never => { throw new Error(`the sidecar exited (code ${e.code}, signal ${e.signal}): ${stderr.trim()}`) })
  const orDied = <A>(p: Promise<A>) => Promise.race([p, died])
  const gc = options.gcBeforeSample === true
  try {
    await orDied(hub.waitFor((f) => f.type === "identify" && f["agent_id"] === "bench-memory", mark, 15_000))
    await sleep(options.settleMs)
    const idle = await orDied(sample(child, gc))

    const t0 = performance.now()
    const taskSamples = await orDied(runTasks(hub, options.tasks, concurrency, "mem"))
    const tasksMs = performance.now() - t0
    await sleep(options.settleMs)
    const afterTasks = await orDied(sample(child, gc))

    const f0 = performance.now()
    for (let i = 0; i < options.floodFrames; i++) hub.sendRaw(badFrame(i))
    // A task after the flood: its report means every bad frame before it has been read and dropped.
    await orDied(runTasks(hub, 1, 1, "after-flood"))
    const floodMs = performance.now() - f0
    await sleep(options.settleMs)
    const afterFlood = await orDied(sample(child, gc))

    child.kill("SIGTERM")
    let timer: NodeJS.Timeout | undefined
    const exit = await Promise.race([exited, new Promise<{ code: null; signal: string }>((resolve) => {
      timer = setTimeout(() => resolve({ code: null, signal: "none within 10 s of SIGTERM" }), 10_000)
    })])
    clearTimeout(timer)
    return {
      idle, afterTasks, afterFlood, tasks: options.tasks, tasksMs, taskSamples, floodFrames: options.floodFrames, floodMs, stdoutBytes,
      exitCode: exit.code, signal: exit.signal, stderr: stderr.trim()
    }
  } finally {
    died.catch(() => {})
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
}

/** RSS of a bare `node` process (an empty timer loop), after `settleMs`: the floor for any Node daemon. */
export const bareNodeRss = async (settleMs: number): Promise<number> => {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
  try {
    await sleep(settleMs)
    return procSample(child.pid!).rss
  } finally {
    child.kill("SIGKILL")
  }
}

/** Whether bin/agent-sidecar.js will run the bundle here (as it decides: no source file newer than dist/). */
export const bundleIsFresh = (): boolean => {
  const bundle = fileURLToPath(new URL("../dist/agent-sidecar.mjs", import.meta.url))
  if (!NFS.existsSync(bundle)) return false
  const newest = (dir: string): number => NFS.readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
    const path = NPath.join(dir, e.name)
    return Math.max(m, e.isDirectory() ? newest(path) : NFS.statSync(path).mtimeMs)
  }, 0)
  return NFS.statSync(bundle).mtimeMs >= newest(fileURLToPath(new URL("../src/", import.meta.url)))
}

const mb = (x: number) => `${x.toFixed(1)} MB`

/**
 * The memory section of the report: each reading next to idle and next to a bare `node`. "Near idle" is within
 * 1.5x the idle RSS (issue 12).
 */
export const memoryRows = (r: MemoryResult, bareMb: number): Array<ReadonlyArray<string>> => {
  const near = 1.5 * r.idle.rss
  const row = (what: string, s: Sample, target: boolean): ReadonlyArray<string> => [
    what, mb(s.rss), mb(s.hwm), `+${mb(s.rss - r.idle.rss)}`, `+${mb(s.rss - bareMb)}`,
    `${s.heapUsed.toFixed(1)} / ${s.heapTotal.toFixed(1)}`, mb(s.external),
    target ? `<= ${mb(near)}` : "-", target ? (s.rss <= near ? "met" : "MISSED") : "-"
  ]
  return [
    ["bare node (setInterval only): the floor", mb(bareMb), "-", "-", "-", "-", "-", "-", "limit"],
    row("idle, identified", r.idle, false),
    row(`after ${r.tasks.toLocaleString("en")} tasks, instant agent`, r.afterTasks, true),
    row(`after ${r.floodFrames.toLocaleString("en")} bad frames from the hub`, r.afterFlood, true)
  ]
}

export const MEMORY_HEADER = ["CLI daemon memory (VmRSS after settling)", "RSS", "peak", "vs idle", "vs bare node", "heap used / total MB", "external", "target", "verdict"]

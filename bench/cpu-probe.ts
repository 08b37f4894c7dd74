/**
 * `node bench/cpu-probe.ts`: the daemon's CPU per task only, fast (about 15 s), for trying a change before a full
 * `npm run bench`. Starts the bin against the bench hub with the instant agent, warms up with 50 tasks, runs N
 * (env N, default 1000) tasks 4 at a time, and prints user and system CPU per task, minor page faults per task and
 * the children's (wake command, agent) CPU. PROBE=perf records `perf record -g` of the daemon into /tmp/perf.data;
 * SELF=1 runs without a wake command, the probe writing the agent's files (SELF_DELAY=MS: after waiting MS before
 * each file, as a slower agent would; BENCH_NOOP_AGENT=1: with a wake command that only exits, so the wake's own cost
 * shows). PROBE=strace counts every thread's syscalls into /tmp/strace.txt. BENCH_DAEMON_ARGS passes Node flags as in
 * run.ts; BENCH_FROM_SOURCE=1 runs the TypeScript sources (profiles name src/ files), BENCH_STDOUT=FILE keeps the
 * daemon's stdout (V8's --trace-gc lines), BENCH_LOG_LEVEL sets its log_level, KEEP=1 keeps the temp folder, WARM=N
 * warms up with N tasks instead of 50 (V8 is still compiling the task path's functions through the first few hundred).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NFS from "node:fs"
import * as NOS from "node:os"
import * as NPath from "node:path"
import { ours, runTasks, startDaemon } from "./daemon.ts"
import { threadCpuPer, threadCpuSeconds, wakeServerPids } from "./memory.ts"
import { BenchHub } from "./hub.ts"
import { agentWritesResult } from "./sidecar.ts"

/** SELF=1: no wake command; the probe plays the agent (writes `.started` and the result as soon as the task is accepted). */
const self = process.env.SELF === "1"

const selfStartTasks = async (hub: BenchHub, resultsDir: string, n: number, prefix: string): Promise<void> => {
  let next = 0
  const one = async (): Promise<void> => {
    while (next < n) {
      const id = `${prefix}-${next++}`
      const mark = hub.mark()
      hub.send({ type: "task_assign", task_id: id, description: `bench task ${id}`, metadata: { bench: true }, generation: 1 })
      const answer = await hub.waitFor((f) => f["task_id"] === id && (f.type === "task_accepted" || f.type === "task_rejected"), mark)
      if (answer.frame.type !== "task_accepted") throw new Error(`task ${id} refused`)
      const delay = Number(process.env.SELF_DELAY ?? 0)
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
      NFS.writeFileSync(NPath.join(resultsDir, `${id}.started`), "")
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
      agentWritesResult(resultsDir, id)
      await hub.waitFor((f) => f["task_id"] === id && f.type === "task_complete", mark)
    }
  }
  await Promise.all(Array.from({ length: 4 }, one))
}

/** /proc/PID/stat fields 10 (minflt) and 14-17 (utime, stime, cutime, cstime), counted after the command name. */
const statOne = (pid: number) => {
  const text = NFS.readFileSync(`/proc/${pid}/stat`, "utf8")
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ").map(Number)
  return { minflt: f[7]!, user: f[11]! / 100, sys: f[12]! / 100, childUser: f[13]! / 100, childSys: f[14]! / 100 }
}

/** The daemon's figures plus its wake server's own CPU (part of the sidecar; see memory.ts). */
const stat = (pid: number) => {
  const own = statOne(pid)
  const servers = wakeServerPids(pid).map(statOne)
  return { ...own, server: servers.reduce((sum, s) => sum + s.user + s.sys, 0) }
}

const recorder = (pid: number): ChildProcess | undefined => {
  if (process.env.PROBE === "perf") {
    return spawn("perf", ["record", "-e", "cpu-clock", "-g", "-p", String(pid), "-o", "/tmp/perf.data"], { stdio: "inherit" })
  }
  if (process.env.PROBE === "strace") {
    const threads = NFS.readdirSync(`/proc/${pid}/task`).flatMap((tid) => ["-p", tid])
    return spawn("strace", process.env.STRACE_ARGS ? [...process.env.STRACE_ARGS.split(" "), ...threads] : ["-c", "-o", "/tmp/strace.txt", ...threads], { stdio: "inherit" })
  }
  return undefined
}

const n = Number(process.env.N ?? 1000)
const tmp = NFS.mkdtempSync(NPath.join(NOS.tmpdir(), "cpu-probe-"))
const hub = await BenchHub.start()
try {
  const daemon = await startDaemon(ours, hub, tmp, "bench-instant", !self || process.env.BENCH_NOOP_AGENT === "1")
  const run = async (count: number, prefix: string): Promise<void> => {
    if (self) await selfStartTasks(hub, daemon.resultsDir, count, prefix)
    else await runTasks(hub, count, 4, prefix)
  }
  await run(Number(process.env.WARM ?? 50), "warm")
  const probe = recorder(daemon.child.pid!)
  if (probe !== undefined) await new Promise((resolve) => setTimeout(resolve, 500))
  const a = stat(daemon.child.pid!)
  const threadsBefore = threadCpuSeconds(daemon.child.pid!)
  const out0 = daemon.stdoutBytes()
  const t0 = performance.now()
  await daemon.orDied(run(n, "probe"))
  const seconds = (performance.now() - t0) / 1000
  const b = stat(daemon.child.pid!)
  const threadsAfter = threadCpuSeconds(daemon.child.pid!)
  if (probe !== undefined) {
    probe.kill("SIGINT")
    await new Promise((resolve) => probe.once("exit", resolve))
  }
  const per = (x: number) => `${((x * 1000) / n).toFixed(2)} ms`
  console.log(`${n} tasks in ${seconds.toFixed(1)} s; CPU per task ${per(b.user - a.user + b.sys - a.sys + b.server - a.server)}: daemon ${per(b.user - a.user + b.sys - a.sys)} ` +
    `(user ${per(b.user - a.user)}, sys ${per(b.sys - a.sys)}), wake server ${per(b.server - a.server)}; minor faults ${((b.minflt - a.minflt) / n).toFixed(0)}; ` +
    `children ${per(b.childUser - a.childUser + b.childSys - a.childSys)}; stdout ${((daemon.stdoutBytes() - out0) / n).toFixed(0)} B/task; load ${NOS.loadavg()[0]!.toFixed(2)}`)
  console.log(`by thread: ${threadCpuPer(threadsBefore, threadsAfter, n)}`)
  await daemon.stop()
} finally {
  await hub.close()
  if (process.env.KEEP !== "1") NFS.rmSync(tmp, { recursive: true, force: true })
}

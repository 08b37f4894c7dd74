/**
 * Reading a daemon's memory and CPU (issues 12 and 14): RSS and its parts from /proc, CPU time from
 * /proc/PID/stat, and heap/external from inside the daemon through a small preload (HOOK) on an IPC channel;
 * the bad frames of the flood; a bare `node` process (the floor no Node daemon can go under).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { fileURLToPath } from "node:url"

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
export const HOOK = `data:text/javascript,${encodeURIComponent(HOOK_SOURCE)}`

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
  /** CPU time the daemon (and its wake server) has used so far (user + system), in seconds. */
  readonly cpuS: number
}

const kB = (text: string, field: string): number => {
  const line = text.split("\n").find((l) => l.startsWith(`${field}:`))
  if (line === undefined) throw new Error(`no ${field} in /proc`)
  return Number(line.replace(/\D+/g, "")) * 1024
}

/** utime + stime of one process from /proc/PID/stat (fields 14 and 15, counted after the command name's closing paren). */
const ownCpuSeconds = (pid: number): number => {
  const stat = NFS.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100 // clock ticks; USER_HZ is 100 on Linux
}

/**
 * The daemon's wake server (`src/services/waker/ForkServer.ts`, a `/bin/sh` that forks the wake commands) is part of
 * the sidecar: its CPU time and RSS count with the daemon's. (The subshells it forks per command count with the
 * command's own CPU, as the pre-exec half of Node's fork did.)
 */
export const wakeServerPids = (pid: number): Array<number> => NFS.readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
  try {
    return NFS.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter((c) => c !== "").map(Number)
  } catch {
    return []
  }
}).filter((child) => {
  try {
    return NFS.readFileSync(`/proc/${child}/cmdline`, "utf8").includes("agent-sidecar-wake-server")
  } catch {
    return false
  }
})

/** CPU time of the daemon's wake server(s) so far (user + system), in seconds. */
export const wakeServerCpuSeconds = (pid: number): number =>
  wakeServerPids(pid).reduce((sum, server) => sum + ownCpuSeconds(server), 0)

/** CPU time of the daemon and its wake server so far (user + system), in seconds. */
export const cpuSeconds = (pid: number): number => ownCpuSeconds(pid) + wakeServerCpuSeconds(pid)

/** Each thread's CPU so far (utime + stime, seconds) by its name (trailing digits as N): where a process's CPU goes
 *  besides its main thread. */
export const threadCpuSeconds = (pid: number): Map<string, number> => {
  const byName = new Map<string, number>()
  for (const tid of NFS.readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = NFS.readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim().replace(/[0-9]+$/, "N")
      const text = NFS.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ").map(Number)
      byName.set(name, (byName.get(name) ?? 0) + (f[11]! + f[12]!) / 100)
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return byName
}

/** Each thread's CPU between two `threadCpuSeconds` readings, in ms per `n` (one line). */
export const threadCpuPer = (before: Map<string, number>, after: Map<string, number>, n: number): string =>
  [...after].map(([name, cpu]) => `${name} ${((cpu - (before.get(name) ?? 0)) * 1000 / n).toFixed(2)} ms`).join(", ")

const rssOf = (pid: number): number => kB(NFS.readFileSync(`/proc/${pid}/status`, "utf8"), "VmRSS") / MB

const procSample = (pid: number) => {
  const status = NFS.readFileSync(`/proc/${pid}/status`, "utf8")
  const rollup = NFS.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8")
  return {
    rss: wakeServerPids(pid).reduce((sum, server) => sum + rssOf(server), kB(status, "VmRSS") / MB), hwm: kB(status, "VmHWM") / MB,
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

export const sample = async (child: ChildProcess, gc: boolean): Promise<Sample> => {
  const usage = await hookSample(child, gc)
  const proc = procSample(child.pid!)
  return {
    ...proc, heapUsed: usage.heapUsed / MB, heapTotal: usage.heapTotal / MB,
    external: usage.external / MB, arrayBuffers: usage.arrayBuffers / MB
  }
}

/** Bad frames of the kinds a broken hub sends: not JSON, not an object, no type, wrong fields, unknown type. */
export const badFrame = (i: number): string => {
  switch (i % 5) {
    case 0: return `{"type":"task_assign","task_id":"flood-${i}"` // cut off: not JSON
    case 1: return `[${i}]`
    case 2: return JSON.stringify({ task_id: `flood-${i}`, description: "no type" })
    case 3: return JSON.stringify({ type: "task_assign", task_id: i, description: ["wrong"], protocol_version: 1 })
    default: return JSON.stringify({ type: `no_such_type_${i % 97}`, task_id: `flood-${i}`, protocol_version: 1 })
  }
}

/**
 * RSS of a bare `node` process (an empty timer loop), after `settleMs`: the floor for any Node daemon. `withHook`:
 * the same process carrying what the bench puts into every daemon it measures (the memory hook preloaded, the IPC
 * channel, one sample taken through them, as `sample` does), which costs about 3 MB by itself: the fair floor to
 * compare a measured daemon with.
 */
export const bareNodeRss = async (settleMs: number, withHook: boolean): Promise<number> => {
  const child = withHook
    ? spawn(process.execPath, ["--import", HOOK, "-e", "setInterval(() => {}, 1000)"], { stdio: ["ignore", "ignore", "ignore", "ipc"] })
    : spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
  try {
    await sleep(settleMs)
    if (withHook) await hookSample(child, false)
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


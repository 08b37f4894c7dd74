/**
 * Idle RSS of the daemon as users run it: `bin/agent-sidecar.js run --config …` in its own process (the
 * Node running this bench, i.e. the pinned Node 24 under `npm run`), connected and identified to the bench
 * hub and then left alone for a few seconds. Ends with SIGTERM, which must give exit code 0.
 */
import { spawn } from "node:child_process"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import type { BenchHub } from "./hub.ts"

export interface RssResult {
  readonly rssMb: number
  readonly hwmMb: number
  /** Process start → the hub received `identify`. */
  readonly startupMs: number
  /** SIGTERM → exit. */
  readonly shutdownMs: number
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stderr: string
}

const BIN = fileURLToPath(new URL("../bin/agent-sidecar.js", import.meta.url))

const statusField = (pid: number, field: string): number => {
  const line = NFS.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(`${field}:`))
  if (line === undefined) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(line.replace(/\D+/g, "")) / 1024 // kB → MB
}

/** `fromSource`: run the TypeScript sources instead of the bundle `npm ci` builds (see bin/agent-sidecar.js). */
export const idleRss = async (hub: BenchHub, dir: string, idleMs: number, fromSource = false): Promise<RssResult> => {
  NFS.mkdirSync(dir, { recursive: true })
  const config = NPath.join(dir, "config.json")
  NFS.writeFileSync(config, JSON.stringify({
    agent_id: "bench-rss", token: "bench-token", hub_url: hub.url,
    results_dir: "./results", queue_path: "./queue.json", log_file: "", log_level: "warning"
  }, null, 2), { mode: 0o600 })
  const mark = hub.mark()
  const started = performance.now()
  const env = { ...process.env, AGENT_SIDECAR_FROM_SOURCE: fromSource ? "1" : "0" }
  const child = spawn(process.execPath, [BIN, "run", "--config", config], { cwd: dir, env, stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => { stderr = (stderr + chunk).slice(-4000) })
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, at: performance.now() })))
  try {
    const identify = await Promise.race([
      hub.waitFor((f) => f.type === "identify" && f["agent_id"] === "bench-rss", mark, 15_000),
      exited.then((e) => { throw new Error(`the sidecar exited before identifying (code ${e.code}, signal ${e.signal}): ${stderr.trim()}`) })
    ])
    await new Promise((resolve) => setTimeout(resolve, idleMs))
    const pid = child.pid!
    const rssMb = statusField(pid, "VmRSS")
    const hwmMb = statusField(pid, "VmHWM")
    const signalledAt = performance.now()
    child.kill("SIGTERM")
    const exit = await Promise.race([
      exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the sidecar did not exit within 10 s of SIGTERM")), 10_000).unref())
    ])
    return {
      rssMb, hwmMb, startupMs: identify.at - started, shutdownMs: exit.at - signalledAt,
      exitCode: exit.code, signal: exit.signal, stderr: stderr.trim()
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
}

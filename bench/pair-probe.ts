/**
 * `node bench/pair-probe.ts`: CPU per task of two daemons run side by side, for telling whether a change helps.
 * This machine's speed drifts by ±30 % within an hour, so two cpu-probe runs one after the other differ by more than
 * most changes do. Here both daemons (each with its own bench hub, temp folder and instant agent) run the same rounds
 * of tasks at the same time, so a drift slows both alike; what is compared is B/A per round. Two copies of the same
 * checkout read B/A 0.96-1.00, so a change has to move it by more than about 4 % to show.
 *
 * PAIR_A and PAIR_B: `DIR` (a checkout with its bench/ and a built dist/, default this one), optionally followed by
 * `:NAME=VALUE,NAME=VALUE` set in the environment the daemon starts with (`+` for a space, e.g.
 * `BENCH_DAEMON_ARGS=--no-optimize-for-size`). N tasks a round (default 500), ROUNDS rounds (default 3), 4 at a time.
 */
import * as NFS from "node:fs"
import * as NOS from "node:os"
import * as NPath from "node:path"
import type * as Daemon from "./daemon.ts"
import type * as Hub from "./hub.ts"
import type * as Memory from "./memory.ts"

interface Side {
  readonly dir: string
  readonly env: Readonly<Record<string, string>>
}

const parseSide = (text: string | undefined): Side => {
  const at = (text ?? "").indexOf(":")
  const dir = at < 0 ? (text || NPath.resolve(import.meta.dirname, "..")) : text!.slice(0, at)
  const env: Record<string, string> = {}
  if (at >= 0) {
    for (const pair of text!.slice(at + 1).split(",")) {
      const eq = pair.indexOf("=")
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1).replaceAll("+", " ")
    }
  }
  return { dir, env }
}

/** Starts one side's hub and daemon with that side's own bench modules (its bin, its dist). */
const start = async (side: Side, tag: string) => {
  const daemon: typeof Daemon = await import(NPath.join(side.dir, "bench/daemon.ts"))
  const hubModule: typeof Hub = await import(NPath.join(side.dir, "bench/hub.ts"))
  const memory: typeof Memory = await import(NPath.join(side.dir, "bench/memory.ts"))
  const tmp = NFS.mkdtempSync(NPath.join(NOS.tmpdir(), `pair-probe-${tag}-`))
  const hub = await hubModule.BenchHub.start()
  const saved = Object.fromEntries(Object.keys(side.env).map((k) => [k, process.env[k]]))
  Object.assign(process.env, side.env)
  try {
    const running = await daemon.startDaemon(daemon.ours, hub, tmp, `pair-${tag}`, true)
    return { daemon, memory, hub, tmp, running, pid: running.child.pid! }
  } catch (e) {
    await hub.close()
    NFS.rmSync(tmp, { recursive: true, force: true })
    throw e
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

type Started = Awaited<ReturnType<typeof start>>

const stop = async (side: Started): Promise<void> => {
  await side.running.stop()
  await side.hub.close()
  NFS.rmSync(side.tmp, { recursive: true, force: true })
}

const compare = async (a: Started, b: Started, n: number, rounds: number): Promise<void> => {
  await Promise.all([a.daemon.runTasks(a.hub, 50, 4, "warm"), b.daemon.runTasks(b.hub, 50, 4, "warm")])
  let sumA = 0
  let sumB = 0
  for (let round = 0; round < rounds; round++) {
    const a0 = a.memory.cpuSeconds(a.pid)
    const b0 = b.memory.cpuSeconds(b.pid)
    await Promise.all([
      a.running.orDied(a.daemon.runTasks(a.hub, n, 4, `r${round}`)),
      b.running.orDied(b.daemon.runTasks(b.hub, n, 4, `r${round}`))
    ])
    const perA = ((a.memory.cpuSeconds(a.pid) - a0) * 1000) / n
    const perB = ((b.memory.cpuSeconds(b.pid) - b0) * 1000) / n
    sumA += perA
    sumB += perB
    console.log(`round ${round + 1}: A ${perA.toFixed(2)} ms, B ${perB.toFixed(2)} ms a task; B/A ${(perB / perA).toFixed(3)}`)
  }
  console.log(`${rounds} rounds of ${n} tasks: A ${(sumA / rounds).toFixed(2)} ms, B ${(sumB / rounds).toFixed(2)} ms a task (daemon + wake server); B/A ${(sumB / sumA).toFixed(3)}`)
}

// each side is stopped whatever happens to the other (one that fails to start leaves none running)
const a = await start(parseSide(process.env.PAIR_A), "a")
try {
  const b = await start(parseSide(process.env.PAIR_B), "b")
  try {
    await compare(a, b, Number(process.env.N ?? 500), Number(process.env.ROUNDS ?? 3))
  } finally {
    await stop(b)
  }
} finally {
  await stop(a)
}

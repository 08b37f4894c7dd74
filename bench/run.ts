/**
 * `npm run bench`: the figures of issue 14, each next to this machine's own limit measured in the same run.
 *
 *   limits   durable atomic write (writeAtomic), WebSocket loopback round trip, `sh -c true` spawn,
 *            the watch's event after a rename (ResultWatcher's own fs.watch and name filter), a bare `node`'s RSS
 *   daemons  the CLI daemon in its own process against a loopback hub (daemon.ts): assign → task_accepted,
 *            result rename → task_complete, a task with an instant agent, idle RSS, CPU per task and RSS over a
 *            run of 1,000 tasks (max_active_tasks 4), RSS after a flood of bad frames
 *
 * `--peer DIR` runs the AgentCom sidecar (its `sidecar/` folder at b40ae8b, `npm i` done) through the same harness
 * and prints it beside ours; it runs one task at a time and waits 500 ms for each file, so it gets fewer tasks.
 * `--profile` adds where the sidecar's time goes (Effect spans + fs.watch event times), from an in-process sidecar.
 * Writes nothing into the repository; everything lives in a temp dir that is removed at the end.
 */
import * as NFS from "node:fs"
import * as NOS from "node:os"
import * as NPath from "node:path"
import { performance } from "node:perf_hooks"
import { type HarnessOptions, type HarnessResult, ours, peer, runHarness, type Subject } from "./daemon.ts"
import { BenchHub } from "./hub.ts"
import { atomicWrites, rawDurableWrites, spawns, watchRenameEvents, wsRoundTrips } from "./limits.ts"
import { bareNodeRss, bundleIsFresh, type Sample } from "./memory.ts"
import * as Probe from "./probe.ts"
import { acceptAndDetect, instantAgent, type Iteration, type Phase } from "./sidecar.ts"
import { grid, ms, type Row, summarize, table } from "./stats.ts"

const N = { writes: 200, wsRoundTrips: 500, spawns: 100, watch: 100 }
const OURS: HarnessOptions = { accept: 100, detect: 100, instant: 50, warmup: 5, tasks: 1000, floodFrames: 100_000, settleMs: 10_000 }
/** The peer waits 500 ms for every file (awaitWriteFinish) and runs one task at a time: about 0.6 s a task. */
const PEER: HarnessOptions = { accept: 20, detect: 20, instant: 20, warmup: 2, tasks: 100, floodFrames: 100_000, settleMs: 10_000 }
const IDLE_MS = 3000
const PROFILE_N = { accept: 100, instant: 50 }

const profile = process.argv.includes("--profile")
const peerIndex = process.argv.indexOf("--peer")
const peerDir = peerIndex >= 0 ? process.argv[peerIndex + 1] : undefined
if (peerIndex >= 0 && (peerDir === undefined || peerDir.startsWith("--"))) throw new Error("--peer needs a folder")

const limitRow = (metric: string, samples: ReadonlyArray<number>): Row => {
  const s = summarize(samples)
  return { metric: `${metric} (n=${s.n})`, p50: ms(s.p50), p99: ms(s.p99), target: "-", verdict: "limit" }
}

const step = async <A>(what: string, f: () => Promise<A> | A): Promise<A> => {
  const t0 = performance.now()
  process.stderr.write(`bench: ${what} … `)
  const a = await f()
  process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
  return a
}

// ---- --profile: where the sidecar's time goes ----------------------------------------------------

const SAVE = "QueueStore.save"

/** p50/p99 of named segments, one record per measured task. */
const segmentRows = (title: string, records: ReadonlyArray<Record<string, number>>): Array<Row | string> => {
  if (records.length === 0) return [`  ${title}: nothing recorded`]
  const names = Object.keys(records[0]!)
  return [`  ${title}`, ...names.map((name): Row => {
    const s = summarize(records.map((r) => r[name]!).filter((x) => Number.isFinite(x)))
    const show = name.endsWith("(count)") ? String : ms
    return { metric: `    ${name}`, p50: show(s.p50), p99: show(s.p99), target: "", verdict: "" }
  })]
}

const firstSpan = (name: string, from: number, to: number) => Probe.spansIn(from, to).find((s) => s.name === name)
const fileEventFor = (id: string, from: number) => Probe.fileEvents.find((e) => e.at >= from && NPath.basename(e.path) === `${id}.json`)

/** After the measured latency: the hub's ack until the task is forgotten and its files are gone. */
const ackCycle = (it: Iteration) => {
  const saves = Probe.spansIn(it.reportedAt, it.settledAt).filter((s) => s.name === SAVE)
  return {
    "(after) report at hub → task forgotten, files removed": it.settledAt - it.reportedAt,
    "(after) queue saves in that (count)": saves.length
  }
}

const acceptProfile = (phase: Phase) => phase.iterations.flatMap((it) => {
  const save = firstSpan(SAVE, it.t0, it.t1)
  if (save === undefined) return []
  return [{
    "hub send → queue save starts (ws, decode, checks)": save.start - it.t0,
    "queue save (writeAtomic, 2 fsyncs)": save.end - save.start,
    "save done → task_accepted at hub": it.t1 - save.end,
    ...ackCycle(it)
  }]
})

const detectProfile = (phase: Phase) => phase.iterations.flatMap((it) => {
  const event = fileEventFor(it.id, it.t0)
  const save = event === undefined ? undefined : firstSpan(SAVE, event.at, it.t1)
  if (event === undefined || save === undefined) return []
  return [{
    "rename → fs.watch event": event.at - it.t0,
    "watch event → queue save starts (read, parse)": save.start - event.at,
    "queue save (outbox, 2 fsyncs)": save.end - save.start,
    "save done → task_complete at hub": it.t1 - save.end,
    ...ackCycle(it)
  }]
})

const instantProfile = (phase: Phase) => phase.iterations.flatMap((it) => {
  const inTask = Probe.spansIn(it.t0, it.t1)
  const wake = inTask.find((s) => s.name === "Waker.wake")
  const event = fileEventFor(it.id, it.t0)
  const finishSave = event === undefined ? undefined : firstSpan(SAVE, event.at, it.t1)
  if (wake === undefined || event === undefined || finishSave === undefined || it.acceptedAt === undefined) return []
  const saves = inTask.filter((s) => s.name === SAVE)
  return [{
    "send → task_accepted at hub": it.acceptedAt - it.t0,
    "send → wake command spawned": wake.start - it.t0,
    "wake command runs (spawn → exit seen)": wake.end - wake.start,
    "spawn → result watch event": event.at - wake.start,
    "result watch event → finish save starts": finishSave.start - event.at,
    "save done → task_complete at hub": it.t1 - finishSave.end,
    [`queue saves per task (count)`]: saves.length,
    [`queue saves per task (total ms)`]: saves.reduce((sum, s) => sum + (s.end - s.start), 0),
    ...ackCycle(it)
  }]
})

// ---- main ----------------------------------------------------------------------------------------

interface Limits { readonly durable: number; readonly rtt: number; readonly spawn: number; readonly bareMb: number }

const mb = (x: number) => `${x.toFixed(1)} MB`
const p50 = (samples: ReadonlyArray<number>) => summarize(samples).p50

/** The rows of issue 14: each figure as a ratio to its limit, and the goal. */
const issueRows = (limits: Limits, results: ReadonlyArray<HarnessResult>): Array<ReadonlyArray<string>> => {
  const figures: Array<{ figure: string; limit: string; limitValue: number | undefined; goal: number; value: (r: HarnessResult) => number; show: (x: number) => string }> = [
    { figure: "assign → task_accepted (durable first)", limit: "ws RTT + durable write", limitValue: limits.rtt + limits.durable, goal: 2, value: (r) => p50(r.accept), show: ms },
    { figure: "agent's result rename → task_complete", limit: "durable write + ½ RTT", limitValue: limits.durable + limits.rtt / 2, goal: 5, value: (r) => p50(r.detect), show: ms },
    { figure: "task with an instant agent, assign → task_complete", limit: "spawn + 2 durable writes + RTT", limitValue: limits.spawn + 2 * limits.durable + limits.rtt, goal: 4, value: (r) => p50(r.instant), show: ms },
    { figure: "idle RSS (after 10 s)", limit: "bare node + bench hook", limitValue: limits.bareMb, goal: 1.4, value: (r) => r.idle.rss, show: mb },
    { figure: "RSS after the run of tasks (after 10 s)", limit: "its own idle RSS", limitValue: undefined, goal: 1.3, value: (r) => r.afterTasks.rss, show: mb },
    { figure: "CPU per task (instant agent, that run only)", limit: "-", limitValue: undefined, goal: 4, value: (r) => (r.tasksCpuS * 1000) / r.tasks, show: ms }
  ]
  return [
    ...figures.map((f) => {
      const cells = results.flatMap((r) => {
        const value = f.value(r)
        const base = f.figure.startsWith("RSS after") ? r.idle.rss : f.limitValue
        const ratio = base === undefined ? value : value / base
        const ok = ratio <= f.goal
        return [`${f.show(value)}${base === undefined ? "" : ` = ${ratio.toFixed(2)}×`}`, ok ? "met" : "MISSED"]
      })
      const limitText = f.limitValue === undefined ? f.limit : `${f.limit} = ${f.show(f.limitValue)}`
      const goal = f.figure.startsWith("CPU") ? `≤ ${f.goal} ms` : `≤ ${f.goal}×`
      return [f.figure, limitText, goal, ...cells]
    })
  ]
}

const memoryRows = (r: HarnessResult, bareMb: number): Array<ReadonlyArray<string> | string> => {
  const row = (what: string, s: Sample): ReadonlyArray<string> => [
    what, mb(s.rss), mb(s.hwm), `+${mb(s.rss - r.idle.rss)}`, `+${mb(s.rss - bareMb)}`, `${s.heapUsed.toFixed(1)} / ${s.heapTotal.toFixed(1)}`, mb(s.external)
  ]
  return [
    row(`${r.subject}: idle, identified`, r.idle),
    row(`  after ${r.tasks.toLocaleString("en")} tasks, ${r.concurrency} at a time`, r.afterTasks),
    typeof r.afterFlood === "string"
      ? `  after ${r.floodFrames.toLocaleString("en")} bad frames from the hub: ${r.afterFlood}`
      : row(`  after ${r.floodFrames.toLocaleString("en")} bad frames from the hub`, r.afterFlood)
  ]
}
const MEMORY_HEADER = ["daemon memory (VmRSS after settling)", "RSS", "peak", "vs idle", "vs bare node", "heap used / total MB", "external"]

const main = async () => {
  const major = Number(process.versions.node.split(".")[0])
  if (major < 22) throw new Error(`Node ${process.versions.node} cannot run this; use \`npm run bench\` (the pinned Node 24)`)
  const subjects: Array<{ subject: Subject; options: HarnessOptions }> = [{ subject: ours, options: OURS }]
  if (peerDir !== undefined) subjects.push({ subject: peer(peerDir), options: PEER })
  if (profile) Probe.recordFileEvents()
  const tmp = NFS.mkdtempSync(NPath.join(NOS.tmpdir(), "sidecar-bench-"))
  const started = performance.now()
  const limitRows: Array<Row | string> = []
  const profileRows: Array<Row | string> = []
  const results: Array<HarnessResult> = []
  let limits: Limits | undefined
  let hub: BenchHub | undefined
  const bundle = bundleIsFresh()
  try {
    const limitsDir = NPath.join(tmp, "limits")
    NFS.mkdirSync(limitsDir)
    const durable = await step(`${N.writes} durable atomic writes`, () => atomicWrites(limitsDir, N.writes, true))
    const raw = await step(`${N.writes} durable writes, raw node:fs`, () => rawDurableWrites(limitsDir, N.writes))
    const nosync = await step(`${N.writes} atomic writes without fsync`, () => atomicWrites(limitsDir, N.writes, false))
    const ws = await step(`${N.wsRoundTrips} WebSocket round trips`, () => wsRoundTrips(N.wsRoundTrips))
    const sh = await step(`${N.spawns} spawns of sh -c true`, () => spawns(N.spawns))
    const watched = await step(`${N.watch} renames under the watch`, () => watchRenameEvents(NPath.join(tmp, "watch"), N.watch))
    const plainMb = await step("bare node: RSS", () => bareNodeRss(IDLE_MS, false))
    const bareMb = await step("bare node with the bench's memory hook and IPC channel: RSS", () => bareNodeRss(IDLE_MS, true))
    limits = { durable: p50(durable), rtt: p50(ws), spawn: p50(sh), bareMb }
    limitRows.push(limitRow("durable atomic write, writeAtomic (2 KB JSON)", durable))
    limitRows.push(limitRow("  same, raw node:fs sync calls", raw))
    limitRows.push(limitRow("  same, writeAtomic without the 2 fsyncs", nosync))
    limitRows.push(limitRow("WebSocket round trip, ws over 127.0.0.1", ws))
    limitRows.push(limitRow("spawn of sh -c true (to exit)", sh))
    limitRows.push(limitRow("rename → fs.watch event (ResultWatcher's watch)", watched))
    limitRows.push({ metric: "bare node (setInterval only): RSS (n=1)", p50: mb(plainMb), p99: "-", target: "-", verdict: "-" })
    limitRows.push({ metric: "  same, with the hook and IPC channel every measured daemon carries (n=1)", p50: mb(bareMb), p99: "-", target: "-", verdict: "limit" })

    hub = await BenchHub.start()
    for (const { subject, options } of subjects) {
      const dir = NPath.join(tmp, subject === ours ? "ours" : "peer")
      const h = hub
      results.push(await runHarness(subject, h, dir, options, (what) => process.stderr.write(`bench: ${what}\n`)))
    }

    if (profile) {
      const h = hub
      Probe.clear()
      const { accept, detect } = await step(`profile, in-process sidecar: ${PROFILE_N.accept} accepts, ${PROFILE_N.accept} detections`,
        () => acceptAndDetect(h, NPath.join(tmp, "self-start"), PROFILE_N.accept, true))
      profileRows.push(...segmentRows("assign → task_accepted", acceptProfile(accept)))
      profileRows.push(...segmentRows("result rename → task_complete", detectProfile(detect)))
      Probe.clear()
      const instant = await step(`profile, in-process sidecar: ${PROFILE_N.instant} tasks with an instant agent`,
        () => instantAgent(h, NPath.join(tmp, "instant"), PROFILE_N.instant, true))
      profileRows.push(...segmentRows("instant-agent task", instantProfile(instant)))
    }
  } finally {
    await hub?.close()
    NFS.rmSync(tmp, { recursive: true, force: true })
  }

  const cpus = NOS.cpus()
  console.log(`\nagent-sidecar bench, ${new Date().toISOString()}`)
  console.log(`machine: ${cpus[0]?.model ?? "unknown CPU"}, ${cpus.length} cores, ${(NOS.totalmem() / 2 ** 30).toFixed(1)} GB, ${NOS.type()} ${NOS.release()}; Node ${process.version}; load average at the end ${NOS.loadavg().map((l) => l.toFixed(2)).join(" ")}; temp dir on ${NOS.tmpdir()}`)
  console.log(`p50/p99 by nearest rank; warm-up iterations are not counted; whole run ${((performance.now() - started) / 1000).toFixed(1)} s`)
  console.log(`agent-sidecar: ${bundle ? "the bundle" : "the TypeScript sources (dist/ is older than src/: run `npm run build` to measure the bundle)"}, default logging (info, stdout and log_file)\n`)
  console.log(table(limitRows))
  const header = ["figure (p50)", "limit", "goal", ...results.flatMap((r) => [r.subject, ""])]
  console.log(`\n${grid(header, issueRows(limits!, results))}`)
  console.log(`\n${grid(MEMORY_HEADER, results.flatMap((r) => memoryRows(r, limits!.bareMb)))}`)
  for (const r of results) {
    const tasks = summarize(r.taskSamples)
    const n = (xs: ReadonlyArray<number>) => xs.length
    console.log(`  ${r.subject}: n = ${n(r.accept)} accepts, ${n(r.detect)} detections, ${n(r.instant)} instant-agent tasks; start → identify ${ms(r.startupMs)}; ` +
      `${r.tasks} tasks in ${(r.tasksMs / 1000).toFixed(1)} s, ${r.concurrency} in flight (assign → complete p50 ${ms(tasks.p50)}, p99 ${ms(tasks.p99)}), ` +
      `CPU ${r.tasksCpuS.toFixed(2)} s; the flood read in ${Number.isNaN(r.floodMs) ? "-" : (r.floodMs / 1000).toFixed(1)} s; ${(r.stdoutBytes / 1e6).toFixed(1)} MB of stdout; ` +
      `SIGTERM → exit ${ms(r.shutdown.ms)} (code ${r.shutdown.code ?? r.shutdown.signal})`)
  }
  if (profile) {
    console.log("\nwhere the sidecar's time goes (in-process spans and fs.watch event times; 'at hub' = hub-side receipt)\n")
    console.log(table(profileRows))
  }
  const ourRun = results[0]!
  if (ourRun.shutdown.code !== 0 || ourRun.shutdown.ms > 5000) {
    throw new Error(`the daemon did not exit 0 within 5 s of SIGTERM (code ${ourRun.shutdown.code}, signal ${ourRun.shutdown.signal}): ${ourRun.shutdown.stderr}`)
  }
}

// A watchdog: the bench must end by itself even if something hangs.
const watchdog = setTimeout(() => {
  console.error("bench: still running after 1200 s; giving up")
  process.exit(1)
}, 1_200_000)
watchdog.unref()

main().then(
  () => {
    // Everything is closed; if a stray handle kept the loop alive, say so instead of hanging.
    setTimeout(() => {
      console.error("bench: a handle is still open after the run; exiting anyway")
      process.exit(0)
    }, 2000).unref()
  },
  (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
    process.exit(1)
  }
)

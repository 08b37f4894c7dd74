/**
 * `npm run bench`: this machine's limits next to the sidecar's own figures, from one run.
 *
 *   limits   durable atomic write (writeAtomic), WebSocket loopback round trip, `sh -c true` spawn,
 *            chokidar's add event after a rename (same watch options as ResultWatcher)
 *   sidecar  assign → task_accepted, result rename → task_complete, whole task with an instant agent
 *            (in-process SidecarLive against a loopback hub), idle RSS of the CLI daemon
 *   memory   RSS of the CLI daemon idle, after 1,000 instant-agent tasks and after 100,000 bad frames, each after
 *            settling, next to a bare `node` (issue 12; see memory.ts)
 *
 * `npm run bench -- --profile` adds where the sidecar's time goes (Effect spans + chokidar event times).
 * Writes nothing into the repository; everything lives in a temp dir that is removed at the end.
 */
import * as NFS from "node:fs"
import * as NOS from "node:os"
import * as NPath from "node:path"
import { performance } from "node:perf_hooks"
import { BenchHub } from "./hub.ts"
import { atomicWrites, chokidarRenameEvents, rawDurableWrites, spawns, wsRoundTrips } from "./limits.ts"
import * as Probe from "./probe.ts"
import { bareNodeRss, bundleIsFresh, daemonMemory, MEMORY_HEADER, type MemoryResult, memoryRows } from "./memory.ts"
import { idleRss } from "./rss.ts"
import { acceptAndDetect, instantAgent, type Iteration, type Phase, WARMUP_TASKS } from "./sidecar.ts"
import { grid, ms, type Row, summarize, table } from "./stats.ts"

const N = { writes: 200, wsRoundTrips: 500, spawns: 100, chokidar: 100, accept: 100, detect: 100, instant: 50 }
const IDLE_MS = 3000
/** The memory run: V8's memory reducer acts about 8 s after a burst, so each reading waits 10 s. */
const MEMORY = { tasks: 1000, floodFrames: 100_000, settleMs: 10_000, concurrency: 4 }
const TARGETS = { accept: 2, detect: 25, instant: 40, rssMb: 80 }

const profile = process.argv.includes("--profile")

const limitRow = (metric: string, samples: ReadonlyArray<number>): Row => {
  const s = summarize(samples)
  return { metric: `${metric} (n=${s.n})`, p50: ms(s.p50), p99: ms(s.p99), target: "-", verdict: "limit" }
}

const targetRow = (metric: string, samples: ReadonlyArray<number>, target: number): Row => {
  const s = summarize(samples)
  return { metric: `${metric} (n=${s.n})`, p50: ms(s.p50), p99: ms(s.p99), target: `p50 <= ${target} ms`, verdict: s.p50 <= target ? "met" : "MISSED" }
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
    "rename → chokidar add event": event.at - it.t0,
    "add event → queue save starts (read, parse)": save.start - event.at,
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
    "spawn → result add event": event.at - wake.start,
    "result add event → finish save starts": finishSave.start - event.at,
    "save done → task_complete at hub": it.t1 - finishSave.end,
    [`queue saves per task (count)`]: saves.length,
    [`queue saves per task (total ms)`]: saves.reduce((sum, s) => sum + (s.end - s.start), 0),
    ...ackCycle(it)
  }]
})

// ---- main ----------------------------------------------------------------------------------------

const main = async () => {
  const major = Number(process.versions.node.split(".")[0])
  if (major < 22) throw new Error(`Node ${process.versions.node} cannot run this; use \`npm run bench\` (the pinned Node 24)`)
  if (profile) Probe.recordFileEvents()
  const tmp = NFS.mkdtempSync(NPath.join(NOS.tmpdir(), "sidecar-bench-"))
  const started = performance.now()
  const rows: Array<Row | string> = []
  const profileRows: Array<Row | string> = []
  let hub: BenchHub | undefined
  let rssFailure: string | undefined
  let memory: { result: MemoryResult; bareMb: number; bundle: boolean } | undefined
  try {
    // limits
    const limitsDir = NPath.join(tmp, "limits")
    NFS.mkdirSync(limitsDir)
    const durable = await step(`${N.writes} durable atomic writes`, () => atomicWrites(limitsDir, N.writes, true))
    const raw = await step(`${N.writes} durable writes, raw node:fs`, () => rawDurableWrites(limitsDir, N.writes))
    const nosync = await step(`${N.writes} atomic writes without fsync`, () => atomicWrites(limitsDir, N.writes, false))
    const ws = await step(`${N.wsRoundTrips} WebSocket round trips`, () => wsRoundTrips(N.wsRoundTrips))
    const sh = await step(`${N.spawns} spawns of sh -c true`, () => spawns(N.spawns))
    const chok = await step(`${N.chokidar} renames under chokidar`, () => chokidarRenameEvents(NPath.join(tmp, "chokidar"), N.chokidar))
    rows.push("limits of this machine")
    rows.push(limitRow("durable atomic write, writeAtomic (2 KB JSON)", durable))
    rows.push(limitRow("  same, raw node:fs sync calls", raw))
    rows.push(limitRow("  same, writeAtomic without the 2 fsyncs", nosync))
    rows.push(limitRow("WebSocket round trip, ws over 127.0.0.1", ws))
    rows.push(limitRow("spawn of sh -c true (to exit)", sh))
    rows.push(limitRow("rename → chokidar add event", chok))

    // the sidecar
    hub = await BenchHub.start()
    const h = hub
    Probe.clear()
    const { accept, detect } = await step(`sidecar: ${N.accept} accepts, ${N.detect} detections (+${WARMUP_TASKS} warm-up each)`,
      () => acceptAndDetect(h, NPath.join(tmp, "self-start"), N.accept, profile))
    if (profile) {
      profileRows.push(...segmentRows("assign → task_accepted", acceptProfile(accept)))
      profileRows.push(...segmentRows("result rename → task_complete", detectProfile(detect)))
    }
    Probe.clear()
    const instant = await step(`sidecar: ${N.instant} tasks with an instant agent (+${WARMUP_TASKS} warm-up)`,
      () => instantAgent(h, NPath.join(tmp, "instant"), N.instant, profile))
    if (profile) profileRows.push(...segmentRows("instant-agent task", instantProfile(instant)))
    Probe.clear()
    const rss = await step(`sidecar CLI (bundle): idle RSS after identified + ${IDLE_MS / 1000} s`, () => idleRss(h, NPath.join(tmp, "rss"), IDLE_MS))
    const bundle = bundleIsFresh()
    const result = await step(`sidecar CLI: memory idle, after ${MEMORY.tasks} tasks, after ${MEMORY.floodFrames} bad frames (${MEMORY.settleMs / 1000} s to settle each)`,
      () => daemonMemory(h, NPath.join(tmp, "memory"), MEMORY))
    memory = { result, bareMb: await step("bare node: RSS", () => bareNodeRss(IDLE_MS)), bundle }
    if (result.exitCode !== 0) rssFailure = `the daemon did not exit 0 on SIGTERM after the memory run (code ${result.exitCode}, signal ${result.signal}): ${result.stderr}`
    const rssSource = await step(`sidecar CLI (TypeScript sources): idle RSS after identified + ${IDLE_MS / 1000} s`, () => idleRss(h, NPath.join(tmp, "rss-src"), IDLE_MS, true))

    rows.push("agent-sidecar")
    rows.push(targetRow("assign → task_accepted", accept.samples, TARGETS.accept))
    rows.push(targetRow("agent's result rename → task_complete", detect.samples, TARGETS.detect))
    rows.push(targetRow("task with an instant agent (assign → task_complete)", instant.samples, TARGETS.instant))
    rows.push({
      metric: `idle RSS, CLI daemon, bundle (VmRSS; peak ${rss.hwmMb.toFixed(1)} MB)`,
      p50: `${rss.rssMb.toFixed(1)} MB`, p99: "-", target: `<= ${TARGETS.rssMb} MB`, verdict: rss.rssMb <= TARGETS.rssMb ? "met" : "MISSED"
    })
    rows.push({
      metric: "  same, running the TypeScript sources (n=1)", p50: `${rssSource.rssMb.toFixed(1)} MB`, p99: "-", target: "-", verdict: "-"
    })
    const cleanExit = rss.exitCode === 0 && rss.shutdownMs <= 5000
    rows.push({ metric: "CLI daemon: process start → identify at hub, bundle (n=1)", p50: ms(rss.startupMs), p99: "-", target: "-", verdict: "-" })
    rows.push({ metric: "  same, running the TypeScript sources (n=1)", p50: ms(rssSource.startupMs), p99: "-", target: "-", verdict: "-" })
    rows.push({
      metric: "CLI daemon: SIGTERM → exit (n=1)", p50: ms(rss.shutdownMs), p99: "-", target: "exit 0 within 5 s",
      verdict: cleanExit ? "met" : `FAILED (${rss.exitCode ?? rss.signal})`
    })
    if (!cleanExit) rssFailure = `the daemon did not exit 0 on SIGTERM (code ${rss.exitCode}, signal ${rss.signal}): ${rss.stderr}`
  } finally {
    await hub?.close()
    NFS.rmSync(tmp, { recursive: true, force: true })
  }

  const cpus = NOS.cpus()
  console.log(`\nagent-sidecar bench, ${new Date().toISOString()}`)
  console.log(`machine: ${cpus[0]?.model ?? "unknown CPU"}, ${cpus.length} cores, ${(NOS.totalmem() / 2 ** 30).toFixed(1)} GB, ${NOS.type()} ${NOS.release()}; Node ${process.version}; load average at the end ${NOS.loadavg().map((l) => l.toFixed(2)).join(" ")}; temp dir on ${NOS.tmpdir()}`)
  console.log(`p50/p99 by nearest rank; warm-up iterations are not counted; whole run ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
  console.log(table(rows))
  if (memory !== undefined) {
    const { result, bareMb, bundle } = memory
    const tasks = summarize(result.taskSamples)
    console.log(`\n${grid(MEMORY_HEADER, memoryRows(result, bareMb))}`)
    console.log(`  ${bundle ? "bundle" : "TypeScript sources (dist/ is older than src/: run \`npm run build\` to measure the bundle)"}, log_level info to stdout and log_file; ` +
      `${result.tasks} tasks in ${(result.tasksMs / 1000).toFixed(1)} s, ${MEMORY.concurrency} in flight (assign → complete p50 ${ms(tasks.p50)}, p99 ${ms(tasks.p99)}); ` +
      `the flood read in ${(result.floodMs / 1000).toFixed(1)} s; daemon CPU ${result.afterFlood.cpuS.toFixed(1)} s in all; ${(result.stdoutBytes / 1e6).toFixed(1)} MB of stdout logs`)
  }
  console.log("\nreference (the existing plain-Node sidecar here): accept 2.1 ms without the directory fsync, detection ~505 ms, instant-agent task ~515 ms, idle RSS ~65 MB")
  if (profile) {
    console.log("\nwhere the sidecar's time goes (in-process spans and chokidar event times; 'at hub' = hub-side receipt)\n")
    console.log(table(profileRows))
  }
  if (rssFailure !== undefined) throw new Error(rssFailure)
}

// A watchdog: the bench must end by itself even if something hangs.
const watchdog = setTimeout(() => {
  console.error("bench: still running after 300 s; giving up")
  process.exit(1)
}, 300_000)
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

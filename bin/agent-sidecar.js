#!/usr/bin/env node
// Runs the bundle (dist/agent-sidecar.mjs: about half the memory and a fifth of the start-up time of the
// TypeScript sources). An installed package has only the bundle and always runs it. In a development checkout
// (src/ beside bin/, not inside node_modules), the sources run instead whenever one is newer than the bundle,
// so an edited checkout never runs stale code (Node >= 22.18 strips types); AGENT_SIDECAR_FROM_SOURCE=1 forces
// them there.
// package.json's engines.node (>= 22.22): an older Node lacks what this file and the bundle use (enableCompileCache,
// V8 flags such as --efficiency-mode, type stripping) and would fail on the first of them with a message that names
// none of this; npm only warns about engines. So say it plainly, before anything else runs.
const [major, minor] = process.versions.node.split(".").map(Number)
if (major < 22 || (major === 22 && minor < 22)) {
  process.stderr.write(`agent-sidecar: needs Node.js 22.22 or later (package.json "engines"); this is Node.js ${process.version}\n`)
  process.exit(1)
}

// Builtins through process.getBuiltinModule: an ESM import of one builds its whole namespace (see rolldown.config.mjs).
const { existsSync, readdirSync, statSync } = process.getBuiltinModule("node:fs")
const { enableCompileCache } = process.getBuiltinModule("node:module")
const { tmpdir } = process.getBuiltinModule("node:os")
const { fileURLToPath } = process.getBuiltinModule("node:url")
const { setFlagsFromString } = process.getBuiltinModule("node:v8")

/** Sets V8 `flag` unless node's own command line already names `option` (in either form): that is the opt-out. */
const unlessGiven = (option, flag) => {
  if (!process.execArgv.some((given) => given.includes(option))) setFlagsFromString(flag)
}

// Issue 12: a daemon that idles between bursts. Without this flag V8 keeps the heap a burst grew (1,000 tasks,
// a flood of bad frames) for minutes: the live heap is back at ~14 MB, but no GC runs while the daemon idles and the
// memory reducer judges the allocation rate "high" until its watchdog, ~4 min later here: RSS stays at 155-230 MB.
// With --optimize-for-size V8 treats memory as the priority: the memory reducer collects and shrinks about 8 s
// after a burst (RSS back to ~100 MB, `npm run bench`). It costs about 2 ms of CPU per task (instant agent, p50
// 17 → 20 ms), which an agent's minutes-long task does not notice. It works set here, before the bundle loads;
// `node --no-optimize-for-size bin/agent-sidecar.js …` opts out.
unlessGiven("optimize-for-size", "--optimize-for-size")
// Issue 14: and the young generation stays at its first size (1 MB semi-spaces). Set here, after the heap is made,
// --optimize-for-size no longer sizes it: a burst grew it to 8-16 MB, which then stayed committed while idle
// (--max-semi-space-size is read only when the heap is made; the growth factor at each GC). RSS after 1,000 tasks
// 1.43 → 1.29× idle, CPU per task the same within noise (more, smaller scavenges). A --*semi-space* flag opts out.
unlessGiven("semi-space", "--semi-space-growth-factor=1")
// Issue 14: a scavenge of those 1 MB copies ~150 KB of survivors, and splitting that across V8's helper threads cost
// more than it saved: waking them and waiting for them on a busy machine (2 cores shared with the agent's processes).
// On the main thread alone: scavenge pauses 637 → 485 ms per 1,000 tasks and the helpers' CPU 0.98 → 0.76 ms a task;
// CPU per task −6 to −10 % (medians of six interleaved `bench/cpu-probe.ts` pairs). --parallel-scavenge opts out.
unlessGiven("parallel-scavenge", "--no-parallel-scavenge")
// Issue 14: V8's efficiency mode, "for situations with no latency requirements": a daemon whose every step waits on
// a disk, a socket or an agent. Node runs V8 as a foreground page (user-blocking), which tiers code up to TurboFan
// after 3,000 calls; here that waits for 15,000, so only the really hot functions pay TurboFan's compile (the helper
// threads spent ~0.7 ms a task, mostly compiling, through the first 1,000 tasks: about 100 TurboFan jobs among them).
// CPU per task −9 to −13 % (medians of five interleaved `bench/cpu-probe.ts` runs). --no-efficiency-mode opts out.
unlessGiven("efficiency-mode", "--efficiency-mode")

const root = new URL("../", import.meta.url)
const bundle = new URL("dist/agent-sidecar.mjs", root)
const sources = new URL("src/", root)
const installed = /[\\/]node_modules[\\/]/.test(fileURLToPath(root)) || !existsSync(sources)

const newestSource = (dir) => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const url = new URL(entry.name + (entry.isDirectory() ? "/" : ""), dir)
    newest = Math.max(newest, entry.isDirectory() ? newestSource(url) : statSync(url).mtimeMs)
  }
  return newest
}

const useBundle = installed || (process.env.AGENT_SIDECAR_FROM_SOURCE !== "1" && existsSync(bundle) &&
  statSync(bundle).mtimeMs >= newestSource(sources))

// Issue 14: Node's compile cache for the bundle (V8 code cache files, in os.tmpdir()/node-compile-cache unless
// NODE_COMPILE_CACHE names a folder; NODE_DISABLE_COMPILE_CACHE=1 turns it off; a folder it cannot write is
// skipped). A start then reads compiled code instead of parsing the 1.3 MB bundle: the parser's memory, freed but
// kept in the malloc heap for the process's life, is not spent (idle RSS -2 MB), and start-up is faster. The cache
// is written when a process exits, so the first start fills it. Only into a temp folder that exists: Node 24's
// enableCompileCache() spins forever making a folder whose parent cannot be made (TMPDIR=/proc/x), where it should fail.
const tmp = tmpdir()
if (useBundle && process.env.NODE_COMPILE_CACHE === undefined && statSync(tmp, { throwIfNoEntry: false })?.isDirectory() === true) {
  enableCompileCache()
}

const { runCli } = await import(useBundle ? bundle.href : new URL("src/bin.ts", root).href)
runCli()

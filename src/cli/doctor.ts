/**
 * `agent-sidecar doctor`: checks what a sidecar needs, runs nothing harmful, and prints each check as ok/FAIL
 * with the fix. Exit 0 when all pass, 1 otherwise (78 when the config itself does not load).
 */
import { Console, Deferred, Effect, Exit, FileSystem, Option, Path, Redacted, Result } from "effect"
import { Command } from "effect/cli"
import { Socket } from "effect/socket"
import * as NFS from "node:fs"
import type { Settings } from "../domain/Config.ts"
import { programOf } from "../domain/ShellWords.ts"
import { decodeFrame, encodeOutbound } from "../domain/Protocol.ts"
import { PlatformLayer } from "../layers/Platform.ts"
import { writeAtomic } from "../platform/atomicWrite.ts"
import { describeOsError, osErrorCode } from "../platform/osError.ts"
import { connectionEnded } from "../services/hub/reconnect.ts"
import { configure, PAYLOAD_SLACK_BYTES } from "../services/hub/socketOptions.ts"
import { isRunning, lockPathFor } from "../services/StateLock.ts"
import { nodeWatch } from "../services/watcher/DirWatch.ts"
import { CliError, configFlag, loadConfig } from "./shared.ts"

interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
  readonly fix?: string
}

const ok = (name: string, detail: string): Check => ({ name, ok: true, detail })
const fail = (name: string, detail: string, fix: string): Check => ({ name, ok: false, detail, fix })

/** identify → identified, on a connection of its own (never sends task messages). Its socket refuses frames far
 *  over max_message_bytes as their header arrives, as the daemon's does (hub/socketOptions.ts). */
const checkHub = (s: Settings) => Effect.gen(function*() {
  const makeSocket = configure(yield* Socket.WebSocketConstructor, { maxPayload: s.maxMessageBytes + PAYLOAD_SLACK_BYTES })
  const socket = yield* Socket.makeWebSocket(s.hubUrl, { openTimeout: "5 seconds" }).pipe(Effect.provideService(Socket.WebSocketConstructor, makeSocket))
  const reader = yield* socket.reader
  const { write } = yield* socket.writer
  yield* write(encodeOutbound({ type: "identify", agent_id: s.agentId, token: Redacted.value(s.token), name: s.name, status: "idle", capabilities: s.capabilities, client_type: "sidecar" }))
  while (true) {
    for (const raw of yield* reader.pull) {
      if (typeof raw !== "string") continue
      const m = decodeFrame(raw, s.maxMessageBytes)
      if (Result.isFailure(m)) continue
      if (m.success.type === "identified") return ok("hub", `${s.hubUrl} answered identify with identified`)
      if (m.success.type === "error") return fail("hub", `the hub refused identify: ${m.success.error ?? ""}`, "check token (or token_file / SIDECAR_TOKEN) and agent_id with the hub's operator")
    }
  }
}).pipe(
  Effect.scoped,
  Effect.timeoutOrElse({ duration: "8 seconds", orElse: () => Effect.succeed(fail("hub", "no answer to identify within 8 s", "is hub_url the hub's WebSocket endpoint (often /ws)?")) }),
  Effect.catch((e) => Effect.succeed(connectionEnded(e).frameTooLarge === true
    ? fail("hub", `${s.hubUrl} sent a frame over max_message_bytes (${s.maxMessageBytes} bytes); the socket refused it and closed`,
      "raise max_message_bytes if this hub's messages are really that large")
    : fail("hub", `cannot connect to ${s.hubUrl}: ${e.message}`, "check hub_url, that the hub is running, and the network path to it")))
)

const isExecutable = (file: string) => {
  try {
    NFS.accessSync(file, NFS.constants.X_OK)
    return NFS.statSync(file).isFile()
  } catch {
    return false
  }
}

const resolveOnPath = (name: string, path: Path.Path): Option.Option<string> => {
  if (name.includes("/")) return isExecutable(name) ? Option.some(name) : Option.none()
  for (const dir of (process.env["PATH"] ?? "").split(":").filter(Boolean)) {
    const candidate = path.join(dir, name)
    if (isExecutable(candidate)) return Option.some(candidate)
  }
  return Option.none()
}

const checkWake = (s: Settings, path: Path.Path): Check => {
  if (s.wakeCommand === undefined) return ok("wake command", "none configured: self-start mode (the agent starts by itself and writes <id>.started)")
  // For a string command, find its program as /bin/sh would (quotes, env VAR=…, exec); nothing is run.
  if (typeof s.wakeCommand === "string" && Option.isNone(resolveOnPath("sh", path))) return fail("wake command", "no sh on PATH to run a string command", "use an array wake_command, or install a POSIX shell")
  const found = typeof s.wakeCommand === "string" ? programOf(s.wakeCommand, process.env) : { _tag: "Found" as const, program: s.wakeCommand[0] }
  if (found._tag === "Unknown") return ok("wake command", `not checked: ${found.why}`)
  const program = found.program
  const resolved = resolveOnPath(path.isAbsolute(program) || program.includes("/") ? path.resolve(program) : program, path)
  return Option.isSome(resolved)
    ? ok("wake command", `${program} resolves to ${resolved.value}`)
    : fail("wake command", `${program} is not an executable file on PATH`, "use an absolute path in wake_command, or fix PATH/permissions (chmod +x)")
}

/** Below this much free space, results_dir is reported as (nearly) full: a result may be up to max_result_bytes. */
const MIN_FREE_BYTES = 1024 * 1024

/** What to do about an OS error on results_dir, by its code. */
const fixFor = (code: string | undefined, dir: string): string => {
  switch (code) {
    case "EACCES":
    case "EPERM":
      return `make it writable by the user the sidecar runs as: chown that user ${dir} && chmod 700 ${dir} (or point results_dir elsewhere)`
    case "ENOSPC":
    case "EDQUOT":
      return `free space on the file system holding ${dir} (df -h ${dir}), or point results_dir at a folder with room`
    case "EROFS":
      return `${dir} is on a read-only file system: point results_dir at a writable local folder`
    case "ENOTDIR":
    case "EEXIST":
      return "a part of the path is a file, not a folder: remove it or point results_dir elsewhere"
    default:
      return "create it (or its parent) and make it writable by this user; it must be a folder on a local file system"
  }
}

const freeBytes = (dir: string): number | undefined => {
  try {
    const st = NFS.statfsSync(dir)
    return st.bavail * st.bsize
  } catch {
    return undefined
  }
}

const checkResultsDir = (s: Settings) => Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  yield* fs.makeDirectory(s.resultsDir, { recursive: true, mode: 0o700 })
  const probe = `${s.resultsDir}/.doctor-probe-${process.pid}`
  // writeAtomic renames a temp file inside results_dir: the same operation agents and the sidecar use
  yield* writeAtomic(probe, "probe")
  const back = yield* fs.readFileString(probe)
  yield* fs.remove(probe)
  if (back !== "probe") return { writable: false, check: fail("results_dir", "read back something else", "check the file system") }
  const free = freeBytes(s.resultsDir)
  if (free !== undefined && free < MIN_FREE_BYTES) {
    const detail = `${s.resultsDir} is nearly full: ${Math.floor(free / 1024)} KiB free, and a result may be up to ${s.maxResultBytes} bytes`
    return { writable: true, check: fail("results_dir", detail, fixFor("ENOSPC", s.resultsDir)) }
  }
  return { writable: true, check: ok("results_dir", `${s.resultsDir} is writable with atomic rename${free === undefined ? "" : ` (${Math.floor(free / 1024 / 1024)} MiB free)`}`) }
}).pipe(Effect.catch((e) => Effect.succeed({
  writable: false,
  check: fail("results_dir", `${s.resultsDir} is not writable: ${describeOsError(e)}`, fixFor(osErrorCode(e), s.resultsDir))
})))

const checkFileEvents = (s: Settings) => Effect.gen(function*() {
  const name = `doctor-${process.pid}.started`
  const watchErrors: Array<unknown> = []
  const seen = yield* Deferred.make<void>()
  // the daemon's own watch (ResultWatcher), so this checks what the daemon will rely on
  const armed = yield* nodeWatch((n) => n === name)(s.resultsDir, {
    file: () => { Deferred.doneUnsafe(seen, Effect.void) },
    lost: () => {},
    error: (message) => { watchErrors.push(new Error(message)) }
  }).pipe(Effect.result)
  if (Result.isFailure(armed)) watchErrors.push(armed.failure)
  else {
    yield* Effect.acquireRelease(
      Effect.try(() => NFS.writeFileSync(`${s.resultsDir}/${name}`, "")),
      () => Effect.sync(() => NFS.rmSync(`${s.resultsDir}/${name}`, { force: true }))
    )
    if (Option.isSome(yield* Deferred.await(seen).pipe(Effect.timeoutOption("3 seconds")))) return ok("file events", "a file written in results_dir was seen")
  }
  const code = watchErrors.map(osErrorCode).find((c) => c !== undefined)
  // from inotify, ENOSPC and EMFILE mean its limits, not the disk
  if (code === "ENOSPC" || code === "EMFILE") {
    return fail("file events", `the watcher failed: the inotify watch limit is reached (${code})`, "raise fs.inotify.max_user_watches and max_user_instances (sysctl), or stop other watchers")
  }
  return fail("file events", `no event within 3 s for a file written in results_dir${watchErrors.length > 0 ? ` (watcher error: ${describeOsError(watchErrors[0])})` : ""}`, "use a local file system (not NFS/SMB), or raise fs.inotify.max_user_watches")
}).pipe(
  Effect.scoped,
  Effect.catch((e) => Effect.succeed(fail("file events", `cannot write a file in results_dir: ${describeOsError(e)}`, fixFor(osErrorCode(e), s.resultsDir)))),
  Effect.catchCause(() => Effect.succeed(fail("file events", "cannot watch results_dir", "fix results_dir first")))
)

const checkLock = (s: Settings): Check => {
  const lock = lockPathFor(s.queuePath)
  let text: string
  try {
    text = NFS.readFileSync(lock, "utf8")
  } catch {
    return ok("state lock", `${lock} is free`)
  }
  const pid = Number.parseInt(text.trim(), 10)
  return Number.isInteger(pid) && pid > 0 && isRunning(pid)
    ? fail("state lock", `held by running pid ${pid}`, "a sidecar is already running on this state: stop it, or give this one its own queue_path")
    : ok("state lock", `stale lock of dead pid ${pid}; the daemon will take it over`)
}

export const doctorCommand = Command.make("doctor", { config: configFlag }, ({ config }) => Effect.gen(function*() {
  const loaded = yield* loadConfig(config).pipe(Effect.exit)
  if (Exit.isFailure(loaded)) {
    yield* Console.log(`FAIL  config   ${config} does not load`)
    return yield* Effect.failCause(loaded.cause)
  }
  const s = loaded.value
  const path = yield* Path.Path
  const checks: Array<Check> = [ok("config", `${path.resolve(config)} is valid`)]
  checks.push(yield* checkHub(s))
  checks.push(checkWake(s, path))
  const dir = yield* checkResultsDir(s)
  checks.push(dir.check)
  checks.push(dir.writable ? yield* checkFileEvents(s) : fail("file events", "not checked: no file can be written in results_dir (see results_dir above)", "fix results_dir first"))
  checks.push(checkLock(s))
  for (const c of checks) {
    yield* Console.log(`${c.ok ? "ok  " : "FAIL"}  ${c.name.padEnd(13)} ${c.detail}${c.fix !== undefined ? `\n      fix: ${c.fix}` : ""}`)
  }
  const failed = checks.filter((c) => !c.ok).length
  if (failed > 0) return yield* new CliError({ message: `${failed} check${failed === 1 ? "" : "s"} failed`, exitCode: 1 })
  yield* Console.log("all checks passed")
}).pipe(Effect.provide(PlatformLayer))).pipe(
  Command.withDescription("Check config, hub (identify), wake command, results_dir, file events and the state lock; prints each with its fix")
)

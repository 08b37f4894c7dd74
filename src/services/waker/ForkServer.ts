/**
 * The Waker's fork server (issue 14; protocol and why in `launchScript.ts`): one `/bin/sh` started with the Waker
 * forks every wake command, so the daemon never forks itself per task. It is an optimisation only: while the
 * server is not running (not started yet, died, no `setsid`/`env` on this machine, Windows) `launch` fails with
 * `ForkServerUnavailable` and the Waker uses Node's spawn as before. A server that exits is started again after a
 * backoff, and a launch it had not answered fails the same way.
 */
import { Cause, Deferred, Effect, Fiber, FileSystem, Option, Queue, Ref, Schedule, Schema, type Scope, Stream } from "effect"
import { ChildProcess } from "effect/process"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { readTailOrEmpty, unlinkIfThere } from "../../platform/quickFs.ts"
import { type LaunchSpec, parseServerLine, requestSource, SERVER_SCRIPT, unsupported } from "./launchScript.ts"
import { makeSlotPool, withdraw, writeRequest } from "./requestSlots.ts"
import { makeWakeFolder } from "./wakeFolder.ts"

export class ForkServerUnavailable extends Schema.TaggedError<ForkServerUnavailable>()("ForkServerUnavailable", {
  reason: Schema.String
}) {}

/** The server took the request but did not say it started the command: it may be running, so it must not be run again. */
export class ForkServerLost extends Schema.TaggedError<ForkServerLost>()("ForkServerLost", {
  reason: Schema.String
}) {}

export interface Launched {
  readonly pid: number
  /** The command's status as the shell reports it: its exit code, or 128 + N when signal N ended it. */
  readonly exit: Effect.Effect<number, ForkServerUnavailable>
  /** The last `bytes` of what the command wrote to stderr so far. */
  readonly stderrTail: (bytes: number) => Effect.Effect<string>
  /** Leave the command running when the launch's scope closes (it may have started the agent in the background). */
  readonly release: Effect.Effect<void>
}

export interface KillPolicy {
  readonly signal: NodeJS.Signals
  readonly graceMs: number
}

export interface ForkServer {
  /** The private folder (0700) of request slots and stderr files. */
  readonly directory: string
  readonly launch: (spec: LaunchSpec, kill: KillPolicy) => Effect.Effect<Launched, ForkServerUnavailable | ForkServerLost, Scope.Scope>
}

interface Waiting {
  readonly started: Deferred.Deferred<number, ForkServerUnavailable>
  readonly exited: Deferred.Deferred<number, ForkServerUnavailable>
  /** From the `X` line: false when the command wrote nothing to stderr (its file is then not read). */
  stderr: boolean | undefined
}

interface Connection {
  readonly input: Queue.Queue<Uint8Array, Cause.Done>
}

/** How long a launch waits for the server's `P` line: a healthy server answers in milliseconds. */
const START_TIMEOUT_MS = 5000
const encoder = new TextEncoder()
const NUDGE = encoder.encode("\n")
const REAP_AFTER_MS = 50

/** The first of `names` found as an executable in the usual system folders or on PATH. */
const findTool = (name: string): string | undefined => {
  const folders = ["/usr/bin", "/bin", "/usr/sbin", "/sbin", ...(process.env.PATH ?? "").split(NPath.delimiter)]
  for (const folder of folders) {
    if (!NPath.isAbsolute(folder)) continue
    const candidate = NPath.join(folder, name)
    try {
      NFS.accessSync(candidate, NFS.constants.X_OK)
      return candidate
    } catch {
      // not here; try the next folder
    }
  }
  return undefined
}

/** Signals the command's process group (it leads one: `setsid`), or the process alone if the group is gone. */
const signalGroup = (pid: number, signal: NodeJS.Signals) => Effect.sync(() => {
  try {
    process.kill(-pid, signal)
  } catch {
    try {
      process.kill(pid, signal)
    } catch {
      // already gone
    }
  }
})

/**
 * Starts the fork server (in the current scope) when this machine can run it; `undefined` when it cannot, with the
 * reason logged once at debug level. Requires the platform's FileSystem and ChildProcessSpawner.
 */
export const makeForkServer = Effect.gen(function*() {
  if (process.env.AGENT_SIDECAR_FORK_SERVER === "0") {
    yield* Effect.logDebug("wake commands go through Node's spawn: AGENT_SIDECAR_FORK_SERVER=0")
    return undefined
  }
  const tools = { sh: "/bin/sh", setsid: findTool("setsid"), env: findTool("env") }
  if (process.platform === "win32" || !NFS.existsSync(tools.sh) || tools.setsid === undefined || tools.env === undefined) {
    yield* Effect.logDebug("wake commands go through Node's spawn: this machine lacks /bin/sh, setsid or env")
    return undefined
  }
  const fs = yield* FileSystem.FileSystem
  // Named after this process, so that the next wake server to start removes it if this sidecar dies without running
  // its finalizers (SIGKILL): see wakeFolder.ts.
  const { folder: dir, swept } = yield* makeWakeFolder((prefix) => fs.makeTempDirectoryScoped({ prefix }))
  if (swept.length > 0) yield* Effect.logDebug(`removed ${swept.length} wake folder(s) of sidecars that died: ${swept.join(", ")}`)
  // Launches waiting for their `P`/`X` lines, by id, and the request slots. Only touched on the one JS thread.
  const waiting = new Map<number, Waiting>()
  const slots = makeSlotPool(dir)
  const connection = yield* Ref.make(Option.none<Connection>())
  let nextId = 1
  // the reap nudges' fiber is running, and an exit came since its last nudge was scheduled (see onLine)
  let nudging = false
  let exitedWhileNudging = false

  const failAll = (reason: string) => Effect.forEach([...waiting.values()], (w) =>
    Effect.all([
      Deferred.fail(w.started, new ForkServerUnavailable({ reason })),
      Deferred.fail(w.exited, new ForkServerUnavailable({ reason }))
    ]), { discard: true })

  const onLine = (line: string, input: Queue.Queue<Uint8Array, Cause.Done>, scope: Scope.Scope) => Effect.gen(function*() {
    const parsed = parseServerLine(line)
    if (parsed._tag === "Other") return yield* Effect.logWarning(`wake server: ${line}`)
    // An ended command's subshell is a zombie until the server runs `jobs`: an empty line asks for just that, a
    // moment later, since the subshell exits just after writing its `X` line. One nudge reaps every subshell ended
    // by then, so exits share it (issue 14: a fiber, a timer and a line per task before); an exit that came while it
    // waited gets one more, a full moment later, so every `X` is followed by a nudge at least that late.
    if (parsed._tag === "Exited") {
      if (nudging) exitedWhileNudging = true
      else {
        nudging = true
        yield* Effect.gen(function*() {
          do {
            exitedWhileNudging = false
            yield* Effect.sleep(REAP_AFTER_MS)
            yield* Queue.offer(input, NUDGE)
          } while (exitedWhileNudging)
        }).pipe(
          // also when the server's life ends first (its scope interrupts this): the next life nudges afresh
          Effect.ensuring(Effect.sync(() => { nudging = false })),
          Effect.forkIn(scope))
      }
    }
    slots.passed(parsed.id)
    const w = waiting.get(parsed.id)
    if (w === undefined) return
    if (parsed._tag === "Started") yield* Deferred.succeed(w.started, parsed.pid)
    else {
      w.stderr = parsed.stderr
      yield* Deferred.succeed(w.exited, parsed.status)
    }
  })

  /** One life of the server: runs until it exits; whatever was waiting on it then fails over to Node's spawn. */
  const serveOnce = Effect.scoped(Effect.gen(function*() {
    const input = yield* Queue.unbounded<Uint8Array, Cause.Done>()
    const handle = yield* ChildProcess.make(tools.sh, ["-c", SERVER_SCRIPT, "agent-sidecar-wake-server", tools.setsid!, tools.env!, dir], {
      env: {}, extendEnv: false, stdin: Stream.fromQueue(input), stdout: "pipe", stderr: "pipe"
    })
    yield* handle.stderr.pipe(Stream.decodeText(), Stream.splitLines, Stream.runForEach((l) => Effect.logWarning(`wake server: ${l}`)),
      Effect.ignore, Effect.forkScoped)
    const scope = yield* Effect.scope
    const lines = yield* handle.stdout.pipe(Stream.decodeText(), Stream.splitLines, Stream.runForEach((line) => onLine(line, input, scope)),
      Effect.ignore, Effect.forkScoped)
    // Closing its stdin ends the server's loop by itself, before the spawner's kill would be needed.
    yield* Effect.addFinalizer(() => Queue.end(input))
    yield* Ref.set(connection, Option.some({ input }))
    const status = yield* handle.exitCode.pipe(Effect.ensuring(Ref.set(connection, Option.none())))
    yield* Fiber.await(lines)
    return status
  })).pipe(
    Effect.matchCauseEffect({
      onSuccess: (status) => failAll(`the wake server exited (status ${status})`).pipe(
        Effect.andThen(Effect.logWarning(`wake server exited (status ${status}); Node's spawn runs wake commands until it is back`))),
      onFailure: (cause) => failAll("the wake server could not start").pipe(
        Effect.andThen(Effect.logWarning(`wake server could not start; Node's spawn runs wake commands until it is back: ${Cause.pretty(cause)}`)))
    })
  )
  yield* serveOnce.pipe(
    Effect.repeat(Schedule.min([Schedule.exponential("1 second", 2), Schedule.spaced("1 minute")])),
    Effect.forkScoped
  )

  const launch = (spec: LaunchSpec, kill: KillPolicy) => Effect.gen(function*() {
    const why = unsupported(spec)
    if (why !== undefined) return yield* new ForkServerUnavailable({ reason: `the wake server cannot pass this ${why}` })
    const conn = yield* Ref.get(connection)
    if (Option.isNone(conn)) return yield* new ForkServerUnavailable({ reason: "the wake server is not running" })
    const w: Waiting = {
      started: yield* Deferred.make<number, ForkServerUnavailable>(),
      exited: yield* Deferred.make<number, ForkServerUnavailable>(),
      stderr: undefined
    }
    // The slot is held until the server answered (`P`), the request was withdrawn, or the scope closes first; only
    // then may another launch write it (and only once the server is past it: requestSlots.ts).
    const slot = slots.acquire()
    let holding = true
    const letGo = () => {
      if (holding) slots.release(slot)
      holding = false
    }
    let id = 0
    let errFile = ""
    let pid: number | undefined
    let released = false
    yield* Effect.addFinalizer(() => Effect.gen(function*() {
      if (pid !== undefined && !released && !(yield* Deferred.isDone(w.exited))) {
        yield* signalGroup(pid, kill.signal)
        const ended = yield* Deferred.await(w.exited).pipe(Effect.timeoutOption(kill.graceMs), Effect.orElseSucceed(() => Option.none()))
        if (Option.isNone(ended)) yield* signalGroup(pid, "SIGKILL")
      }
      waiting.delete(id)
      // Ended before the server answered (interrupted, or the line could not be sent): take the request back, so
      // that a server that has not taken it yet skips it.
      if (holding) unlinkIfThere(slot.requestFile)
      letGo()
      if (errFile !== "") unlinkIfThere(errFile)
    }))
    const unavailable = (reason: string) => new ForkServerUnavailable({ reason })
    // One synchronous step from taking the id to sending the line, so that ids reach the server in increasing
    // order, which the slots' reuse counts on.
    yield* Effect.try({
      try: () => {
        id = nextId++
        errFile = NPath.join(dir, `${id}.err`)
        writeRequest(slot, requestSource(id, errFile, spec))
        if (!Queue.offerUnsafe(conn.value.input, encoder.encode(`${slot.index} ${id}\n`))) throw new Error("the wake server is stopping")
        slot.sentId = id
        waiting.set(id, w)
      },
      catch: (e) => unavailable(`could not send the request: ${String(e)}`)
    })
    const startedPid = yield* Deferred.await(w.started).pipe(
      Effect.timeoutOrElse({ duration: START_TIMEOUT_MS, orElse: () => Effect.fail(unavailable("the wake server did not answer")) }),
      // Withdraw the request: one the server had not taken is safe to run elsewhere; a taken one may be running.
      Effect.catchTag("ForkServerUnavailable", (e): Effect.Effect<never, ForkServerUnavailable | ForkServerLost> => {
        const outcome = withdraw(slot, id)
        letGo()
        return outcome === "withdrawn"
          ? Effect.fail(e)
          : Effect.fail(new ForkServerLost({ reason: `${e.reason} after taking the request` }))
      }))
    letGo()
    pid = startedPid
    const started: Launched = {
      pid: startedPid,
      exit: Deferred.await(w.exited),
      stderrTail: (bytes) => Effect.sync(() => w.stderr === false ? "" : readTailOrEmpty(errFile, bytes)),
      release: Effect.sync(() => { released = true })
    }
    return started
  })

  return { directory: dir, launch } satisfies ForkServer
})

// The request and stderr files are the server's private scratch files of a few KB, never fsynced: synchronous calls
// (quickFs.ts) cost microseconds, where each async call is a round trip through libuv's thread pool (about 9 a wake).

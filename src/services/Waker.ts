/**
 * Runs the configured wake command once per call (SPEC §5): a string through the platform shell, an array
 * without one, the task passed as environment (never as shell source, see `domain/WakeEnv.ts`). Exit 0
 * within `wake_timeout_ms` is success. A command still running then, or stopped by interruption (cancel,
 * shutdown), has its whole process group sent SIGTERM, then SIGKILL after `kill_grace_ms`.
 *
 * Commands are forked by a small shell server (`waker/ForkServer.ts`), not by the daemon itself, which saves about
 * 4 ms of CPU per task; Node's spawn runs them where that server cannot.
 *
 * Retrying is not the Waker's job: TaskFlow applies the retry `Schedule`, so an embedding application can
 * swap in its own Waker (e.g. one that starts an in-process agent) and keep the retry policy.
 */
import { Context, Duration, Effect, Fiber, Layer, Option, Ref, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { redactText } from "../domain/Redact.ts"
import { agentBaseEnv, substituteArgument, type WakeRequest, wakeVariables } from "../domain/WakeEnv.ts"
import { SidecarConfig } from "./SidecarConfig.ts"
import { type ForkServer, makeForkServer } from "./waker/ForkServer.ts"
import { fullEnv, type LaunchSpec } from "./waker/launchScript.ts"

export const WakeStatus = Schema.Literals(["success", "failed", "timeout"])

export interface WakeOutcome {
  readonly status: typeof WakeStatus.Type
  readonly exitCode?: number
  /** The last part of the command's stderr, secrets scrubbed. */
  readonly stderrTail: string
  /** Why it failed, one line. */
  readonly error?: string
}

type Outcome = Omit<WakeOutcome, "stderrTail">

/** A command that could not run to a status of its own: why, in one line. */
const failed = (error: string): Outcome => ({ status: "failed", error })

const TAIL_BYTES = 2048
// Kept raw before redaction, so a secret straddling the tail's edge is still whole when it is scrubbed.
const RAW_TAIL_BYTES = 4 * TAIL_BYTES

export class Waker extends Context.Service<Waker, {
  /** false: there is nothing to run (no `wake_command`); the agent starts by itself (self-start mode). */
  readonly wakes: boolean
  wake(request: WakeRequest): Effect.Effect<WakeOutcome>
}>()("agent-sidecar/Waker") {
  static readonly layer = Layer.effect(Waker, Effect.gen(function*() {
    const config = yield* SidecarConfig
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    // The child's environment is built here, once, from the process's: this is the edge where it is read.
    const baseEnv = agentBaseEnv(process.env)
    const command = config.wakeCommand
    const server = command === undefined ? undefined : yield* makeForkServer

    /** What runs for `request`: a string command through `/bin/sh -c` (what Node's `shell: true` runs), an array as is. */
    const launchSpec = (request: WakeRequest): LaunchSpec | undefined => {
      if (command === undefined) return undefined
      // the base is the same object every time: the wake server checks and quotes it once
      const env = wakeVariables(request)
      return typeof command === "string"
        ? { command: "/bin/sh", args: ["-c", command], baseEnv, env, cwd: process.cwd() }
        : { command: command[0], args: command.slice(1).map((arg) => substituteArgument(arg, request)), baseEnv, env, cwd: process.cwd() }
    }

    /** The outcome of an ended (or timed-out) command from its exit status. */
    const fromStatus = (status: Option.Option<number>): Outcome => {
      if (Option.isNone(status)) return { status: "timeout", error: `still running after ${config.wakeTimeoutMs} ms; process group killed` }
      return status.value === 0 ? { status: "success", exitCode: 0 } : { status: "failed", exitCode: status.value, error: `exit code ${status.value}` }
    }

    /** Through the fork server (no fork of the daemon). Fails only when nothing was started: then Node's spawn runs it. */
    const viaServer = (forkServer: ForkServer, spec: LaunchSpec) => Effect.gen(function*() {
      const launched = yield* forkServer.launch(spec, { signal: "SIGTERM", graceMs: Math.max(1, config.killGraceMs) })
      return yield* Effect.gen(function*() {
        const status = yield* launched.exit.pipe(Effect.timeoutOption(config.wakeTimeoutMs), Effect.result)
        const tail = yield* launched.stderrTail(RAW_TAIL_BYTES)
        if (status._tag === "Failure") return { outcome: failed(status.failure.reason), tail }
        // Exit 0: the command may have started the agent in the background; leave its process group alone.
        if (Option.getOrUndefined(status.success) === 0) yield* launched.release
        return { outcome: fromStatus(status.success), tail }
      })
    })

    /** Node's spawn through Effect's ChildProcess: where the fork server cannot run, or is down. */
    const viaSpawn = (spec: LaunchSpec) => Effect.gen(function*() {
      const tail = yield* Ref.make("")
      const outcome = yield* Effect.gen(function*() {
        const handle = yield* spawner.spawn(ChildProcess.make(spec.command, spec.args, {
          env: fullEnv(spec), extendEnv: false, killSignal: "SIGTERM", forceKillAfter: Duration.millis(Math.max(1, config.killGraceMs)),
          stdin: "ignore", stdout: "ignore"
        }))
        // Read stderr so the child never blocks on a full pipe; keep only its tail.
        const reader = yield* handle.stderr.pipe(
          Stream.decodeText(),
          Stream.runForEach((chunk) => Ref.update(tail, (t) => (t + chunk).slice(-RAW_TAIL_BYTES))),
          Effect.ignore,
          Effect.forkScoped
        )
        const exit = yield* handle.exitCode.pipe(Effect.timeoutOption(config.wakeTimeoutMs), Effect.result)
        // A background agent may hold stderr open forever: wait briefly for the tail, never for EOF.
        yield* Fiber.await(reader).pipe(Effect.timeoutOption(50))
        if (exit._tag === "Failure") return failed(exit.failure.message)
        if (Option.getOrUndefined(exit.success) === 0) yield* handle.unref
        return fromStatus(Option.map(exit.success, Number))
      }).pipe(Effect.catch((e) => Effect.succeed(failed(`could not start: ${e.message}`))))
      return { outcome, tail: yield* Ref.get(tail) }
    })

    // A span without Effect.fn's two stack captures per call (issue 14).
    const wake = Effect.fnUntraced(function*(request: WakeRequest) {
      const spec = launchSpec(request)
      if (spec === undefined) return { status: "success", stderrTail: "" } satisfies WakeOutcome
      const { outcome, tail } = yield* Effect.scoped(server === undefined
        ? viaSpawn(spec)
        : viaServer(server, spec).pipe(Effect.catchTag("ForkServerUnavailable", (e) =>
          Effect.logDebug(`wake through Node's spawn: ${e.reason}`).pipe(Effect.andThen(viaSpawn(spec)))),
        Effect.catchTag("ForkServerLost", (e) => Effect.succeed({ outcome: failed(e.reason), tail: "" }))))
      return { ...outcome, stderrTail: redactText(tail, config.secrets).slice(-TAIL_BYTES) } satisfies WakeOutcome
    }, Effect.withSpan("Waker.wake", undefined, { captureStackTrace: false }))
    return Waker.of({ wakes: command !== undefined, wake })
  }))

  /** A Waker whose every wake succeeds at once (the agent is started some other way). */
  static get layerMemory() { return Waker.layerFrom(() => Effect.succeed({ status: "success", exitCode: 0, stderrTail: "" })) }

  /** A Waker whose every call is answered by `respond` (tests, embedding). */
  static readonly layerFrom = (respond: (request: WakeRequest) => Effect.Effect<WakeOutcome>) =>
    Layer.succeed(Waker, Waker.of({ wakes: true, wake: respond }))
}

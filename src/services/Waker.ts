/**
 * Runs the configured wake command once per call (SPEC §5): a string through the platform shell, an array
 * without one, the task passed as environment (never as shell source, see `domain/WakeEnv.ts`). Exit 0
 * within `wake_timeout_ms` is success. A command still running then, or stopped by interruption (cancel,
 * shutdown), has its whole process group sent SIGTERM, then SIGKILL after `kill_grace_ms`.
 *
 * Retrying is not the Waker's job: TaskFlow applies the retry `Schedule`, so an embedding application can
 * swap in its own Waker (e.g. one that starts an in-process agent) and keep the retry policy.
 */
import { Context, Duration, Effect, Fiber, Layer, Option, Ref, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { redactText } from "../domain/Redact.ts"
import { agentBaseEnv, substituteArgument, type WakeRequest, wakeVariables } from "../domain/WakeEnv.ts"
import { SidecarConfig } from "./SidecarConfig.ts"

export const WakeStatus = Schema.Literals(["success", "failed", "timeout"])

export interface WakeOutcome {
  readonly status: typeof WakeStatus.Type
  readonly exitCode?: number
  /** The last part of the command's stderr, secrets scrubbed. */
  readonly stderrTail: string
  /** Why it failed, one line. */
  readonly error?: string
}

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

    const spawnCommand = (request: WakeRequest) => {
      const options = {
        env: { ...baseEnv, ...wakeVariables(request) },
        extendEnv: false,
        killSignal: "SIGTERM" as const,
        forceKillAfter: Duration.millis(Math.max(1, config.killGraceMs)),
        stdin: "ignore" as const
      }
      if (command === undefined) return Option.none()
      return Option.some(typeof command === "string"
        ? ChildProcess.make(command, { ...options, shell: true })
        : ChildProcess.make(command[0], command.slice(1).map((arg) => substituteArgument(arg, request)), options))
    }

    const wake = Effect.fn("Waker.wake")(function*(request: WakeRequest) {
      const cmd = spawnCommand(request)
      if (Option.isNone(cmd)) return { status: "success", stderrTail: "" } satisfies WakeOutcome
      const tail = yield* Ref.make("")
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const handle = yield* spawner.spawn(cmd.value)
        // Read both pipes so the child never blocks on a full pipe; keep only stderr's tail.
        yield* handle.stdout.pipe(Stream.runDrain, Effect.ignore, Effect.forkScoped)
        const reader = yield* handle.stderr.pipe(
          Stream.decodeText(),
          Stream.runForEach((chunk) => Ref.update(tail, (t) => (t + chunk).slice(-RAW_TAIL_BYTES))),
          Effect.ignore,
          Effect.forkScoped
        )
        const exit = yield* handle.exitCode.pipe(Effect.timeoutOption(config.wakeTimeoutMs), Effect.result)
        // A background agent may hold stderr open forever: wait briefly for the tail, never for EOF.
        yield* Fiber.await(reader).pipe(Effect.timeoutOption(50))
        if (exit._tag === "Failure") return { status: "failed", error: exit.failure.message } as const
        if (Option.isNone(exit.success)) return { status: "timeout", error: `still running after ${config.wakeTimeoutMs} ms; process group killed` } as const
        const code = Number(exit.success.value)
        // Exit 0: the command may have started the agent in the background; leave its process group alone.
        if (code === 0) yield* handle.unref
        return code === 0 ? { status: "success", exitCode: 0 } as const : { status: "failed", exitCode: code, error: `exit code ${code}` } as const
      })).pipe(Effect.catch((e) => Effect.succeed({ status: "failed", error: `could not start: ${e.message}` } as const)))
      return { ...outcome, stderrTail: redactText(yield* Ref.get(tail), config.secrets).slice(-TAIL_BYTES) } satisfies WakeOutcome
    })
    return Waker.of({ wakes: command !== undefined, wake })
  }))

  /** A Waker whose every wake succeeds at once (the agent is started some other way). */
  static get layerMemory() { return Waker.layerFrom(() => Effect.succeed({ status: "success", exitCode: 0, stderrTail: "" })) }

  /** A Waker whose every call is answered by `respond` (tests, embedding). */
  static readonly layerFrom = (respond: (request: WakeRequest) => Effect.Effect<WakeOutcome>) =>
    Layer.succeed(Waker, Waker.of({ wakes: true, wake: respond }))
}

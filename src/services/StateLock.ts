/**
 * One sidecar per state (SPEC §6.7): an exclusive lock file beside `queue_path` (`queue.json.lock`) holding
 * the owner's pid, created with O_EXCL and removed on shutdown. A lock whose pid is no longer running (a
 * crash, kill -9) is stale and taken over. Limit: a pid reused by an unrelated process after a crash makes a
 * stale lock look held; the message names the pid so a person can check and remove the file.
 */
import { Context, Effect, FileSystem, Layer, Runtime, Schema } from "effect"
import { FILE_MODE } from "../platform/atomicWrite.ts"
import { SidecarConfig } from "./SidecarConfig.ts"

export class StateLocked extends Schema.TaggedError<StateLocked>()("StateLocked", {
  lockPath: Schema.String,
  pid: Schema.Number
}) {
  override readonly [Runtime.errorExitCode] = 75
  override get message() {
    return `another sidecar (pid ${this.pid}) is running on this state: ${this.lockPath} (stop it, or remove the file if pid ${this.pid} is not a sidecar)`
  }
}

export class StateLockError extends Schema.TaggedError<StateLockError>()("StateLockError", {
  lockPath: Schema.String,
  cause: Schema.Defect()
}) {
  override get message() {
    return `cannot take the state lock ${this.lockPath}: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

export const lockPathFor = (queuePath: string) => `${queuePath}.lock`

/** Whether a process with this pid exists (EPERM: it exists but belongs to someone else). */
export const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

export class StateLock extends Context.Service<StateLock, {
  readonly lockPath: string
}>()("agent-sidecar/StateLock") {
  static readonly layer = Layer.effect(StateLock, Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { queuePath } = yield* SidecarConfig
    const lockPath = lockPathFor(queuePath)
    const fail = (cause: unknown) => new StateLockError({ lockPath, cause })
    const create = fs.writeFileString(lockPath, `${process.pid}\n`, { flag: "wx", mode: FILE_MODE })

    const acquire = Effect.gen(function*() {
      yield* fs.makeDirectory(lockPath.slice(0, lockPath.lastIndexOf("/")) || "/", { recursive: true, mode: 0o700 }).pipe(Effect.mapError(fail))
      for (let tries = 0; tries < 3; tries++) {
        const created = yield* create.pipe(
          Effect.as(true),
          Effect.catchReason("PlatformError", "AlreadyExists", () => Effect.succeed(false)),
          Effect.mapError(fail)
        )
        if (created) return
        const holder = Number.parseInt((yield* fs.readFileString(lockPath).pipe(Effect.orElseSucceed(() => ""))).trim(), 10)
        if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
          return yield* new StateLocked({ lockPath, pid: holder })
        }
        yield* Effect.logWarning("taking over a stale state lock", { lockPath, stale_pid: Number.isNaN(holder) ? "unreadable" : holder })
        yield* fs.remove(lockPath).pipe(Effect.catchReason("PlatformError", "NotFound", () => Effect.void), Effect.mapError(fail))
      }
      return yield* fail(new Error("the lock kept changing hands"))
    })

    yield* Effect.acquireRelease(acquire, () => fs.remove(lockPath).pipe(Effect.ignore))
    return StateLock.of({ lockPath })
  }))
}

/** Temp folders that tests remove when they finish, and the wake folders of the daemons they killed. */
import { Effect } from "effect"
import type { ChildProcess } from "node:child_process"
import * as NFS from "node:fs"
import * as NOS from "node:os"
import * as NPath from "node:path"
import { sweepDeadFolders } from "../../src/services/waker/wakeFolder.ts"

/**
 * A new folder `<tmpdir>/<prefix>XXXXXX`, removed with all it holds when the scope closes. Synchronous calls: it needs
 * no platform layer and works the same under TestClock.
 */
export const scopedTempDir = (prefix: string) => Effect.acquireRelease(
  Effect.sync(() => NFS.mkdtempSync(NPath.join(NOS.tmpdir(), prefix))),
  (dir) => Effect.sync(() => NFS.rmSync(dir, { recursive: true, force: true }))
)

/**
 * Ends `child` with SIGKILL if it still runs, waits until it is reaped (so its pid is free), then removes the wake
 * folders that sidecars killed that way left in the temp dir: what the next wake server's start would do, done now
 * so that the last daemons of a test run leave nothing behind either.
 */
export const killAndSweep = (child: ChildProcess) => Effect.gen(function*() {
  const ended = () => child.exitCode !== null || child.signalCode !== null
  if (!ended()) {
    child.kill("SIGKILL")
    yield* Effect.callback<void>((resume) => {
      if (ended()) resume(Effect.void)
      else child.once("exit", () => resume(Effect.void))
    }).pipe(Effect.timeoutOption(5_000))
  }
  yield* Effect.sync(() => sweepDeadFolders(NOS.tmpdir()))
})

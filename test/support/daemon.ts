/** Runs the real CLI as a child process (the Node running the tests is the pinned Node 24). */
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { killAndSweep } from "./tempDir.ts"

export const BIN = NPath.resolve(import.meta.dirname, "../../bin/agent-sidecar.js")

export interface Daemon {
  readonly process: ChildProcess
  readonly pid: number
  output(): string
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Effect.Effect<number | string>
  /** Waits until the output contains `text`. */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Effect.Effect<void, Error>
}

export const startDaemon = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Effect.Effect<Daemon, never, import("effect").Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      child.stdout.on("data", (d) => { out += String(d) })
      child.stderr.on("data", (d) => { out += String(d) })
      const exitPromise = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")))
      const daemon: Daemon = {
        process: child,
        pid: child.pid!,
        output: () => out,
        exited: Effect.promise(() => exitPromise),
        waitForOutput: (text, timeoutMs = 10_000) => Effect.gen(function*() {
          while (!(typeof text === "string" ? out.includes(text) : text.test(out))) yield* Effect.sleep(10)
        }).pipe(Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(new Error(`no ${String(text)} in output:\n${out}`)) }))
      }
      return daemon
    }),
    (d) => killAndSweep(d.process)
  )

/** Writes a config file (snake_case keys, as users write them) with mode 0600. */
export const writeConfig = (dir: string, config: Record<string, unknown>, name = "config.json"): string => {
  const path = NPath.join(dir, name)
  NFS.writeFileSync(path, JSON.stringify({ agent_id: "agent-1", token: "secret-token-123", log_file: "", ...config }, null, 2), { mode: 0o600 })
  return path
}

/**
 * Helpers for the hostile-input tests (test/security): a FakeHub that can also send binary frames, a live
 * sidecar with the real file logger and a capturing console, and file-tree tools (list without following
 * symlinks, grep every byte written).
 */
import { Console, Effect, Layer, Scope } from "effect"
import { TestConsole } from "effect/testing"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import type { Settings } from "../../src/domain/Config.ts"
import { LoggingLayer } from "../../src/layers/Logging.ts"
import { SidecarLive } from "../../src/program.ts"
import { type FakeHub, makeFakeHub } from "./FakeHub.ts"

// ---- the FakeHub (it can send binary frames and invalid UTF-8 text too) ------------------------------------

export type HostileHub = FakeHub
export const makeHostileHub = makeFakeHub

// ---- a live sidecar with real logging ----------------------------------------------------------------

export interface LoggedSidecar {
  /** Every line the stdout logger printed (JSON or human lines), already scrubbed as the daemon would print it. */
  readonly consoleLines: Effect.Effect<ReadonlyArray<string>>
}

/**
 * Starts a whole live sidecar with `LoggingLayer(settings)` (stdout + JSON lines in `log_file`), its console
 * captured. It stops (and the log file is flushed) when the surrounding scope closes.
 */
export const startLoggedSidecar = (settings: Settings): Effect.Effect<LoggedSidecar, unknown, Scope.Scope> => Effect.gen(function*() {
  const console = yield* TestConsole.make
  const consoleLayer = Layer.succeed(Console.Console, console)
  yield* Layer.build(SidecarLive(settings).pipe(Layer.provide(LoggingLayer(settings)), Layer.provide(consoleLayer)))
  return { consoleLines: console.logLines.pipe(Effect.map((lines) => lines.map(String))) }
})

// ---- file trees ---------------------------------------------------------------------------------------

export type EntryType = "file" | "dir" | "symlink" | "other"

/** Every path under `root` (relative, sorted) with its type; symlinks are listed, never followed. */
export const listTree = (root: string): Array<string> => {
  const out: Array<string> = []
  const walk = (dir: string) => {
    for (const name of NFS.readdirSync(dir)) {
      const full = NPath.join(dir, name)
      const st = NFS.lstatSync(full)
      const type: EntryType = st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other"
      out.push(`${NPath.relative(root, full)} (${type})`)
      if (type === "dir") walk(full)
    }
  }
  walk(root)
  return out.sort()
}

/** Regular files under `root` (symlinks not followed), with their bytes. */
export const readTree = (root: string): Array<{ readonly path: string; readonly bytes: Buffer }> => {
  const out: Array<{ path: string; bytes: Buffer }> = []
  const walk = (dir: string) => {
    for (const name of NFS.readdirSync(dir)) {
      const full = NPath.join(dir, name)
      const st = NFS.lstatSync(full)
      if (st.isDirectory()) walk(full)
      else if (st.isFile()) out.push({ path: full, bytes: NFS.readFileSync(full) })
    }
  }
  walk(root)
  return out
}

/** Files under `root` whose bytes contain `needle` (UTF-8), as "path: needle". */
export const grepTree = (root: string, needles: ReadonlyArray<string>): Array<string> =>
  readTree(root).flatMap(({ path, bytes }) => needles.filter((n) => bytes.includes(Buffer.from(n, "utf8"))).map((n) => `${path}: ${n}`))

/** Polls `check` every 10 ms until it holds, failing with `what` after `timeoutMs`. */
export const waitUntil = (what: string, check: () => boolean, timeoutMs = 5_000): Effect.Effect<void, Error> =>
  Effect.gen(function*() {
    while (!check()) yield* Effect.sleep(10)
  }).pipe(Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(new Error(`timed out waiting until ${what}`)) }))

/** The JSON lines of a log file written by `LoggingLayer`. */
export const readJsonLog = (file: string): Array<Record<string, unknown>> =>
  NFS.existsSync(file)
    ? NFS.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Record<string, unknown>)
    : []

export const mode = (path: string): number => NFS.lstatSync(path).mode & 0o777

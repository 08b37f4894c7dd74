/**
 * The Waker's fork server (issue 14) with real processes and real time: exact bytes through the shell protocol,
 * exit statuses, stderr tails, process-group kills on scope close, release, no leftover files or zombies, the
 * server's death and restart, and that wakes really go through it (the command's parent is the server's shell,
 * not the daemon). The protocol alone, without processes: test/services/launchScript.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { defaultSettings } from "../../src/domain/Config.ts"
import { wakeServerPids } from "../../bench/memory.ts"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { SidecarConfig } from "../../src/services/SidecarConfig.ts"
import { Waker } from "../../src/services/Waker.ts"
import { type ForkServer, makeForkServer } from "../../src/services/waker/ForkServer.ts"
import type { LaunchSpec } from "../../src/services/waker/launchScript.ts"
import { scopedTempDir } from "../support/tempDir.ts"

const KILL = { signal: "SIGTERM" as const, graceMs: 500 }
const PATH = { PATH: "/usr/bin:/bin" }

/** Runs `f` with a started fork server. */
const withServer = <A, E>(f: (server: ForkServer) => Effect.Effect<A, E, Scope.Scope>) => Effect.scoped(Effect.gen(function*() {
  const server = yield* makeForkServer
  assert.isDefined(server, "this machine has /bin/sh, setsid and env")
  // the server answers once its shell runs; the first launch waits for that
  yield* Effect.sleep(100)
  return yield* f(server!)
})).pipe(Effect.provide(PlatformLayer))

const sh = (script: string, env: Record<string, string> = {}, cwd = process.cwd()): LaunchSpec =>
  ({ command: "/bin/sh", args: ["-c", script], env: { ...PATH, ...env }, cwd })

/** Running, not a zombie: an orphan's exit is reaped by whatever init this machine has, maybe late. */
const alive = (pid: number) => {
  try {
    const stat = NFS.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

const HOSTILE = [
  "a'b\"c$(touch X)`touch X`\n;rm -rf X \\ \r end",
  "'", "''", "'\\''", "\n", "$HOME ${PATH} $((1+1)) $0 $@ *", "-n", "--", "x=y", "ünïcödé ✓ 日本語", "", " lead and trail ",
  "x".repeat(70_000)
]

describe("ForkServer", () => {
  it.live("passes hostile values as exact bytes, in env and in argv, and never runs them", () => {
    return withServer((server) => Effect.gen(function*() {
      const dir = yield* scopedTempDir("fork-server-")
      for (const [i, value] of HOSTILE.entries()) {
        const out = NPath.join(dir, `out-${i}`)
        const launched = yield* server.launch({
          command: "/bin/sh",
          args: ["-c", `printf '%s' "$VALUE" > "$1.env"; printf '%s' "$2" > "$1.arg"; printf '%s' "$#" > "$1.count"`, "sh", out, value],
          env: { ...PATH, VALUE: value }, cwd: dir
        }, KILL)
        assert.strictEqual(yield* launched.exit, 0)
        assert.strictEqual(NFS.readFileSync(`${out}.env`, "utf8"), value)
        assert.strictEqual(NFS.readFileSync(`${out}.arg`, "utf8"), value)
        assert.strictEqual(NFS.readFileSync(`${out}.count`, "utf8"), "2")
      }
      assert.isFalse(NFS.existsSync(NPath.join(dir, "X")))
      assert.isFalse(NFS.existsSync(NPath.join(process.cwd(), "X")))
    }))
  })

  it.live("gives exactly the environment asked for, the cwd, and stdin from /dev/null", () => {
    return withServer((server) => Effect.gen(function*() {
      const dir = yield* scopedTempDir("fork-server-")
      const launched = yield* server.launch(sh(`env > env.txt; pwd > pwd.txt; cat > stdin.txt`, { ONLY: "1" }, dir), KILL)
      assert.strictEqual(yield* launched.exit, 0)
      const names = NFS.readFileSync(NPath.join(dir, "env.txt"), "utf8").split("\n").filter((l) => l !== "").map((l) => l.split("=")[0])
      // dash adds PWD, and may add OLDPWD after `cd`; nothing of the sidecar's environment comes through
      assert.includeMembers(names, ["PATH", "ONLY"])
      for (const name of names) assert.include(["PATH", "ONLY", "PWD", "OLDPWD"], name)
      // shared variables (the Waker's base) and the launch's own: the launch's win
      const layered = yield* server.launch({ ...sh(`echo "$SHARED $OWN" > layered.txt`, {}, dir), baseEnv: { SHARED: "base", OWN: "base" }, env: { ...PATH, OWN: "own" } }, KILL)
      assert.strictEqual(yield* layered.exit, 0)
      assert.strictEqual(NFS.readFileSync(NPath.join(dir, "layered.txt"), "utf8"), "base own\n")
      assert.strictEqual(NFS.readFileSync(NPath.join(dir, "pwd.txt"), "utf8").trim(), NFS.realpathSync(dir))
      assert.strictEqual(NFS.readFileSync(NPath.join(dir, "stdin.txt"), "utf8"), "")
    }))
  })

  it.live("reports exit codes, 128 + N for signal N, 127 for a missing command, and the stderr tail", () => {
    return withServer((server) => Effect.gen(function*() {
      const three = yield* server.launch(sh(`echo "first" >&2; printf '%0500d' 0 >&2; echo "the end" >&2; exit 3`), KILL)
      assert.strictEqual(yield* three.exit, 3)
      const tail = yield* three.stderrTail(10)
      assert.strictEqual(tail, "00the end\n")
      const killed = yield* server.launch(sh(`kill -TERM $$`), KILL)
      assert.strictEqual(yield* killed.exit, 143)
      const missing = yield* server.launch({ command: "no-such-command-here", args: [], env: PATH, cwd: process.cwd() }, KILL)
      assert.strictEqual(yield* missing.exit, 127)
      assert.include(yield* missing.stderrTail(200), "no-such-command-here")
      // a command that wrote nothing to stderr (the server says so on its X line): an empty tail
      const quiet = yield* server.launch(sh(`echo "to stdout only"`), KILL)
      assert.strictEqual(yield* quiet.exit, 0)
      assert.strictEqual(yield* quiet.stderrTail(200), "")
    }))
  })

  it.live("kills the whole process group when the scope closes early, and leaves a released one running", () => {
    return withServer((server) => Effect.gen(function*() {
      const dir = yield* scopedTempDir("fork-server-")
      const scope = yield* Scope.make()
      const launched = yield* server.launch(sh(`sleep 30 & echo $! > child.pid; wait`, {}, dir), KILL).pipe(Scope.provide(scope))
      yield* Effect.sleep(200)
      const child = Number(NFS.readFileSync(NPath.join(dir, "child.pid"), "utf8"))
      assert.isTrue(alive(launched.pid) && alive(child))
      yield* Scope.close(scope, Exit.void)
      yield* Effect.sleep(100)
      assert.isFalse(alive(child), "the background child of the group is gone too")

      const scope2 = yield* Scope.make()
      const background = yield* server.launch(sh(`(sleep 30 & echo $! > bg.pid)`, {}, dir), KILL).pipe(Scope.provide(scope2))
      assert.strictEqual(yield* background.exit, 0)
      yield* background.release
      yield* Scope.close(scope2, Exit.void)
      const bg = Number(NFS.readFileSync(NPath.join(dir, "bg.pid"), "utf8"))
      assert.isTrue(alive(bg), "an agent started in the background outlives a successful wake")
      process.kill(-background.pid, "SIGKILL")
    }))
  })

  it.live("keeps only its request slots between launches, and leaves nothing behind when it stops", () => {
    return Effect.gen(function*() {
      const directory = yield* withServer((server) => Effect.gen(function*() {
        const launched = yield* Effect.scoped(Effect.gen(function*() {
          const l = yield* server.launch(sh(`echo oops >&2`), KILL)
          yield* l.exit
          return l
        }))
        assert.isAbove(launched.pid, 1)
        assert.strictEqual(NFS.statSync(server.directory).mode & 0o777, 0o700)
        // the stderr file went with the launch; the slot stays for the next one (waker/requestSlots.ts)
        assert.sameMembers(NFS.readdirSync(server.directory), ["slot-0.req", "slot-0.taken"])
        assert.strictEqual(NFS.statSync(NPath.join(server.directory, "slot-0.req")).mode & 0o777, 0o600)
        return server.directory
      }))
      assert.isFalse(NFS.existsSync(directory), "the folder and its slots go with the server")
    })
  })
})

/** The fork server's shell among this process's children (the bench's own lookup). */
const serverPids = () => wakeServerPids(process.pid)

describe("ForkServer when its shell dies", () => {
  it.live("says it is unavailable until it has started a new shell, which then works", () => {
    return withServer((server) => Effect.gen(function*() {
      const before = serverPids()
      assert.lengthOf(before, 1)
      process.kill(before[0]!, "SIGKILL")
      yield* Effect.sleep(100)
      const refused = yield* server.launch(sh("true"), KILL).pipe(Effect.flip)
      assert.strictEqual(refused._tag, "ForkServerUnavailable")
      yield* Effect.sleep(1500)
      assert.notDeepEqual(serverPids(), before)
      const launched = yield* server.launch(sh("exit 4"), KILL)
      assert.strictEqual(yield* launched.exit, 4)
    }))
  })
})

/** Children of `pid` that have ended and wait to be reaped. */
const zombiesUnder = (pid: number) => NFS.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)
  .filter((child) => child !== "" && !alive(Number(child)) && NFS.existsSync(`/proc/${child}`)).length

describe("ForkServer reaping", () => {
  it.live("leaves no zombie subshells after a burst of commands", () => {
    return withServer((server) => Effect.gen(function*() {
      yield* Effect.forEach([1, 2, 3, 4], () => Effect.scoped(Effect.flatMap(server.launch(sh("true"), KILL), (l) => l.exit)), { concurrency: 4 })
      yield* Effect.sleep(300)
      const [shell] = serverPids()
      assert.isDefined(shell)
      assert.strictEqual(zombiesUnder(shell!), 0)
    }))
  })

  it.live("reaps exits that share a nudge, and nudges again for a later burst", () => {
    const run = (scripts: ReadonlyArray<string>, server: ForkServer) =>
      Effect.forEach(scripts, (script) => Effect.scoped(Effect.flatMap(server.launch(sh(script), KILL), (l) => l.exit)), { concurrency: "unbounded" })
    return withServer((server) => Effect.gen(function*() {
      const [shell] = serverPids()
      assert.isDefined(shell)
      // exits 0-90 ms apart: later ones come while a nudge is pending, and after one was sent
      yield* run(["true", "sleep 0.03", "sleep 0.06", "sleep 0.09"], server)
      yield* Effect.sleep(300)
      assert.strictEqual(zombiesUnder(shell!), 0)
      // the nudging has ended: a new burst is nudged afresh
      yield* run(["true", "sleep 0.02"], server)
      yield* Effect.sleep(300)
      assert.strictEqual(zombiesUnder(shell!), 0)
    }))
  })
})

describe("Waker through the fork server", () => {
  it.live("runs wake commands from the server's shell, not from the daemon", () => {
    return Effect.gen(function*() {
      const dir = yield* scopedTempDir("fork-server-waker-")
      const out = NPath.join(dir, "parent")
      const layer = Waker.layer.pipe(Layer.provide([PlatformLayer, SidecarConfig.layer(defaultSettings(dir, {
        wakeCommand: ["/bin/sh", "-c", `ps -o comm= -p $PPID > "$1"`, "sh", out]
      }))]))
      yield* Effect.gen(function*() {
        yield* Effect.sleep(100)
        const outcome = yield* Waker.use((w) => w.wake({
          taskId: "t1", description: "d", taskJson: "{}", taskFile: NPath.join(dir, "t1.task.json"), resultsDir: dir,
          startedFile: NPath.join(dir, "t1.started"), resultFile: NPath.join(dir, "t1.json"), attempt: 1
        }))
        assert.strictEqual(outcome.status, "success")
        assert.strictEqual(NFS.readFileSync(out, "utf8").trim(), "sh")
      }).pipe(Effect.provide(layer))
    })
  })
})

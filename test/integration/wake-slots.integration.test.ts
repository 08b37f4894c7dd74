/**
 * The wake server's request slots (waker/requestSlots.ts) with real processes: the server script fed lines by hand,
 * so that each order of marking, withdrawing and reading can be forced, then the ForkServer reusing a few slot files
 * for many launches, and a request withdrawn from a stopped server that never runs once it goes on. The pool's rules
 * and withdraw's decision alone: test/services/requestSlots.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Scope } from "effect"
import { spawnSync } from "node:child_process"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { wakeServerPids } from "../../bench/memory.ts"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { type ForkServer, makeForkServer } from "../../src/services/waker/ForkServer.ts"
import { requestSource, SERVER_SCRIPT } from "../../src/services/waker/launchScript.ts"
import { makeSlotPool, withdraw, writeRequest } from "../../src/services/waker/requestSlots.ts"
import { scopedTempDir } from "../support/tempDir.ts"

const KILL = { signal: "SIGTERM" as const, graceMs: 500 }
const PATH = { PATH: "/usr/bin:/bin" }
const tool = (name: string) => spawnSync("/bin/sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout.trim()

/** Slot `index` of `dir` holding request `id`, whose command writes `ran-<id>` in `dir`. */
const request = (dir: string, index: number, id: number) => {
  const pool = makeSlotPool(dir)
  for (let i = 0; i < index; i++) pool.acquire()
  const slot = pool.acquire()
  writeRequest(slot, requestSource(id, NPath.join(dir, `${id}.err`), {
    command: "/bin/sh", args: ["-c", `echo ran > ran-${id}`], env: PATH, cwd: dir
  }))
  return slot
}

/** Runs the server script on `input` until its end; its stdout lines and stderr. */
const serve = (dir: string, input: string) => {
  const result = spawnSync("/bin/sh", ["-c", SERVER_SCRIPT, "agent-sidecar-wake-test", tool("setsid"), tool("env"), dir], {
    input, encoding: "utf8", env: {}, timeout: 10_000
  })
  assert.strictEqual(result.status, 0, result.stderr)
  return { lines: result.stdout.split("\n").filter((l) => l !== "").map((l) => l.replace(/^P (\d+) \d+$/, "P $1")), stderr: result.stderr }
}

const ran = (dir: string) => NFS.readdirSync(dir).filter((name) => name.startsWith("ran-")).sort()

describe("the wake server script with request slots", () => {
  it.effect("runs the request its line names, after marking it taken", () => Effect.gen(function*() {
    const dir = yield* scopedTempDir("wake-slots-")
    const slot = request(dir, 0, 5)
    assert.deepStrictEqual(serve(dir, "0 5\n").lines, ["P 5", "X 5 0 0"])
    assert.deepStrictEqual(ran(dir), ["ran-5"])
    assert.strictEqual(NFS.readFileSync(slot.takenFile, "utf8"), "5\n")
    assert.strictEqual(withdraw(slot, 5), "taken", "too late to take it back: it ran")
  }))

  it.effect("never runs a request withdrawn before the server reached its line, and carries on", () => Effect.gen(function*() {
    const dir = yield* scopedTempDir("wake-slots-")
    const withdrawn = request(dir, 0, 5)
    request(dir, 1, 6)
    assert.strictEqual(withdraw(withdrawn, 5), "withdrawn")
    const { lines, stderr } = serve(dir, "0 5\n1 6\n")
    assert.deepStrictEqual(lines, ["P 6", "X 6 0 0"])
    assert.strictEqual(stderr, "")
    assert.deepStrictEqual(ran(dir), ["ran-6"])
    // it marked the line on its way past; someone asking now would hear "taken": never run twice, at worst not at all
    assert.strictEqual(NFS.readFileSync(withdrawn.takenFile, "utf8"), "5\n")
  }))

  it.effect("runs nothing from a slot that holds another request than its line names", () => Effect.gen(function*() {
    const dir = yield* scopedTempDir("wake-slots-")
    request(dir, 0, 5)
    assert.deepStrictEqual(serve(dir, "0 4\n0 6\n0 5\n").lines, ["P 5", "X 5 0 0"])
    assert.deepStrictEqual(ran(dir), ["ran-5"])
  }))

  it.effect("refuses a malformed line without touching a file, and takes an empty one as a nudge", () => Effect.gen(function*() {
    const dir = yield* scopedTempDir("wake-slots-")
    request(dir, 0, 5)
    const bad = ["5", "0 x", " 0 5", "0 5 ", "0  5", "../0 5", "0 5 6", "0:1 5", "0 ../5", "x 5"]
    const { lines } = serve(dir, ["", ...bad, ""].join("\n") + "\n")
    assert.deepStrictEqual(lines, bad.map(() => "E bad request line"))
    assert.deepStrictEqual(ran(dir), [])
    assert.deepStrictEqual(NFS.readdirSync(dir), ["slot-0.req"], "no mark was written")
  }))
})

/** Runs `f` with a started fork server. */
const withServer = <A, E>(f: (server: ForkServer) => Effect.Effect<A, E, Scope.Scope>) => Effect.scoped(Effect.gen(function*() {
  const server = yield* makeForkServer
  assert.isDefined(server)
  yield* Effect.sleep(100)
  return yield* f(server!)
})).pipe(Effect.provide(PlatformLayer))

const run = (server: ForkServer, script: string, cwd = "/") => Effect.scoped(Effect.gen(function*() {
  const launched = yield* server.launch({ command: "/bin/sh", args: ["-c", script], env: PATH, cwd }, KILL)
  return yield* launched.exit
}))

/** The slot files in the server's folder, with their inode numbers. */
const slotFiles = (server: ForkServer) => Object.fromEntries(NFS.readdirSync(server.directory).sort()
  .map((name) => [name, NFS.statSync(NPath.join(server.directory, name)).ino]))

describe("ForkServer request slots", () => {
  it.live("reuses the same two slot files for launches one after another: no file made or removed but the stderr one", () => {
    return withServer((server) => Effect.gen(function*() {
      yield* run(server, "true")
      yield* run(server, "true")
      const first = slotFiles(server)
      assert.deepStrictEqual(Object.keys(first), ["slot-0.req", "slot-0.taken", "slot-1.req", "slot-1.taken"])
      for (let i = 0; i < 30; i++) assert.strictEqual(yield* run(server, `exit ${i % 3}`), i % 3)
      assert.deepStrictEqual(slotFiles(server), first, "the same files (inodes): written in place")
    }))
  })

  it.live("uses one slot more than the most launches at once", () => {
    return withServer((server) => Effect.gen(function*() {
      for (let round = 0; round < 5; round++) {
        const statuses = yield* Effect.forEach([0, 1, 2, 3], (i) => run(server, `sleep 0.0${i}; exit ${i}`), { concurrency: 4 })
        assert.deepStrictEqual(statuses, [0, 1, 2, 3])
      }
      const requests = Object.keys(slotFiles(server)).filter((name) => name.endsWith(".req"))
      assert.isAtMost(requests.length, 5)
    }))
  })

  it.live("a request withdrawn from a stopped server never runs once the server goes on", () => {
    return withServer((server) => Effect.gen(function*() {
      const dir = yield* scopedTempDir("wake-slots-")
      const [shell] = wakeServerPids(process.pid)
      assert.isDefined(shell)
      process.kill(shell!, "SIGSTOP")
      const refused = yield* run(server, "echo ran > ran-1", dir).pipe(
        Effect.ensuring(Effect.sync(() => process.kill(shell!, "SIGCONT"))), Effect.flip)
      // not taken: safe to run elsewhere, which the Waker does with Node's spawn
      assert.strictEqual(refused._tag, "ForkServerUnavailable")
      assert.strictEqual(yield* run(server, "echo ran > ran-2", dir), 0)
      yield* Effect.sleep(200)
      assert.deepStrictEqual(ran(dir), ["ran-2"])
      // the withdrawn slot serves again once the server is past it
      for (let i = 0; i < 5; i++) yield* run(server, "true")
      assert.isAtMost(Object.keys(slotFiles(server)).filter((name) => name.endsWith(".req")).length, 3)
    }))
  }, 20_000)
})

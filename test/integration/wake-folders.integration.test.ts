/**
 * The wake server's folder when its sidecar dies without running its finalizers (SIGKILL): real daemons, killed for
 * real, in a temp dir of their own (TMPDIR), so that no other test's sidecar sweeps it meanwhile. The sweep's rules
 * on fabricated folders: test/services/wakeFolder.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { makeForkServer } from "../../src/services/waker/ForkServer.ts"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { scopedTempDir } from "../support/tempDir.ts"

/** Waits until the wake folder of the sidecar with this pid is in `tmp`; its path. */
const wakeFolderOf = (tmp: string, pid: number) => Effect.gen(function*() {
  while (true) {
    const name = NFS.readdirSync(tmp).find((n) => n.startsWith(`agent-sidecar-wake-${pid}-`))
    if (name !== undefined) return NPath.join(tmp, name)
    yield* Effect.sleep(20)
  }
}).pipe(Effect.timeoutOrElse({ duration: 15_000, orElse: () => Effect.fail(new Error(`no wake folder of pid ${pid} in ${tmp}`)) }))

describe("wake folders of sidecars that died", () => {
  it.live("a sidecar killed with SIGKILL leaves its folder; the next one to start removes it and leaves a running one's alone", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const tmp = yield* scopedTempDir("wake-folders-tmp-")
    const config = (name: string) => {
      const dir = NPath.join(tmp, name)
      NFS.mkdirSync(dir)
      return writeConfig(dir, { hub_url: hub.url, wake_command: ["/bin/true"] })
    }
    const first = config("first")
    // Started: its wake server has made its folder and swept the temp dir (the Waker is built before "sidecar started").
    const start = (configPath: string) => Effect.gen(function*() {
      const daemon = yield* startDaemon(["run", "--config", configPath], { TMPDIR: tmp })
      yield* daemon.waitForOutput("sidecar started", 20_000)
      return daemon
    })

    const crashed = yield* start(first)
    const crashedFolder = yield* wakeFolderOf(tmp, crashed.pid)
    assert.strictEqual(NFS.statSync(crashedFolder).mode & 0o777, 0o700)
    crashed.process.kill("SIGKILL")
    assert.strictEqual(yield* crashed.exited, "SIGKILL")
    assert.isTrue(NFS.existsSync(crashedFolder), "SIGKILL skips the daemon's own clean-up")

    // restarted on the same config, as a supervisor would
    const restarted = yield* start(first)
    const restartedFolder = yield* wakeFolderOf(tmp, restarted.pid)
    assert.isFalse(NFS.existsSync(crashedFolder), "the next wake server's start removed the dead sidecar's folder")

    const other = yield* start(config("other"))
    yield* wakeFolderOf(tmp, other.pid)
    assert.isTrue(NFS.existsSync(restartedFolder), "a running sidecar's folder stays")
  }), 60_000)

  it.live("two wake servers in one process leave each other's folders alone", () => Effect.scoped(Effect.gen(function*() {
    const one = yield* makeForkServer
    const two = yield* makeForkServer
    assert.isDefined(one)
    assert.isDefined(two)
    assert.notStrictEqual(one!.directory, two!.directory)
    assert.isTrue(NFS.existsSync(one!.directory) && NFS.existsSync(two!.directory))
    assert.match(NPath.basename(one!.directory), new RegExp(`^agent-sidecar-wake-${process.pid}-[0-9]+-[A-Za-z0-9]{6}$`))
  })).pipe(Effect.provide(PlatformLayer)))
})

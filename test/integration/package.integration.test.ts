/**
 * The package as users install it (issue 13): `npm pack`, then `npm i -g` of the tarball into a temporary prefix
 * with the pinned Node first on PATH; the installed `agent-sidecar` answers `--version`, passes `doctor` on a
 * sample config, and its `dev` mode completes a task. Nothing is built on install and the sources are not in it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, References } from "effect"
import { execFileSync, spawn } from "node:child_process"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { script, tempDir } from "../support/sidecar.ts"
import { killAndSweep } from "../support/tempDir.ts"
import { DevHub } from "../../src/hub/DevHub.ts"

const root = NPath.resolve(import.meta.dirname, "../..")
const env = { ...process.env, PATH: `${NPath.dirname(process.execPath)}:${process.env["PATH"] ?? ""}`, npm_config_update_notifier: "false" }
const npm = (args: ReadonlyArray<string>, cwd: string) => execFileSync("npm", [...args], { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

/** Runs the installed command to its end, with its output. */
const run = (bin: string, args: ReadonlyArray<string>) => Effect.promise(() => new Promise<{ code: number | null; out: string }>((resolve) => {
  const child = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  child.stdout.on("data", (d) => { out += String(d) })
  child.stderr.on("data", (d) => { out += String(d) })
  child.on("exit", (code) => resolve({ code, out }))
}))

describe("the installed package", () => {
  it.live("npm pack, npm i -g: --version, doctor, and a dev task, on the pinned Node", () => Effect.gen(function*() {
    const dir = yield* tempDir
    // dist/ is what `npm ci` built; packing does not build again
    npm(["pack", "--ignore-scripts", "--pack-destination", dir], root)
    const tarball = NFS.readdirSync(dir).find((f) => f.endsWith(".tgz"))!
    const listing = execFileSync("tar", ["-tzf", `${dir}/${tarball}`], { encoding: "utf8" })
    assert.notInclude(listing, "package/src/", "the sources are not shipped")
    assert.include(listing, "package/dist/agent-sidecar.mjs")
    npm(["install", "-g", "--prefix", `${dir}/prefix`, `${dir}/${tarball}`, "--prefer-offline", "--no-audit", "--no-fund"], dir)
    const bin = `${dir}/prefix/bin/agent-sidecar`
    const installed = `${dir}/prefix/lib/node_modules/agent-sidecar`
    assert.deepStrictEqual(NFS.readdirSync(`${installed}/node_modules`).sort(), ["ws"], "only what runs is installed")

    const version = yield* run(bin, ["--version"])
    assert.strictEqual(version.code, 0, version.out)
    assert.match(version.out, /agent-sidecar v\d+\.\d+\.\d+/)

    const hub = yield* makeFakeHub()
    const wake = script(dir, "wake.sh", "exit 0")
    const doctor = yield* run(bin, ["doctor", "--config", writeConfig(dir, { hub_url: hub.url, wake_command: [wake] })])
    assert.strictEqual(doctor.code, 0, doctor.out)

    const dev = spawn(bin, ["dev", "--port", "0"], { env, stdio: ["ignore", "pipe", "pipe"] })
    yield* Effect.addFinalizer(() => killAndSweep(dev))
    let out = ""
    dev.stdout.on("data", (d) => { out += String(d) })
    dev.stderr.on("data", (d) => { out += String(d) })
    const base = yield* Effect.gen(function*() {
      while (true) {
        const m = /Open the live page:\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)
        if (m !== null) return m[1]!
        yield* Effect.sleep(50)
      }
    }).pipe(Effect.timeout(20_000))
    const created = yield* Effect.promise(() => fetch(`${base}/api/tasks`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ description: "installed and running" })
    }).then((r) => r.json() as Promise<{ task_id: string }>))
    yield* Effect.gen(function*() {
      while (true) {
        const tasks = yield* Effect.promise(() => fetch(`${base}/api/tasks`).then((r) => r.json() as Promise<Array<{ task_id: string; state: string }>>))
        if (tasks.find((t) => t.task_id === created.task_id)?.state === "complete") return
        yield* Effect.sleep(100)
      }
    }).pipe(Effect.timeout(15_000))
    dev.kill("SIGTERM")

    // the "done when": init for a (fake) claude, then run, against the dev hub; the log reads with jq
    const hubCtx = yield* Layer.build(DevHub.layer({ port: 0, token: "pkg-token" })).pipe(Effect.provideService(References.MinimumLogLevel, "Error"))
    const devHub = Context.get(hubCtx, DevHub)
    const home = `${dir}/agent-home`
    NFS.mkdirSync(`${home}/bin`, { recursive: true })
    NFS.mkdirSync(`${home}/work`)
    NFS.writeFileSync(`${home}/token`, "pkg-token\n", { mode: 0o600 })
    NFS.writeFileSync(`${home}/bin/claude`, `#!/bin/sh\n[ "$1" = "-p" ] || { echo "fake claude: expected -p, got $1" >&2; exit 64; }\necho "done by fake claude"\n`, { mode: 0o755 })
    const withClaude = { ...env, PATH: `${home}/bin:${env.PATH}` }
    const init = yield* Effect.promise(() => new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(bin, ["init", "--agent", "claude", "--hub-url", devHub.wsUrl, "--agent-id", "agent-pkg", "--token-file", `${home}/token`,
        "--workdir", `${home}/work`, "--config", `${home}/config.json`, "--yes"], { env: withClaude, stdio: ["ignore", "pipe", "pipe"] })
      let text = ""
      child.stdout.on("data", (d) => { text += String(d) })
      child.stderr.on("data", (d) => { text += String(d) })
      child.on("exit", (code) => resolve({ code, out: text }))
    }))
    assert.strictEqual(init.code, 0, init.out)
    const daemon = spawn(bin, ["run", "--config", `${home}/config.json`], { env: withClaude, stdio: "ignore" })
    yield* Effect.addFinalizer(() => killAndSweep(daemon))
    const id = yield* devHub.submit({ description: "say hello", agent_id: "agent-pkg" })
    const done = yield* Effect.gen(function*() {
      while (true) {
        const t = yield* devHub.task(id)
        if (t.state === "complete") return t
        yield* Effect.sleep(100)
      }
    }).pipe(Effect.timeout(20_000))
    assert.include(JSON.stringify(done.result), "done by fake claude")
    const log = NFS.readFileSync(`${home}/sidecar.log`, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.isTrue(log.some((l) => l["msg"] === "task accepted" && l["task_id"] === id), "jq -r .task_id sidecar.log finds the task")
  }), 90_000)
})

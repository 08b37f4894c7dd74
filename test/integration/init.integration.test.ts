/**
 * `agent-sidecar init` end to end: for every preset, a fake agent CLI of the same name on PATH that checks the
 * arguments it gets and prints an answer; init writes the config and wake script; the real daemon runs on them
 * against the dev hub; the task must complete there with the fake's answer. The task text is full of shell
 * metacharacters and starts with `--`: it must reach the fake verbatim, as its prompt, and run nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, References, Result } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { decodeConfigFile } from "../../src/domain/Config.ts"
import { KEEP_DAYS } from "../../src/cli/init/wakeScript.ts"
import { DevHub } from "../../src/hub/DevHub.ts"
import { isFinal, waitFor, waitTask } from "../support/agentcom.ts"
import { startDaemon } from "../support/daemon.ts"
import { tempDir } from "../support/sidecar.ts"

const TOKEN = "init-test-token"
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** What each preset must pass, from its documentation (see src/cli/init/presets.ts). */
const expectedArgs: Record<string, (prompt: string) => ReadonlyArray<string>> = {
  claude: (p) => ["-p", "--output-format", "text", "--permission-mode", "acceptEdits", "--", p],
  codex: (p) => ["exec", "--sandbox", "workspace-write", "--skip-git-repo-check", "--", p],
  gemini: (p) => [`--prompt=${p}`, "--approval-mode", "auto_edit"],
  aider: (p) => [`--message=${p}`, "--yes-always", "--no-pretty"],
  opencode: (p) => ["run", "--", p],
  goose: (p) => ["run", `--text=${p}`]
}

/** A fake agent CLI: checks its arguments and folder (exit 64 with a clear message otherwise), then answers. */
const writeFake = (binDir: string, bin: string, options: { readonly args?: ReadonlyArray<string>; readonly workdir?: string; readonly body: string }) => {
  const checks = options.args === undefined ? [] : [
    `[ "$#" -eq ${options.args.length} ] || fail "expected ${options.args.length} arguments, got $#: $*"`,
    ...options.args.map((a, i) => `[ "\${${i + 1}}" = ${q(a)} ] || fail "argument ${i + 1} is [\${${i + 1}}], expected [${a.replace(/[\\"$`]/g, "\\$&")}]"`)
  ]
  const where = options.workdir === undefined ? [] : [`[ "$(pwd)" = ${q(options.workdir)} ] || fail "runs in $(pwd), expected ${options.workdir}"`]
  NFS.mkdirSync(binDir, { recursive: true })
  NFS.writeFileSync(NPath.join(binDir, bin), `#!/bin/sh
fail() { echo "fake ${bin}: $*" >&2; exit 64; }
${[...checks, ...where].join("\n")}
${options.body}
`, { mode: 0o755 })
}

const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => Effect.gen(function*() {
  const run = yield* startDaemon(args, env)
  return { code: yield* run.exited, out: run.output() }
})

const withHub = <A, E, R>(f: (hub: DevHub["Service"]) => Effect.Effect<A, E, R>) =>
  Layer.build(DevHub.layer({ port: 0, token: TOKEN })).pipe(
    Effect.map((ctx) => Context.get(ctx, DevHub)),
    Effect.provideService(References.MinimumLogLevel, "Error"),
    Effect.flatMap(f)
  )

/** A temp folder with `bin/` (fake CLIs), `work/` (the agent's folder) and the token file. */
const setup = Effect.gen(function*() {
  const dir = yield* tempDir
  const bin = NPath.join(dir, "bin")
  const work = NPath.join(dir, "work")
  NFS.mkdirSync(bin)
  NFS.mkdirSync(work)
  NFS.writeFileSync(NPath.join(dir, "token"), `${TOKEN}\n`, { mode: 0o600 })
  return { dir, bin, work, config: NPath.join(dir, "config.json"), PATH: `${bin}:${process.env["PATH"] ?? ""}` }
})

const initFor = (s: Effect.Success<typeof setup>, agent: string, hubUrl: string, extra: ReadonlyArray<string> = []) =>
  cli(["init", "--agent", agent, "--hub-url", hubUrl, "--agent-id", `agent-${agent}`, "--token-file", NPath.join(s.dir, "token"),
    "--workdir", s.work, "--config", s.config, "--yes", ...extra], { PATH: s.PATH })

/** Shell metacharacters, quotes, backticks, a newline, and a leading `--` that a CLI could take for an option. */
const nastyDescription = (dir: string) =>
  `--help $(touch ${dir}/pwned1) \`touch ${dir}/pwned2\` "double" 'single' ; touch ${dir}/pwned3 ; $HOME \\ * %s end\nsecond line`

describe("agent-sidecar init", () => {
  it.live("every preset: init, then a real daemon takes a task from the hub to the fake agent CLI and back", () => withHub((hub) =>
    Effect.forEach(Object.keys(expectedArgs), (agent) => Effect.scoped(Effect.gen(function*() {
      const s = yield* setup
      const description = nastyDescription(s.dir)
      writeFake(s.bin, agent, { args: expectedArgs[agent]!(description), workdir: s.work, body: `echo "thinking..." >&2\nprintf 'answer from %s\\n' ${agent}` })
      const init = yield* initFor(s, agent, hub.wsUrl)
      assert.strictEqual(init.code, 0, `${agent} init: ${init.out}`)
      const daemon = yield* startDaemon(["run", "--config", s.config], { PATH: s.PATH })
      const id = yield* hub.submit({ description, agent_id: `agent-${agent}` })
      const t = yield* waitTask(hub, id, isFinal, `${agent}: finished`, 60_000).pipe(Effect.tapError(() => Effect.gen(function*() {
        const now = yield* Effect.orDie(hub.task(id))
        const results = NPath.join(s.dir, "results")
        const files = NFS.existsSync(results) ? NFS.readdirSync(results) : []
        const log = NPath.join(results, `${id}.log`)
        yield* Effect.logError(`${agent}: task ${now.state}; results: ${files.join(" ")}\nlog: ${NFS.existsSync(log) ? NFS.readFileSync(log, "utf8") : "-"}\ndaemon:\n${daemon.output()}`)
      })))
      assert.strictEqual(t.state, "complete", `${agent}: ${t.last_error ?? JSON.stringify(t.timeline)}\n${daemon.output()}`)
      assert.deepStrictEqual(t.result, { status: "success", output: `answer from ${agent}` }, agent)
      for (const n of [1, 2, 3]) assert.isFalse(NFS.existsSync(NPath.join(s.dir, `pwned${n}`)), `${agent}: the task text ran (pwned${n})`)
      // the agent's log stays beside the results
      const log = NPath.join(s.dir, "results", `${id}.log`)
      yield* waitFor(() => NFS.existsSync(log) && NFS.readFileSync(log, "utf8").includes("exited with code 0"), `${agent}: log`)
      assert.include(NFS.readFileSync(log, "utf8"), "thinking...")
      daemon.process.kill("SIGTERM")
      assert.strictEqual(yield* daemon.exited, 0)
    })), { concurrency: "unbounded", discard: true })
  ), 120_000)

  it.live("a failing agent: the task fails with its exit code and the end of its stderr", () => withHub((hub) => Effect.scoped(Effect.gen(function*() {
    const s = yield* setup
    writeFake(s.bin, "aider", { body: `echo "model quota exceeded" >&2\nexit 3` })
    assert.strictEqual((yield* initFor(s, "aider", hub.wsUrl)).code, 0)
    // earlier tasks' files: a wake removes the .log and .out untouched for more than KEEP_DAYS, and nothing else
    const results = NPath.join(s.dir, "results")
    NFS.mkdirSync(NPath.join(results, "rejected"), { recursive: true, mode: 0o700 })
    const aged = (name: string, days: number) => {
      NFS.writeFileSync(NPath.join(results, name), "x")
      const at = new Date(Date.now() - days * 86_400_000)
      NFS.utimesSync(NPath.join(results, name), at, at)
    }
    for (const name of ["old-1.log", "old-1.out", "rejected/old-2.log", "old-3.txt"]) aged(name, KEEP_DAYS + 2)
    aged("recent-4.log", KEEP_DAYS - 2)
    yield* startDaemon(["run", "--config", s.config], { PATH: s.PATH })
    const id = yield* hub.submit({ description: "fix it", agent_id: "agent-aider", max_retries: 0 })
    const t = yield* waitTask(hub, id, isFinal, "dead-lettered", 40_000)
    assert.strictEqual(t.state, "dead_letter")
    assert.include(t.last_error, "aider exited with code 3")
    assert.include(t.last_error, "model quota exceeded")
    const left = (name: string) => NFS.existsSync(NPath.join(results, name))
    assert.deepStrictEqual(["old-1.log", "old-1.out"].filter(left), [], "aged logs and outputs removed")
    assert.deepStrictEqual(["rejected/old-2.log", "old-3.txt", "recent-4.log", `${id}.log`].filter(left),
      ["rejected/old-2.log", "old-3.txt", "recent-4.log", `${id}.log`], "a subfolder, other names, recent logs and this task's kept")
  }))), 60_000)

  it.live("a task the hub cancels: the agent gets SIGTERM and nothing is reported", () => withHub((hub) => Effect.scoped(Effect.gen(function*() {
    const s = yield* setup
    const mark = (name: string) => NPath.join(s.dir, name)
    writeFake(s.bin, "goose", { body: `trap 'echo TERM > ${q(mark("terminated"))}; exit 143' TERM\necho up > ${q(mark("running"))}\nwhile :; do sleep 0.1; done` })
    assert.strictEqual((yield* initFor(s, "goose", hub.wsUrl)).code, 0)
    yield* startDaemon(["run", "--config", s.config], { PATH: s.PATH })
    const id = yield* hub.submit({ description: "work forever", agent_id: "agent-goose" })
    yield* waitFor(() => NFS.existsSync(mark("running")), "the agent runs", 20_000)
    yield* Effect.orDie(hub.cancel(id))
    yield* waitFor(() => NFS.existsSync(mark("terminated")), "the agent got SIGTERM", 10_000)
    const log = NPath.join(s.dir, "results", `${id}.log`)
    yield* waitFor(() => NFS.readFileSync(log, "utf8").includes("exited with code 143"), "the worker saw the agent exit")
    yield* Effect.sleep(500)
    assert.isFalse(NFS.existsSync(NPath.join(s.dir, "results", `${id}.json`)), "a result for a cancelled task")
  }))), 40_000)

  it.live("--print writes nothing; an existing config needs --force; files are 0600 (config) and 0700 (script)", () => Effect.gen(function*() {
    const s = yield* setup
    writeFake(s.bin, "codex", { body: "exit 0" })
    const printed = yield* initFor(s, "codex", "wss://hub.example.com/ws", ["--print"])
    assert.strictEqual(printed.code, 0, printed.out)
    assert.include(printed.out, `"hub_url": "wss://hub.example.com/ws"`)
    assert.include(printed.out, `"token_file": "./token"`)
    assert.include(printed.out, "exec --sandbox workspace-write --skip-git-repo-check -- \"$TASK_DESCRIPTION\"")
    assert.isFalse(NFS.existsSync(s.config))
    assert.isFalse(NFS.existsSync(NPath.join(s.dir, "agent-wake.sh")))

    assert.strictEqual((yield* initFor(s, "codex", "wss://hub.example.com/ws")).code, 0)
    const config = JSON.parse(NFS.readFileSync(s.config, "utf8"))
    assert.deepStrictEqual(config.wake_command, [NPath.join(s.dir, "agent-wake.sh")])
    assert.notProperty(config, "token")
    const script = NFS.readFileSync(NPath.join(s.dir, "agent-wake.sh"), "utf8")
    assert.include(script, `NODE='${process.execPath}'`)
    assert.include(script, "developers.openai.com/codex/noninteractive")
    assert.strictEqual(NFS.statSync(s.config).mode & 0o777, 0o600)
    assert.strictEqual(NFS.statSync(NPath.join(s.dir, "agent-wake.sh")).mode & 0o777, 0o700)

    const again = yield* initFor(s, "codex", "wss://other.example.com/ws")
    assert.strictEqual(again.code, 1)
    assert.include(again.out, "already exist")
    assert.include(NFS.readFileSync(s.config, "utf8"), "hub.example.com")
    NFS.chmodSync(s.config, 0o644)
    NFS.chmodSync(NPath.join(s.dir, "agent-wake.sh"), 0o755)
    const forced = yield* initFor(s, "codex", "wss://other.example.com/ws", ["--force"])
    assert.strictEqual(forced.code, 0, forced.out)
    assert.include(NFS.readFileSync(s.config, "utf8"), "other.example.com")
    assert.strictEqual(NFS.statSync(s.config).mode & 0o777, 0o600)
    assert.strictEqual(NFS.statSync(NPath.join(s.dir, "agent-wake.sh")).mode & 0o777, 0o700)
    // and the config schema accepts what was written
    assert.isTrue(Result.isSuccess(decodeConfigFile(JSON.parse(NFS.readFileSync(s.config, "utf8")))))
  }), 30_000)

  it.live("detects the agent CLIs on PATH, and validates hub URL and agent id as the config schema does", () => Effect.gen(function*() {
    const s = yield* setup
    writeFake(s.bin, "goose", { body: "exit 0" })
    writeFake(s.bin, "gemini", { body: "exit 0" })
    const base = ["init", "--yes", "--print", "--workdir", s.work, "--config", s.config]
    const found = yield* cli(base, { PATH: s.bin })
    assert.strictEqual(found.code, 0, found.out)
    assert.include(found.out, `agent CLIs on PATH: gemini (${s.bin}/gemini), goose (${s.bin}/goose)`)
    assert.include(found.out, `${s.bin}/gemini --prompt="$TASK_DESCRIPTION" --approval-mode auto_edit`)
    assert.include(found.out, `"hub_url": "ws://127.0.0.1:8787/ws"`)

    const none = yield* cli(base, { PATH: s.work })
    assert.strictEqual(none.code, 1)
    assert.include(none.out, "no agent CLI found on PATH (looked for claude, codex, gemini, aider, opencode, goose)")

    const badUrl = yield* cli([...base, "--hub-url", "http://hub.example.com"], { PATH: s.bin })
    assert.strictEqual(badUrl.code, 1)
    assert.include(badUrl.out, "hub_url must be a ws:// or wss:// URL")
    const badId = yield* cli([...base, "--agent-id", "no spaces!"], { PATH: s.bin })
    assert.strictEqual(badId.code, 1)
    assert.include(badId.out, "agent_id must be 1-64 characters")

    const help = yield* cli(["--help"])
    assert.include(help.out, "  init ")
  }), 30_000)
})

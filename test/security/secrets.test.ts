/**
 * Secrets (issue "Hostile input and secrets", part 4; SPEC §2, §6.9).
 *
 * A full real session — config loaded from a file with `token_file` and a `secrets` entry, a real ws hub, a wake
 * script that prints the token and the secret to stderr and fails once, then succeeds, an unusable result moved
 * to rejected/, hub frames that quote the token — and then a grep over every byte the daemon wrote (queue.json,
 * its log file, task files, rejected/, its console output, `status` output): the token and the secret appear
 * zero times. Plus `SidecarConfig.load`: the token_file is read (trailing newline stripped), a config file others
 * can read gives a warning naming its mode, and the loaded settings print as `<redacted>`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { execFileSync } from "node:child_process"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { inspect } from "node:util"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { SidecarConfig } from "../../src/services/SidecarConfig.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { grepTree, mode, readJsonLog, startLoggedSidecar, waitUntil } from "../support/security.ts"
import { tempDir } from "../support/sidecar.ts"

const TOKEN = "tok-LIVE-8c1d2e3f4a5b6c7d"
const SECRET = "s3cr3t-db-password-90210"

const load = (configPath: string, env: Record<string, string | undefined> = {}) =>
  SidecarConfig.load(configPath, env).pipe(Effect.provide(PlatformLayer))

const writeConfig = (dir: string, config: Record<string, unknown>, fileMode = 0o600) => {
  const path = `${dir}/config.json`
  NFS.writeFileSync(path, JSON.stringify(config, null, 2), { mode: fileMode })
  NFS.chmodSync(path, fileMode) // not subject to the umask
  return path
}

describe("a full session leaks neither the token nor a configured secret (protection: Logging scrub, Waker stderr redaction, Redacted settings)", () => {
  it.live("grep over everything the daemon wrote finds the token and the secret zero times", () => Effect.gen(function*() {
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    // Inputs the operator wrote (they legitimately hold the secrets) live in input/; the daemon's state in state/.
    const input = `${dir}/input`
    const state = `${dir}/state`
    NFS.mkdirSync(input, { mode: 0o700 })
    NFS.mkdirSync(state, { mode: 0o700 }) // LoggingLayer opens log_file before the sidecar creates any directory
    NFS.writeFileSync(`${input}/token.txt`, `${TOKEN}\n`, { mode: 0o600 })
    NFS.writeFileSync(`${input}/secret.txt`, SECRET, { mode: 0o600 })
    NFS.writeFileSync(`${input}/wake.sh`, `#!/bin/sh
t=$(cat "${input}/token.txt"); s=$(cat "${input}/secret.txt")
echo "wake attempt $WAKE_ATTEMPT for $TASK_ID: token=$t password=$s" >&2
echo "stdout sees $t too"
cd "$RESULTS_DIR" || exit 1
case "$TASK_ID" in
  sec-1)
    if [ "$WAKE_ATTEMPT" = 1 ]; then echo "auth failed with $t / $s" >&2; exit 1; fi
    echo started > .s1 && mv .s1 "$STARTED_FILE"
    printf '{"status":"success","output":"done"}' > .r1 && mv .r1 "$RESULT_FILE" ;;
  sec-2)
    echo started > .s2 && mv .s2 "$STARTED_FILE"
    printf 'garbage, not json' > .r2 && mv .r2 "$RESULT_FILE" ;;
  sec-3)
    echo started > .s3 && mv .s3 "$STARTED_FILE" ;;
esac
`, { mode: 0o700 })
    const configPath = writeConfig(input, {
      agent_id: "agent-sec",
      hub_url: hub.url,
      token_file: "token.txt",
      secrets: [SECRET],
      wake_command: [`${input}/wake.sh`],
      wake_retry_delays_ms: [50],
      results_dir: "../state/results",
      queue_path: "../state/queue.json",
      log_file: "../state/sidecar.log",
      log_level: "debug",
      max_active_tasks: 3,
      heartbeat_interval_ms: 1000,
      heartbeat_timeout_ms: 500,
      reconnect_initial_ms: 50,
      reconnect_max_ms: 200
    })
    const { settings, warnings } = yield* load(configPath)
    assert.deepStrictEqual(warnings, [])
    assert.strictEqual(Redacted.value(settings.token), TOKEN)

    const consoleLines = yield* Effect.scoped(Effect.gen(function*() {
      const sidecar = yield* startLoggedSidecar(settings)
      const identify = yield* hub.waitFor((f) => f.type === "identify")
      assert.strictEqual(identify["token"], TOKEN, "the hub gets the token in identify (and only there)")
      // hub frames that quote the secrets end up in log lines: they must be scrubbed there
      hub.send({ type: "error", error: `token ${TOKEN} rejected; also saw ${SECRET}` })
      hub.send(`not json ${TOKEN} ${SECRET}`)
      hub.send({ type: "task_ack", task_id: "nobody", status: `complete ${TOKEN}` })
      for (const id of ["sec-1", "sec-2", "sec-3"]) hub.send({ type: "task_assign", task_id: id, description: "a task" })
      yield* hub.waitFor((f) => f.type === "task_complete" && f["task_id"] === "sec-1")
      const failed = yield* hub.waitFor((f) => f.type === "task_failed" && f["task_id"] === "sec-2")
      assert.match(String(failed["reason"]), /^result_parse_error/)
      yield* waitUntil("sec-3 started", () => NFS.existsSync(`${state}/results/sec-3.started`))
      yield* waitUntil("sec-2's result moved to rejected/", () => NFS.existsSync(`${state}/results/rejected`) && NFS.readdirSync(`${state}/results/rejected`).length === 1)
      const wakeResults = hub.frames.filter((f) => f.type === "wake_result" && f["task_id"] === "sec-1").map((f) => f["status"])
      assert.deepStrictEqual(wakeResults, ["failed", "success"], "the wake failed once, then succeeded")
      for (const f of hub.frames.filter((f) => f.type !== "identify")) {
        assert.notInclude(JSON.stringify(f), TOKEN, `a ${f.type} frame carries the token`)
        assert.notInclude(JSON.stringify(f), SECRET, `a ${f.type} frame carries the secret`)
      }
      yield* Effect.sleep(100)
      return yield* sidecar.consoleLines
    }))

    // Everything the daemon wrote: state/ holds queue.json, the log, task files and rejected/.
    const written = NFS.readdirSync(state).sort()
    assert.includeMembers(written, ["queue.json", "results", "sidecar.log"])
    assert.deepStrictEqual(grepTree(state, [TOKEN, SECRET]), [], "secrets found in files the daemon wrote")
    // and nothing outside state/ besides the operator's inputs
    assert.deepStrictEqual(NFS.readdirSync(dir).sort(), ["input", "state"])
    // its console output
    const leakedLines = consoleLines.filter((l) => l.includes(TOKEN) || l.includes(SECRET))
    assert.deepStrictEqual(leakedLines, [], "secrets in the daemon's console output")

    // the channels were really exercised: the scrubbed values are in the log as <redacted>
    const log = readJsonLog(`${state}/sidecar.log`)
    const text = JSON.stringify(log)
    assert.include(text, "<redacted>")
    const wakeLines = log.filter((e) => JSON.stringify(e).includes("stderr_tail") && JSON.stringify(e).includes("auth failed with <redacted> / <redacted>"))
    assert.isAtLeast(wakeLines.length, 1, "the failed wake's stderr tail is logged, redacted")
    assert.isAtLeast(log.filter((e) => JSON.stringify(e).includes("token <redacted> rejected")).length, 1, "the hub error is logged, redacted")
    assert.strictEqual(consoleLines.filter((l) => l.includes("<redacted>")).length > 0, true)

    // files 0600, folders 0700 (SPEC §6.9)
    assert.strictEqual(mode(`${state}/sidecar.log`), 0o600, "log file mode")
    assert.strictEqual(mode(`${state}/queue.json`), 0o600, "queue.json mode")
    assert.strictEqual(mode(`${state}/results`), 0o700, "results_dir mode")
    assert.strictEqual(mode(`${state}/results/rejected`), 0o700, "rejected/ mode")
    assert.strictEqual(mode(`${state}/results/sec-3.task.json`), 0o600, "task file mode")

    // `agent-sidecar status` (text and --json), run as the operator would: no secrets in its output
    const bin = NPath.resolve("src/bin.ts")
    for (const args of [["status", "--config", configPath], ["status", "--config", configPath, "--json"]]) {
      const out = execFileSync(process.execPath, [bin, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env["PATH"] ?? "" } })
      assert.include(out, "sec-3", `status shows the held task (${args.join(" ")})`)
      assert.notInclude(out, TOKEN, `status output has the token (${args.join(" ")})`)
      assert.notInclude(out, SECRET, `status output has the secret (${args.join(" ")})`)
    }
  }), { timeout: 20_000 })
})

describe("SidecarConfig.load: token_file, mode warning, redacted settings (protection: token_file reader, mode check, Redacted)", () => {
  const base = { agent_id: "agent-1", hub_url: "ws://127.0.0.1:1/ws" }

  it.live("a config file readable by others (0644) gives a warning naming the mode; 0600 does not", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const open = yield* load(writeConfig(dir, { ...base, token: TOKEN }, 0o644))
    const warning = open.warnings.find((w) => w.includes("readable by other users"))
    assert.isDefined(warning, `warnings: ${JSON.stringify(open.warnings)}`)
    assert.include(warning, "644")
    assert.notInclude(JSON.stringify(open.warnings), TOKEN)
    const groupOnly = yield* load(writeConfig(dir, { ...base, token: TOKEN }, 0o640))
    assert.isTrue(groupOnly.warnings.some((w) => w.includes("640")), "group-readable is readable by others too")
    const closed = yield* load(writeConfig(dir, { ...base, token: TOKEN }, 0o600))
    assert.isFalse(closed.warnings.some((w) => w.includes("readable by other users")))
  }))

  it.live("token_file: the token is read with its trailing newline stripped (LF and CRLF)", () => Effect.gen(function*() {
    const dir = yield* tempDir
    for (const [name, content] of [["lf", `${TOKEN}\n`], ["crlf", `${TOKEN}\r\n`], ["none", TOKEN]] as const) {
      NFS.writeFileSync(`${dir}/token-${name}`, content, { mode: 0o600 })
      const { settings } = yield* load(writeConfig(dir, { ...base, token_file: `token-${name}` }))
      assert.strictEqual(Redacted.value(settings.token), TOKEN, name)
      assert.strictEqual(Redacted.value(settings.secrets[0]!), TOKEN, `${name}: the token is the first secret scrubbed`)
    }
  }))

  it.live("the loaded settings print as <redacted> (JSON.stringify, String, template, util.inspect), token from file or SIDECAR_TOKEN", () => Effect.gen(function*() {
    const dir = yield* tempDir
    NFS.writeFileSync(`${dir}/token`, `${TOKEN}\n`, { mode: 0o600 })
    const fromFile = yield* load(writeConfig(dir, { ...base, token_file: "token", secrets: [SECRET] }))
    const envToken = "env-token-55aa66bb77cc"
    const fromEnv = yield* load(writeConfig(dir, { ...base, secrets: [SECRET] }), { SIDECAR_TOKEN: envToken })
    assert.strictEqual(Redacted.value(fromEnv.settings.token), envToken)
    for (const [label, settings, token] of [["token_file", fromFile.settings, TOKEN], ["SIDECAR_TOKEN", fromEnv.settings, envToken]] as const) {
      const printed = [
        JSON.stringify(settings),
        JSON.stringify(settings, null, 2),
        String(settings.token),
        `${settings.token}`,
        inspect(settings, { depth: 10 }),
        inspect(settings.secrets, { depth: 10 }),
        String(settings.secrets)
      ]
      for (const text of printed) {
        assert.notInclude(text, token, `${label}: the token printed in ${text.slice(0, 80)}`)
        assert.notInclude(text, SECRET, `${label}: the secret printed in ${text.slice(0, 80)}`)
      }
      assert.include(JSON.stringify(settings), "<redacted>", label)
      assert.strictEqual(String(settings.token), "<redacted>", label)
    }
  }))
})

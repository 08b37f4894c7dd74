/**
 * Injection-proof wake (issue "Hostile input and secrets", part 1; SPEC §5) with real processes.
 *
 * The task text comes from the hub. It must reach the wake command only through the environment (string
 * commands: the shell expands `${TASK_DESCRIPTION}` as data) or as whole arguments (array commands: no
 * shell, placeholders substituted per argument). For every hostile description: the marker file X is never
 * created, and the command saw exactly the text the hub sent. Also: TASK_JSON over 64 KiB is left out of the
 * environment (TASK_FILE is there instead), SIDECAR_* variables never reach the agent, and secrets in the
 * command's stderr come back redacted.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as NFS from "node:fs"
import { defaultSettings, type Settings, type WakeCommand } from "../../src/domain/Config.ts"
import type { WakeRequest } from "../../src/domain/WakeEnv.ts"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { SidecarConfig } from "../../src/services/SidecarConfig.ts"
import { Waker } from "../../src/services/Waker.ts"
import { tempDir } from "../support/sidecar.ts"

/** Runs one wake with the real Waker (real shell / real exec) configured with `wakeCommand`. */
const wake = (dir: string, wakeCommand: WakeCommand, request: WakeRequest, overrides: Partial<Settings> = {}) =>
  Waker.use((w) => w.wake(request)).pipe(
    Effect.provide(Waker.layer.pipe(Layer.provide([PlatformLayer, SidecarConfig.layer(defaultSettings(dir, { wakeCommand, ...overrides }))])))
  )

const requestFor = (dir: string, taskId: string, description: string, taskJson?: string): WakeRequest => ({
  taskId,
  description,
  taskJson: taskJson ?? JSON.stringify({ task_id: taskId, description }),
  taskFile: `${dir}/${taskId}.task.json`,
  resultsDir: dir,
  startedFile: `${dir}/${taskId}.started`,
  resultFile: `${dir}/${taskId}.json`,
  attempt: 1
})

const read = (path: string) => NFS.readFileSync(path, "utf8")

/** Descriptions that would run `touch X` (X = `marker`) if the text were ever pasted into shell source. */
const hostile = (marker: string): ReadonlyArray<string> => [
  `$(touch ${marker})`,
  "`touch " + marker + "`",
  `"; touch ${marker}; "`,
  `'; touch ${marker}; '`,
  `'`,
  `"`,
  `first line\ntouch ${marker}\n$(touch ${marker})\n`,
  `%PATH%`,
  `%PATH% & touch ${marker} & echo %PATH%`,
  `x && touch ${marker} || touch ${marker} | touch ${marker} & touch ${marker}; > ${marker}`,
  `\\"; touch ${marker}; #`,
  `$PATH \${HOME} $((1+1)) $0 $1 $@`,
  `\r\ntouch ${marker}\r\n`,
  `-n`,
  `ünïcödé ✓ 日本語`
]

/** What a POSIX shell's word splitting (default IFS) leaves of `text` when printed with `printf '%s' $VAR`. */
const wordSplit = (text: string) => text.split(/[ \t\n]+/).join("")

describe("string wake commands: task text only through the environment (protection: no textual substitution into shell source)", () => {
  it.live("quoted placeholder: X never exists, the command sees the exact text", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const marker = `${dir}/X`
    const cases = hostile(marker)
    for (const [i, description] of cases.entries()) {
      const id = `q-${i}`
      const outcome = yield* wake(dir, `printf '%s' "\${TASK_DESCRIPTION}" > "$RESULTS_DIR/seen-\${TASK_ID}"`, requestFor(dir, id, description))
      assert.strictEqual(outcome.status, "success", `case ${JSON.stringify(description)}: ${outcome.error ?? ""}`)
      assert.isFalse(NFS.existsSync(marker), `X was created by ${JSON.stringify(description)}`)
      assert.strictEqual(read(`${dir}/seen-${id}`), description, `the command saw altered text for ${JSON.stringify(description)}`)
    }
  }))

  it.live("unquoted legacy placeholder (`cmd ${TASK_DESCRIPTION}`): X never exists; only word splitting applies", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const marker = `${dir}/X`
    for (const [i, description] of hostile(marker).entries()) {
      const id = `u-${i}`
      const outcome = yield* wake(dir, `printf '%s' \${TASK_DESCRIPTION} > "$RESULTS_DIR/seen-\${TASK_ID}"`, requestFor(dir, id, description))
      assert.strictEqual(outcome.status, "success", `case ${JSON.stringify(description)}: ${outcome.error ?? ""}`)
      assert.isFalse(NFS.existsSync(marker), `X was created by ${JSON.stringify(description)}`)
      assert.strictEqual(read(`${dir}/seen-${id}`), wordSplit(description), `case ${JSON.stringify(description)}`)
    }
  }))

  it.live("${TASK_ID} and ${TASK_JSON} placeholders in a command string still work, and carry the exact text", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const marker = `${dir}/X`
    const description = `"; touch ${marker}; " $(touch ${marker}) \`touch ${marker}\``
    const json = JSON.stringify({ task_id: "j-1", description, metadata: { note: `'; touch ${marker}; '` } })
    const outcome = yield* wake(dir, `printf '%s|%s' "\${TASK_ID}" "\${TASK_JSON}" > "$RESULTS_DIR/seen-json"`, requestFor(dir, "j-1", description, json))
    assert.strictEqual(outcome.status, "success")
    assert.isFalse(NFS.existsSync(marker))
    assert.strictEqual(read(`${dir}/seen-json`), `j-1|${json}`)
  }))
})

describe("array wake commands: task text as whole arguments, no shell (protection: per-argument substitution, exec without a shell)", () => {
  const script = `printf '%s' "$1" > "$3"; printf '%s' "$2" > "$3.embedded"; printf '%s' "$#" > "$3.argc"`
  const runCase = (dir: string, id: string, description: string) =>
    wake(dir, ["/bin/sh", "-c", script, "sh", "${TASK_DESCRIPTION}", "--task=${TASK_DESCRIPTION}:${TASK_ID}", `${dir}/seen-${id}`], requestFor(dir, id, description))

  it.live("hostile descriptions: X never exists, each argument is the exact text, the argument count never changes", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const marker = `${dir}/X`
    for (const [i, description] of hostile(marker).entries()) {
      const id = `a-${i}`
      const outcome = yield* runCase(dir, id, description)
      assert.strictEqual(outcome.status, "success", `case ${JSON.stringify(description)}: ${outcome.error ?? ""}`)
      assert.isFalse(NFS.existsSync(marker), `X was created by ${JSON.stringify(description)}`)
      assert.strictEqual(read(`${dir}/seen-${id}`), description, `whole argument for ${JSON.stringify(description)}`)
      assert.strictEqual(read(`${dir}/seen-${id}.embedded`), `--task=${description}:${id}`, `embedded argument for ${JSON.stringify(description)}`)
      assert.strictEqual(read(`${dir}/seen-${id}.argc`), "3", `argument count for ${JSON.stringify(description)}`)
    }
  }))

  it.live("descriptions that look like replacement patterns or placeholders are passed through unchanged", () => Effect.gen(function*() {
    // `$&`, `$$`, "$`", `$'` are special in String.prototype.replace(All) replacement strings; `${TASK_JSON}` inside a
    // description must not be substituted a second time. The command must see the hub's text exactly.
    const dir = yield* tempDir
    const cases = ["price: $$5", "echo $&", "before $` after", "$' tail", "literal ${TASK_JSON} and ${TASK_ID}", "$1$2$<name>"]
    const seen: Array<string> = []
    for (const [i, description] of cases.entries()) {
      const id = `p-${i}`
      const outcome = yield* runCase(dir, id, description)
      assert.strictEqual(outcome.status, "success")
      const got = read(`${dir}/seen-${id}`)
      if (got !== description) seen.push(`${JSON.stringify(description)} arrived as ${JSON.stringify(got)}`)
    }
    assert.deepStrictEqual(seen, [], "descriptions altered on their way into an array command's argument")
  }))
})

describe("TASK_JSON over 64 KiB stays out of the environment (protection: TASK_JSON_ENV_LIMIT in wakeVariables)", () => {
  const probe = `{ if [ -n "\${TASK_JSON+x}" ]; then printf 'present'; else printf 'absent'; fi; printf '|%s|%s' "$TASK_FILE" "$TASK_ID"; } > "$RESULTS_DIR/probe-$TASK_ID"`
  const jsonOfBytes = (id: string, bytes: number, unit = "x") => {
    const base = JSON.stringify({ task_id: id, description: "" })
    const unitBytes = Buffer.byteLength(unit, "utf8")
    const fill = unit.repeat(Math.floor((bytes - Buffer.byteLength(base, "utf8")) / unitBytes))
    return JSON.stringify({ task_id: id, description: fill })
  }

  it.live("exactly 64 KiB: present; one byte over: absent; 40k two-byte characters (80 KB, 40k chars): absent; TASK_FILE always there", () => Effect.gen(function*() {
    const dir = yield* tempDir
    const at = jsonOfBytes("at", 65_536)
    const over = jsonOfBytes("over", 65_537)
    const wide = jsonOfBytes("wide", 80_000, "é")
    assert.strictEqual(Buffer.byteLength(at, "utf8"), 65_536)
    assert.strictEqual(Buffer.byteLength(over, "utf8"), 65_537)
    assert.isBelow(wide.length, 65_536)
    for (const [id, json, expected] of [["at", at, "present"], ["over", over, "absent"], ["wide", wide, "absent"]] as const) {
      const outcome = yield* wake(dir, probe, requestFor(dir, id, "d", json))
      assert.strictEqual(outcome.status, "success", outcome.error ?? "")
      assert.strictEqual(read(`${dir}/probe-${id}`), `${expected}|${dir}/${id}.task.json|${id}`, id)
    }
  }))
})

describe("SIDECAR_* variables never reach the agent (protection: agentBaseEnv + extendEnv: false)", () => {
  const token = "sidecar-env-token-9c41e7"
  const withEnv = <A, E, R>(vars: Record<string, string>, use: Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
        Object.assign(process.env, vars)
        return saved
      }),
      () => use,
      (saved) => Effect.sync(() => {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k]
          else process.env[k] = v
        }
      })
    )

  it.live("string and array commands: SIDECAR_TOKEN and friends absent, other variables present", () => Effect.gen(function*() {
    const dir = yield* tempDir
    yield* withEnv({
      SIDECAR_TOKEN: token,
      SIDECAR_HUB_URL: "ws://127.0.0.1:1/ws",
      SIDECAR_AGENT_ID: "agent-x",
      SIDECAR_SOMETHING_ELSE: "also-hidden",
      SECTEST_VISIBLE: "yes"
    }, Effect.gen(function*() {
      const forms: ReadonlyArray<readonly [string, WakeCommand]> = [
        ["string", `env > "$RESULTS_DIR/env-string"`],
        ["array", ["/bin/sh", "-c", `env > "$RESULTS_DIR/env-array"`]]
      ]
      for (const [form, command] of forms) {
        const outcome = yield* wake(dir, command, requestFor(dir, `e-${form}`, "d"))
        assert.strictEqual(outcome.status, "success", outcome.error ?? "")
        const env = read(`${dir}/env-${form}`)
        assert.include(env, "SECTEST_VISIBLE=yes", `${form}: the agent sees the sidecar's ordinary environment`)
        assert.include(env, `TASK_ID=e-${form}`, form)
        assert.notInclude(env, "SIDECAR_", `${form}: a SIDECAR_* variable reached the agent`)
        assert.notInclude(env, token, `${form}: the token reached the agent`)
        assert.notInclude(env, "also-hidden", form)
      }
    }))
    assert.strictEqual(process.env["SIDECAR_TOKEN"], undefined, "restored after the test")
  }))
})

describe("secrets in the wake command's stderr come back redacted (protection: redactText over the stderr tail)", () => {
  const token = "tok-3f8a9c2e7d51"
  const secret = "db-pass-77661234"
  const withSecrets = { token: Redacted.make(token), secrets: [Redacted.make(token), Redacted.make(secret)] }

  it.live("token and configured secret redacted by exact value, even when split across writes or after long output", () => Effect.gen(function*() {
    const dir = yield* tempDir
    NFS.writeFileSync(`${dir}/creds`, `${token}\n${secret}\n`, { mode: 0o600 })
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["plain", `{ read t; read s; } < "${dir}/creds"; echo "auth with $t failed; password=$s; retry $t" >&2; exit 3`],
      // the token arrives in two chunks: redaction must apply to the joined tail, not per chunk
      ["split", `{ read t; read s; } < "${dir}/creds"; printf '%s' "$t" | head -c 6 >&2; sleep 0.1; printf '%s|%s\\n' "$(printf '%s' "$t" | tail -c +7)" "$s" >&2; exit 3`],
      // more stderr than the tail keeps: the secret at the end is still redacted
      ["long", `{ read t; read s; } < "${dir}/creds"; head -c 5000 /dev/zero | tr '\\0' 'z' >&2; echo " $t $s" >&2; exit 3`]
    ]
    for (const [name, command] of cases) {
      const outcome = yield* wake(dir, command, requestFor(dir, `s-${name}`, "d"), withSecrets)
      assert.strictEqual(outcome.status, "failed", name)
      assert.strictEqual(outcome.exitCode, 3, name)
      assert.include(outcome.stderrTail, "<redacted>", `${name}: ${outcome.stderrTail.slice(-200)}`)
      assert.notInclude(outcome.stderrTail, token, `${name}: the token is in the stderr tail`)
      assert.notInclude(outcome.stderrTail, secret, `${name}: the secret is in the stderr tail`)
    }
    const plain = yield* wake(dir, cases[0]![1], requestFor(dir, "s-again", "d"), withSecrets)
    assert.strictEqual(plain.stderrTail.trim(), "auth with <redacted> failed; password=<redacted>; retry <redacted>")
  }))
})

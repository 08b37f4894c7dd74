/**
 * `agent-sidecar init`: from nothing to a sidecar driving a real coding agent. Finds the agent CLIs on PATH, asks
 * (on a terminal) or takes flags, and writes a 0600 `config.json` plus a 0700 wake script for that CLI beside it
 * (see `init/wakeScript.ts`). Writes nothing with `--print`, and replaces nothing without `--force`.
 */
import { Console, Effect, FileSystem, Option, Path, Redacted, Result } from "effect"
import { Command, Flag, Prompt } from "effect/cli"
import * as NFS from "node:fs"
import * as NOS from "node:os"
import * as NPath from "node:path"
import { AgentIdPattern, decodeConfigFile } from "../domain/Config.ts"
import { PlatformLayer } from "../layers/Platform.ts"
import { writeAtomic } from "../platform/atomicWrite.ts"
import { detectAgents, type Detected, findPreset, type Preset, presetIds, presets, whichOnPath } from "./init/presets.ts"
import { commandLine, wakeScript } from "./init/wakeScript.ts"
import { CliError } from "./shared.ts"

export const WAKE_SCRIPT_NAME = "agent-wake.sh"
const DEFAULT_HUB_URL = "ws://127.0.0.1:8787/ws"

const flags = {
  agent: Flag.Literals("agent", presetIds).pipe(
    Flag.withDescription("The coding-agent CLI to drive (default: the first found on PATH)"),
    Flag.optional
  ),
  hubUrl: Flag.String("hub-url").pipe(Flag.withDescription(`The hub's WebSocket URL, ws:// or wss:// (default: ${DEFAULT_HUB_URL}, the dev hub)`), Flag.optional),
  agentId: Flag.String("agent-id").pipe(Flag.withDescription("This agent's id at the hub, [A-Za-z0-9._-]{1,64} (default: <agent>-<hostname>)"), Flag.optional),
  tokenFile: Flag.String("token-file").pipe(Flag.withDescription("File holding the hub's token, written to the config as token_file (default: ./token beside the config)"), Flag.optional),
  workdir: Flag.String("workdir").pipe(Flag.withDescription("The folder the agent works in (default: the current folder)"), Flag.optional),
  config: Flag.String("config").pipe(Flag.withAlias("c"), Flag.withDescription("Where to write the config (default: ./config.json, where run looks); the wake script goes beside it"), Flag.withDefault("./config.json")),
  yes: Flag.Boolean("yes").pipe(Flag.withAlias("y"), Flag.withDescription("Ask nothing: take the flags, and defaults for the rest"), Flag.withDefault(false)),
  print: Flag.Boolean("print").pipe(Flag.withDescription("Show what would be written, and write nothing"), Flag.withDefault(false)),
  force: Flag.Boolean("force").pipe(Flag.withDescription("Replace an existing config and wake script"), Flag.withDefault(false))
}

interface Args {
  readonly agent: Option.Option<string>
}

/** The config schema's own verdict on one field (the same rules `run` applies). */
const fieldProblem = (key: "hub_url" | "agent_id", value: string): string | undefined => {
  const decoded = decodeConfigFile({ agent_id: "a", hub_url: "ws://a", token: "t", [key]: value })
  return Result.isFailure(decoded) ? decoded.failure.find((p) => p.key === key)?.message : undefined
}

const defaultAgentId = (preset: Preset): string => {
  const host = NOS.hostname().replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[.-]+/, "")
  const id = `${preset.id}-${host}`.slice(0, 64)
  return AgentIdPattern.test(id) ? id : preset.id
}

const usage = (message: string) => new CliError({ message, exitCode: 1 })

const ask = <A>(prompt: Prompt.Prompt<A>) =>
  Prompt.run(prompt).pipe(Effect.catchTag("QuitError", () => Effect.fail(usage("init cancelled; nothing written"))))

const validated = (key: "hub_url" | "agent_id") => (value: string) => {
  const problem = fieldProblem(key, value.trim())
  return problem === undefined ? Effect.succeed(value.trim()) : Effect.fail(`${key} ${problem}`)
}

const isFolder = (value: string) => {
  const dir = NPath.resolve(value.trim())
  return NFS.statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true
    ? Effect.succeed(dir)
    : Effect.fail(`the work folder ${dir} is not a folder; create it first`)
}

/** A flag's value if given; else a question on a terminal; else the default. Flag values are checked too. */
const choose = (flag: Option.Option<string>, interactive: boolean, question: Prompt.Prompt<string>, fallback: string, check?: (v: string) => Effect.Effect<string, string>) =>
  Option.match(flag, {
    onSome: (value) => check === undefined ? Effect.succeed(value) : check(value).pipe(Effect.mapError(usage)),
    onNone: () => interactive ? ask(question) : Effect.succeed(fallback)
  })

const pickAgent = (args: Args, interactive: boolean, detected: ReadonlyArray<Detected>) => Effect.gen(function*() {
  if (Option.isSome(args.agent)) return findPreset(args.agent.value)!
  if (interactive) {
    const found = new Set(detected.map((d) => d.preset.id))
    const ordered = [...detected.map((d) => d.preset), ...presets.filter((p) => !found.has(p.id))]
    return yield* ask(Prompt.Select({
      message: "Which coding agent should the sidecar drive?",
      choices: ordered.map((p) => ({ title: `${p.label} (${p.bin})`, value: p, description: found.has(p.id) ? "found on PATH" : "not found on PATH" }))
    }))
  }
  const first = detected[0]
  if (first === undefined) {
    return yield* usage(`no agent CLI found on PATH (looked for ${presets.map((p) => p.bin).join(", ")}); install one, or pass --agent NAME`)
  }
  return first.preset
})

/** `relative` made relative to `base` when it lies inside it (`./x`), else absolute. */
const configRelative = (path: Path.Path, base: string, target: string) => {
  const rel = path.relative(base, target)
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? `./${rel}` : target
}

export const initCommand = Command.make("init", flags, (args) => Effect.gen(function*() {
  const path = yield* Path.Path
  const fs = yield* FileSystem.FileSystem
  const interactive = !args.yes && !args.print && process.stdin.isTTY === true
  const detected = detectAgents(process.env["PATH"])
  if (!interactive) {
    yield* Console.error(detected.length === 0
      ? `agent CLIs on PATH: none of ${presets.map((p) => p.bin).join(", ")}`
      : `agent CLIs on PATH: ${detected.map((d) => `${d.preset.bin} (${d.path})`).join(", ")}`)
  }

  const configPath = path.resolve(args.config)
  const configDir = path.dirname(configPath)
  const scriptPath = path.join(configDir, WAKE_SCRIPT_NAME)
  const existing = []
  for (const p of [configPath, scriptPath]) if (yield* fs.exists(p)) existing.push(p)
  if (existing.length > 0 && !args.force && !args.print) {
    return yield* usage(`${existing.join(" and ")} already exist${existing.length === 1 ? "s" : ""}; pass --force to replace, or --config elsewhere`)
  }

  const preset = yield* pickAgent(args, interactive, detected)
  const hubUrl = yield* choose(args.hubUrl, interactive, Prompt.String({ message: "Hub WebSocket URL", default: DEFAULT_HUB_URL, validate: validated("hub_url") }), DEFAULT_HUB_URL, validated("hub_url"))
  const agentId = yield* choose(args.agentId, interactive, Prompt.String({ message: "Agent id at the hub", default: defaultAgentId(preset), validate: validated("agent_id") }), defaultAgentId(preset), validated("agent_id"))
  const tokenFileInput = yield* choose(args.tokenFile, interactive, Prompt.String({ message: "File with the hub's token (token_file)", default: "./token" }), "./token")
  const workdir = path.resolve(yield* choose(args.workdir, interactive, Prompt.String({ message: "Folder the agent works in", default: process.cwd(), validate: isFolder }), process.cwd(), isFolder))
  // A path typed in answer to the question is relative to the config's folder (as in the config itself);
  // a --token-file flag is relative to the current folder, as any path on a command line.
  const tokenFile = configRelative(path, configDir, Option.isSome(args.tokenFile) ? path.resolve(tokenFileInput) : path.resolve(configDir, tokenFileInput))
  const agentBin = detected.find((d) => d.preset.id === preset.id)?.path ?? whichOnPath(preset.bin, process.env["PATH"]) ?? preset.bin

  const config = {
    agent_id: agentId,
    hub_url: hubUrl,
    token_file: tokenFile,
    wake_command: [scriptPath],
    results_dir: "./results",
    queue_path: "./queue.json",
    log_file: "./sidecar.log"
  }
  const decoded = decodeConfigFile(config)
  if (Result.isFailure(decoded)) return yield* usage(decoded.failure.map((p) => `${p.key}: ${p.message}`).join("; "))
  const configText = `${JSON.stringify(config, null, 2)}\n`
  const script = wakeScript({
    preset,
    agentBin,
    workdir,
    node: process.execPath,
    sidecar: NFS.realpathSync(process.argv[1] ?? "agent-sidecar"), // the CLI that is running now
    writtenAt: new Date().toISOString()
  })

  if (args.print) {
    yield* Console.log(`# ${configPath} (0600)\n${configText}\n# ${scriptPath} (0700)\n${script}`)
    return yield* Console.log(`# agent command: ${commandLine(preset, agentBin)}\n# (--print: nothing written)`)
  }

  yield* fs.makeDirectory(configDir, { recursive: true })
  yield* writeAtomic(scriptPath, script)
  yield* fs.chmod(scriptPath, 0o700)
  yield* writeAtomic(configPath, configText) // 0600: it names the token's file, and may be given the token itself

  const tokenPath = path.resolve(configDir, tokenFile)
  if (interactive && !(yield* fs.exists(tokenPath))) {
    const token = yield* ask(Prompt.Password({ message: `The hub's token (saved to ${tokenPath}, 0600; empty: later)` }))
    const value = Redacted.value(token).trim()
    if (value !== "") yield* writeAtomic(tokenPath, `${value}\n`)
  }
  const tokenMissing = !(yield* fs.exists(tokenPath))
  const shown = path.relative(process.cwd(), configPath) || configPath
  yield* Console.log([
    `wrote ${configPath} (0600) and ${scriptPath} (0700)`,
    `agent: ${preset.label}, run as: ${commandLine(preset, agentBin)}`,
    `  in ${workdir}`,
    ...(agentBin === preset.bin ? [`  note: ${preset.bin} is not on PATH now; the sidecar will look for it on its own PATH`] : []),
    "next:",
    ...(tokenMissing ? [`  put the hub's token in ${tokenPath} (chmod 600), or set SIDECAR_TOKEN`] : []),
    `  npx agent-sidecar doctor --config ${shown}`,
    `  npx agent-sidecar run --config ${shown}`
  ].join("\n"))
}).pipe(Effect.provide(PlatformLayer))).pipe(
  Command.withDescription("Set up a sidecar for a coding-agent CLI on PATH (claude, codex, gemini, aider, opencode, goose): writes config.json and a wake script")
)

/**
 * The coding-agent CLIs `agent-sidecar init` knows: how each runs one prompt headless (no questions, exits when
 * done, the answer on stdout), and where that command line comes from. Pure data plus PATH detection.
 *
 * The prompt is always ONE argument, and always in a form the CLI cannot take for an option even when the task
 * text starts with `-`: after `--`, or glued to its flag as `--flag=TEXT`.
 */
import * as NFS from "node:fs"
import * as NPath from "node:path"

/** One argument of the agent's command line: literal text, or the task's description. */
export type Arg = { readonly literal: string } | { readonly prompt: "alone" } | { readonly prompt: "glued"; readonly flag: string }

export interface Preset {
  readonly id: string
  /** The executable looked for on PATH. */
  readonly bin: string
  readonly label: string
  /** Everything after `bin`. */
  readonly args: ReadonlyArray<Arg>
  /** Where the command line was checked, and what its flags do. Written into the wake script. */
  readonly source: ReadonlyArray<string>
}

const lit = (literal: string): Arg => ({ literal })
const alone: Arg = { prompt: "alone" }
const glued = (flag: string): Arg => ({ prompt: "glued", flag })

export const presets: ReadonlyArray<Preset> = [
  {
    id: "claude",
    bin: "claude",
    label: "Claude Code",
    args: [lit("-p"), lit("--output-format"), lit("text"), lit("--permission-mode"), lit("acceptEdits"), lit("--"), alone],
    source: [
      "Claude Code, \"Run Claude Code programmatically\" (https://code.claude.com/docs/en/headless, formerly",
      "docs.anthropic.com/en/docs/claude-code/sdk/sdk-headless): `claude -p \"query\"` runs non-interactively and prints",
      "the final result; `--output-format text|json|stream-json` (text: the answer only). Permission modes",
      "(https://code.claude.com/docs/en/permission-modes): acceptEdits lets it edit files without asking; anything",
      "else that would ask is refused in -p mode. Use bypassPermissions only in an isolated container or VM."
    ]
  },
  {
    id: "codex",
    bin: "codex",
    label: "OpenAI Codex CLI",
    args: [lit("exec"), lit("--sandbox"), lit("workspace-write"), lit("--skip-git-repo-check"), lit("--"), alone],
    source: [
      "OpenAI Codex, \"Non-interactive mode\" (https://developers.openai.com/codex/noninteractive): `codex exec \"<task>\"`",
      "takes the prompt as one argument, streams progress to stderr and prints only the final message to stdout.",
      "It runs read-only by default; `--sandbox workspace-write` allows edits in the working folder (the docs' advice",
      "over the deprecated --full-auto). `--skip-git-repo-check` lets it run in a folder that is not a git repository."
    ]
  },
  {
    id: "gemini",
    bin: "gemini",
    label: "Gemini CLI",
    args: [glued("--prompt"), lit("--approval-mode"), lit("auto_edit")],
    source: [
      "Gemini CLI, \"Headless mode\" (https://geminicli.com/docs/cli/headless/ and docs/cli/tutorials/automation):",
      "`gemini -p \"<prompt>\"` (or --prompt) runs once without the interactive UI and prints the answer to stdout;",
      "exit codes 0 ok, 1 error, 42 bad input, 53 turn limit. `gemini --help`: `--approval-mode auto_edit`",
      "auto-approves edit tools (yolo would approve everything)."
    ]
  },
  {
    id: "aider",
    bin: "aider",
    label: "Aider",
    args: [glued("--message"), lit("--yes-always"), lit("--no-pretty")],
    source: [
      "Aider, \"Scripting aider\" (https://aider.chat/docs/scripting.html): `aider --message \"<instruction>\"` does that",
      "one thing, applies the edits and exits; `--yes-always` answers every confirmation (docs/config/options.html).",
      "`--no-pretty` keeps colour codes out of the output."
    ]
  },
  {
    id: "opencode",
    bin: "opencode",
    label: "opencode",
    args: [lit("run"), lit("--"), alone],
    source: [
      "opencode, CLI docs (https://opencode.ai/docs/cli/#run): `opencode run [message..]` runs non-interactively with",
      "the message as the prompt and exits when the session is idle; words after `--` are part of the message.",
      "Without a terminal, permissions it would ask for are refused (add --dangerously-skip-permissions only in a",
      "sandbox)."
    ]
  },
  {
    id: "goose",
    bin: "goose",
    label: "goose",
    args: [lit("run"), glued("--text")],
    source: [
      "goose, \"Running Tasks\" (https://block.github.io/goose/docs/guides/running-tasks): `goose run -t \"<instructions>\"`",
      "(--text) starts a session, carries out the instructions and exits when done. What it may do without asking",
      "is goose's own setting (GOOSE_MODE, `goose configure`)."
    ]
  }
]

export const presetIds = presets.map((p) => p.id)

export const findPreset = (id: string): Preset | undefined => presets.find((p) => p.id === id)

/** The executable's absolute path, looked up on `pathVariable` as a shell would (first match wins). */
export const whichOnPath = (bin: string, pathVariable: string | undefined): string | undefined => {
  for (const dir of (pathVariable ?? "").split(NPath.delimiter)) {
    if (dir === "") continue
    const candidate = NPath.resolve(dir, bin)
    try {
      const stat = NFS.statSync(candidate)
      if (stat.isFile()) {
        NFS.accessSync(candidate, NFS.constants.X_OK)
        return candidate
      }
    } catch {
      // not here
    }
  }
  return undefined
}

export interface Detected {
  readonly preset: Preset
  readonly path: string
}

/** The known agent CLIs found on PATH, in the order of `presets`. */
export const detectAgents = (pathVariable: string | undefined): ReadonlyArray<Detected> =>
  presets.flatMap((preset) => {
    const path = whichOnPath(preset.bin, pathVariable)
    return path === undefined ? [] : [{ preset, path }]
  })

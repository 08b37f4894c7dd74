/**
 * The fork server's protocol (issue 14): a long-lived `/bin/sh` forks the wake commands, because Node forks its
 * whole address space for every `spawn` (Linux `fork`, not `vfork`). In the daemon that fork, its copy-on-write
 * faults and Node's stdio plumbing cost about 4 ms of CPU per task; a small shell forks in a fraction of that.
 *
 * A request is a file of shell source that calls `__launch` with every value single-quoted (see `shQuote`), so no
 * task text is ever parsed as code; it travels in a slot file that is reused (`requestSlots.ts`), and the server is
 * told the slot and the request's id on one line, because `read` takes a long line one byte per syscall and a task's
 * JSON may be 64 KiB. Per request the server answers `P <id> <pid>` once the
 * command runs and `X <id> <status>` when it ends (`$?`: the exit code, or 128 + N for signal N). The command runs
 * in its own session (`setsid`, so the sidecar can signal its whole process group, as Node's `detached` does), with
 * exactly the environment given (`env -i`), stdin and stdout on /dev/null and stderr in `<id>.err`. The `X` line
 * ends with 1 when `<id>.err` is not empty, else 0 (a builtin test), so an empty one is never opened to be read.
 */

/** `'…'` with each `'` written as `'\''`: the shell takes every other byte literally, newlines included. */
export const shQuote = (value: string): string => `'${value.replaceAll("'", "'\\''")}'`

/**
 * The server: `$1` setsid, `$2` env, `$3` the request folder. The command runs in a background subshell that waits
 * for it and reports its status; `jobs` after every line reaps the subshells that have ended (dash keeps finished
 * background jobs as zombies until asked), and an empty line asks for just that. A line `<slot> <id>` asks it to run
 * request `<id>` from `slot-<slot>.req`. Before reading the request the server marks it taken, writing `<id>` into
 * `slot-<slot>.taken` (a redirection: no fork, and no new file once the slot was used; `1<>` writes over the old id
 * in place instead of truncating the file, which freed its block and took a new one per wake), so a sidecar that
 * gives up waiting can tell a request it may run elsewhere (withdrawn before it was taken) from one that may have
 * started (`withdraw` in requestSlots.ts, which reads the mark's first whole line). A withdrawn request's file is gone and its line is skipped; `command .` keeps a
 * file withdrawn between the test and the `.` from ending the server (a special builtin's error would). `__launch`
 * runs only the request its line names (`__want`): a slot holding another request runs nothing. Everything per
 * line is a builtin: the only forks are the command's. The loop ends when the sidecar closes the server's stdin.
 */
export const SERVER_SCRIPT = `
__launch() {
  [ "$1" = "$__want" ] || return 0
  __id=$1 __err=$2 __cwd=$3
  shift 3
  (
    ( cd -- "$__cwd" && exec "$__setsid" "$__env" -i "$@" ) </dev/null >/dev/null 2>"$__err" &
    echo "P $__id $!"
    wait "$!"
    __status=$?
    if [ -s "$__err" ]; then echo "X $__id $__status 1"; else echo "X $__id $__status 0"; fi
  ) &
}
__setsid=$1 __env=$2 __dir=$3
while IFS= read -r __line; do
  __slot=\${__line%%' '*} __want=\${__line#*' '}
  case $__line in
    '') ;;
    *' '*) case $__slot:$__want in
        *[!0-9:]*|:*|*:|*:*:*) echo "E bad request line" ;;
        *) if echo "$__want" 1<>"$__dir/slot-$__slot.taken" && [ -r "$__dir/slot-$__slot.req" ]; then
             command . "$__dir/slot-$__slot.req"
           fi ;;
      esac ;;
    *) echo "E bad request line" ;;
  esac
  jobs >/dev/null
done
`

export interface LaunchSpec {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** Variables every launch shares (the sidecar's own environment, filtered): one object, checked and quoted once. */
  readonly baseEnv?: Readonly<Record<string, string>> | undefined
  /** This launch's variables, over `baseEnv`: together the whole environment of the command (nothing is inherited). */
  readonly env: Readonly<Record<string, string>>
  readonly cwd: string
}

/** The command's whole environment, as Node's spawn takes it. */
export const fullEnv = (spec: LaunchSpec): Readonly<Record<string, string>> =>
  spec.baseEnv === undefined ? spec.env : { ...spec.baseEnv, ...spec.env }

/**
 * Why these variables cannot go through `env -i` (undefined: they can): it reads every leading word with `=` as a
 * variable and a leading `-` as its own option, so a name that is empty, holds `=` or starts with `-` cannot pass.
 */
const envProblem = (env: Readonly<Record<string, string>>): string | undefined => {
  for (const [name, value] of Object.entries(env)) {
    if (name === "" || name.includes("=") || name.startsWith("-")) return "variable name"
    if (name.includes("\0") || value.includes("\0")) return "NUL byte"
  }
  return undefined
}

/** Each variable as one quoted `NAME=VALUE` word for `env -i`; `env` applies them in order, so a later one wins. */
const envWords = (env: Readonly<Record<string, string>>): string =>
  Object.entries(env).map(([name, value]) => shQuote(`${name}=${value}`)).join(" ")

// Issue 14: the sidecar's environment (often 50+ variables) was checked and quoted again for every wake.
const baseEnvs = new WeakMap<object, { readonly words: string; readonly problem: string | undefined }>()
const prepared = (env: Readonly<Record<string, string>>) => {
  let found = baseEnvs.get(env)
  if (found === undefined) {
    found = { words: envWords(env), problem: envProblem(env) }
    baseEnvs.set(env, found)
  }
  return found
}

/**
 * Why `spec` cannot go through the server (undefined: it can): a command name `env -i` would misread (empty, with
 * `=`, or a leading `-`), a variable it would misread (see `envProblem`), or a NUL byte anywhere. Node's spawn runs
 * those instead.
 */
export const unsupported = (spec: LaunchSpec): string | undefined => {
  if (spec.command === "" || spec.command.includes("=") || spec.command.startsWith("-")) return "command name"
  const problem = (spec.baseEnv === undefined ? undefined : prepared(spec.baseEnv).problem) ?? envProblem(spec.env)
  if (problem !== undefined) return problem
  if (`${spec.command}${spec.args.join("")}${spec.cwd}`.includes("\0")) return "NUL byte"
  return undefined
}

/** The request file's text for launch `id`. */
export const requestSource = (id: number, errFile: string, spec: LaunchSpec): string => {
  const words = [
    [String(id), errFile, spec.cwd].map(shQuote).join(" "),
    spec.baseEnv === undefined ? "" : prepared(spec.baseEnv).words,
    envWords(spec.env),
    [spec.command, ...spec.args].map(shQuote).join(" ")
  ]
  return `__launch ${words.filter((w) => w !== "").join(" ")}\n`
}

export type ServerLine =
  | { readonly _tag: "Started"; readonly id: number; readonly pid: number }
  /** `stderr`: whether the command wrote anything to stderr (undefined from a server that does not say). */
  | { readonly _tag: "Exited"; readonly id: number; readonly status: number; readonly stderr?: boolean }
  | { readonly _tag: "Other"; readonly text: string }

export const parseServerLine = (line: string): ServerLine => {
  const match = /^(?:P (\d+) (\d+)|X (\d+) (\d+)(?: ([01]))?)$/.exec(line)
  if (match === null) return { _tag: "Other", text: line }
  if (match[1] !== undefined) return { _tag: "Started", id: Number(match[1]), pid: Number(match[2]) }
  const exited = { _tag: "Exited", id: Number(match[3]), status: Number(match[4]) } as const
  return match[5] === undefined ? exited : { ...exited, stderr: match[5] === "1" }
}

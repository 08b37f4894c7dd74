/**
 * The fork server's protocol (issue 14): a long-lived `/bin/sh` forks the wake commands, because Node forks its
 * whole address space for every `spawn` (Linux `fork`, not `vfork`). In the daemon that fork, its copy-on-write
 * faults and Node's stdio plumbing cost about 4 ms of CPU per task; a small shell forks in a fraction of that.
 *
 * A request is a file of shell source that calls `__launch` with every value single-quoted (see `shQuote`), so no
 * task text is ever parsed as code; the server is told the file's id on one line, because `read` takes a long line
 * one byte per syscall and a task's JSON may be 64 KiB. Per request the server answers `P <id> <pid>` once the
 * command runs and `X <id> <status>` when it ends (`$?`: the exit code, or 128 + N for signal N). The command runs
 * in its own session (`setsid`, so the sidecar can signal its whole process group, as Node's `detached` does), with
 * exactly the environment given (`env -i`), stdin and stdout on /dev/null and stderr in `<id>.err`.
 */

/** `'…'` with each `'` written as `'\''`: the shell takes every other byte literally, newlines included. */
export const shQuote = (value: string): string => `'${value.replaceAll("'", "'\\''")}'`

/**
 * The server: `$1` setsid, `$2` env, `$3` the request folder. The command runs in a background subshell that waits
 * for it and reports its status; `jobs` after every line reaps the subshells that have ended (dash keeps finished
 * background jobs as zombies until asked), and an empty line asks for just that. Before reading request `<id>` the server
 * marks it taken (`<id>.taken`, by a redirection: no fork), so a sidecar that gives up waiting can tell a request it
 * may run elsewhere (withdrawn before it was taken) from one that may have started. A withdrawn request is skipped
 * (`.` of a missing file would end the server). The loop ends when the sidecar
 * closes the server's stdin.
 */
export const SERVER_SCRIPT = `
__launch() {
  __id=$1 __err=$2 __cwd=$3
  shift 3
  (
    ( cd -- "$__cwd" && exec "$__setsid" "$__env" -i "$@" ) </dev/null >/dev/null 2>"$__err" &
    echo "P $__id $!"
    wait "$!"
    echo "X $__id $?"
  ) &
}
__setsid=$1 __env=$2 __dir=$3
while IFS= read -r __req; do
  case $__req in
    '') ;;
    *[!0-9]*) echo "E bad request line" ;;
    *) if true >"$__dir/$__req.taken" && [ -r "$__dir/$__req.req" ]; then . "$__dir/$__req.req"; fi ;;
  esac
  jobs >/dev/null
done
`

export interface LaunchSpec {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** The whole environment of the command (nothing is inherited). */
  readonly env: Readonly<Record<string, string>>
  readonly cwd: string
}

/**
 * Why `spec` cannot go through the server (undefined: it can). `env -i NAME=VALUE… COMMAND` reads every leading
 * word with `=` as a variable and a leading `-` as its own option, so such a command, or a variable name that is
 * empty, holds `=` or starts with `-`, goes through Node's spawn instead.
 */
export const unsupported = (spec: LaunchSpec): string | undefined => {
  if (spec.command === "" || spec.command.includes("=") || spec.command.startsWith("-")) return "command name"
  if (Object.keys(spec.env).some((name) => name === "" || name.includes("=") || name.startsWith("-"))) return "variable name"
  if (`${spec.command}${spec.args.join("")}${Object.entries(spec.env).join("")}${spec.cwd}`.includes("\0")) return "NUL byte"
  return undefined
}

/** The request file's text for launch `id`. */
export const requestSource = (id: number, errFile: string, spec: LaunchSpec): string => {
  const words = [
    String(id), errFile, spec.cwd,
    ...Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
    spec.command, ...spec.args
  ]
  return `__launch ${words.map(shQuote).join(" ")}\n`
}

export type ServerLine =
  | { readonly _tag: "Started"; readonly id: number; readonly pid: number }
  | { readonly _tag: "Exited"; readonly id: number; readonly status: number }
  | { readonly _tag: "Other"; readonly text: string }

export const parseServerLine = (line: string): ServerLine => {
  const match = /^([PX]) (\d+) (\d+)$/.exec(line)
  if (match === null) return { _tag: "Other", text: line }
  const id = Number(match[2])
  const value = Number(match[3])
  return match[1] === "P" ? { _tag: "Started", id, pid: value } : { _tag: "Exited", id, status: value }
}

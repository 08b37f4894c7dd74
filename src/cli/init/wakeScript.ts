/**
 * The wake script `agent-sidecar init` writes for a coding-agent CLI. Pure: text in, text out.
 *
 * The sidecar runs it (an array `wake_command`, no shell in between) with the task in its environment. It reports
 * `.started` at once, starts the agent in the background in a session of its own, and returns. The task text is
 * only ever expanded from the environment inside double quotes, as one argument: never pasted into the script,
 * never evaluated.
 */
import type { Arg, Preset } from "./presets.ts"

/** Single-quotes `text` for POSIX sh: everything literal, `'` written as `'\''`. */
export const shQuote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`

/** A word as the shell should see it: bare when that is plainly safe, else single-quoted. */
const shWord = (text: string): string => /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : shQuote(text)

const renderArg = (arg: Arg): string => {
  if ("literal" in arg) return shWord(arg.literal)
  return arg.prompt === "alone" ? `"$TASK_DESCRIPTION"` : `${arg.flag}="$TASK_DESCRIPTION"`
}

/** The agent's command line as the script writes it (`$TASK_DESCRIPTION` stays a variable). */
export const commandLine = (preset: Preset, bin: string): string =>
  [shWord(bin), ...preset.args.map(renderArg)].join(" ")

export interface WakeScriptOptions {
  readonly preset: Preset
  /** The agent executable: its absolute path when it was found on PATH, else its name. */
  readonly agentBin: string
  /** The folder the agent works in (absolute). */
  readonly workdir: string
  /** The node binary and the agent-sidecar CLI that run `agent-sidecar report` (absolute). */
  readonly node: string
  readonly sidecar: string
  /** When it was written, for the header. */
  readonly writtenAt: string
}

/** An output larger than this is cut (one argument may be at most 128 KiB on Linux); the whole stays in `.out`. */
export const MAX_OUTPUT_BYTES = 100_000

/** Earlier tasks' `.log` and `.out` files untouched for more than this many days are removed by the next wake. */
export const KEEP_DAYS = 7

export const wakeScript = (o: WakeScriptOptions): string => {
  const agentDir = o.agentBin.includes("/") ? o.agentBin.slice(0, o.agentBin.lastIndexOf("/")) : undefined
  return `#!/bin/sh
# Wake script for ${o.preset.label}, written by \`agent-sidecar init\` (${o.writtenAt}). Edit freely.
#
# The sidecar runs this for every task (wake_command, an array: no shell parses the task). The task arrives only
# in the environment (TASK_ID, TASK_DESCRIPTION, TASK_FILE, RESULTS_DIR, ...) and is only expanded inside double
# quotes below, as one argument: it is never pasted into shell source and never evaluated.
#
# 1. write .started at once, 2. start the agent in the background in a session of its own (setsid), in the
# work folder, and return; 3. when the agent exits, its stdout becomes the result's output (exit 0) or the
# failure reason names the exit code and the end of its stderr. Its stderr is kept in $RESULTS_DIR/$TASK_ID.log;
# each wake removes the .log and .out files in $RESULTS_DIR untouched for more than KEEP_DAYS days.
# If the hub cancels the task (the sidecar writes $TASK_ID.cancelled), the agent gets SIGTERM.
#
# The agent's command line:
${o.preset.source.map((line) => `#   ${line}`).join("\n")}
set -eu
umask 077

NODE=${shQuote(o.node)}
SIDECAR=${shQuote(o.sidecar)}
WORKDIR=${shQuote(o.workdir)}
MAX_OUTPUT_BYTES=${MAX_OUTPUT_BYTES}
KEEP_DAYS=${KEEP_DAYS}
${agentDir === undefined ? "" : `# the agent's own folder first, so its helpers (and e.g. node for npm-installed CLIs) resolve as at init time
PATH=${shQuote(agentDir)}:$PATH
export PATH
`}
: "\${TASK_ID:?TASK_ID is not set: the sidecar runs this script}" "\${RESULTS_DIR:?RESULTS_DIR is not set}"
: "\${TASK_DESCRIPTION=}"
report() { "$NODE" "$SIDECAR" report "$@" --results-dir "$RESULTS_DIR" >/dev/null; }

run_agent() {
  if ! cd "$WORKDIR"; then
    report failed "$TASK_ID" --reason "cannot enter the work folder $WORKDIR"
    return 0
  fi
  ${commandLine(o.preset, o.agentBin)} </dev/null >"$OUT" 2>>"$LOG" &
  agent=$!
  # stop the agent when the hub cancels the task
  ( while kill -0 "$agent" 2>/dev/null; do
      if [ -e "$RESULTS_DIR/$TASK_ID.cancelled" ]; then kill -TERM "$agent" 2>/dev/null; exit 0; fi
      sleep 1
    done ) </dev/null >/dev/null 2>&1 &
  watcher=$!
  set +e
  wait "$agent"
  code=$?
  set -e
  kill "$watcher" 2>/dev/null || true
  echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) agent exited with code $code" >>"$LOG"
  # a cancelled task is no longer the sidecar's: nothing to report
  [ -e "$RESULTS_DIR/$TASK_ID.cancelled" ] && return 0
  if [ "$code" -eq 0 ]; then
    size=$(wc -c <"$OUT" | tr -d ' ')
    if [ "$size" -le "$MAX_OUTPUT_BYTES" ]; then
      output=$(cat "$OUT")
    else
      output="$(head -c "$MAX_OUTPUT_BYTES" "$OUT")
[output cut at $MAX_OUTPUT_BYTES of $size bytes; the whole is in $OUT]"
    fi
    if report success "$TASK_ID" --output "$output"; then
      [ "$size" -le "$MAX_OUTPUT_BYTES" ] && rm -f "$OUT"
      return 0
    fi
    report failed "$TASK_ID" --reason "${o.preset.bin} succeeded but its output could not be reported; it is in $OUT"
  else
    report failed "$TASK_ID" --reason "${o.preset.bin} exited with code $code: $(tail -c 1500 "$LOG")"
  fi
}

if [ "\${1-}" = "--agent-worker" ]; then
  OUT="$RESULTS_DIR/$TASK_ID.out"
  LOG="$RESULTS_DIR/$TASK_ID.log"
  run_agent
  exit 0
fi

# .started at once, atomically (a dot-named temp file the sidecar ignores, then a rename): no node start-up here
printf '{"pid":%s}' "$$" >"$RESULTS_DIR/.$TASK_ID.started.$$.tmp"
mv -f "$RESULTS_DIR/.$TASK_ID.started.$$.tmp" "$RESULTS_DIR/$TASK_ID.started"
LOG="$RESULTS_DIR/$TASK_ID.log"
# earlier tasks' logs and kept outputs go after KEEP_DAYS days untouched, so results_dir does not grow for good
# (POSIX find: the folder's own files only, never a subfolder such as rejected/)
find "$RESULTS_DIR/." ! -name . -prune -type f \\( -name '*.log' -o -name '*.out' \\) -mtime +"$KEEP_DAYS" \\
  -exec rm -f {} + 2>/dev/null || true
echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) task $TASK_ID: starting ${o.preset.bin} in $WORKDIR" >>"$LOG"
# In the background, in a session of its own: the sidecar's process-group kill of this wake command does not
# reach it, and this script returns at once.
if command -v setsid >/dev/null 2>&1; then
  setsid "$0" --agent-worker </dev/null >>"$LOG" 2>&1 &
else
  nohup "$0" --agent-worker </dev/null >>"$LOG" 2>&1 &
fi
exit 0
`
}

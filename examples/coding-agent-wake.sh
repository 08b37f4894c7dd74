#!/bin/sh
# A realistic wake command for a coding-agent CLI (here Claude Code's headless mode; any CLI that takes a
# prompt works the same way). Configure it as an ARRAY so no shell parses the task text:
#   "wake_command": ["/path/to/coding-agent-wake.sh"]
# The task text arrives only in the environment; it is quoted everywhere below and never eval'd.
set -eu
cd "${AGENT_WORKDIR:-$HOME/work}"

put() { printf '%s' "$2" > "$1.tmp.$$" && mv "$1.tmp.$$" "$1"; }

# Start the agent in the background and return at once: the sidecar's wake_timeout_ms bounds this script,
# not the agent's work. The agent's own confirmation is the .started file.
nohup sh -c '
  put() { printf "%s" "$2" > "$1.tmp.$$" && mv "$1.tmp.$$" "$1"; }
  put "$STARTED_FILE" "{}"
  if claude -p "$TASK_DESCRIPTION" --output-format json > "$RESULTS_DIR/$TASK_ID.out" 2> "$RESULTS_DIR/$TASK_ID.err"; then
    agent-sidecar report success "$TASK_ID" --output "$(cat "$RESULTS_DIR/$TASK_ID.out")" --results-dir "$RESULTS_DIR"
  else
    agent-sidecar report failed "$TASK_ID" --reason "agent exited with $?" --results-dir "$RESULTS_DIR"
  fi
' </dev/null >/dev/null 2>&1 &

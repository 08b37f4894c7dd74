#!/bin/sh
# An example agent as a wake command (array form: ["/path/to/shell-agent.sh"]).
# The sidecar passes the task in the environment: TASK_ID, TASK_DESCRIPTION, TASK_FILE, RESULTS_DIR,
# STARTED_FILE, RESULT_FILE. The wake command must return quickly, so the work runs in the background.
set -eu

# Write a file atomically: a temp file in the same folder, then rename (the sidecar never sees half a file).
put() { printf '%s' "$2" > "$1.tmp.$$" && mv "$1.tmp.$$" "$1"; }

(
  put "$STARTED_FILE" "{\"pid\": $$}"
  put "$RESULTS_DIR/$TASK_ID.progress" '{"percent": 10, "message": "reading the task"}'
  words=$(printf '%s' "$TASK_DESCRIPTION" | wc -w | tr -d ' ')
  sleep 1
  put "$RESULTS_DIR/$TASK_ID.progress" '{"percent": 90, "message": "writing the result"}'
  # The description is data: it goes through jq-free JSON escaping via the task file, never through eval.
  put "$RESULT_FILE" "{\"status\": \"success\", \"output\": {\"words\": $words, \"task_file\": \"$TASK_FILE\"}}"
) </dev/null >/dev/null 2>&1 &

#!/usr/bin/env node
// An example agent in Node, usable as a wake command: ["node", "/path/to/node-agent.mjs"].
// It reads the task from TASK_FILE, says it started, shows progress, and writes its result, each file written
// atomically (temp file + rename). It detaches so the wake command returns at once.
import { spawn } from "node:child_process"
import { readFileSync, renameSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const env = process.env
const put = (file, value) => {
  const tmp = `${file}.tmp-${process.pid}`
  writeFileSync(tmp, JSON.stringify(value))
  renameSync(tmp, file)
}

if (process.argv[2] !== "--work") {
  // the wake command: start the worker in the background and return 0
  const child = spawn(process.execPath, [process.argv[1], "--work"], { detached: true, stdio: "ignore", env })
  child.unref()
  process.exit(0)
}

const task = JSON.parse(readFileSync(env.TASK_FILE, "utf8"))
put(env.STARTED_FILE, { pid: process.pid, started_at: new Date().toISOString() })
const progress = (percent, message) => put(join(env.RESULTS_DIR, `${env.TASK_ID}.progress`), { percent, message })
progress(20, "thinking about it")
setTimeout(() => {
  progress(80, "almost there")
  const description = String(task.description ?? "")
  if (/\bfail\b/i.test(description)) {
    put(env.RESULT_FILE, { status: "failed", reason: "the task asked me to fail" })
  } else {
    put(env.RESULT_FILE, { status: "success", output: { reversed: [...description].reverse().join(""), words: description.split(/\s+/).filter(Boolean).length } })
  }
}, 800)

/** doctor reads a string wake_command as /bin/sh would (issue 13): quotes, env VAR=…, paths with spaces. */
import { describe, expect, it } from "vitest"
import { programOf } from "../../src/domain/ShellWords.ts"

const env = { HOME: "/home/me", BIN: "/opt/tools" }

describe("the program of a string wake command", () => {
  it.each([
    [`'/opt/node 24/bin/node' agent.mjs "\${TASK_ID}"`, "/opt/node 24/bin/node"],
    [`"/opt/node 24/bin/node" agent.mjs`, "/opt/node 24/bin/node"],
    [String.raw`/opt/node\ 24/bin/node agent.mjs`, "/opt/node 24/bin/node"],
    [`env FOO=1 BAR="a b" claude -p "$TASK_DESCRIPTION"`, "claude"],
    [`env -i -u X PATH=/bin claude`, "claude"],
    [`FOO=1 exec /usr/bin/agent --go`, "/usr/bin/agent"],
    [`$HOME/bin/agent "$TASK_ID"`, "/home/me/bin/agent"],
    [`"\${BIN}/run me" x`, "/opt/tools/run me"],
    [`  claude -p x; echo done`, "claude"]
  ])("%s → %s", (command, program) => {
    expect(programOf(command, env)).toEqual({ _tag: "Found", program })
  })

  it.each([
    ["$(which claude) -p x", "command substitution"],
    ["`which claude` -p x", "command substitution"],
    ["FOO=1", "names no program"]
  ])("%s cannot be known before it runs", (command, why) => {
    const r = programOf(command, env)
    expect(r._tag).toBe("Unknown")
    expect(r._tag === "Unknown" ? r.why : "").toContain(why)
  })
})

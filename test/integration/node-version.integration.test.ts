/**
 * `bin/agent-sidecar.js` on a Node older than package.json's engines (>= 22.22) says so and exits 1, before it
 * sets a V8 flag that Node lacks or calls an API it does not have. Needs such a Node on this machine (Debian's
 * `/usr/bin/node` is 20 on this project's machines); skipped with a message otherwise.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as NFS from "node:fs"
import { fileURLToPath } from "node:url"

const BIN = fileURLToPath(new URL("../../bin/agent-sidecar.js", import.meta.url))

const versionOf = (node: string): string | undefined => {
  const out = spawnSync(node, ["--version"], { encoding: "utf8" })
  return out.status === 0 ? out.stdout.trim() : undefined
}

const tooOld = (version: string): boolean => {
  const [major = 0, minor = 0] = version.replace(/^v/, "").split(".").map(Number)
  return major < 22 || (major === 22 && minor < 22)
}

const older = ["/usr/bin/node", "/usr/local/bin/node"]
  .filter((node) => NFS.existsSync(node))
  .map((node) => ({ node, version: versionOf(node) }))
  .find((c) => c.version !== undefined && tooOld(c.version))

describe("bin on an unsupported Node", () => {
  it.skipIf(older === undefined)(`refuses with the version it needs${older === undefined ? " (skipped: no Node older than 22.22 here)" : ""}`, () => {
    const run = spawnSync(older!.node, [BIN, "--version"], { encoding: "utf8" })
    assert.strictEqual(run.status, 1)
    assert.strictEqual(run.stdout, "")
    assert.strictEqual(run.stderr, `agent-sidecar: needs Node.js 22.22 or later (package.json "engines"); this is Node.js ${older!.version}\n`)
  })

  it("runs on the Node the tests run on", () => {
    const run = spawnSync(process.execPath, [BIN, "--version"], { encoding: "utf8" })
    assert.strictEqual(run.status, 0, run.stderr)
    assert.match(run.stdout, /^agent-sidecar v\d+\.\d+\.\d+/)
    assert.strictEqual(run.stderr, "")
  })
})

/**
 * The wake server's protocol, without processes: quoting, what goes through Node's spawn instead, the server's
 * lines, and taking back an unanswered request (issue 14). The server itself: test/integration/fork-server.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NFS from "node:fs"
import * as NPath from "node:path"
import { withdraw } from "../../src/services/waker/ForkServer.ts"
import { type LaunchSpec, parseServerLine, requestSource, shQuote, unsupported } from "../../src/services/waker/launchScript.ts"
import { scopedTempDir } from "../support/tempDir.ts"

const sh = (script: string): LaunchSpec => ({ command: "/bin/sh", args: ["-c", script], env: { PATH: "/usr/bin:/bin" }, cwd: "/" })

describe("launchScript", () => {
  it("quotes every byte literally and parses the server's lines", () => {
    assert.strictEqual(shQuote("it's"), `'it'\\''s'`)
    assert.deepStrictEqual(parseServerLine("P 12 345"), { _tag: "Started", id: 12, pid: 345 })
    assert.deepStrictEqual(parseServerLine("X 12 143"), { _tag: "Exited", id: 12, status: 143 })
    assert.deepStrictEqual(parseServerLine("X 12 143 1"), { _tag: "Exited", id: 12, status: 143, stderr: true })
    assert.deepStrictEqual(parseServerLine("X 12 0 0"), { _tag: "Exited", id: 12, status: 0, stderr: false })
    assert.deepStrictEqual(parseServerLine("X 12 0 2"), { _tag: "Other", text: "X 12 0 2" })
    assert.deepStrictEqual(parseServerLine("X 12 1x"), { _tag: "Other", text: "X 12 1x" })
    assert.include(requestSource(7, "/d/7.err", sh("true")), `__launch '7' '/d/7.err'`)
  })

  it("sends what env -i would misread through Node's spawn instead", () => {
    assert.isUndefined(unsupported(sh("true")))
    assert.strictEqual(unsupported({ ...sh("true"), command: "a=b" }), "command name")
    assert.strictEqual(unsupported({ ...sh("true"), command: "-x" }), "command name")
    assert.strictEqual(unsupported({ ...sh("true"), env: { "-u": "x" } }), "variable name")
    assert.strictEqual(unsupported({ ...sh("true"), env: { "": "x" } }), "variable name")
    assert.strictEqual(unsupported({ ...sh("true"), baseEnv: { "a=b": "x" } }), "variable name")
    assert.strictEqual(unsupported({ ...sh("true"), baseEnv: { A: "x\0y" } }), "NUL byte")
    assert.strictEqual(unsupported({ ...sh("true"), env: { A: "x\0y" } }), "NUL byte")
  })

  it("puts the shared variables before the launch's own, so the launch's win (env applies them in order)", () => {
    const baseEnv = { PATH: "/bin", SHARED: "a b" }
    const source = requestSource(3, "/d/3.err", { ...sh("true"), baseEnv, env: { SHARED: "mine", OWN: "1" } })
    assert.include(source, `'PATH=/bin' 'SHARED=a b' 'SHARED=mine' 'OWN=1' '/bin/sh' '-c' 'true'`)
    // the shared part is the same text for every launch that shares the object
    assert.include(requestSource(4, "/d/4.err", { ...sh("false"), baseEnv, env: {} }), `'PATH=/bin' 'SHARED=a b' '/bin/sh'`)
  })
})

describe("withdraw", () => {
  it.effect("withdraws a request the server has not taken (it can never run) and reports one it has taken", () => Effect.gen(function*() {
    const dir = yield* scopedTempDir("fork-server-withdraw-")
    const req = NPath.join(dir, "1.req")
    const taken = NPath.join(dir, "1.taken")
    NFS.writeFileSync(req, "__launch ...")
    assert.strictEqual(withdraw(req, taken), "withdrawn")
    assert.isFalse(NFS.existsSync(req), "a server that takes it now finds no file and skips it")
    NFS.writeFileSync(req, "__launch ...")
    NFS.writeFileSync(taken, "")
    assert.strictEqual(withdraw(req, taken), "taken")
  }))
})

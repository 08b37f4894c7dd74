/**
 * The wake server's protocol, without processes: quoting, what goes through Node's spawn instead, the server's
 * lines (issue 14). Request slots and taking back an unanswered request: requestSlots.test.ts. The server itself:
 * test/integration/fork-server and wake-slots.
 */
import { assert, describe, it } from "@effect/vitest"
import { type LaunchSpec, parseServerLine, requestSource, shQuote, unsupported } from "../../src/services/waker/launchScript.ts"

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

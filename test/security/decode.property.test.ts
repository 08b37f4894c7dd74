/**
 * Hostile input, decoded (issue "Hostile input and secrets", part 3 + the property tests it asks for).
 *
 * The hub's frames and the agent's result files are input the sidecar does not control. These properties
 * feed them arbitrary text (including lone surrogates and invalid UTF-8 turned into text), arbitrary JSON,
 * frames of every known type with fields of random types, deeply nested and enormous JSON, and check:
 *   - `decodeFrame` never throws and always returns a `Result` with a short, readable rejection reason;
 *   - the byte limit is applied in UTF-8 bytes, before anything is parsed;
 *   - `judgeResult` never throws, and whatever it lets through can be persisted and sent;
 *   - `classifyFile` / `isValidTaskId` never accept a name that could leave `results_dir`;
 *   - fed through the in-memory daemon (TaskFlow), no sequence of frames and results breaks its state
 *     (daemonState.property.test.ts).
 * Each test names the protection it holds; removing that protection makes the test fail.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import { classifyFile, judgeResult } from "../../src/domain/AgentFiles.ts"
import { decodeFrame, describeRejection, encodeOutbound, type FrameRejection } from "../../src/domain/Protocol.ts"
import { isValidTaskId, validateAssignment } from "../../src/domain/Task.ts"
import { anyText, deep, deepValues, hostileValue, KNOWN_TYPES, MAX, typedFrame } from "./hostile.ts"

const REJECTION_KINDS: ReadonlyArray<FrameRejection["kind"]> = ["too_large", "not_json", "not_an_object", "no_type", "unknown_type", "bad_fields"]
const SAFE_ID = /^[A-Za-z0-9._-]{1,128}$/

/** The decoder's contract, checked for one input: a Result, never a throw; a rejection is one readable line. */
const checkDecoded = (raw: string, maxBytes = MAX) => {
  const r = decodeFrame(raw, maxBytes) // a throw here fails the property
  assert.isTrue(Result.isResult(r), "decodeFrame returns a Result")
  if (Result.isSuccess(r)) {
    assert.include(KNOWN_TYPES, r.success.type)
    if ("task_id" in r.success) assert.strictEqual(typeof r.success.task_id, "string")
  } else {
    assert.include(REJECTION_KINDS, r.failure.kind)
    // (raw newlines in the reason are escaped by the log formatters; limits.test.ts checks one line per frame)
    const line = describeRejection(r.failure)
    assert.isTrue(line.length > 0 && line.length <= 4096 + 200, "a rejection reason stays readable")
  }
  return r
}


describe("decodeFrame never throws and returns a Result (protection: try/catch around JSON.parse, envelope checks)", () => {
  it("arbitrary text: lone surrogates, invalid UTF-8 turned into text, random JSON", () => {
    fc.assert(fc.property(anyText, (raw) => { checkDecoded(raw) }), { numRuns: 2000 })
  })

  it("arbitrary JSON values (objects, arrays, scalars) as frames", () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => { checkDecoded(JSON.stringify(v)) }), { numRuns: 1000 })
  })

  it("frames with a known `type` and random field values: typed fields of the wrong type are rejected, never accepted", () => {
    // protection: each known type's Schema (Protocol.ts `schemas`); `task_id: 5` must never decode
    fc.assert(fc.property(typedFrame, (frame) => {
      const r = checkDecoded(JSON.stringify(frame))
      const type = frame.type
      const taskTyped = ["task_assign", "task_ack", "task_cancelled", "task_reassign", "task_continue"]
      if (typeof type === "string" && taskTyped.includes(type) && typeof frame.task_id !== "string") {
        assert.isTrue(Result.isFailure(r))
        if (Result.isFailure(r)) assert.strictEqual(r.failure.kind, "bad_fields")
      }
      if (Result.isSuccess(r)) {
        const m = r.success as Record<string, unknown>
        if ("status" in m && m["type"] === "task_ack") assert.strictEqual(typeof m["status"], "string")
        if (m["type"] === "task_continue" && "generation" in m) assert.strictEqual(typeof m["generation"], "number")
      }
    }), { numRuns: 3000 })
  })

  it("known types with numbers where strings belong are bad_fields (task_id: 5, status: 7, error: 1)", () => {
    for (const raw of [
      { type: "task_assign", task_id: 5 },
      { type: "task_ack", task_id: 5 },
      { type: "task_ack", task_id: "t", status: 7 },
      { type: "task_cancelled", task_id: ["t"] },
      { type: "task_continue", task_id: "t", generation: "3" },
      { type: "error", error: 1 },
      { type: "identified", agent_id: {} }
    ]) {
      const r = checkDecoded(JSON.stringify(raw))
      assert.isTrue(Result.isFailure(r) && r.failure.kind === "bad_fields", JSON.stringify(raw))
    }
  })

  it("deeply nested JSON (10k and 100k levels built as strings) in every position", () => {
    for (const levels of [10_000, 100_000]) {
      for (const raw of deepValues(levels)) checkDecoded(raw, 10 * MAX)
      for (const type of KNOWN_TYPES) {
        for (const field of ["task_id", "description", "metadata", "status", "error", "timestamp", "generation", "agent_id"]) {
          checkDecoded(`{"type":"${type}","task_id":"t",${JSON.stringify(field)}:${deep(levels, '{"a":', "}")}}`, 10 * MAX)
          checkDecoded(`{"type":"${type}","task_id":"t",${JSON.stringify(field)}:${deep(levels, "[", "]", "")}}`, 10 * MAX)
        }
      }
    }
  })

  it("huge frames: a 5 MiB string is too_large without being parsed; just over the limit is too_large", () => {
    const huge = JSON.stringify({ type: "task_assign", task_id: "t", description: "x".repeat(5 * MAX) })
    const r = checkDecoded(huge)
    assert.isTrue(Result.isFailure(r) && r.failure.kind === "too_large")
    const garbage = "{".repeat(2 * MAX) // would be a not_json (or worse) if parsed
    const g = checkDecoded(garbage)
    assert.isTrue(Result.isFailure(g) && g.failure.kind === "too_large")
  })

  it("the limit counts UTF-8 bytes, not characters (protection: Buffer.byteLength check before JSON.parse)", () => {
    fc.assert(fc.property(
      fc.string({ unit: "grapheme", minLength: 1, maxLength: 200 }),
      fc.integer({ min: 1, max: 400 }),
      (text, limit) => {
        const raw = JSON.stringify({ type: "task_assign", task_id: "t-1", description: text })
        const bytes = Buffer.byteLength(raw, "utf8")
        const r = checkDecoded(raw, limit)
        if (bytes > limit) {
          assert.isTrue(Result.isFailure(r) && r.failure.kind === "too_large", `${bytes} bytes > ${limit} must be too_large`)
        } else {
          assert.isTrue(Result.isSuccess(r), `${bytes} bytes <= ${limit} must decode`)
        }
      }
    ), { numRuns: 1000 })
    // two-byte characters: fewer characters than the limit, more bytes
    const raw = JSON.stringify({ type: "task_assign", task_id: "t", description: "é".repeat(100) })
    const r = checkDecoded(raw, raw.length + 10)
    assert.isTrue(Result.isFailure(r) && r.failure.kind === "too_large")
  })
})

describe("validateAssignment (protection: task field type checks; numbers where strings belong are invalid_task)", () => {
  it("anything it accepts has a string description, an object metadata and a finite generation", () => {
    fc.assert(fc.property(typedFrame, (frame) => {
      const fields = JSON.parse(JSON.stringify(frame)) as Record<string, unknown>
      const v = validateAssignment(fields) // never throws
      if (Result.isSuccess(v)) {
        assert.strictEqual(typeof v.success.description, "string")
        assert.isTrue(typeof v.success.metadata === "object" && v.success.metadata !== null && !Array.isArray(v.success.metadata))
        assert.isTrue(v.success.generation === undefined || Number.isFinite(v.success.generation))
      } else {
        const d = fields["description"], m = fields["metadata"], g = fields["generation"]
        assert.isTrue(
          (d !== undefined && typeof d !== "string") ||
          (m !== undefined && (typeof m !== "object" || m === null || Array.isArray(m))) ||
          (g !== undefined && (typeof g !== "number" || !Number.isFinite(g))),
          `rejected for no reason: ${JSON.stringify(fields)}`
        )
      }
    }), { numRuns: 2000 })
    assert.isTrue(Result.isFailure(validateAssignment({ type: "task_assign", task_id: "t", description: 7 })))
  })
})

describe("judgeResult never throws (protection: try/catch around the result file's JSON.parse, shape checks)", () => {
  const checkJudged = (text: string) => {
    const v = judgeResult(text) // a throw here fails the test
    assert.include(["success", "failed", "unparseable"], v.outcome)
    if (v.outcome === "failed") {
      assert.strictEqual(typeof v.reason, "string")
      assert.isAtMost(v.reason.length, 4096)
    }
    if (v.outcome === "success") assert.strictEqual(v.result["status"], "success")
    return v
  }

  it("arbitrary text, JSON, and result-shaped objects with random field values", () => {
    const resultShaped = fc.record({
      status: fc.oneof(fc.constantFrom("success", "failed", "SUCCESS", "", 1, null, true), hostileValue),
      reason: hostileValue,
      error: hostileValue,
      output: hostileValue
    }, { requiredKeys: [] }).map((o) => JSON.stringify(o))
    fc.assert(fc.property(fc.oneof(anyText, resultShaped), (text) => { checkJudged(text) }), { numRuns: 3000 })
  })

  it("only `status: \"success\"` (exactly) is a success", () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), (status) => {
      const v = checkJudged(JSON.stringify({ status, output: 1 }))
      assert.strictEqual(v.outcome === "success", status === "success")
    }), { numRuns: 500 })
  })

  it("enormous result text (8 MiB) is judged without throwing", () => {
    checkJudged(JSON.stringify({ status: "failed", reason: "r".repeat(8 * 1024 * 1024) }))
    checkJudged("x".repeat(8 * 1024 * 1024))
  })

  it("deeply nested result files (10k levels) in every field: judgeResult does not throw", () => {
    for (const field of ["output", "reason", "error", "status"]) {
      for (const value of [deep(10_000, '{"a":', "}"), deep(10_000, "[", "]", "")]) {
        checkJudged(`{"status":"failed",${JSON.stringify(field)}:${value}}`)
        checkJudged(`{"status":"success",${JSON.stringify(field)}:${value}}`)
      }
    }
    for (const raw of deepValues(10_000)) checkJudged(raw)
  })

  it("a result judged usable can be persisted and sent (JSON.stringify of it does not throw)", () => {
    // The sidecar writes the verdict's result into queue.json's outbox and into a `task_complete` frame.
    // A result it cannot re-encode must be judged unusable (result_parse_error), not accepted and then crash.
    for (const value of [deep(10_000, '{"a":', "}"), deep(10_000, "[", "]", "")]) {
      const v = checkJudged(`{"status":"success","output":${value}}`)
      if (v.outcome !== "unparseable") {
        assert.doesNotThrow(() => encodeOutbound({ type: "task_complete", task_id: "t", result: v.result }), undefined, undefined,
          "a success verdict whose result cannot be encoded")
      }
    }
  })
})

describe("task ids and agent file names never leave results_dir (protection: isValidTaskId, classifyFile)", () => {
  const traversal = ["../x", "a/b", "..", ".", "/etc/passwd", "a".repeat(300), "a".repeat(129), "a\u0000b", "a\\b", "", "x/../../y", " x", "x\n", "~root", "ｘ"]

  it("traversal cases are invalid task ids; a 128-char id is valid", () => {
    for (const id of traversal) assert.isFalse(isValidTaskId(id), JSON.stringify(id))
    assert.isTrue(isValidTaskId("a".repeat(128)))
    assert.isTrue(isValidTaskId("t-1.retry_2"))
  })

  it("isValidTaskId over arbitrary strings: only [A-Za-z0-9._-]{1,128}, never starting with .", () => {
    fc.assert(fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 140 }), fc.stringMatching(/^[A-Za-z0-9._\-/\\\0]{0,140}$/)), (id) => {
      assert.strictEqual(isValidTaskId(id), SAFE_ID.test(id) && !id.startsWith("."))
    }), { numRuns: 3000 })
  })

  it("classifyFile rejects names with a separator, a `..`/`.` id, NUL, or an id over 128 chars", () => {
    const bad = [
      "a/b.json", "a/../../x.json", "x/../../y.started", "/etc/passwd.json", "sub/x.progress", "..json", "...json", ".json",
      "x\u0000.json", "a\u0000b.started", "a\\b.json", `${"a".repeat(129)}.json`, `${"a".repeat(300)}.started`, "t.task.json", ".t.json.123.tmp"
    ]
    for (const name of bad) assert.isUndefined(classifyFile(name), JSON.stringify(name))
    assert.deepStrictEqual(classifyFile(`${"a".repeat(128)}.json`), { taskId: "a".repeat(128), kind: "result" })
    assert.deepStrictEqual(classifyFile("t-1.started"), { taskId: "t-1", kind: "started" })
  })

  it("classifyFile over arbitrary names: what it accepts is exactly `<valid id>.<started|json|progress>`", () => {
    const piece = fc.oneof(fc.string({ unit: "binary", maxLength: 20 }), fc.constantFrom("/", "\\", "\u0000", "..", ".", "a", "t-1"))
    const name = fc.oneof(
      fc.string({ unit: "binary", maxLength: 150 }),
      fc.tuple(fc.array(piece, { maxLength: 6 }), fc.constantFrom(".json", ".started", ".progress", ".task.json", ""))
        .map(([parts, ext]) => parts.join("") + ext),
      fc.integer({ min: 120, max: 140 }).map((n) => `${"b".repeat(n)}.json`)
    )
    fc.assert(fc.property(name, (n) => {
      const c = classifyFile(n)
      if (c === undefined) return
      assert.isTrue(isValidTaskId(c.taskId), JSON.stringify(n))
      assert.isFalse(/[/\\\0]/.test(n), `separator or NUL accepted: ${JSON.stringify(n)}`)
      assert.isAtMost(c.taskId.length, 128)
      const ext = c.kind === "result" ? "json" : c.kind
      assert.strictEqual(n, `${c.taskId}.${ext}`)
    }), { numRuns: 5000 })
  })
})

/**
 * Hostile input for the property tests of test/security/: arbitrary text and JSON, frames of every known type
 * with fields of random types, and deeply nested JSON built as strings.
 */
import fc from "fast-check"

/** The frame size limit the tests decode with (the default `max_frame_bytes`). */
export const MAX = 1_048_576
export const KNOWN_TYPES = ["identified", "error", "pong", "task_assign", "task_ack", "task_cancelled", "task_reassign", "task_continue"] as const

export const anyText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }), // every code point, lone surrogates included
  fc.string({ unit: "grapheme", maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString("utf8")), // invalid UTF-8 bytes, decoded
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString("latin1")),
  fc.json({ maxDepth: 4 }),
  fc.json({ maxDepth: 4, stringUnit: "binary" })
)

export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: "binary", maxLength: 50 }),
  fc.constantFrom(5, -1, 0, 1e308, -0, true, false, null, [], {}, ["x"], { a: 1 }, "", "../x", "a/b", "\u0000", "\ud800")
)
const hostileId: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom("t-1", "t-2", "../x", "a/b", "..", ".", "/etc/passwd", "", "a".repeat(300), "a\u0000b", "a\\b", "x\ny", 5, null, true, {}, []),
  fc.string({ unit: "binary", maxLength: 20 })
)

/** An object frame of a known (or unknown) type with random values where typed fields belong. */
export const typedFrame = fc.record({
  type: fc.oneof(fc.constantFrom(...KNOWN_TYPES), fc.string({ maxLength: 10 }), fc.constantFrom(5, null, ["task_assign"])),
  task_id: hostileId,
  description: hostileValue,
  metadata: hostileValue,
  generation: hostileValue,
  status: hostileValue,
  error: hostileValue,
  agent_id: hostileValue,
  timestamp: hostileValue,
  extra: hostileValue
}, { requiredKeys: ["type"] })

export const deep = (levels: number, open: string, close: string, leaf = "1") => open.repeat(levels) + leaf + close.repeat(levels)
export const deepValues = (levels: number) => [
  deep(levels, "[", "]", ""),
  deep(levels, '{"a":', "}"),
  deep(levels, '{"type":"task_assign","task_id":"t","x":', "}")
]

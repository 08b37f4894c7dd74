/**
 * Nesting limit for JSON that comes from outside (hub frames, agent results). Parsing deep JSON is fine, but
 * everything downstream (persisting, re-encoding, logging) recurses, and V8's JSON.stringify throws a
 * RangeError somewhere past a few thousand levels. Real tasks and results are nowhere near this.
 */
export const MAX_JSON_DEPTH = 64

/** True when `value` nests objects/arrays deeper than `limit` levels. Iterative: never overflows itself. */
export const exceedsDepth = (value: unknown, limit: number = MAX_JSON_DEPTH): boolean => {
  const stack: Array<readonly [unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!
    if (typeof current !== "object" || current === null) continue
    if (depth > limit) return true
    for (const child of Array.isArray(current) ? current : Object.values(current)) stack.push([child, depth + 1])
  }
  return false
}

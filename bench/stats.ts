/** Percentiles and the printed table. */

export interface Summary {
  readonly n: number
  readonly p50: number
  readonly p99: number
  readonly min: number
  readonly max: number
}

/** Nearest-rank percentile of already sorted samples. */
const rank = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

export const summarize = (samples: ReadonlyArray<number>): Summary => {
  if (samples.length === 0) throw new Error("no samples")
  const sorted = [...samples].sort((a, b) => a - b)
  return { n: sorted.length, p50: rank(sorted, 50), p99: rank(sorted, 99), min: sorted[0]!, max: sorted[sorted.length - 1]! }
}

export const ms = (x: number): string => x >= 100 ? `${x.toFixed(0)} ms` : x >= 10 ? `${x.toFixed(1)} ms` : `${x.toFixed(2)} ms`

export interface Row {
  readonly metric: string
  readonly p50: string
  readonly p99: string
  readonly target: string
  readonly verdict: string
}

export const table = (rows: ReadonlyArray<Row | string>): string => {
  const header: Row = { metric: "metric", p50: "p50", p99: "p99", target: "target", verdict: "verdict" }
  const cells = (r: Row) => [r.metric, r.p50, r.p99, r.target, r.verdict]
  const data = rows.filter((r): r is Row => typeof r !== "string")
  const widths = cells(header).map((_, i) => Math.max(...[header, ...data].map((r) => cells(r)[i]!.length)))
  const line = (r: Row) => cells(r).map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(" | ")
  const rule = widths.map((w) => "-".repeat(w)).join("-+-")
  return [line(header), rule, ...rows.map((r) => typeof r === "string" ? r : line(r))].join("\n")
}

/** A plain table: the first column left-aligned, the rest right-aligned; string rows are printed as they are. */
export const grid = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string> | string>): string => {
  const data = rows.filter((r): r is ReadonlyArray<string> => typeof r !== "string")
  const widths = header.map((_, i) => Math.max(...[header, ...data].map((r) => (r[i] ?? "").length)))
  const line = (r: ReadonlyArray<string>) => widths.map((w, i) => i === 0 ? (r[i] ?? "").padEnd(w) : (r[i] ?? "").padStart(w)).join(" | ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("-+-"), ...rows.map((r) => typeof r === "string" ? r : line(r))].join("\n")
}

/**
 * The one log shape: a flat record per event (`time`, `level`, `msg`, then the annotations, the event's own
 * fields, `details`, `cause`), rendered as a JSON line (file, and stdout when it is not a terminal) or as a short
 * human line (stdout on a terminal). Pure: no I/O; the sinks live in `../Logging.ts`.
 */
import { Cause, Formatter, type Logger, References } from "effect"

/** One event, flat: `jq -r .task_id` reads an annotation or a field alike. */
export type LogRecord = Record<string, unknown> & { readonly time: string; readonly level: string; readonly msg: string }

const RESERVED = new Set(["time", "level", "msg"])

const isPlainObject = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

/**
 * Builds the record of one event. Message parts: the first string is `msg`; a plain object's keys go to the top
 * level; anything else goes under `details` (one value, or an array of them). A key that would overwrite
 * `time`/`level`/`msg` (or `details`/`cause` when the event has them) is kept as `field_<key>`.
 */
export const toRecord = (options: Logger.Options<unknown>): LogRecord => {
  const parts: ReadonlyArray<unknown> = Array.isArray(options.message) ? options.message : [options.message]
  let msg: string | undefined
  const fields: Array<Record<string, unknown>> = []
  const details: Array<unknown> = []
  for (const part of parts) {
    if (msg === undefined && typeof part === "string") msg = part
    else if (isPlainObject(part)) fields.push(part)
    else details.push(part)
  }
  const hasCause = options.cause.reasons.length > 0
  const reserved = (key: string) => RESERVED.has(key) || (key === "details" && details.length > 0) || (key === "cause" && hasCause)
  // a null prototype: a "__proto__" key is data, never the prototype
  const record = Object.create(null) as Record<string, unknown>
  record["time"] = options.date.toISOString()
  record["level"] = options.logLevel.toLowerCase()
  record["msg"] = msg ?? ""
  const put = (key: string, value: unknown) => {
    let k = key
    while (reserved(k)) k = `field_${k}`
    record[k] = value
  }
  for (const [key, value] of Object.entries(options.fiber.getRef(References.CurrentLogAnnotations))) put(key, value)
  for (const f of fields) for (const key of Object.keys(f)) put(key, f[key])
  if (details.length > 0) record["details"] = details.length === 1 ? details[0] : details
  if (hasCause) record["cause"] = Cause.pretty(options.cause)
  return record as LogRecord
}

/** Every value a string, number, boolean or null: plain `JSON.stringify` writes exactly what `formatJson` would. */
const flat = (record: LogRecord): boolean => {
  for (const key in record) {
    const value = record[key]
    if (value !== null && typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") return false
  }
  return true
}

/** The record as one JSON line (no newline). Redacted values print as `<redacted>`; errors keep name and message.
 *  Most records are flat (issue 14: four a task): those skip `formatJson`'s replacer, called for every key. */
export const renderJson = (record: LogRecord): string => flat(record) ? JSON.stringify(record) : Formatter.formatJson(record)

const plain = /^[^\s"=\\\u0000-\u001f\u007f]+$/
const humanValue = (value: unknown): string => {
  const text = typeof value === "string" ? value : Formatter.formatJson(value)
  return plain.test(text) ? text : JSON.stringify(text)
}
// control characters (a newline in a message) are escaped, so one event stays one line
const oneLine = (text: string) => text.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1))
const pad2 = (n: number) => String(n).padStart(2, "0")

/**
 * A short line for a terminal: `15:49:58 INFO task accepted task_id=t-1 service=TaskFlow`, local time. A cause
 * follows on its own indented lines.
 */
export const renderHuman = (record: LogRecord, date: Date): string => {
  let out = `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())} ${record.level.toUpperCase()} ${oneLine(record.msg)}`
  let cause: string | undefined
  for (const key of Object.keys(record)) {
    if (key === "time" || key === "level" || key === "msg") continue
    if (key === "cause" && typeof record[key] === "string" && record[key].includes("\n")) {
      cause = record[key]
      continue
    }
    out += ` ${oneLine(key)}=${humanValue(record[key])}`
  }
  return cause === undefined ? out : `${out}\n${cause.split("\n").map((l) => `    ${l}`).join("\n")}`
}

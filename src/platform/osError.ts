/**
 * Names the operating system's reason inside an error, however deep it is wrapped (QueueStoreError →
 * PlatformError → SystemError → Node's error with `code`): "no space left on device (ENOSPC)" says what to fix,
 * "Unknown: FileSystem.writeAll (27)" does not.
 */
const KNOWN: Readonly<Record<string, string>> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOENT: "no such file or folder",
  ENOTDIR: "a path component is not a folder",
  EIO: "I/O error",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system"
}

/** The `E…` code in an error chain, if any. */
export const osErrorCode = (error: unknown): string | undefined => {
  const seen = new Set<unknown>()
  const stack: Array<unknown> = [error]
  while (stack.length > 0) {
    const e = stack.pop()
    if (typeof e !== "object" || e === null || seen.has(e)) continue
    seen.add(e)
    const code = (e as { code?: unknown }).code
    if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return code
    const o = e as { cause?: unknown; reason?: unknown; error?: unknown }
    stack.push(o.cause, o.reason, o.error)
  }
  return undefined
}

/** "no space left on device (ENOSPC)", else the error's own message. */
export const describeOsError = (error: unknown): string => {
  const code = osErrorCode(error)
  if (code !== undefined) return `${KNOWN[code] ?? "system error"} (${code})`
  return error instanceof Error ? error.message : String(error)
}

import * as NFS from "node:fs"

/** Running = exists and not a zombie (this container's PID 1 reaps orphans late). */
export const isAlive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(NFS.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

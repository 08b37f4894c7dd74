/**
 * What this machine allows, measured with the same building blocks the sidecar uses: a durable atomic
 * write (the sidecar's own `writeAtomic`, plus the bare syscalls for comparison), a WebSocket round trip
 * over loopback with `ws`, a `sh -c true` spawn, and how soon ResultWatcher's own watch (`nodeWatch`: Node's
 * `fs.watch`, the same name filter) reports a file renamed into the watched directory.
 */
import { NodeServicesLayer } from "../src/layers/Platform.ts"
import { Effect, Exit, Scope } from "effect"
import { spawn } from "node:child_process"
import * as NFS from "node:fs"
import type { AddressInfo } from "node:net"
import * as NPath from "node:path"
import { performance } from "node:perf_hooks"
import { WebSocket, WebSocketServer } from "ws"
import { classifyFile } from "../src/domain/AgentFiles.ts"
import { writeAtomic } from "../src/platform/atomicWrite.ts"
import { nodeWatch } from "../src/services/watcher/DirWatch.ts"

/** A ~2 KB JSON document shaped like a queue.json holding one task. */
export const sampleJson = (): string => {
  const at = Date.now()
  const doc = {
    version: 1,
    tasks: [{
      task_id: "bench-task-0001", description: "x".repeat(1200), metadata: { repo: "example/repo", branch: "main", priority: 3 },
      generation: 7, status: "working", accepted_at: at, updated_at: at,
      assignment: { type: "task_assign", task_id: "bench-task-0001", description: "…", generation: 7 },
      timeline: [{ at, event: "accepted" }, { at, event: "working", detail: "no wake_command: the agent starts itself" }]
    }],
    outbox: []
  }
  return JSON.stringify(doc, null, 2)
}

const WARMUP = 10

/** `sync: true` is the sidecar's queue save; `sync: false` the same without both fsyncs (what fsync costs). */
export const atomicWrites = (dir: string, n: number, sync: boolean): Promise<Array<number>> => {
  const data = sampleJson()
  const file = NPath.join(dir, sync ? "durable.json" : "nosync.json")
  return Effect.runPromise(Effect.gen(function*() {
    const samples: Array<number> = []
    for (let i = 0; i < n + WARMUP; i++) {
      const t0 = performance.now()
      yield* writeAtomic(file, data, { sync })
      if (i >= WARMUP) samples.push(performance.now() - t0)
    }
    return samples
  }).pipe(Effect.provide(NodeServicesLayer)))
}

/** The same durable replace with blocking node:fs calls: the floor writeAtomic's own overhead sits on. */
export const rawDurableWrites = (dir: string, n: number): Array<number> => {
  const data = Buffer.from(sampleJson())
  const file = NPath.join(dir, "raw.json")
  const samples: Array<number> = []
  for (let i = 0; i < n + WARMUP; i++) {
    const t0 = performance.now()
    const tmp = `${file}.${i}.tmp`
    const fd = NFS.openSync(tmp, "wx", 0o600)
    NFS.writeSync(fd, data)
    NFS.fsyncSync(fd)
    NFS.closeSync(fd)
    NFS.renameSync(tmp, file)
    const d = NFS.openSync(dir, "r")
    NFS.fsyncSync(d)
    NFS.closeSync(d)
    if (i >= WARMUP) samples.push(performance.now() - t0)
  }
  return samples
}

/** Client send → server echo → client receive, sequentially, over 127.0.0.1. */
export const wsRoundTrips = async (n: number): Promise<Array<number>> => {
  const server = await new Promise<WebSocketServer>((resolve, reject) => {
    const s = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    s.once("listening", () => resolve(s))
    s.once("error", reject)
  })
  server.on("connection", (ws) => ws.on("message", (data) => ws.send(String(data))))
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`)
  await new Promise<void>((resolve, reject) => { client.once("open", () => resolve()); client.once("error", reject) })
  const frame = JSON.stringify({ type: "task_accepted", task_id: "bench-task-0001", protocol_version: 1 })
  const samples: Array<number> = []
  try {
    for (let i = 0; i < n + WARMUP; i++) {
      const t0 = performance.now()
      await new Promise<void>((resolve) => { client.once("message", () => resolve()); client.send(frame) })
      if (i >= WARMUP) samples.push(performance.now() - t0)
    }
  } finally {
    client.terminate()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return samples
}

/** `sh -c true`: spawn to exit event. */
export const spawns = async (n: number): Promise<Array<number>> => {
  const samples: Array<number> = []
  for (let i = 0; i < n + 3; i++) {
    const t0 = performance.now()
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn("sh", ["-c", "true"], { stdio: "ignore" })
      child.once("error", reject)
      child.once("exit", (c) => resolve(c))
    })
    if (code !== 0) throw new Error(`sh -c true exited ${code}`)
    if (i >= 3) samples.push(performance.now() - t0)
  }
  return samples
}

/**
 * A file written under a dot-name and renamed to `<id>.json` in a watched directory: rename → the watch's report
 * of the name. ResultWatcher's watch as it runs (`nodeWatch` with its name filter, no stability wait).
 */
export const watchRenameEvents = async (dir: string, n: number): Promise<Array<number>> => {
  NFS.mkdirSync(dir, { recursive: true })
  let pending: { readonly name: string; readonly resolve: (at: number) => void } | undefined
  const scope = Effect.runSync(Scope.make())
  await Effect.runPromise(nodeWatch((name) => classifyFile(name) !== undefined)(dir, {
    file: (name) => {
      const at = performance.now()
      if (pending !== undefined && name === pending.name) pending.resolve(at)
    },
    lost: () => {},
    error: () => {}
  }).pipe(Scope.provide(scope)))
  const samples: Array<number> = []
  try {
    for (let i = 0; i < n + WARMUP; i++) {
      const name = `c-${i}.json`
      const final = NPath.join(dir, name)
      const tmp = NPath.join(dir, `.c-${i}.json.tmp`)
      NFS.writeFileSync(tmp, "{\"status\":\"success\",\"output\":\"ok\"}")
      const seen = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no watch event for ${final} within 5 s`)), 5000)
        pending = { name, resolve: (at) => { clearTimeout(timer); resolve(at) } }
      })
      const t0 = performance.now()
      NFS.renameSync(tmp, final)
      const at = await seen
      if (i >= WARMUP) samples.push(at - t0)
      pending = undefined
      NFS.unlinkSync(final)
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  return samples
}

/** Helpers for integration tests: a temp state dir, settings pointing at a hub, and a live sidecar in scope. */
import { Effect, FileSystem, Layer, Scope } from "effect"
import * as NFS from "node:fs"
import { defaultSettings, type Settings } from "../../src/domain/Config.ts"
import { SidecarLive } from "../../src/program.ts"
import { PlatformLayer } from "../../src/layers/Platform.ts"

export const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "sidecar-test-" })).pipe(
  Effect.provide(PlatformLayer)
)

export const settingsFor = (dir: string, hubUrl: string, overrides: Partial<Settings> = {}): Settings =>
  defaultSettings(dir, {
    hubUrl,
    logFile: undefined,
    heartbeatIntervalMs: 1_000,
    heartbeatTimeoutMs: 500,
    reconnectInitialMs: 50,
    reconnectMaxMs: 200,
    ...overrides
  })

/** Starts a whole live sidecar; it stops when the surrounding scope closes. */
export const startSidecar = (settings: Settings): Effect.Effect<void, unknown, Scope.Scope> =>
  Layer.build(SidecarLive(settings)).pipe(Effect.asVoid)

/** Writes an executable script into `dir` and returns its path. */
export const script = (dir: string, name: string, body: string): string => {
  const path = `${dir}/${name}`
  NFS.writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 })
  return path
}

export const readJson = (path: string): unknown => JSON.parse(NFS.readFileSync(path, "utf8"))
export const exists = (path: string): boolean => NFS.existsSync(path)

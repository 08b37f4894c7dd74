/**
 * The loaded configuration as a service. `load` reads the JSON file, applies the `SIDECAR_*` overrides,
 * decodes it listing every problem by key (exit 78 when invalid, SPEC §2) and resolves the token from
 * `token` or `token_file`. It only reads; it starts nothing.
 */
import { Context, Effect, FileSystem, Layer, Path, Result, Runtime, Schema } from "effect"
import { applyEnv, decodeConfigFile, knownKeys, type Problem, type Settings, toSettings } from "../domain/Config.ts"

export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  path: Schema.String,
  problems: Schema.Array(Schema.Struct({ key: Schema.String, message: Schema.String }))
}) {
  override readonly [Runtime.errorExitCode] = 78
  override get message() {
    const lines = this.problems.map((p) => `  ${p.key}: ${p.message.replaceAll("\n", " ")}`)
    return `invalid config ${this.path} (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n${lines.join("\n")}`
  }
}

export interface LoadedConfig {
  readonly settings: Settings
  /** Non-fatal findings: unknown keys, a config file others can read. */
  readonly warnings: ReadonlyArray<string>
}

export class SidecarConfig extends Context.Service<SidecarConfig, Settings>()("agent-sidecar/SidecarConfig") {
  static readonly layer = (settings: Settings) => Layer.succeed(SidecarConfig, settings)

  /** Reads and validates a config file plus environment overrides. */
  static readonly load = Effect.fn("SidecarConfig.load")(function*(configPath: string, env: Readonly<Record<string, string | undefined>>) {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const absolute = path.resolve(configPath)
    const invalid = (problems: ReadonlyArray<Problem>) => new ConfigInvalid({ path: absolute, problems })
    const text = yield* fs.readFileString(absolute).pipe(
      Effect.mapError((e) => invalid([{ key: "(file)", message: e.reason._tag === "NotFound" ? "file not found" : e.message }]))
    )
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => invalid([{ key: "(file)", message: `not valid JSON: ${e instanceof Error ? e.message : String(e)}` }])
    })
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      return yield* invalid([{ key: "(file)", message: "must be a JSON object" }])
    }
    const warnings: Array<string> = Object.keys(json)
      .filter((key) => !knownKeys.has(key))
      .map((key) => `unknown config key "${key}" ignored`)
    const mode = yield* fs.stat(absolute).pipe(Effect.map((s) => s.mode), Effect.orElseSucceed(() => 0))
    if ((mode & 0o077) !== 0) {
      warnings.push(`config file ${absolute} is readable by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`)
    }
    const merged = applyEnv(json as Record<string, unknown>, env)
    const decoded = decodeConfigFile(merged)
    // a missing token is one more problem in the same list, not one found only once the rest is right
    const noToken = merged["token"] === undefined && merged["token_file"] === undefined
      ? [{ key: "token", message: "Missing key (set token, token_file or SIDECAR_TOKEN)" }]
      : []
    if (Result.isFailure(decoded)) return yield* invalid([...decoded.failure, ...noToken])
    if (noToken.length > 0) return yield* invalid(noToken)
    const file = decoded.success
    const configDir = path.dirname(absolute)
    let token = file.token
    if (token === undefined && file.token_file !== undefined) {
      const tokenPath = path.resolve(configDir, file.token_file)
      const read = yield* fs.readFileString(tokenPath).pipe(Effect.result)
      if (Result.isFailure(read)) return yield* invalid([{ key: "token_file", message: `cannot read ${tokenPath}: ${read.failure.reason._tag}` }])
      token = read.success.replace(/\r?\n$/, "")
      if (token === "") return yield* invalid([{ key: "token_file", message: `${tokenPath} is empty` }])
      if (Array.from(token).length > 256) return yield* invalid([{ key: "token_file", message: `the token in ${tokenPath} is over 256 characters (the hub's limit)` }])
    }
    if (token === undefined) return yield* invalid([{ key: "token", message: "Missing key (set token, token_file or SIDECAR_TOKEN)" }])
    return { settings: toSettings(file, configDir, token), warnings } satisfies LoadedConfig
  })
}

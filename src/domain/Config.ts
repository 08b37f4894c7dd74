/**
 * The sidecar's configuration (SPEC §2): the JSON file's schema (snake_case keys, so existing config files
 * keep working), the `SIDECAR_*` environment overrides, and the camelCase `Settings` the services read.
 * Pure: reading the file and the environment happens in `services/SidecarConfig.ts`.
 */
import { Effect, Redacted, Result, Schema, SchemaIssue } from "effect"
import * as NodePath from "node:path"

const withDefault = <S extends Schema.Top & { readonly "~type.make.in": unknown }>(schema: S, value: S["Type"]) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(value)))

const NonNegativeInt = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)))
const PositiveInt = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(1)))
const NonEmptyString = Schema.String.pipe(Schema.check(Schema.isNonEmpty()))
/** AgentCom refuses an `identify` whose `name` or `token` is over 256 characters (its schemas.ex). */
const HubString = NonEmptyString.pipe(Schema.check(Schema.isMaxLength(256, { message: "must be at most 256 characters (the hub's limit)" })))
/** The hub drops an agent it has not heard from for 60 s (and closes a silent socket then): ping well within it. */
const HeartbeatInterval = PositiveInt.pipe(Schema.check(Schema.isLessThanOrEqualTo(30_000, { message: "must be at most 30000 (the hub drops an agent silent for 60 s)" })))

export const AgentIdPattern = /^[A-Za-z0-9._-]{1,64}$/
const AgentId = Schema.String.pipe(Schema.check(Schema.isPattern(AgentIdPattern, { message: "must be 1-64 characters of A-Z a-z 0-9 . _ -" })))
const HubUrl = Schema.String.pipe(Schema.check(Schema.isPattern(/^wss?:\/\/[^\s/?#]+(?:[/?#]\S*)?$/, { message: "must be a ws:// or wss:// URL" })))
const HttpAddr = Schema.String.pipe(Schema.check(Schema.isPattern(/^[A-Za-z0-9.:[\]-]+:\d{1,5}$/, { message: "must be HOST:PORT, e.g. 127.0.0.1:9464" })))

/** A string runs through the platform shell; an array runs without a shell. */
export const WakeCommand = Schema.Union([NonEmptyString, Schema.NonEmptyArray(NonEmptyString)])
export type WakeCommand = typeof WakeCommand.Type

export const LogLevel = Schema.Literals(["debug", "info", "warning", "error"])
export type LogLevel = typeof LogLevel.Type

export const ConfigFile = Schema.Struct({
  agent_id: AgentId,
  token: Schema.optionalKey(HubString),
  token_file: Schema.optionalKey(NonEmptyString),
  hub_url: HubUrl,
  name: Schema.optionalKey(HubString),
  capabilities: withDefault(Schema.Array(Schema.String), []),
  wake_command: Schema.optionalKey(WakeCommand),
  wake_timeout_ms: withDefault(PositiveInt, 60_000),
  wake_retry_delays_ms: withDefault(Schema.Array(NonNegativeInt), [5_000, 15_000, 30_000]),
  confirmation_timeout_ms: withDefault(PositiveInt, 30_000),
  task_timeout_ms: withDefault(NonNegativeInt, 0),
  results_dir: withDefault(NonEmptyString, "./results"),
  queue_path: withDefault(NonEmptyString, "./queue.json"),
  log_file: withDefault(Schema.String, "./sidecar.log"),
  log_level: withDefault(LogLevel, "info"),
  heartbeat_interval_ms: withDefault(HeartbeatInterval, 30_000),
  heartbeat_timeout_ms: withDefault(PositiveInt, 10_000),
  reconnect_initial_ms: withDefault(PositiveInt, 1_000),
  reconnect_max_ms: withDefault(PositiveInt, 60_000),
  max_active_tasks: withDefault(PositiveInt, 1),
  max_pending_reports: withDefault(PositiveInt, 100),
  agent_idle_timeout_ms: withDefault(NonNegativeInt, 0),
  kill_grace_ms: withDefault(NonNegativeInt, 5_000),
  http_addr: Schema.optionalKey(HttpAddr),
  max_message_bytes: withDefault(PositiveInt, 1_048_576),
  max_result_bytes: withDefault(PositiveInt, 10_485_760),
  secrets: withDefault(Schema.Array(NonEmptyString), [])
})
export type ConfigFile = typeof ConfigFile.Type

export const knownKeys: ReadonlySet<string> = new Set(Object.keys(ConfigFile.fields))

/** What the services read: camelCase, paths absolute, the token redacted. */
export interface Settings {
  readonly agentId: string
  readonly token: Redacted.Redacted<string>
  readonly hubUrl: string
  readonly name: string
  readonly capabilities: ReadonlyArray<string>
  readonly wakeCommand: WakeCommand | undefined
  readonly wakeTimeoutMs: number
  readonly wakeRetryDelaysMs: ReadonlyArray<number>
  readonly confirmationTimeoutMs: number
  readonly taskTimeoutMs: number
  readonly resultsDir: string
  readonly queuePath: string
  readonly logFile: string | undefined
  readonly logLevel: LogLevel
  readonly heartbeatIntervalMs: number
  readonly heartbeatTimeoutMs: number
  readonly reconnectInitialMs: number
  readonly reconnectMaxMs: number
  readonly maxActiveTasks: number
  /** Reports waiting for the hub beyond which new tasks are answered `busy` (a hub that never acks cannot fill the disk). */
  readonly maxPendingReports: number
  readonly agentIdleTimeoutMs: number
  readonly killGraceMs: number
  readonly httpAddr: string | undefined
  readonly maxMessageBytes: number
  readonly maxResultBytes: number
  /** Exact values scrubbed from logs, status output and captured wake output (the token is always one). */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
}

/** The environment variables that override the file (SPEC §2). */
export const envOverrides = { SIDECAR_HUB_URL: "hub_url", SIDECAR_TOKEN: "token", SIDECAR_AGENT_ID: "agent_id" } as const

export const applyEnv = (file: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>) => {
  const merged: Record<string, unknown> = { ...file }
  for (const [variable, key] of Object.entries(envOverrides)) {
    const value = env[variable]
    if (value !== undefined && value !== "") merged[key] = value
  }
  return merged
}

export interface Problem {
  readonly key: string
  readonly message: string
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/** Decodes with every problem collected, each named by its key path. */
export const decodeConfigFile = (input: unknown): Result.Result<ConfigFile, ReadonlyArray<Problem>> => {
  const decoded = Schema.decodeUnknownResult(ConfigFile, { errors: "all" })(input)
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
  return Result.fail(formatIssues(decoded.failure.issue).issues.map((issue) => ({
    key: (issue.path ?? []).map((p) => String(typeof p === "object" ? p.key : p)).join(".") || "(root)",
    message: issue.message
  })))
}

/** Turns the decoded file into `Settings`; `token` is the resolved secret (from `token` or `token_file`). */
export const toSettings = (file: ConfigFile, configDir: string, token: string): Settings => {
  const resolve = (p: string) => NodePath.resolve(configDir, p)
  return {
    agentId: file.agent_id,
    token: Redacted.make(token),
    hubUrl: file.hub_url,
    name: file.name ?? file.agent_id,
    capabilities: file.capabilities,
    wakeCommand: file.wake_command,
    wakeTimeoutMs: file.wake_timeout_ms,
    wakeRetryDelaysMs: file.wake_retry_delays_ms,
    confirmationTimeoutMs: file.confirmation_timeout_ms,
    taskTimeoutMs: file.task_timeout_ms,
    resultsDir: resolve(file.results_dir),
    queuePath: resolve(file.queue_path),
    logFile: file.log_file === "" ? undefined : resolve(file.log_file),
    logLevel: file.log_level,
    heartbeatIntervalMs: file.heartbeat_interval_ms,
    heartbeatTimeoutMs: file.heartbeat_timeout_ms,
    reconnectInitialMs: file.reconnect_initial_ms,
    reconnectMaxMs: file.reconnect_max_ms,
    maxActiveTasks: file.max_active_tasks,
    maxPendingReports: file.max_pending_reports,
    agentIdleTimeoutMs: file.agent_idle_timeout_ms,
    killGraceMs: file.kill_grace_ms,
    httpAddr: file.http_addr,
    maxMessageBytes: file.max_message_bytes,
    maxResultBytes: file.max_result_bytes,
    secrets: [token, ...file.secrets].map((s) => Redacted.make(s))
  }
}

/** Settings for tests and embedding: every default, paths under `dir`. */
export const defaultSettings = (dir: string, overrides: Partial<Settings> = {}): Settings => {
  const decoded = decodeConfigFile({ agent_id: "agent-1", hub_url: "ws://127.0.0.1:1/ws", token: "test-token" })
  if (Result.isFailure(decoded)) throw new Error("default config does not decode")
  return { ...toSettings(decoded.success, dir, "test-token"), ...overrides }
}

/** `agent-sidecar hub`: runs the development hub until interrupted (SPEC §7). */
import { Config, Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { LoggingLayer } from "../layers/Logging.ts"
import { logFormatFlag } from "../cli/shared.ts"
import { DevHub } from "./DevHub.ts"

const port = Flag.Int("port").pipe(
  Flag.withDescription("Port for HTTP and WebSocket on 127.0.0.1 (0 picks a free one)"),
  Flag.filter((p) => p >= 0 && p <= 65535, (p) => `--port must be 0..65535, got ${p}`),
  Flag.withDefault(8787)
)
// The token may come from the environment so that it need not show in `ps`.
const token = Flag.Redacted("token").pipe(
  Flag.withDescription("Sidecars must send this token in identify (env AGENT_SIDECAR_HUB_TOKEN); none: any token is accepted"),
  Flag.withFallbackConfig(Config.Redacted("AGENT_SIDECAR_HUB_TOKEN")),
  Flag.optional
)

const ms = (name: string, description: string) =>
  Flag.Int(name).pipe(Flag.withDescription(description), Flag.filter((n) => n > 0, (n) => `--${name} must be > 0, got ${n}`), Flag.optional)
const timers = {
  acceptanceTimeoutMs: ms("acceptance-timeout-ms", "Take back a task not accepted within this (AgentCom: 60000)"),
  stuckThresholdMs: ms("stuck-threshold-ms", "Take back a held task silent this long; twice this while working (AgentCom: 600000)"),
  reaperTtlMs: ms("reaper-ttl-ms", "Cut off agents that have not pinged for this long (AgentCom: 60000)"),
  maxRetries: Flag.Int("max-retries").pipe(Flag.withDescription("task_failed reports before a task is dead-lettered (AgentCom: 3)"), Flag.optional)
}

export const hub = Command.make("hub", { port, token, logFormat: logFormatFlag, ...timers }, ({ port, token, logFormat, ...t }) =>
  Effect.gen(function*() {
    const hub = yield* DevHub
    const banner = [
      `Dev hub page:  ${hub.url}/`,
      `Sidecars:      ${hub.wsUrl}${Option.isSome(token) ? " (token required)" : ""}`,
      "Behaves like AgentCom's hub; state is in memory only. Ctrl-C stops the hub."
    ].join("\n")
    // with JSON logs, stdout carries only JSON lines: the banner (for a person) goes to stderr
    yield* logFormat === "json" ? Console.error(banner) : Console.log(banner)
    return yield* Effect.never
  }).pipe(Effect.provide(DevHub.layer({
    port,
    token: Option.getOrUndefined(token),
    acceptanceTimeoutMs: Option.getOrUndefined(t.acceptanceTimeoutMs),
    stuckThresholdMs: Option.getOrUndefined(t.stuckThresholdMs),
    reaperTtlMs: Option.getOrUndefined(t.reaperTtlMs),
    maxRetries: Option.getOrUndefined(t.maxRetries)
  })), Effect.provide(LoggingLayer({ logFile: undefined, secrets: Option.toArray(token) }, { format: logFormat })))).pipe(
    Command.withDescription("Run a development hub (WebSocket /ws, HTTP API, live page at /)")
  )

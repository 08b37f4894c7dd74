/** `agent-sidecar hub`: runs the development hub until interrupted (SPEC §7). */
import { Config, Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
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

export const hub = Command.make("hub", { port, token }, ({ port, token }) =>
  Effect.gen(function*() {
    const hub = yield* DevHub
    yield* Console.log(`Dev hub page:  ${hub.url}/`)
    yield* Console.log(`Sidecars:      ${hub.wsUrl}${Option.isSome(token) ? " (token required)" : ""}`)
    yield* Console.log("State is in memory only. Ctrl-C stops the hub.")
    return yield* Effect.never
  }).pipe(Effect.provide(DevHub.layer({ port, token: Option.getOrUndefined(token) })))).pipe(
    Command.withDescription("Run a development hub (WebSocket /ws, HTTP API, live page at /)")
  )

/**
 * `agent-sidecar dev`: a development hub, a sidecar and an example agent in one process, zero config. State
 * lives in a fresh temp folder; the hub's state is in memory. Meant for a first look, not for production.
 */
import { Console, Effect, FileSystem, Layer, Random, Redacted } from "effect"
import { Command, Flag } from "effect/cli"
import * as NodeOs from "node:os"
import { defaultSettings } from "../domain/Config.ts"
import { exampleAgentWaker } from "../dev/exampleAgent.ts"
import { DevHub } from "../hub/DevHub.ts"
import { LoggingLayer } from "../layers/Logging.ts"
import { TelemetryLayer } from "../layers/Telemetry.ts"
import { PlatformLayer } from "../layers/Platform.ts"
import { sidecarLayer } from "../layers/Sidecar.ts"
import { logFormatFlag } from "./shared.ts"

export const devCommand = Command.make("dev", {
  port: Flag.Int("port").pipe(Flag.withDescription("Port of the dev hub's page and API on 127.0.0.1"), Flag.withDefault(8787)),
  logFormat: logFormatFlag
}, ({ logFormat, port }) => Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const stateDir = yield* fs.makeTempDirectoryScoped({ directory: NodeOs.tmpdir(), prefix: "agent-sidecar-dev-" })
  const token = `dev-${(yield* Random.nextIntBetween(0, 2 ** 31)).toString(36)}`
  const logging = { logLevel: "info", logFile: `${stateDir}/sidecar.log`, secrets: [Redacted.make(token)] } as const
  // one logger for the hub and the sidecar; built first, so it closes last and sees their shutdown lines
  const loggers = yield* Layer.build(LoggingLayer(logging, { format: logFormat }))
  return yield* Effect.gen(function*() {
    const hub = yield* Layer.build(DevHub.layer({ port, token })).pipe(Effect.map((ctx) => ctx.mapUnsafe.get(DevHub.key) as DevHub["Service"]))
    const settings = defaultSettings(stateDir, {
      agentId: "example-agent",
      name: "Example agent (in-process)",
      capabilities: ["example"],
      hubUrl: hub.wsUrl,
      token: Redacted.make(token),
      ...logging,
      reconnectInitialMs: 200,
      reconnectMaxMs: 2000
    })
    yield* Layer.build(sidecarLayer(settings, { waker: exampleAgentWaker }).pipe(Layer.provide(TelemetryLayer())))
    const banner = [
      "",
      `  agent-sidecar dev: hub, sidecar and an example agent are running.`,
      "",
      `  Open the live page:  ${hub.url}/`,
      `  Or submit a task:    curl -s -X POST ${hub.url}/api/tasks -H 'content-type: application/json' -d '{"description":"reverse this sentence"}'`,
      `  Then list tasks:     curl -s ${hub.url}/api/tasks`,
      "",
      `  State folder: ${stateDir} (removed on exit). Ctrl-C to stop.`,
      ""
    ].join("\n")
    // with JSON logs, stdout carries only JSON lines: the banner (for a person) goes to stderr
    yield* logFormat === "json" ? Console.error(banner) : Console.log(banner)
    return yield* Effect.never
  }).pipe(Effect.provideContext(loggers))
}).pipe(Effect.scoped, Effect.provide(PlatformLayer))).pipe(
  Command.withDescription("Run a dev hub, a sidecar and an example agent in one process (zero config); prints the page URL")
)

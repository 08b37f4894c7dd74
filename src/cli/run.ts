/** `agent-sidecar run`: the daemon. */
import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { LoggingLayer } from "../layers/Logging.ts"
import { exporting, TelemetryLayer } from "../layers/Telemetry.ts"
import { run } from "../program.ts"
import { configFlag, loadConfig, logFormatFlag } from "./shared.ts"

export const runCommand = Command.make("run", {
  config: configFlag,
  logFormat: logFormatFlag,
  once: Flag.Boolean("once").pipe(Flag.withDescription("Exit after one task has been reported and acknowledged"), Flag.withDefault(false))
}, ({ config, logFormat, once }) => Effect.gen(function*() {
  const settings = yield* loadConfig(config)
  // OTLP export (traces, metrics, logs) when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise no spans are even made
  // (each task would build half a dozen that nothing reads)
  yield* run(settings, { once }).pipe(
    Effect.provide(TelemetryLayer()),
    Effect.withTracerEnabled(exporting()),
    Effect.provide(LoggingLayer(settings, { format: logFormat }))
  )
})).pipe(Command.withDescription("Run the sidecar daemon (SIGINT/SIGTERM: graceful shutdown, exit 0; OTEL_EXPORTER_OTLP_ENDPOINT: OTLP export)"))

/**
 * OpenTelemetry export, with Effect's own OTLP exporters: traces (one per task), metrics (the `/metrics`
 * figures) and logs go to `OTEL_EXPORTER_OTLP_ENDPOINT` over OTLP/HTTP (JSON), configured by the standard
 * `OTEL_*` variables (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`,
 * `OTEL_{TRACES,METRICS,LOGS}_EXPORTER`, `OTEL_SDK_DISABLED`, …). Without an endpoint nothing is installed:
 * no exporter, no cost, and the exporters' modules (OTLP, the HTTP client) are not even loaded (issue 14).
 */
import { Effect, Layer } from "effect"

/** The OpenTelemetry specification's defaults that Effect's reader leaves empty (no exporter unless named). */
const SPEC_DEFAULTS: Readonly<Record<string, string>> = {
  OTEL_TRACES_EXPORTER: "otlp",
  OTEL_METRICS_EXPORTER: "otlp",
  OTEL_LOGS_EXPORTER: "otlp"
}

/** Whether OTLP export is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` set, the SDK not disabled). */
export const exporting = (env: Readonly<Record<string, string | undefined>> = process.env): boolean => {
  const endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
  return endpoint !== undefined && endpoint !== "" && env["OTEL_SDK_DISABLED"] !== "true"
}

export const TelemetryLayer = (env: Readonly<Record<string, string | undefined>> = process.env) => {
  if (!exporting(env)) return Layer.empty
  const vars: Record<string, string> = { ...SPEC_DEFAULTS }
  for (const [k, v] of Object.entries(env)) if (v !== undefined) vars[k] = v
  const serviceName = env["OTEL_SERVICE_NAME"] ?? "agent-sidecar"
  return Layer.unwrap(Effect.map(Effect.promise(() => import("./telemetry/otlp.ts")), (m) => m.otlpLayer(serviceName, vars)))
}

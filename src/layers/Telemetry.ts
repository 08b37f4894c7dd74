/**
 * OpenTelemetry export, with Effect's own OTLP exporters: traces (one per task), metrics (the `/metrics`
 * figures) and logs go to `OTEL_EXPORTER_OTLP_ENDPOINT` over OTLP/HTTP (JSON), configured by the standard
 * `OTEL_*` variables (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`,
 * `OTEL_{TRACES,METRICS,LOGS}_EXPORTER`, `OTEL_SDK_DISABLED`, …). Without an endpoint nothing is installed:
 * no exporter, no cost.
 */
import { ConfigProvider, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { Otlp, OtlpSerialization } from "effect/observability"
import { VERSION } from "../version.ts"

/** The OpenTelemetry specification's defaults that Effect's reader leaves empty (no exporter unless named). */
const SPEC_DEFAULTS: Readonly<Record<string, string>> = {
  OTEL_TRACES_EXPORTER: "otlp",
  OTEL_METRICS_EXPORTER: "otlp",
  OTEL_LOGS_EXPORTER: "otlp"
}

export const TelemetryLayer = (env: Readonly<Record<string, string | undefined>> = process.env) => {
  const endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
  if (endpoint === undefined || endpoint === "" || env["OTEL_SDK_DISABLED"] === "true") return Layer.empty
  const vars: Record<string, string> = { ...SPEC_DEFAULTS }
  for (const [k, v] of Object.entries(env)) if (v !== undefined) vars[k] = v
  return Otlp.layerFromConfig({
    resource: { serviceName: env["OTEL_SERVICE_NAME"] ?? "agent-sidecar", serviceVersion: VERSION },
    // our own loggers (stdout, the log file) keep running beside the OTLP one
    loggerMergeWithExisting: true
  }).pipe(Layer.provide([FetchHttpClient.layer, OtlpSerialization.layerJson, ConfigProvider.layer(ConfigProvider.fromEnv({ env: vars }))]))
}

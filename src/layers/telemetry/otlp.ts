/** The OTLP exporters themselves, in a module of their own: loaded only when an endpoint is set (`../Telemetry.ts`). */
import { ConfigProvider, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { Otlp, OtlpSerialization } from "effect/observability"
import { VERSION } from "../../version.ts"

export const otlpLayer = (serviceName: string, vars: Readonly<Record<string, string>>) =>
  Otlp.layerFromConfig({
    resource: { serviceName, serviceVersion: VERSION },
    // our own loggers (stdout, the log file) keep running beside the OTLP one
    loggerMergeWithExisting: true
  }).pipe(Layer.provide([FetchHttpClient.layer, OtlpSerialization.layerJson, ConfigProvider.layer(ConfigProvider.fromEnv({ env: vars }))]))

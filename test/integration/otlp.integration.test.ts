/**
 * OpenTelemetry (issue 13): with OTEL_EXPORTER_OTLP_ENDPOINT set, the daemon sends one trace per task (the
 * task span and its phases: wake attempt, confirmation, working, report, ack; with task_id, agent_id,
 * generation) and the /metrics figures as OTLP metrics, to a receiver started here that decodes what arrives.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import { startDaemon, writeConfig } from "../support/daemon.ts"
import { makeFakeHub } from "../support/FakeHub.ts"
import { script, tempDir } from "../support/sidecar.ts"

interface OtlpSpan { readonly name: string; readonly traceId: string; readonly spanId: string; readonly parentSpanId?: string; readonly attributes?: ReadonlyArray<{ key: string; value: Record<string, unknown> }> }

const receiver = Effect.acquireRelease(Effect.promise(() => new Promise<{ url: string; bodies: Array<{ path: string; body: unknown }>; server: Http.Server }>((resolve) => {
  const bodies: Array<{ path: string; body: unknown }> = []
  const server = Http.createServer((req, res) => {
    let data = ""
    req.on("data", (c) => { data += String(c) })
    req.on("end", () => {
      try { bodies.push({ path: req.url ?? "", body: JSON.parse(data) }) } catch { bodies.push({ path: req.url ?? "", body: data }) }
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  }).listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`, bodies, server }))
})), (r) => Effect.promise(() => new Promise<void>((resolve) => { r.server.closeAllConnections(); r.server.close(() => resolve()) })))

const spansOf = (bodies: ReadonlyArray<{ path: string; body: unknown }>): Array<OtlpSpan> =>
  bodies.filter((b) => b.path === "/v1/traces").flatMap((b) =>
    ((b.body as { resourceSpans?: Array<{ scopeSpans: Array<{ spans: Array<OtlpSpan> }> }> }).resourceSpans ?? []).flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)))

const attr = (span: OtlpSpan, key: string): unknown => {
  const v = span.attributes?.find((a) => a.key === key)?.value
  return v === undefined ? undefined : Object.values(v)[0]
}

describe("OpenTelemetry export", () => {
  it.live("one trace per task with its phases; the queue figures as OTLP metrics", () => Effect.gen(function*() {
    const otlp = yield* receiver
    const hub = yield* makeFakeHub()
    const dir = yield* tempDir
    // the agent starts after its wake command returned, and works a moment: every phase happens
    const wake = script(dir, "wake.sh", `cd "$RESULTS_DIR"; (sleep 0.3; echo s > .s-$TASK_ID && mv .s-$TASK_ID "$STARTED_FILE"; sleep 0.3; printf '{"status":"success"}' > .r-$TASK_ID && mv .r-$TASK_ID "$RESULT_FILE") >/dev/null 2>&1 &`)
    const config = writeConfig(dir, { hub_url: hub.url, wake_command: [wake], reconnect_initial_ms: 50 })
    const daemon = yield* startDaemon(["run", "--config", config], {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SERVICE_NAME: "sidecar-under-test", OTEL_BSP_SCHEDULE_DELAY: "200", OTEL_METRIC_EXPORT_INTERVAL: "500"
    })
    yield* hub.waitFor((f) => f.type === "identify")
    for (const id of ["t-1", "t-2"]) {
      hub.send({ type: "task_assign", task_id: id, generation: 4 })
      yield* hub.waitFor((f) => f.type === "task_complete" && f["task_id"] === id)
    }
    yield* Effect.sleep(300) // the acks (FakeHub answers each report) reach the daemon
    daemon.process.kill("SIGTERM") // shutdown flushes the exporters
    assert.strictEqual(yield* daemon.exited, 0, daemon.output())

    const spans = spansOf(otlp.bodies)
    const roots = spans.filter((s) => s.name === "task")
    assert.deepStrictEqual(roots.map((s) => attr(s, "task_id")).sort(), ["t-1", "t-2"], JSON.stringify(spans.map((s) => s.name)))
    for (const root of roots) {
      assert.strictEqual(attr(root, "agent_id"), "agent-1")
      assert.strictEqual(String(attr(root, "generation")), "4")
      assert.strictEqual(attr(root, "outcome"), "acknowledged")
      const children = spans.filter((s) => s.traceId === root.traceId && s.spanId !== root.spanId)
      const phases = children.filter((s) => s.parentSpanId === root.spanId).map((s) => s.name).sort()
      assert.deepStrictEqual(phases, ["ack", "confirmation", "report", "wake attempt 1", "working"])
      // the Waker's own span sits inside the attempt
      const attempt = children.find((s) => s.name === "wake attempt 1")!
      assert.isTrue(children.some((s) => s.name === "Waker.wake" && s.parentSpanId === attempt.spanId))
    }
    assert.notStrictEqual(roots[0]!.traceId, roots[1]!.traceId, "one trace per task")
    const metrics = JSON.stringify(otlp.bodies.filter((b) => b.path === "/v1/metrics").map((b) => b.body))
    assert.include(metrics, "agent_sidecar_tasks")
    assert.include(metrics, "agent_sidecar_outbox_reports")
    assert.include(JSON.stringify(otlp.bodies), "sidecar-under-test")
  }), 30_000)
})

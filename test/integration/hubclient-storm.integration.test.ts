/**
 * Issue 12, reconnect storm: AgentCom closes a connection right after `identified` during its cooldowns (1008
 * `cooldown active: retry in Ns`, `too many validation errors`). The old HubClient reset its backoff at every
 * `identified` and so redialled at once: 1,096 connections in 11.7 s. A real `ws` hub on 127.0.0.1 does exactly
 * that here; the HubClient (with its real `ws` constructor) must make only a handful of connections.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { AddressInfo } from "node:net"
import { WebSocketServer } from "ws"
import { defaultSettings } from "../../src/domain/Config.ts"
import { PlatformLayer } from "../../src/layers/Platform.ts"
import { HubClient } from "../../src/services/HubClient.ts"
import { SidecarConfig } from "../../src/services/SidecarConfig.ts"

/** A hub that answers `identify` with `identified` and closes the connection in the same breath. */
const identifyThenClose = (reason: string) => Effect.acquireRelease(
  Effect.callback<{ readonly server: WebSocketServer; readonly connections: Array<number> }, Error>((resume) => {
    const connections: Array<number> = []
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    server.on("connection", (ws) => {
      connections.push(Date.now())
      ws.on("message", (data) => {
        if ((JSON.parse(String(data)) as { type?: unknown }).type !== "identify") return
        ws.send(JSON.stringify({ type: "identified", agent_id: "agent-1" }))
        ws.close(1008, reason)
      })
    })
    server.once("listening", () => resume(Effect.succeed({ server, connections })))
    server.once("error", (e) => resume(Effect.fail(e)))
  }),
  ({ server }) => Effect.callback<void>((resume) => {
    for (const ws of server.clients) ws.terminate()
    server.close(() => resume(Effect.void))
  })
)

describe("HubClient against a hub that closes right after identified (issue 12)", () => {
  it.live("over 5 s it dials only a handful of times (backoff 1 s, 2 s, 4 s…), not hundreds", () => Effect.gen(function*() {
    const { server, connections } = yield* identifyThenClose("too many validation errors")
    const hubUrl = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`
    // the defaults that matter here: reconnect_initial_ms 1000, reconnect_max_ms 60000
    const settings = defaultSettings("/tmp/unused", { hubUrl })
    yield* Layer.build(HubClient.layer.pipe(Layer.provide([PlatformLayer, SidecarConfig.layer(settings)])))
    yield* Effect.sleep("5 seconds")
    const count = connections.length
    const gaps = connections.slice(1).map((t, i) => t - connections[i]!)
    console.log(`hubclient-storm: ${count} connections in 5 s, first gaps ${JSON.stringify(gaps.slice(0, 10))} ms`)
    assert.isAtLeast(count, 2, "it did reconnect")
    assert.isAtMost(count, 6, `connections in 5 s: ${count}`)
    // jitter keeps each delay within ±20 % of 1 s, 2 s, 4 s
    gaps.forEach((gap, i) => assert.isAtLeast(gap, 0.8 * 1000 * 2 ** i - 50, `gap ${i}: ${gap} ms`))
  }), 20_000)
})

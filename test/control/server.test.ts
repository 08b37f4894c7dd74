/**
 * The control socket answers one request per connection, once (issue 10: its line buffer was never cleared, so a
 * later chunk on the same connection ran the first request again: a second `resend` or `cancel`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import * as NFS from "node:fs"
import * as Net from "node:net"
import * as OS from "node:os"
import * as NodePath from "node:path"
import { ControlServerLayer } from "../../src/control/server.ts"
import { defaultSettings } from "../../src/domain/Config.ts"
import { emptyQueue } from "../../src/domain/Task.ts"
import { Health } from "../../src/services/Health.ts"
import { HubClient } from "../../src/services/HubClient.ts"
import { SidecarConfig } from "../../src/services/SidecarConfig.ts"
import { TaskFlow } from "../../src/services/TaskFlow.ts"

describe("control socket", () => {
  it.live("a second chunk on the same connection never runs the first request again", () => Effect.gen(function*() {
    const dir = NFS.mkdtempSync(NodePath.join(OS.tmpdir(), "control-"))
    const settings = defaultSettings(dir, {})
    const calls = yield* Ref.make<ReadonlyArray<string>>([])
    const flow = Layer.succeed(TaskFlow, TaskFlow.of({
      onHub: () => Effect.void, onFile: () => Effect.void, snapshot: Effect.succeed(emptyQueue), changes: Effect.never as never,
      stopAccepting: Effect.void, awaitIdle: Effect.void, awaitSettled: () => Effect.void,
      cancel: (id) => Effect.as(Ref.update(calls, (c) => [...c, `cancel ${id}`]), true),
      forget: (id) => Effect.as(Ref.update(calls, (c) => [...c, `forget ${id}`]), true),
      resend: (id) => Effect.as(Ref.update(calls, (c) => [...c, `resend ${id}`]), true)
    }))
    const hub = Layer.succeed(HubClient, HubClient.of({
      messages: Effect.never as never, send: () => Effect.void, sendNow: () => Effect.succeed(true), droppedFrames: Effect.succeed(0),
      state: Effect.succeed({ status: "identified", session: 1, since: 0 }), changes: Effect.never as never, setStatus: () => Effect.void
    }))
    yield* Layer.build(ControlServerLayer.pipe(Layer.provide([flow, hub, Health.layer, SidecarConfig.layer(settings)])))
    const reply = yield* Effect.promise(() => new Promise<string>((resolve, reject) => {
      const socket = Net.createConnection(`${settings.queuePath}.sock`)
      let answer = ""
      socket.setEncoding("utf8")
      socket.on("error", reject)
      socket.on("close", () => resolve(answer))
      // the request line; once answered, more bytes on the same connection (the server has only half-closed it)
      socket.on("data", (d: string) => {
        answer += d
        socket.write(`{"op":"cancel","task_id":"t-2"}\n`)
        setTimeout(() => socket.end(), 100)
      })
      socket.write(`{"op":"resend","task_id":"t-1"}\n`)
    }))
    assert.deepStrictEqual(JSON.parse(reply.trim()), { ok: true })
    yield* Effect.sleep(100) // a request run twice would show here
    assert.deepStrictEqual(yield* Ref.get(calls), ["resend t-1"])
    NFS.rmSync(dir, { recursive: true, force: true })
  }).pipe(Effect.scoped))
})

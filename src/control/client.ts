/** Talks to a running daemon's control socket; `None` when no daemon is listening. */
import { Effect, Option } from "effect"
import * as Net from "node:net"
import type { ControlRequest, ControlResponse } from "./protocol.ts"

export const askDaemon = (socketPath: string, request: ControlRequest, timeoutMs = 3000): Effect.Effect<Option.Option<ControlResponse>> =>
  Effect.callback<Option.Option<ControlResponse>>((resume) => {
    const socket = Net.createConnection(socketPath)
    let data = ""
    const done = (r: Option.Option<ControlResponse>) => { socket.destroy(); resume(Effect.succeed(r)) }
    socket.setEncoding("utf8")
    socket.setTimeout(timeoutMs, () => done(Option.none()))
    socket.on("connect", () => socket.write(`${JSON.stringify(request)}\n`))
    socket.on("data", (chunk: string) => { data += chunk })
    socket.on("end", () => {
      try {
        done(Option.some(JSON.parse(data) as ControlResponse))
      } catch {
        done(Option.none())
      }
    })
    socket.on("error", () => done(Option.none()))
    return Effect.sync(() => socket.destroy())
  })

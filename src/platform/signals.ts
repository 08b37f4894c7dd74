/** Process signals as Effects (the Node edge). */
import { Effect } from "effect"

/** Completes when the process receives `name`; the handler is removed if the wait is interrupted. */
export const awaitSignal = (name: NodeJS.Signals) =>
  Effect.callback<void>((resume) => {
    const handler = () => resume(Effect.void)
    process.once(name, handler)
    return Effect.sync(() => { process.off(name, handler) })
  })

/** A second SIGINT/SIGTERM while shutting down exits at once (SPEC: graceful first, then forceful). */
export const exitOnSecondSignal = () => {
  let received = 0
  const handler = (signal: NodeJS.Signals) => {
    received += 1
    if (received >= 2) {
      process.stderr.write(`agent-sidecar: second ${signal}; exiting now\n`)
      process.exit(130)
    }
  }
  process.on("SIGINT", handler)
  process.on("SIGTERM", handler)
}

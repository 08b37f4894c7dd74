/** The wake retry policy as a Schedule: one retry after each configured delay, then give up. */
import { Duration, Schedule } from "effect"

export const retryDelays = (delaysMs: ReadonlyArray<number>): Schedule.Schedule<unknown, unknown> =>
  delaysMs.length === 0
    ? Schedule.recurs(0)
    : delaysMs.map((ms) => Schedule.duration(Duration.millis(ms)) as Schedule.Schedule<unknown, unknown>).reduce((a, b) => Schedule.concat(a, b))

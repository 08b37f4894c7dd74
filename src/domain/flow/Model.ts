/**
 * What the task decider knows: the persisted queue (tasks and outbox) plus the run-time facts that are not
 * worth persisting (is the hub listening, which report is in flight, the agent's last sign of life). Pure data.
 */
import type { Outbound } from "../Protocol.ts"
import type { QueueFile } from "../Task.ts"

export type ProgressFrame = Extract<Outbound, { type: "task_progress" }>

/** Per task, in memory only: a restart starts these afresh. */
export interface TaskLife {
  /** Last sign of life from the agent (`.started`, `.progress`), for `agent_idle_timeout_ms`. */
  readonly lastSign: number
  /** When the last `task_progress` went out, for the 5 s relay limit. */
  readonly lastRelay: number
  /** The newest progress not yet relayed (hub away, or within the relay limit): only the latest is kept. */
  readonly pendingProgress: ProgressFrame | undefined
}

/** The report on the wire: `seq` tells a late timer of an earlier send apart from this one. */
export interface InFlight {
  readonly taskId: string
  readonly type: "task_complete" | "task_failed"
  readonly seq: number
  /** The generation it carried, to tell a refusal of an older generation from one of the newest. */
  readonly generation: number | undefined
}

export interface Model {
  readonly queue: QueueFile
  readonly accepting: boolean
  /** The hub has said `identified` on the current connection. */
  readonly identified: boolean
  /** At most one report is ever in flight (SPEC §6.2). */
  readonly inFlight: InFlight | undefined
  readonly sends: number
  /** Sends of each outbox report since start, for parking one the hub never answers. */
  readonly tries: ReadonlyMap<string, number>
  readonly life: ReadonlyMap<string, TaskLife>
  /** The generation each task's last `state_report` carried, until the hub answers it. */
  readonly reported: ReadonlyMap<string, number | undefined>
  /** Reports the hub has settled (acked or refused) since start, for `run --once`. */
  readonly settled: number
}

export const initialModel = (queue: QueueFile): Model => ({
  queue, accepting: true, identified: false, inFlight: undefined, sends: 0, tries: new Map(), life: new Map(), reported: new Map(), settled: 0
})

/** What the decider needs from the configuration. */
export interface DeciderConfig {
  readonly maxActiveTasks: number
  /** Reports waiting for the hub (parked and kept ones too) beyond which new tasks are refused `busy`. */
  readonly maxPendingReports: number
  /** false: no wake command; the agent starts itself. */
  readonly wakes: boolean
  readonly agentIdleTimeoutMs: number
  readonly progressRelayIntervalMs: number
  /** How long the files of a task that ended without a hub ack (cancel, forget, refusal) stay for the agent. */
  readonly cleanupGraceMs: number
  /** A report sent this many times with no answer is parked so the reports behind it flow. */
  readonly maxReportTries: number
  /** After `state_report_ack abort`, how long a re-assign of the task may still come before it is stopped. */
  readonly abortGraceMs: number
  /** How long a report refused as stale is kept for the hub to hand the task back. */
  readonly staleRetainMs: number
  /** How long reports wait for the hub's answers to the state_reports of a new connection. */
  readonly reconcileWaitMs: number
  /** A working task is reported alive (`task_progress`) at least this often. */
  readonly keepAliveMs: number
}

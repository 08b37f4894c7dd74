/**
 * One decision under construction: a copy of the model to edit and the commands given so far. The decider's
 * handlers all work through it, so every status change goes through the transition table (`advance`) and
 * every report through the outbox (`Reports.ts`).
 */
import { Result } from "effect"
import { findTask, setStatus, updateTask, withEntry } from "../QueueOps.ts"
import type { QueueFile, TaskRecord } from "../Task.ts"
import { type TaskEvent, transition } from "../TaskState.ts"
import type { Command, LogLevel } from "./Messages.ts"
import type { DeciderConfig, Model, TaskLife } from "./Model.ts"

export interface Decision {
  readonly model: Model
  readonly commands: ReadonlyArray<Command>
  /** false: what changed need not be on disk before the commands run (recovery resumes the same way from the
   *  state before it); it rides along with the next durable save, or a flush shortly after. Never true for a
   *  decision that leaves the queue as it was. */
  readonly durable: boolean
}

export class Tx {
  model: Model
  readonly commands: Array<Command> = []
  readonly now: number
  readonly config: DeciderConfig

  private readonly before: Model

  constructor(before: Model, now: number, config: DeciderConfig) {
    this.before = before
    this.model = before
    this.now = now
    this.config = config
  }

  get queue(): QueueFile { return this.model.queue }
  set queue(queue: QueueFile) { this.model = { ...this.model, queue } }
  set(patch: Partial<Model>): void { this.model = { ...this.model, ...patch } }

  task(id: string): TaskRecord | undefined { return findTask(this.queue, id) }
  updateTask(id: string, f: (t: TaskRecord) => TaskRecord): void { this.queue = updateTask(this.queue, id, f) }
  note(id: string, event: string, detail?: string): void {
    this.updateTask(id, (t) => withEntry(t, { at: this.now, event, ...(detail !== undefined ? { detail } : {}) }))
  }

  /** Moves a task along the transition table; false (and nothing changed) when the step is not allowed. */
  advance(id: string, event: TaskEvent, detail?: string): boolean {
    const task = this.task(id)
    if (task === undefined) return false
    const next = transition(task.status, event)
    if (Result.isFailure(next)) return false
    if (next.success !== task.status || detail !== undefined) this.updateTask(id, (t) => setStatus(t, next.success, this.now, detail))
    return true
  }

  life(id: string): TaskLife {
    return this.model.life.get(id) ?? { lastSign: this.now, lastRelay: -Infinity, pendingProgress: undefined }
  }
  setLife(id: string, patch: Partial<TaskLife>): void {
    this.set({ life: new Map(this.model.life).set(id, { ...this.life(id), ...patch }) })
  }
  forgetLife(id: string): void {
    if (!this.model.life.has(id)) return
    const life = new Map(this.model.life)
    life.delete(id)
    this.set({ life })
  }

  emit(command: Command): void { this.commands.push(command) }
  log(level: LogLevel, message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.commands.push({ _tag: "Log", level, message, fields })
  }
  reply(ok: boolean): void { this.commands.push({ _tag: "Reply", ok }) }

  /** This input's own changes must be on disk before its commands run (see `lazy` in TaskDecider.ts). */
  durable = true
  /** Everything decided so far must be on disk now, changed by this input or not (a `Flush`). */
  flush = false
  done(): Decision {
    const durable = this.flush || (this.durable && this.model.queue !== this.before.queue)
    return { model: this.model, commands: this.commands, durable }
  }
}

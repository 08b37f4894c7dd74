/** The dev hub's typed errors; `message` is the one line the CLI and the HTTP API show. */
import { Schema } from "effect"

/** The hub could not start or stop its server (e.g. the port is taken). */
export class DevHubError extends Schema.TaggedError<DevHubError>()("DevHubError", {
  op: Schema.Literals(["listen", "close"]),
  address: Schema.String,
  cause: Schema.Defect()
}) {
  override get message() {
    const why = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return this.op === "listen" ? `cannot listen on ${this.address}: ${why}` : `cannot close the server on ${this.address}: ${why}`
  }
}

/** A submitted task the hub refuses (empty description, bad agent id, too large for a sidecar). */
export class InvalidTask extends Schema.TaggedError<InvalidTask>()("InvalidTask", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()("TaskNotFound", { taskId: Schema.String }) {
  override get message() {
    return `unknown task ${this.taskId}`
  }
}

/** Cancelling a task that is already complete, failed or cancelled. */
export class TaskFinished extends Schema.TaggedError<TaskFinished>()("TaskFinished", { taskId: Schema.String, state: Schema.String }) {
  override get message() {
    return `task ${this.taskId} is already ${this.state}`
  }
}

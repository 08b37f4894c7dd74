/**
 * The live page in a real headless Chromium (Debian's `chromium`, driven by playwright-core): a task submitted
 * through the form reaches `complete` on screen while a fake sidecar works it, the cancel button cancels,
 * and hostile task text is shown as text. Leaves a screenshot in test-artifacts/hub-page.png.
 *
 * Without /usr/bin/chromium the test is skipped, except in CI (CI=true), where it must run.
 */
import { existsSync, mkdirSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, References } from "effect"
import { type Browser, chromium } from "playwright-core"
import { DevHub } from "../../src/hub/DevHub.ts"
import { agent, type RawClient } from "./client.ts"

const CHROMIUM = "/usr/bin/chromium"
const skip = !existsSync(CHROMIUM) && process.env["CI"] !== "true"
const skipNote = skip ? " [skipped: /usr/bin/chromium not found; `apt-get install -y chromium` to run it]" : ""
if (skip) console.warn(`page.browser.test.ts: ${CHROMIUM} not found; skipping the browser test (apt-get install -y chromium)`)

const HOSTILE = `<img src=x onerror="document.title='pwned'"> "; rm -rf ~; " $(touch /tmp/x)`

/** A sidecar that takes every task and completes it with the generation it was given. */
const fakeSidecar = (client: RawClient) => Effect.gen(function*() {
  const m = yield* client.take
  if (m.type !== "task_assign") return
  const task_id = m.task_id
  const generation = typeof m["generation"] === "number" ? m["generation"] : undefined
  yield* client.send({ type: "task_accepted", task_id })
  yield* Effect.sleep("100 millis")
  yield* client.send({ type: "wake_result", task_id, status: "success", attempt: 1 })
  yield* client.send({ type: "task_progress", task_id, progress: 60, message: "running the tests" })
  yield* Effect.sleep("200 millis")
  yield* client.send({
    type: "task_complete",
    task_id,
    result: { status: "success", output: `done: ${typeof m["description"] === "string" ? m["description"].slice(0, 40) : ""}` },
    ...(generation === undefined ? {} : { generation })
  })
}).pipe(Effect.forever)

/** A sidecar that accepts every task and stays at work on it. */
const busySidecar = (client: RawClient) => Effect.gen(function*() {
  const m = yield* client.take
  if (m.type !== "task_assign") return
  yield* client.send({ type: "task_accepted", task_id: m.task_id })
  yield* client.send({ type: "wake_result", task_id: m.task_id, status: "success", attempt: 1 })
  yield* client.send({ type: "task_progress", task_id: m.task_id, progress: 35, message: "editing src/cli/status.ts" })
}).pipe(Effect.forever)

const launch = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
    })
  ),
  (browser: Browser) => Effect.promise(() => browser.close())
)

describe("dev hub page in a browser", () => {
  it.live.skipIf(skip)(`a task submitted through the form is shown complete${skipNote}`, () =>
    Effect.gen(function*() {
      const hub = yield* DevHub
      const alpha = yield* agent(hub.wsUrl, "alpha")
      yield* Effect.forkScoped(fakeSidecar(alpha))
      const beta = yield* agent(hub.wsUrl, "beta")
      yield* Effect.forkScoped(busySidecar(beta))
      const earlier = yield* hub.submit({ description: "Refactor the config loader", metadata: { repo: "agent-sidecar" } })
      const hostile = yield* hub.submit({ description: HOSTILE, agent_id: "gamma" })
      const toCancel = yield* hub.submit({ description: "Update the changelog", agent_id: "gamma" })
      const working = yield* hub.submit({ description: "Make `status --json` print the task timeline", agent_id: "beta" })

      const browser = yield* launch
      const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1280, height: 1000 } }))
      const dialogs: Array<string> = []
      page.on("dialog", (d) => {
        dialogs.push(d.message())
        void d.dismiss()
      })
      yield* Effect.promise(() => page.goto(`${hub.url}/`))
      yield* Effect.promise(() => page.waitForSelector(`#live[data-live="1"]`))
      yield* Effect.promise(() => page.waitForSelector(`article[data-task-id="${earlier}"][data-state="complete"]`))
      yield* Effect.promise(() => page.waitForSelector(`article[data-task-id="${working}"][data-state="working"]`))
      assert.strictEqual(yield* Effect.promise(() => page.locator(`article[data-task-id="${working}"] .progress span`).textContent()),
        "35% editing src/cli/status.ts")

      yield* Effect.promise(() => page.fill("textarea[name=description]", "Add a --json flag to `status`"))
      yield* Effect.promise(() => page.click("#submit button[type=submit]"))
      const status = yield* Effect.promise(() => page.waitForSelector("#submit-status:has-text('Submitted t-')"))
      const submitted = /Submitted (t-[A-Za-z0-9._-]+)/.exec((yield* Effect.promise(() => status.textContent())) ?? "")?.[1]
      assert.isDefined(submitted, "the page reports the new task id")
      yield* Effect.promise(() => page.waitForSelector(`article[data-task-id="${submitted}"][data-state="complete"]`, { timeout: 10_000 }))
      const card = page.locator(`article[data-task-id="${submitted}"]`)
      assert.strictEqual(yield* Effect.promise(() => card.locator(".badge").textContent()), "complete")
      assert.strictEqual(yield* Effect.promise(() => card.locator(".desc").textContent()), "Add a --json flag to `status`")
      const task = yield* Effect.orDie(hub.task(submitted!))
      assert.deepInclude(task, { state: "complete", agent: "alpha", description: "Add a --json flag to `status`" })

      yield* Effect.promise(() => page.click(`article[data-task-id="${toCancel}"] button.cancel`))
      yield* Effect.promise(() => page.waitForSelector(`article[data-task-id="${toCancel}"][data-state="cancelled"]`))
      assert.strictEqual((yield* Effect.orDie(hub.task(toCancel))).state, "cancelled")

      const hostileDesc = page.locator(`article[data-task-id="${hostile}"] .desc`)
      assert.strictEqual(yield* Effect.promise(() => hostileDesc.textContent()), HOSTILE, "hostile text is shown verbatim")
      assert.strictEqual(yield* Effect.promise(() => page.locator("#tasks img").count()), 0, "no element was injected")
      assert.strictEqual(yield* Effect.promise(() => page.title()), "agent-sidecar dev hub")
      assert.deepStrictEqual(dialogs, [])
      assert.deepStrictEqual(yield* Effect.promise(() => page.locator("#agents tbody tr td:first-child").allTextContents()), ["alpha", "beta"])

      mkdirSync("test-artifacts", { recursive: true })
      yield* Effect.promise(() => page.screenshot({ path: "test-artifacts/hub-page.png", fullPage: true }))
    }).pipe(
      Effect.provide(DevHub.layer({ port: 0, token: "secret" })),
      Effect.provideService(References.MinimumLogLevel, "Warn")
    ), 60_000)
})

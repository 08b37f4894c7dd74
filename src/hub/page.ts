/**
 * The live page at `/`: plain HTML, CSS and inline JS, no build step. It renders the hub's snapshots from the
 * Server-Sent Events stream at `/api/events` and talks to the JSON API for submit and cancel.
 *
 * Task text is hostile input (anyone who can submit a task writes it), so the script builds the DOM with
 * `textContent` and attributes only, never `innerHTML`; the Content-Security-Policy allows this one script by
 * hash, so even a slip would not run injected script.
 */
import { createHash } from "node:crypto"

const script = String.raw`
"use strict";
const $ = (id) => document.getElementById(id);
const el = (tag, props, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = String(v); else node.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== undefined && c !== null) node.append(c);
  return node;
};
const time = (ms) => ms === undefined ? "" : new Date(ms).toLocaleTimeString([], { hour12: false });
const ago = (ms, now) => { const s = Math.max(0, Math.round((now - ms) / 1000)); return s < 60 ? s + " s ago" : Math.round(s / 60) + " min ago"; };
const finished = (s) => s === "complete" || s === "dead_letter" || s === "cancelled";
const shorten = (text, max) => text.length > max ? text.slice(0, max) + " …" : text;
const userOpened = new Map();
let lastSnapshot;

function renderAgents(agents, now) {
  const body = $("agents").tBodies[0];
  body.replaceChildren(...agents.map((a) => el("tr", { "data-agent-id": a.agent_id },
    el("td", {}, el("code", { text: a.agent_id })),
    el("td", { text: a.name }),
    el("td", {}, el("span", { class: "badge", "data-state": a.status === "busy" ? "working" : "idle", text: a.fsm + (a.unresponsive ? " (unresponsive)" : "") })),
    el("td", { text: a.capabilities.join(", ") || "–" }),
    el("td", { text: time(a.connected_at) }),
    el("td", { text: ago(a.last_seen, now) }))));
  $("agent-count").textContent = String(agents.length);
  $("no-agents").hidden = agents.length > 0;
  $("agent-ids").replaceChildren(...agents.map((a) => el("option", { value: a.agent_id })));
}

function renderTask(t) {
  const head = el("div", { class: "task-head" },
    el("span", { class: "badge", "data-state": t.state, text: t.state }),
    el("code", { class: "task-id", text: t.task_id }),
    el("span", { class: "muted", text: [t.agent ? "agent " + t.agent : (t.agent_id ? "for " + t.agent_id : "unassigned"),
      "gen " + t.generation, time(t.created_at)].join(" · ") }));
  if (!finished(t.state)) {
    const button = el("button", { type: "button", class: "cancel", "data-cancel": t.task_id, text: "Cancel" });
    button.addEventListener("click", () => cancelTask(t.task_id, button));
    head.append(button);
  }
  const card = el("article", { class: "task", "data-task-id": t.task_id, "data-state": t.state }, head,
    el("p", { class: "desc", text: shorten(t.description, 2000) || "(no description)" }));
  if (!finished(t.state) && t.last_error !== undefined) card.append(el("p", { class: "warn", text: "Failed " + t.retry_count + " of " + t.max_retries + " times; last error: " + shorten(t.last_error, 500) }));
  if (!finished(t.state) && (t.progress !== undefined || t.progress_message !== undefined)) {
    card.append(el("div", { class: "progress" },
      t.progress !== undefined ? el("progress", { max: 100, value: t.progress }) : undefined,
      el("span", { text: [t.progress !== undefined ? t.progress + "%" : "", t.progress_message || ""].join(" ").trim() })));
  }
  if (t.state === "complete") {
    const compact = JSON.stringify(t.result) ?? "(no result)";
    card.append(el("pre", { class: "outcome", text: shorten(compact.length <= 120 ? compact : JSON.stringify(t.result, null, 2), 1500) }));
    const extras = [t.tokens_used !== undefined && t.tokens_used !== null ? "tokens used: " + t.tokens_used : "",
      t.verification_report ? "verification: " + (t.verification_report.status ?? "reported") : "",
      t.verification_history.length > 0 ? t.verification_history.length + " verification run(s)" : ""].filter((x) => x !== "");
    if (extras.length > 0) card.append(el("p", { class: "muted", text: extras.join(" · ") }));
  }
  if (t.state === "dead_letter") card.append(el("p", { class: "outcome failed", text: "Dead letter after " + t.retry_count + " failure(s). Last error: " + t.last_error }));
  const list = el("ol", { class: "timeline" }, ...t.timeline.map((e) =>
    el("li", {}, el("time", { text: time(e.at) }), " ", el("b", { text: e.event }), e.detail ? " " + e.detail : "")));
  const summary = el("summary", { text: "Timeline (" + t.timeline.length + ")" });
  const details = el("details", { open: userOpened.get(t.task_id) ?? !finished(t.state) }, summary, list);
  // Only the user's own clicks are remembered: "toggle" also fires when the page itself sets "open".
  summary.addEventListener("click", () => userOpened.set(t.task_id, !details.open));
  card.append(details);
  return card;
}

function render(snapshot) {
  lastSnapshot = snapshot;
  const now = Date.now();
  renderAgents(snapshot.agents, now);
  const tasks = [...snapshot.tasks].reverse();
  $("task-count").textContent = String(tasks.length);
  $("no-tasks").hidden = tasks.length > 0;
  $("tasks").replaceChildren(...tasks.map(renderTask));
}

async function cancelTask(id, button) {
  button.disabled = true;
  const res = await fetch("/api/tasks/" + encodeURIComponent(id) + "/cancel", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  if (!res.ok) { button.disabled = false; showStatus((await res.json()).error || res.statusText, true); }
}

function showStatus(text, bad) {
  const out = $("submit-status");
  out.textContent = text;
  out.dataset.bad = bad ? "1" : "";
}

$("submit").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const description = form.elements.description.value;
  const agentId = form.elements.agent_id.value.trim();
  const body = { description };
  if (agentId !== "") body.agent_id = agentId;
  const res = await fetch("/api/tasks", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const json = await res.json();
  if (res.ok) { showStatus("Submitted " + json.task_id, false); form.elements.description.value = ""; }
  else showStatus(json.error || res.statusText, true);
});

$("ws-url").textContent = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
const events = new EventSource("/api/events");
events.onopen = () => { $("live").dataset.live = "1"; $("live").textContent = "live"; };
events.onerror = () => { $("live").dataset.live = ""; $("live").textContent = "reconnecting…"; };
events.onmessage = (e) => render(JSON.parse(e.data));
setInterval(() => { if (lastSnapshot) renderAgents(lastSnapshot.agents, Date.now()); }, 5000);
`

const style = `
:root { color-scheme: light dark; --fg: #1d2125; --muted: #5f6b76; --line: #d9dee3; --card: #fff; --bg: #f4f6f8; --accent: #2563eb; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ec; --muted: #9aa5b1; --line: #333a42; --card: #1b1f24; --bg: #111418; --accent: #60a5fa; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 12px; padding: 12px 24px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0; } h1 span { color: var(--muted); font-weight: 400; }
h2 { font-size: 15px; margin: 0 0 8px; } h2 span { color: var(--muted); font-weight: 400; }
#live { margin-left: auto; font-size: 12px; color: var(--muted); } #live::before { content: "●"; margin-right: 4px; color: #d97706; }
#live[data-live="1"]::before { color: #16a34a; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px; display: grid; gap: 16px; grid-template-columns: minmax(280px, 2fr) 3fr; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
#tasks-section { grid-column: 1 / -1; }
label { display: block; font-weight: 600; margin-bottom: 8px; } label .muted { font-weight: 400; }
textarea, input { display: block; width: 100%; margin-top: 4px; padding: 6px 8px; font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line); border-radius: 6px; }
textarea { resize: vertical; min-height: 72px; }
button { font: inherit; padding: 5px 14px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.cancel { margin-left: auto; padding: 2px 10px; background: transparent; color: #dc2626; border-color: #dc2626; }
button:disabled { opacity: .5; cursor: default; }
#submit-status { margin-left: 10px; color: var(--muted); } #submit-status[data-bad="1"] { color: #dc2626; }
table { width: 100%; border-collapse: collapse; } th, td { text-align: left; padding: 4px 8px 4px 0; border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
.muted, .empty { color: var(--muted); } code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.badge { display: inline-block; min-width: 74px; text-align: center; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: #e5e7eb; color: #374151; }
.badge[data-state="assigned"], .badge[data-state="accepted"] { background: #dbeafe; color: #1e40af; }
.badge[data-state="working"] { background: #fef3c7; color: #92400e; }
.badge[data-state="complete"], .badge[data-state="idle"] { background: #dcfce7; color: #166534; }
.badge[data-state="dead_letter"] { background: #fee2e2; color: #991b1b; }
.badge[data-state="cancelled"] { background: #e5e7eb; color: #6b7280; text-decoration: line-through; }
.task { border-top: 1px solid var(--line); padding: 10px 0; } .task:first-child { border-top: 0; }
.task-head { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
.desc { white-space: pre-wrap; overflow-wrap: anywhere; margin: 6px 0; max-height: 9em; overflow: auto; }
.outcome { margin: 6px 0; padding: 6px 8px; background: var(--bg); border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 10em; overflow: auto; }
.outcome.failed { color: #b91c1c; } .warn { color: #b45309; margin: 4px 0; }
.progress { display: flex; align-items: center; gap: 8px; margin: 4px 0; } progress { width: 180px; }
details summary { cursor: pointer; color: var(--muted); font-size: 12px; }
.timeline { margin: 4px 0 0; padding-left: 18px; font-size: 12px; } .timeline time { color: var(--muted); font-family: ui-monospace, monospace; }
@media (max-width: 800px) { main { grid-template-columns: 1fr; } }
`

const body = `
<header><h1>agent-sidecar <span>dev hub</span></h1><span id="live">connecting…</span></header>
<main>
<section id="submit-section">
  <h2>New task</h2>
  <form id="submit">
    <label>Description<textarea name="description" required maxlength="100000" placeholder="What should the agent do?"></textarea></label>
    <label>Agent id <span class="muted">(optional: any idle agent otherwise)</span><input name="agent_id" list="agent-ids" pattern="[A-Za-z0-9._\\-]{1,64}" autocomplete="off"></label>
    <datalist id="agent-ids"></datalist>
    <button type="submit">Submit task</button><output id="submit-status"></output>
  </form>
</section>
<section id="agents-section">
  <h2>Agents <span id="agent-count">0</span></h2>
  <table id="agents"><thead><tr><th>Agent</th><th>Name</th><th>Status</th><th>Capabilities</th><th>Connected</th><th>Last seen</th></tr></thead><tbody></tbody></table>
  <p id="no-agents" class="empty">No sidecar connected. Point one at <code id="ws-url"></code></p>
</section>
<section id="tasks-section">
  <h2>Tasks <span id="task-count">0</span></h2>
  <p id="no-tasks" class="empty">No tasks yet.</p>
  <div id="tasks"></div>
</section>
</main>
`

const scriptHash = createHash("sha256").update(script).digest("base64")

/** The page's Content-Security-Policy: only the inline script above runs, and it may only talk to this origin. */
export const pageCsp = [
  "default-src 'none'",
  `script-src 'sha256-${scriptHash}'`,
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  "img-src data:",
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'"
].join("; ")

export const pageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agent-sidecar dev hub</title>
<style>${style}</style>
</head>
<body>${body}<script>${script}</script>
</body>
</html>
`

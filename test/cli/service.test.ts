/** `service install` names stable paths (issue 13): real files, quoted for systemd, never npm's npx cache. */
import { describe, expect, it } from "vitest"
import { stablePaths, systemdWord, unitFile } from "../../src/cli/service.ts"

describe("service install", () => {
  it("resolves npm's links to the real bin and Node", () => {
    const links: Record<string, string> = { "/usr/bin/node": "/usr/lib/node/bin/node", "/usr/local/bin/agent-sidecar": "/usr/local/lib/node_modules/agent-sidecar/bin/agent-sidecar.js" }
    expect(stablePaths("/usr/bin/node", "/usr/local/bin/agent-sidecar", (p) => links[p] ?? p))
      .toEqual({ ok: true, node: "/usr/lib/node/bin/node", bin: "/usr/local/lib/node_modules/agent-sidecar/bin/agent-sidecar.js" })
  })
  it("refuses npm's npx cache, with the fix", () => {
    const r = stablePaths("/usr/bin/node", "/root/.npm/_npx/1a2b/node_modules/.bin/agent-sidecar", (p) => p.replace(".bin/agent-sidecar", "agent-sidecar/bin/agent-sidecar.js"))
    expect(r.ok).toBe(false)
    expect(r.ok ? "" : r.why).toMatch(/npx cache.*npm i -g agent-sidecar/)
  })
  it("quotes paths with spaces the way systemd reads them", () => {
    expect(systemdWord("/opt/node 24/bin/node")).toBe('"/opt/node 24/bin/node"')
    expect(systemdWord("/usr/bin/node")).toBe("/usr/bin/node")
    const unit = unitFile({ node: "/opt/node 24/bin/node", bin: "/opt/a s/bin.js", config: "/etc/a s/config.json", workingDirectory: "/etc/a s", user: false })
    expect(unit).toContain('ExecStart="/opt/node 24/bin/node" "/opt/a s/bin.js" run --config "/etc/a s/config.json"')
    expect(unit).toContain('WorkingDirectory="/etc/a s"')
  })
})

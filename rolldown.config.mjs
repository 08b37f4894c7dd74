// Two builds: the CLI as one self-contained bundle (small, fast to start), and the library entry with its
// Effect dependencies left external, so an embedding application shares its own `effect` (one set of
// Context tags, one runtime).
import { defineConfig } from "rolldown"

const external = [/^effect(\/|$)/, /^@effect\//, /^ws$/, /^chokidar$/]

export default defineConfig([
  { input: "src/bin.ts", platform: "node", output: { file: "dist/agent-sidecar.mjs", format: "esm" }, logLevel: "warn" },
  { input: "src/index.ts", platform: "node", external, output: { file: "dist/index.mjs", format: "esm" }, logLevel: "warn" }
])

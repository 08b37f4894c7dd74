// Two builds: the CLI as one self-contained bundle (small, fast to start; it needs no installed dependency), and
// the library entry with `effect` left external, so an embedding application shares its own (one set of Context
// tags, one runtime), and `ws`/`chokidar` from the package's dependencies; the few Node platform modules it uses
// are bundled in.
import { defineConfig } from "rolldown"

const external = [/^effect(\/|$)/, /^ws$/, /^chokidar$/]

export default defineConfig([
  { input: "src/bin.ts", platform: "node", output: { file: "dist/agent-sidecar.mjs", format: "esm" }, logLevel: "warn" },
  { input: "src/index.ts", platform: "node", external, output: { file: "dist/index.mjs", format: "esm" }, logLevel: "warn" }
])

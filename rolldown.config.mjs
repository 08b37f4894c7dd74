// Two builds: the CLI as one self-contained bundle (small, fast to start; it needs no installed dependency), and
// the library entry with `effect` left external, so an embedding application shares its own (one set of Context
// tags, one runtime), and `ws` from the package's dependencies; the few Node platform modules it uses
// are bundled in.
//
// Issue 14, the CLI's idle memory:
// - its commands are loaded with `import()` (src/bin.ts), so each gets a chunk in dist/chunks/ and the daemon
//   (`run`) loads only its own code and what it shares; the chunks of an earlier build are removed first;
// - an ESM import of a Node builtin (`import * as Http from "node:http"`, or named) builds the module's namespace,
//   which runs every lazy getter of its exports: `node:http` then loads undici, http2, worker_threads and
//   perf_hooks (+12 MB RSS), `node:crypto` all of webcrypto (+2 MB). `process.getBuiltinModule` (Node >= 22.3)
//   reads only what is used, so the CLI's static imports of builtins become that (`builtinsOnDemand`);
// - V8 keeps each module's source text for the process's life, two bytes a character if it holds one non-ASCII
//   character: the CLI is emitted as ASCII (escapes) and without comments (2.0 → 1.3 MB of source, -2 MB RSS);
// - work a dependency does at load time that the daemon never needs is deferred to first use (`deferInDependencies`):
//   ws's requires of tls and https (only wss: uses them) and zlib (only permessage-deflate), effect's
//   Intl.Segmenter (only the help's column widths): idle RSS 68 → 65 MB.
//
// Issue 14, the CLI's CPU: effect makes a `node:async_hooks` AsyncResource each time a fiber suspends and enters it
// when the fiber resumes, so code that relies on AsyncLocalStorage sees its context across a fiber's waits. The
// daemon has no such code (its tracing is Effect's own), and a task suspends fibers dozens of times: the CLI bundle
// drops the capture (an edit in `deferInDependencies`). CPU per task -2 to -3 % (bench/pair-probe.ts, sides
// swapped). The library build keeps it: an embedding application may rely on it.
import { rmSync } from "node:fs"
import { isBuiltin } from "node:module"
import { defineConfig } from "rolldown"

const external = [/^effect(\/|$)/, /^ws$/]

const cleanChunks = { name: "clean-chunks", buildStart: () => rmSync("dist/chunks", { recursive: true, force: true }) }

const BUILTIN_IMPORT = /^import\s+(?:\*\s+as\s+([\w$]+)|\{([^}]*)\}|([\w$]+))\s+from\s+["']([\w:/]+)["'];?[ \t]*$/gm

/** `import * as X from "node:x"` → `const X = process.getBuiltinModule("node:x")`; `import { a, b as c }` →
 *  `const { a, b: c } = …`. Type-only names (`type X`, not `type as y`) are dropped; a `default` import is left as it is. */
const builtinsOnDemand = {
  name: "builtins-on-demand",
  transform(code, id) {
    if (!/\.(m?[jt]s|cjs)$/.test(id) || !code.includes("import")) return null
    let changed = false
    const out = code.replace(BUILTIN_IMPORT, (statement, namespace, named, single, source) => {
      if (!isBuiltin(source)) return statement
      const load = `process.getBuiltinModule(${JSON.stringify(source.startsWith("node:") ? source : `node:${source}`)})`
      if (namespace !== undefined || single !== undefined) {
        changed = true
        return `const ${namespace ?? single} = ${load};`
      }
      const names = named.split(",").map((s) => s.trim()).filter((s) => s !== "" && !/^type\s+(?!as\b)[\w$]/.test(s))
      if (names.some((n) => /^default\b/.test(n))) return statement
      changed = true
      if (names.length === 0) return ""
      return `const { ${names.map((n) => n.replace(/\s+as\s+/, ": ")).join(", ")} } = ${load};`
    })
    return changed ? { code: out, map: null } : null
  }
}

/** Loads a builtin on first property access: for a dependency's top-level `require` of one it rarely uses. */
const lazyBuiltin = (name) => `new Proxy({}, { get: (_, key) => process.getBuiltinModule(${JSON.stringify(`node:${name}`)})[key] })`

/** Per dependency file: exact text → its replacement. The build fails when one is not found (an upgraded
 *  dependency changed it), so a saving cannot silently disappear. */
const DEFERRED = {
  // requiring tls costs ~3 MB of RSS (it sets up OpenSSL's TLS side) though the hub URL is ws: on most machines
  "ws/lib/websocket.js": [
    ["const https = require('https');", `const https = ${lazyBuiltin("https")};`],
    ["const tls = require('tls');", `const tls = ${lazyBuiltin("tls")};`]
  ],
  "ws/lib/permessage-deflate.js": [["const zlib = require('zlib');", `const zlib = ${lazyBuiltin("zlib")};`]],
  // no AsyncResource per fiber suspension (see the top of this file): effect's own fallback where there is none
  "effect/dist/internal/effect.js": [[
    'return globalThis.process?.getBuiltinModule?.("node:async_hooks")?.AsyncResource;',
    "return undefined;"
  ]],
  // an ICU grapheme segmenter (+1-2 MB: ICU data and its allocations), used only to lay out the help text
  "effect/dist/cli/CliOutput.js": [[
    'const graphemeSegmenter = /*#__PURE__*/new Intl.Segmenter(undefined, {\n  granularity: "grapheme"\n});',
    'let graphemeSegmenterMade;\nconst graphemeSegmenter = { segment: (text) => (graphemeSegmenterMade ??= new Intl.Segmenter(undefined, { granularity: "grapheme" })).segment(text) };'
  ]]
}

const deferInDependencies = {
  name: "defer-in-dependencies",
  transform(code, id) {
    const file = Object.keys(DEFERRED).find((suffix) => id.replaceAll("\\", "/").endsWith(`/node_modules/${suffix}`))
    if (file === undefined) return null
    let out = code
    for (const [from, to] of DEFERRED[file]) {
      if (!out.includes(from)) throw new Error(`defer-in-dependencies: ${file} no longer contains ${JSON.stringify(from)}; update rolldown.config.mjs`)
      out = out.replace(from, to)
    }
    return { code: out, map: null }
  }
}

export default defineConfig([
  {
    input: { "agent-sidecar": "src/bin.ts" }, platform: "node", plugins: [cleanChunks, builtinsOnDemand, deferInDependencies], logLevel: "warn",
    output: {
      dir: "dist", format: "esm", entryFileNames: "[name].mjs", chunkFileNames: "chunks/[name]-[hash].mjs",
      charset: "ascii", comments: { legal: false, annotation: false, jsdoc: false }
    }
  },
  { input: "src/index.ts", platform: "node", external, output: { file: "dist/index.mjs", format: "esm" }, logLevel: "warn" }
])

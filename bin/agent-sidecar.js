#!/usr/bin/env node
// Runs the TypeScript sources directly (Node >= 22.18 strips types); `npm ci` pins Node 24 for `npx`/`npm run`.
import { runCli } from "../src/bin.ts"

runCli()

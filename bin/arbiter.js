#!/usr/bin/env node
// The `arbiter` command. The TypeScript sources are compiled to dist/ by
// `npm run build` (run automatically by `npm ci` through the prepare script).
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
});

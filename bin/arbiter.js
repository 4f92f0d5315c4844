#!/usr/bin/env node
// The `arbiter` command. The TypeScript sources are compiled to dist/ by
// `npm run build` (run automatically by `npm ci` through the prepare script).
import { main } from '../dist/src/cli/main.js';

// `arbiter test | head`: a reader that goes away is not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
});

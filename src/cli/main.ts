/**
 * The `arbiter` command line: a thin shell over the engine. Each command
 * lives in commands/; this file only dispatches.
 */
import { runCheck } from './commands/check.js';
import { runCall } from './commands/call.js';
import { runFmt } from './commands/fmt.js';
import { runLint } from './commands/lint.js';
import { runServe } from './commands/serve.js';
import { runTest } from './commands/test.js';
import { runToken } from './commands/token.js';
import { runValidate } from './commands/validate.js';
import { EXIT, type CliIO } from './io.js';

export type { CliIO } from './io.js';

const USAGE = `usage: arbiter <command> [options]

commands:
  check     decide one request against a policy directory (JSON in, JSON out)
  validate  compile policy directories and report every error
  fmt       rewrite policy files in the canonical layout (--check: list, write nothing)
  test      run the policy test suites (*.test.yaml), with rule coverage
  lint      warn about rules that never apply, are overridden or redundant
  serve     run the gRPC decision server
  call      make one Check against a running server
  token     mint a signed token for development (dev keys in dev/)

Run 'arbiter <command> --help' for a command's options.`;

/**
 * Runs the CLI and returns its exit status.
 *
 * @example
 * process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
 */
export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'check':
      return runCheck(rest, io);
    case 'validate':
      return runValidate(rest, io);
    case 'fmt':
      return runFmt(rest, io);
    case 'test':
      return runTest(rest, io);
    case 'lint':
      return runLint(rest, io);
    case 'serve':
      return runServe(rest, io);
    case 'call':
      return runCall(rest, io);
    case 'token':
      return runToken(rest, io);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      (command === undefined ? io.stderr : io.stdout).write(`${USAGE}\n`);
      return command === undefined ? EXIT.USAGE : EXIT.OK;
    default:
      io.stderr.write(`arbiter: unknown command '${command}'\n\n${USAGE}\n`);
      return EXIT.USAGE;
  }
}

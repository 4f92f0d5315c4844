/** Runs the `arbiter` CLI in process, capturing its output: what the CLI tests share. */
import { Readable } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/**
 * `arbiter ...argv` with `stdin` as standard input and `env` as the
 * environment (the process's when not given).
 */
export async function runCli(argv: readonly string[], options: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await main(argv, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    stdin: Readable.from([Buffer.from(options.stdin ?? '')]),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  return { code, out, err };
}

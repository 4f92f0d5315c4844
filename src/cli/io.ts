/** The CLI's streams, passed in so commands can run in process (tests) or as the `arbiter` binary. */
import { readFile, stat } from 'node:fs/promises';

export interface CliIO {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  readonly stdin: AsyncIterable<Buffer | string>;
  /** Environment variables (config `secret_env`, `ARBITER_CONFIG`); defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Exit codes, in one place: only the CLI knows them. */
export const EXIT = {
  OK: 0,
  /** `validate`: the policy set has errors; `check`: the policy set could not be loaded; `fmt --check`: a file is not formatted. */
  POLICY_ERROR: 1,
  /** Bad usage or a malformed request; `fmt`: a file that cannot be read, written or parsed. */
  USAGE: 2,
  /** The config file is missing or wrong, or a key or revocation file it names cannot be loaded. */
  CONFIG_ERROR: 3,
} as const;

/** Largest request document the CLI reads. */
export const MAX_INPUT_BYTES = 1024 * 1024;

export class InputTooLargeError extends Error {}

/** Reads a file or stdin (`-` or no path), bounded by {@link MAX_INPUT_BYTES}. */
export async function readInput(path: string | undefined, io: CliIO): Promise<string> {
  if (path !== undefined && path !== '-') {
    const info = await stat(path);
    if (info.size > MAX_INPUT_BYTES) throw new InputTooLargeError(`input is larger than ${MAX_INPUT_BYTES} bytes`);
    return readFile(path, 'utf8');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += b.length;
    if (size > MAX_INPUT_BYTES) throw new InputTooLargeError(`input is larger than ${MAX_INPUT_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

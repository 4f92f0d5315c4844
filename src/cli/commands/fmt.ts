/** `arbiter fmt`: rewrite policy files in the canonical layout, comments kept. */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ArbiterError, formatDiagnostic } from '../../errors.js';
import { POLICY_LIMITS, PolicyLoadError, readPolicyDirectory } from '../../engine/policy-store.js';
import { formatPolicy } from '../../lang/format.js';
import { ParseError } from '../../lang/parse.js';
import { EXIT, InputTooLargeError, readInput, type CliIO } from '../io.js';

export const FMT_USAGE = `usage: arbiter fmt [--check] PATH...

Rewrites policy files in the canonical layout (comments kept) and prints the
name of every file it changed. A PATH that is a directory means every *.policy
file under it (dot-directories and node_modules skipped); "-" formats standard
input to standard output. Syntax errors are reported as file:line:col: message.

  --check   write nothing; list the files that are not formatted

exit status: 0 done (with --check: every file is formatted), 1 with --check:
some file is not formatted, 2 bad usage, or a file that cannot be read,
written or parsed (the other files are still formatted)`;

/** `--check` found a file to reformat: the same status as `validate` finding errors. */
const EXIT_UNFORMATTED = EXIT.POLICY_ERROR;
/** A file that cannot be read, written or parsed; reported like bad usage, so that it never looks like "needs formatting". */
const EXIT_FILE_ERROR = EXIT.USAGE;

/** Name used for standard input in messages and listings. */
const STDIN_NAME = '<stdin>';

/**
 * Runs `arbiter fmt` and returns its exit status.
 *
 * @example
 * await runFmt(['--check', 'policies'], io) // 0 when every file is formatted
 */
export async function runFmt(argv: readonly string[], io: CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { check: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    io.stderr.write(`arbiter fmt: ${(e as Error).message}\n\n${FMT_USAGE}\n`);
    return EXIT.USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(`${FMT_USAGE}\n`);
    return EXIT.OK;
  }
  if (positionals.length === 0) {
    io.stderr.write(`${FMT_USAGE}\n`);
    return EXIT.USAGE;
  }
  const check = values.check;
  let failed = false;
  let unformatted = false;
  const fail = (message: string): void => {
    io.stderr.write(`arbiter fmt: ${message}\n`);
    failed = true;
  };

  for (const target of positionals) {
    let files: Array<{ path: string; text: string }>;
    try {
      files = target === '-' ? [{ path: STDIN_NAME, text: await readInput('-', io) }] : await readTargets(target);
    } catch (e) {
      if (e instanceof PolicyLoadError || e instanceof InputTooLargeError) fail(e.message);
      else fail(`cannot read \`${target}\`: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      continue;
    }
    for (const file of files) {
      let formatted: string;
      try {
        formatted = formatPolicy(file.text, file.path);
      } catch (e) {
        if (e instanceof ParseError) {
          io.stderr.write(`${formatDiagnostic(e.diagnostic)}\n`);
          failed = true;
          continue;
        }
        if (e instanceof ArbiterError) {
          fail(`${e.message} (${e.code}); the file is left as it is`);
          continue;
        }
        throw e;
      }
      if (target === '-' && !check) {
        io.stdout.write(formatted);
        continue;
      }
      if (formatted === file.text) continue;
      if (check) {
        unformatted = true;
      } else {
        try {
          await writeFile(file.path, formatted);
        } catch (e) {
          fail(`cannot write \`${file.path}\`: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
          continue;
        }
      }
      io.stdout.write(`${file.path}\n`);
    }
  }
  if (failed) return EXIT_FILE_ERROR;
  return unformatted ? EXIT_UNFORMATTED : EXIT.OK;
}

/** The policy files a PATH names: the file itself, or every `*.policy` file under a directory (the policy store's walk). */
async function readTargets(target: string): Promise<Array<{ path: string; text: string }>> {
  const info = await stat(target);
  if (info.isDirectory()) {
    const sources = await readPolicyDirectory(target);
    return sources.map((s) => ({ path: join(target, s.path), text: s.text }));
  }
  if (info.size > POLICY_LIMITS.maxFileBytes) throw new PolicyLoadError(`policy file \`${target}\` is larger than ${POLICY_LIMITS.maxFileBytes} bytes`);
  return [{ path: target, text: await readFile(target, 'utf8') }];
}

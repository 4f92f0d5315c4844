/** `arbiter validate`: compile a policy directory and report every error. */
import { parseArgs } from 'node:util';
import { CompileError, formatLocation } from '../../errors.js';
import { loadPolicySet } from '../../engine/policy-store.js';
import { EXIT, type CliIO } from '../io.js';
import { reportLoadError } from './check.js';

export const VALIDATE_USAGE = `usage: arbiter validate [--format text|json] DIR...

Compiles each policy directory and reports every error as
file:line:col: message (code), with the source line and a caret.

exit status: 0 every directory compiles, 1 any error, 2 bad usage`;

export async function runValidate(argv: readonly string[], io: CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { format: { type: 'string', default: 'text' }, help: { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    io.stderr.write(`arbiter validate: ${(e as Error).message}\n\n${VALIDATE_USAGE}\n`);
    return EXIT.USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(`${VALIDATE_USAGE}\n`);
    return EXIT.OK;
  }
  if (positionals.length === 0 || (values.format !== 'text' && values.format !== 'json')) {
    io.stderr.write(`${VALIDATE_USAGE}\n`);
    return EXIT.USAGE;
  }
  let status: number = EXIT.OK;
  const report: unknown[] = [];
  for (const dir of positionals) {
    try {
      const set = await loadPolicySet(dir);
      const summary = { directory: dir, ok: true, files: set.sources.length, rules: set.tree.rules.length, revision: set.tree.revision, ...(set.schemaSource === undefined ? {} : { schema: set.schemaSource.path }) };
      if (values.format === 'json') report.push(summary);
      else io.stdout.write(`${dir}: ok (${summary.files} files, ${summary.rules} rules, revision ${summary.revision})${set.schemaSource === undefined ? '' : `, type-checked against ${set.schemaSource.path}`}\n`);
    } catch (e) {
      status = EXIT.POLICY_ERROR;
      if (values.format === 'json' && e instanceof CompileError) {
        report.push({
          directory: dir,
          ok: false,
          errors: e.diagnostics.map((d) => ({ location: formatLocation(d.location), code: d.code, message: d.message, ...(d.help === undefined ? {} : { help: d.help }) })),
        });
      } else {
        reportLoadError(e, io);
      }
    }
  }
  if (values.format === 'json') io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return status;
}

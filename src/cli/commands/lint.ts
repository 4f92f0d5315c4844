/** `arbiter lint`: warnings about policies that compile but are probably not what was meant. */
import { parseArgs } from 'node:util';
import { CompileError, formatDiagnostic, formatLocation } from '../../errors.js';
import { compilePolicySet } from '../../compile/index.js';
import { PolicyLoadError, readPolicyDirectory } from '../../engine/policy-store.js';
import { parsePolicy } from '../../lang/parse.js';
import { lintPolicies, type LintFinding } from '../../lint/lint.js';
import { EXIT, type CliIO } from '../io.js';

export const LINT_USAGE = `usage: arbiter lint [DIR...] [--format text|json]

Reports, with locations, rules that can never apply, permits an unconditional
forbid always overrides, rules a broader rule makes redundant, actions no
permit grants and derived roles never tested (warnings), and negations in
permits (info). DIR defaults to the current directory.

exit status: 0 no warnings (infos allowed), 1 warnings, 2 bad usage or the
policies do not compile`;

export async function runLint(argv: readonly string[], io: CliIO): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: { format: { type: 'string', default: 'text' }, help: { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: true,
    }));
  } catch (e) {
    io.stderr.write(`arbiter lint: ${(e as Error).message}\n\n${LINT_USAGE}\n`);
    return EXIT.USAGE;
  }
  if (values.help) {
    io.stdout.write(`${LINT_USAGE}\n`);
    return EXIT.OK;
  }
  if (values.format !== 'text' && values.format !== 'json') {
    io.stderr.write('arbiter lint: --format must be text or json\n');
    return EXIT.USAGE;
  }
  const findings: LintFinding[] = [];
  for (const dir of positionals.length === 0 ? ['.'] : positionals) {
    try {
      const sources = await readPolicyDirectory(dir);
      compilePolicySet(sources);
      findings.push(...lintPolicies(sources.map((s) => parsePolicy(s.text, s.path))));
    } catch (e) {
      if (e instanceof CompileError) {
        for (const d of e.diagnostics) io.stderr.write(`${formatDiagnostic(d)}\n`);
        io.stderr.write(`arbiter lint: ${dir} does not compile; fix the errors first\n`);
        return EXIT.USAGE;
      }
      if (e instanceof PolicyLoadError) {
        io.stderr.write(`arbiter lint: ${e.message}\n`);
        return EXIT.USAGE;
      }
      throw e;
    }
  }
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  const infos = findings.length - warnings;
  if (values.format === 'json') {
    io.stdout.write(`${JSON.stringify({ findings: findings.map((f) => ({ ...f, location: formatLocation(f.location) })), warnings, infos }, null, 2)}\n`);
  } else {
    for (const f of findings) {
      io.stdout.write(`${formatLocation(f.location)}: ${f.severity}: ${f.message} (${f.code})\n${f.help === undefined ? '' : `  help: ${f.help}\n`}`);
    }
    io.stdout.write(`${warnings} warning${warnings === 1 ? '' : 's'}, ${infos} info${infos === 1 ? '' : 's'}\n`);
  }
  return warnings > 0 ? EXIT.POLICY_ERROR : EXIT.OK;
}

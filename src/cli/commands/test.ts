/** `arbiter test`: run the `*.test.yaml` suites beside the policies, in process, with rule coverage. */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { CompileError, ConfigError, formatDiagnostic } from '../../errors.js';
import { toTimestamp } from '../../compile/ops.js';
import { loadConfig, type ArbiterConfig } from '../../config/config.js';
import { Engine } from '../../engine/engine.js';
import { PolicyLoadError } from '../../engine/policy-store.js';
import { jsonReport, junitReport, textReport } from '../../testing/report.js';
import { runSuites, type Checker, type RunResult } from '../../testing/runner.js';
import { MAX_SUITE_BYTES, parseSuite, type Suite } from '../../testing/suite.js';
import { createTestTokens } from '../../testing/tokens.js';
import { EXIT, type CliIO } from '../io.js';

export const TEST_USAGE = `usage: arbiter test [DIR...] [--config FILE] [--format text|json] [--junit FILE]
                    [--filter TEXT] [--verbose] [--min-coverage N] [--now TIME]

Runs the test suites (*.test.yaml) under each policy directory (default: the
config's \`policies\`, else .)
against the policies compiled from it, in process, and reports every case,
rule coverage, and a summary line \`N passed, M failed\`.

  --config FILE      config file whose issuers' claim mappings token fixtures use
                     (default: $ARBITER_CONFIG, else ./arbiter.yaml when it exists)
  --format FORMAT    text (default) or json
  --junit FILE       also write JUnit XML to FILE
  --filter TEXT      only tests whose "suite › test" name contains TEXT
  --verbose          list passing cases too
  --min-coverage N   fail when fewer than N % of the rules decided some case
  --now TIME         decision time for tests that give none (default: the clock)

exit status: 0 every case passed (and coverage is met), 1 a case failed or
coverage is below --min-coverage, 2 bad usage, a policy or suite error,
3 the config cannot be loaded`;

/** Largest number of suite files read per directory. */
const MAX_SUITES = 1000;

export async function runTest(argv: readonly string[], io: CliIO): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string' },
        format: { type: 'string', default: 'text' },
        junit: { type: 'string' },
        filter: { type: 'string' },
        verbose: { type: 'boolean', default: false },
        'min-coverage': { type: 'string' },
        now: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (e) {
    io.stderr.write(`arbiter test: ${(e as Error).message}\n\n${TEST_USAGE}\n`);
    return EXIT.USAGE;
  }
  if (values.help) {
    io.stdout.write(`${TEST_USAGE}\n`);
    return EXIT.OK;
  }
  const usage = (m: string): number => {
    io.stderr.write(`arbiter test: ${m}\n`);
    return EXIT.USAGE;
  };
  if (values.format !== 'text' && values.format !== 'json') return usage('--format must be text or json');
  let minCoverage: number | undefined;
  if (values['min-coverage'] !== undefined) {
    minCoverage = Number(values['min-coverage']);
    if (!Number.isFinite(minCoverage) || minCoverage < 0 || minCoverage > 100) return usage('--min-coverage must be a number from 0 to 100');
  }
  let now = Date.now();
  if (values.now !== undefined) {
    const t = toTimestamp(values.now);
    if (t === undefined) return usage('--now must be an RFC 3339 time such as 2026-11-23T09:00:00Z');
    now = t;
  }
  const env = io.env ?? process.env;
  let config: ArbiterConfig | undefined;
  const configPath = values.config ?? env['ARBITER_CONFIG'] ?? ((await exists('arbiter.yaml')) ? 'arbiter.yaml' : undefined);
  if (configPath !== undefined) {
    try {
      config = await loadConfig(configPath, env);
    } catch (e) {
      if (e instanceof ConfigError) {
        io.stderr.write(`arbiter test: ${e.message}\n`);
        return EXIT.CONFIG_ERROR;
      }
      throw e;
    }
  }

  const dirs = positionals.length > 0 ? positionals : [config?.policies ?? '.'];
  const results: RunResult[] = [];
  let broken = false;
  for (const dir of dirs) {
    const outcome = await runDirectory(dir, config, now, values.filter, io);
    if (outcome === undefined) broken = true;
    else results.push(outcome);
  }
  if (broken) return EXIT.USAGE;

  let failed = false;
  if (results.every((r) => r.passed + r.failed === 0)) return usage(values.filter === undefined ? 'the suites have no cases' : `no test matches --filter ${JSON.stringify(values.filter)}`);
  if (values.format === 'json') {
    // One document: the result, or a list of them for several directories.
    io.stdout.write(results.length === 1 ? jsonReport(results[0]!) : `${JSON.stringify(results, null, 2)}\n`);
  }
  for (const result of results) {
    if (values.format === 'text') io.stdout.write(textReport(result, { verbose: values.verbose }));
    if (result.failed > 0) failed = true;
    if (minCoverage !== undefined && values.filter !== undefined) {
      io.stderr.write('arbiter test: --min-coverage is not checked with --filter (coverage of a subset of the suites)\n');
    } else if (minCoverage !== undefined && result.coverage.percent < minCoverage) {
      io.stderr.write(`arbiter test: rule coverage ${result.coverage.percent}% is below --min-coverage ${minCoverage}%\n`);
      failed = true;
    }
  }
  if (values.junit !== undefined) {
    const merged = results.length === 1 ? results[0]! : mergeResults(results);
    try {
      await writeFile(values.junit, junitReport(merged));
    } catch (e) {
      return usage(`cannot write --junit ${values.junit}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return failed ? EXIT.POLICY_ERROR : EXIT.OK;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Compiles `dir`, reads its suites and runs them; `undefined` (after reporting) when anything does not load. */
async function runDirectory(dir: string, config: ArbiterConfig | undefined, now: number, filter: string | undefined, io: CliIO): Promise<RunResult | undefined> {
  let suites: Suite[];
  try {
    suites = await readSuites(dir);
  } catch (e) {
    io.stderr.write(`arbiter test: ${e instanceof ConfigError ? e.message : `cannot read suites under ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`}\n`);
    return undefined;
  }
  const needsTokens = suites.some((s) => [...s.subjects.values()].some((f) => f.kind === 'token'));
  const tokens = needsTokens ? await createTestTokens(config?.jwt) : undefined;
  try {
    let engine: Engine;
    try {
      engine = await Engine.fromDirectory(dir, tokens === undefined ? {} : { verifier: tokens.verifier });
    } catch (e) {
      if (e instanceof CompileError) {
        for (const d of e.diagnostics) io.stderr.write(`${formatDiagnostic(d)}\n`);
        io.stderr.write(`${e.diagnostics.length} error${e.diagnostics.length === 1 ? '' : 's'}\n`);
        return undefined;
      }
      if (e instanceof PolicyLoadError) {
        io.stderr.write(`arbiter test: ${e.message}\n`);
        return undefined;
      }
      throw e;
    }
    if (suites.length === 0) {
      io.stderr.write(`arbiter test: no *.test.yaml suites under ${dir}\n`);
      return undefined;
    }
    const checker: Checker = {
      revision: engine.revision,
      rules: engine.tree.rules,
      check: (request, options) => engine.check(request, options),
      checkToken: (token, request, options) => engine.checkToken(token, request, options),
    };
    try {
      return await runSuites(checker, suites, { now, ...(filter === undefined ? {} : { filter }), ...(tokens === undefined ? {} : { signer: tokens.signer }) });
    } catch (e) {
      io.stderr.write(`arbiter test: ${(e as Error).message}\n`);
      return undefined;
    }
  } finally {
    tokens?.verifier.close();
  }
}

/** Every `*.test.yaml` under `dir` (dot-directories and node_modules skipped), sorted by path. */
async function readSuites(dir: string): Promise<Suite[]> {
  const files: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile() && entry.name.endsWith('.test.yaml')) files.push(path);
      if (files.length > MAX_SUITES) throw new ConfigError('', `more than ${MAX_SUITES} suite files under ${dir}`);
    }
  };
  await walk(dir);
  files.sort();
  const suites: Suite[] = [];
  for (const path of files) {
    const info = await stat(path);
    const shown = relative('.', path) || path;
    if (info.size > MAX_SUITE_BYTES) throw new ConfigError('', `${shown} is larger than ${MAX_SUITE_BYTES} bytes`);
    suites.push(parseSuite(await readFile(path, 'utf8'), shown));
  }
  return suites;
}

function mergeResults(results: readonly RunResult[]): RunResult {
  const first = results[0]!;
  return {
    revision: results.map((r) => r.revision).join(','),
    suites: results.flatMap((r) => r.suites),
    passed: results.reduce((n, r) => n + r.passed, 0),
    failed: results.reduce((n, r) => n + r.failed, 0),
    coverage: first.coverage,
  };
}

/**
 * The test runner: every case of every suite decided in process, against a
 * {@link Checker} (the engine, in `arbiter test`), with the explain trace, and
 * rule coverage — the rules that decided at least one case.
 */
import type { SourceLocation } from '../errors.js';
import type { Attributes } from '../compile/index.js';
import type { Decision, Request, Trace } from '../eval/evaluate.js';
import type { TokenDecision } from '../engine/engine.js';
import { closest } from '../compile/suggest.js';
import type { Suite, SuiteTest } from './suite.js';

/** What the runner needs from an engine: decide, with explain, and list the rules. */
export interface Checker {
  readonly revision: string;
  readonly rules: readonly { readonly id: string; readonly location: SourceLocation }[];
  check(request: Request, options: { explain: true; now: number }): Decision;
  checkToken(token: string, request: Omit<Request, 'subject'>, options: { explain: true; now: number }): Promise<TokenDecision>;
}

/** Signs token fixtures (the runner's ephemeral key, the issuer's claim mapping). */
export interface TokenSigner {
  /** Names of the issuers it can sign for. */
  readonly issuers: readonly string[];
  sign(claims: Readonly<Record<string, unknown>>, issuer: string | undefined, now: number): Promise<string>;
}

export interface CaseResult {
  /** `subject × resource: action`. */
  readonly name: string;
  readonly test: string;
  readonly subject: string;
  readonly resource: string;
  readonly action: string;
  readonly expected: 'ALLOW' | 'DENY';
  readonly expectedRule?: string;
  readonly actual: { readonly decision: 'ALLOW' | 'DENY'; readonly reason: string; readonly rules: readonly string[]; readonly message?: string };
  readonly trace?: Trace;
  readonly passed: boolean;
  /** Why it failed, in one line. */
  readonly failure?: string;
  readonly location: string;
}

export interface SuiteResult {
  readonly name: string;
  readonly file: string;
  readonly cases: readonly CaseResult[];
  readonly durationMs: number;
}

export interface FileCoverage {
  readonly file: string;
  readonly rules: number;
  readonly decisive: number;
  readonly percent: number;
}

export interface Coverage {
  readonly rules: number;
  readonly decisive: number;
  readonly percent: number;
  readonly files: readonly FileCoverage[];
  /** Rules no case made decisive, with where they are. */
  readonly uncovered: readonly { readonly id: string; readonly location: string }[];
}

export interface RunResult {
  readonly revision: string;
  readonly suites: readonly SuiteResult[];
  readonly passed: number;
  readonly failed: number;
  readonly coverage: Coverage;
}

export interface RunOptions {
  /** Decision time for tests that give none, ms since the epoch. */
  readonly now: number;
  /** Only tests whose `suite › test` name contains this (plain text, not a pattern). */
  readonly filter?: string;
  readonly signer?: TokenSigner;
}

/**
 * Runs the suites.
 *
 * @example
 * const result = await runSuites(engine, suites, { now: Date.now() });
 * console.log(`${result.passed} passed, ${result.failed} failed`);
 */
export async function runSuites(checker: Checker, suites: readonly Suite[], options: RunOptions): Promise<RunResult> {
  checkReferences(checker, suites, options.signer);
  const decisive = new Set<string>();
  const results: SuiteResult[] = [];
  let passed = 0;
  let failed = 0;
  for (const suite of suites) {
    const started = performance.now();
    const cases: CaseResult[] = [];
    for (const test of suite.tests) {
      if (options.filter !== undefined && !`${suite.name} › ${test.name}`.includes(options.filter)) continue;
      for (const c of await runTest(checker, suite, test, options)) {
        for (const r of c.actual.rules) decisive.add(r);
        if (c.passed) passed++;
        else failed++;
        cases.push(c);
      }
    }
    results.push({ name: suite.name, file: suite.file, cases, durationMs: performance.now() - started });
  }
  return { revision: checker.revision, suites: results, passed, failed, coverage: coverageOf(checker, decisive) };
}

async function runTest(checker: Checker, suite: Suite, test: SuiteTest, options: RunOptions): Promise<CaseResult[]> {
  const now = test.now ?? options.now;
  const out: CaseResult[] = [];
  for (const subjectName of test.subjects) {
    const subject = suite.subjects.get(subjectName);
    if (subject === undefined) continue; // parseSuite guarantees every reference resolves
    let token: string | undefined;
    if (subject.kind === 'token') {
      if (options.signer === undefined) throw new Error('token fixtures need a signer');
      token = await options.signer.sign(subject.claims, subject.issuer, now);
    }
    for (const resourceName of test.resources) {
      const fixture = suite.resources.get(resourceName);
      if (fixture === undefined) continue;
      const resource = { type: fixture.type, ...(fixture.id === undefined ? {} : { id: fixture.id }), attributes: fixture.attributes };
      for (const [action, expected] of test.expect) {
        const base = { action, resource, context: test.context };
        const d: Decision | TokenDecision =
          token === undefined
            ? checker.check({ ...base, subject: (subject as { attributes: Attributes }).attributes }, { explain: true, now })
            : await checker.checkToken(token, base, { explain: true, now });
        const expectedRule = test.rules.get(action);
        const expectedReason = test.reasons.get(action);
        let failure: string | undefined;
        if (d.decision !== expected) {
          failure = `expected ${expected}, got ${d.decision} (${d.reason}${d.rules.length > 0 ? `: ${d.rules.join(', ')}` : ''})`;
        } else if (expectedRule !== undefined && !d.rules.includes(expectedRule)) {
          failure = `expected ${expected} by ${expectedRule}, got ${d.decision} by ${d.rules.join(', ') || 'no rule'} (${d.reason})`;
        } else if (expectedReason !== undefined && d.reason !== expectedReason) {
          failure = `expected reason ${expectedReason}, got ${d.reason}`;
        } else if (expectedReason === undefined && NOT_BY_POLICY.has(d.reason.startsWith('TOKEN_') ? 'TOKEN_*' : d.reason)) {
          // A DENY that no policy made passes a DENY expectation by accident: a typo, or a refused token.
          failure = `DENY by ${d.reason}, not by the policies${'message' in d && d.message !== undefined ? ` (${d.message})` : ''}; write \`reasons: { ${action}: ${d.reason} }\` if that is what this case tests`;
        }
        const message = 'message' in d ? d.message : undefined;
        out.push({
          name: `${subjectName} × ${resourceName}: ${action}`,
          test: test.name,
          subject: subjectName,
          resource: resourceName,
          action,
          expected,
          ...(expectedRule === undefined ? {} : { expectedRule }),
          actual: { decision: d.decision, reason: d.reason, rules: d.rules, ...(message === undefined ? {} : { message }) },
          ...(d.trace === undefined ? {} : { trace: d.trace }),
          passed: failure === undefined,
          ...(failure === undefined ? {} : { failure }),
          location: test.location,
        });
      }
    }
  }
  return out;
}

/** Reasons that do not come from a policy: a case must name them to expect them. */
const NOT_BY_POLICY = new Set(['UNDECLARED_ACTION', 'UNKNOWN_RESOURCE_TYPE', 'EVALUATION_ERROR', 'TOKEN_*']);

/** A suite that names a rule or an issuer that does not exist, found before any case runs. */
export class SuiteReferenceError extends Error {}

function checkReferences(checker: Checker, suites: readonly Suite[], signer: TokenSigner | undefined): void {
  const ids = new Set(checker.rules.map((r) => r.id));
  for (const suite of suites) {
    for (const test of suite.tests) {
      for (const [action, rule] of test.rules) {
        if (!ids.has(rule)) {
          const near = closest(rule, ids);
          throw new SuiteReferenceError(`${test.location}: \`rules.${action}\` names \`${rule}\`, which no policy defines${near === undefined ? '' : `; did you mean \`${near}\`?`}`);
        }
      }
    }
    for (const f of suite.subjects.values()) {
      if (f.kind === 'token' && f.issuer !== undefined && signer !== undefined && !signer.issuers.includes(f.issuer)) {
        const near = closest(f.issuer, signer.issuers);
        throw new SuiteReferenceError(
          `${f.location}: subject \`${f.name}\` names issuer \`${f.issuer}\`, which the config does not define${near === undefined ? ` (issuers: ${signer.issuers.join(', ')})` : `; did you mean \`${near}\`?`}`,
        );
      }
    }
  }
}

function coverageOf(checker: Checker, decisive: ReadonlySet<string>): Coverage {
  const byFile = new Map<string, { rules: number; decisive: number }>();
  const uncovered: { id: string; location: string }[] = [];
  for (const r of checker.rules) {
    const f = byFile.get(r.location.source) ?? { rules: 0, decisive: 0 };
    f.rules++;
    if (decisive.has(r.id)) f.decisive++;
    else uncovered.push({ id: r.id, location: `${r.location.source}:${r.location.start.line}:${r.location.start.column}` });
    byFile.set(r.location.source, f);
  }
  const total = checker.rules.length;
  const hit = total - uncovered.length;
  return {
    rules: total,
    decisive: hit,
    percent: percent(hit, total),
    files: [...byFile.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([file, f]) => ({ file, rules: f.rules, decisive: f.decisive, percent: percent(f.decisive, f.rules) })),
    uncovered,
  };
}

/** A percentage with one decimal; 100 for a set with no rules. */
function percent(part: number, whole: number): number {
  return whole === 0 ? 100 : Math.floor((part / whole) * 1000) / 10;
}

/**
 * `arbiter lint`: each LINT_* code on a minimal policy (message, location,
 * help), its near misses, the shipped policies, and the command's exit codes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { compilePolicySet, type PolicySource } from '../../src/compile/index.js';
import { Engine } from '../../src/engine/engine.js';
import { readPolicyDirectory } from '../../src/engine/policy-store.js';
import { formatLocation } from '../../src/errors.js';
import { parsePolicy } from '../../src/lang/parse.js';
import { lintPolicies, type LintFinding } from '../../src/lint/lint.js';
import { runCli } from '../cli/run-cli.js';

const execFileP = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'arbiter.js');
const POLICIES = join(ROOT, 'policies');

/** Lints a policy set that must compile (as the command requires). */
function lint(files: Record<string, string> | string): LintFinding[] {
  const sources: PolicySource[] = Object.entries(typeof files === 'string' ? { 'p.policy': files } : files).map(([path, text]) => ({ path, text }));
  compilePolicySet(sources); // throws when it does not compile: near misses must be valid policy
  return lintPolicies(sources.map((s) => parsePolicy(s.text, s.path)));
}

/** `file:line:col CODE` of each finding. */
const brief = (findings: readonly LintFinding[]): string[] => findings.map((f) => `${formatLocation(f.location)} ${f.code}`);
const codes = (findings: readonly LintFinding[]): string[] => findings.map((f) => f.code);
const only = (findings: readonly LintFinding[], code: string): LintFinding[] => findings.filter((f) => f.code === code);

/** A policy from lines (line numbers are relied on). */
const policy = (...lines: string[]): string => `${lines.join('\n')}\n`;

async function tempDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'arbiter-lint-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

async function cli(argv: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  return runCli(['lint', ...argv], { env: {} });
}

async function bin(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [BIN, ...args], { cwd: ROOT });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

// ---------------------------------------------------------------------------

describe('LINT_NEVER_APPLIES', () => {
  it('fires on `x == "a" and x == "b"`, at the rule', () => {
    const findings = lint(policy('resource doc {', '  actions read', '  rule r: permit read when subject.x == "a" and subject.x == "b"', '}'));
    expect(findings).toEqual([
      {
        code: 'LINT_NEVER_APPLIES',
        severity: 'warning',
        message: 'rule `doc.r` can never apply: `subject.x` cannot equal both "a" and "b"',
        location: expect.objectContaining({ source: 'p.policy', start: expect.objectContaining({ line: 3, column: 3 }) }),
      },
    ]);
  });

  it.each([
    { name: 'literal on the left', cond: '"a" == resource.k and resource.k == "b"', shown: '`resource.k` cannot equal both "a" and "b"' },
    { name: 'numbers', cond: 'resource.n == 1 and subject.y == 2 and resource.n == 2', shown: '`resource.n` cannot equal both 1 and 2' },
    { name: 'values of different types', cond: 'resource.n == 1 and resource.n == "1"', shown: '`resource.n` cannot equal both 1 and "1"' },
    { name: 'booleans', cond: 'subject.flag == true and subject.flag == false', shown: '`subject.flag` cannot equal both true and false' },
    { name: 'the action', cond: 'action == "read" and action == "write"', shown: '`action` cannot equal both "read" and "write"' },
  ])('fires: $name', ({ cond, shown }) => {
    const findings = only(lint(policy('resource doc {', '  actions read, write', `  rule r: permit read, write when ${cond}`, '}')), 'LINT_NEVER_APPLIES');
    expect(findings.map((f) => f.message)).toEqual([`rule \`doc.r\` can never apply: ${shown}`]);
  });

  it('fires on forbids and unnamed rules too (named by file:line, as decisions name them)', () => {
    const findings = lint(policy('resource doc {', '  actions read', '  rule ok: permit read when subject.ok == true', '  forbid read when subject.x == "a" and subject.x == "b"', '}'));
    expect(brief(findings)).toEqual(['p.policy:4:3 LINT_NEVER_APPLIES']);
    expect(findings[0]!.message).toBe('rule `p.policy:4` can never apply: `subject.x` cannot equal both "a" and "b"');
  });

  it.each([
    { name: '`or`', cond: 'subject.x == "a" or subject.x == "b"' },
    { name: 'the same value twice', cond: 'subject.x == "a" and subject.x == "a"' },
    { name: 'different attributes', cond: 'subject.x == "a" and resource.x == "b"' },
    { name: 'different paths under one root', cond: 'subject.x.y == "a" and subject.x.z == "b"' },
    { name: '`!=`', cond: 'subject.x == "a" and subject.x != "b"' },
    { name: '`in` a list', cond: 'subject.x == "a" and subject.x in ["a", "b"]' },
    { name: 'under `not`', cond: 'not (subject.x == "a" and subject.x == "b")' },
    { name: 'two attributes compared to each other', cond: 'subject.x == resource.x and subject.x == "b"' },
  ])('does not fire: $name', ({ cond }) => {
    expect(codes(lint(policy('resource doc {', '  actions read', `  rule r: permit read when ${cond}`, '}')))).not.toContain('LINT_NEVER_APPLIES');
  });

  it('does not fire: `when x == "a" unless x == "b"`', () => {
    expect(codes(lint(policy('resource doc {', '  actions read', '  rule r: permit read when subject.x == "a" unless subject.x == "b"', '}')))).not.toContain('LINT_NEVER_APPLIES');
  });

  // Evidence for the regression test below: the rule does apply.
  it('(evidence) a rule testing subject.claims["a.b"] and subject.claims.a.b applies to a subject with both', async () => {
    const dir = await tempDir({ 'p.policy': policy('resource doc {', '  actions read', '  rule r: permit read when subject.claims["a.b"] == "x" and subject.claims.a.b == "y"', '}') });
    const engine = await Engine.fromDirectory(dir);
    const d = engine.check({ subject: { claims: { 'a.b': 'x', a: { b: 'y' } } }, action: 'read', resource: { type: 'doc' } }, { now: 0 });
    expect(d).toMatchObject({ decision: 'ALLOW', rules: ['doc.r'] });
  });

  // Regression (was a bug: findContradiction keyed attributes by their dotted text, so `claims["a.b"]` and `claims.a.b` clashed).
  it('does not fire: a bracketed segment containing a dot is another attribute than the dotted path', () => {
    const findings = lint(policy('resource doc {', '  actions read', '  rule r: permit read when subject.claims["a.b"] == "x" and subject.claims.a.b == "y"', '}'));
    expect(codes(findings)).not.toContain('LINT_NEVER_APPLIES');
  });
});

describe('LINT_PERMIT_OVERRIDDEN', () => {
  it('fires on a permit that an unconditional forbid always overrides, with the forbid in help', () => {
    const findings = lint(policy('resource doc {', '  actions read', '  rule p: permit read when subject.x == "a"', '  rule f: forbid read', '}'));
    expect(findings).toEqual([
      {
        code: 'LINT_PERMIT_OVERRIDDEN',
        severity: 'warning',
        message: 'permit `doc.p` never decides: an unconditional forbid denies all its actions',
        location: expect.objectContaining({ source: 'p.policy', start: expect.objectContaining({ line: 3, column: 3 }) }),
        help: 'see `doc.f`',
      },
    ]);
  });

  it('fires for `forbid *`, and when two forbids together cover every action', () => {
    const star = lint(policy('resource doc {', '  actions read, write', '  rule p: permit read, write when subject.x == "a"', '  forbid *', '}'));
    expect(brief(only(star, 'LINT_PERMIT_OVERRIDDEN'))).toEqual(['p.policy:3:3 LINT_PERMIT_OVERRIDDEN']);
    expect(only(star, 'LINT_PERMIT_OVERRIDDEN')[0]!.help).toBe('see `p.policy:4`');
    const two = lint(policy('resource doc {', '  actions read, write', '  rule p: permit read, write when subject.x == "a"', '  rule fr: forbid read', '  rule fw: forbid write', '}'));
    expect(brief(only(two, 'LINT_PERMIT_OVERRIDDEN'))).toEqual(['p.policy:3:3 LINT_PERMIT_OVERRIDDEN']);
    expect(only(two, 'LINT_PERMIT_OVERRIDDEN')[0]!.help).toBe('see `doc.fr`, `doc.fw`'); // every forbid it takes, each once
  });

  it.each([
    { name: 'a forbid with a condition', forbid: 'rule f: forbid read when subject.suspended == true' },
    { name: 'a forbid with only `unless`', forbid: 'rule f: forbid read unless subject.mfa == true' },
    { name: 'a forbid of other actions', forbid: 'rule f: forbid write' },
  ])('does not fire: $name', ({ forbid }) => {
    const findings = lint(policy('resource doc {', '  actions read, write', '  rule p: permit read when subject.x == "a"', '  rule w: permit write when subject.w == "a"', `  ${forbid}`, '}'));
    expect(only(findings, 'LINT_PERMIT_OVERRIDDEN').filter((f) => f.message.includes('`doc.p`'))).toEqual([]);
  });

  it('does not fire: the forbid covers only some of the permit\'s actions', () => {
    const findings = lint(policy('resource doc {', '  actions read, write', '  rule p: permit read, write when subject.x == "a"', '  rule f: forbid write', '}'));
    expect(codes(findings)).not.toContain('LINT_PERMIT_OVERRIDDEN');
  });

  it('fires on the permits it overrides only', () => {
    const findings = lint(policy('resource doc {', '  actions read, write', '  rule pr: permit read when subject.x == "a"', '  rule pw: permit write when subject.x == "a"', '  rule fw: forbid write', '}'));
    expect(brief(only(findings, 'LINT_PERMIT_OVERRIDDEN'))).toEqual(['p.policy:4:3 LINT_PERMIT_OVERRIDDEN']);
    expect(only(findings, 'LINT_PERMIT_OVERRIDDEN')[0]!.message).toBe('permit `doc.pw` never decides: an unconditional forbid denies all its actions');
    expect(only(findings, 'LINT_PERMIT_OVERRIDDEN')[0]!.help).toBe('see `doc.fw`');
  });

  // Regression (was a bug: the help named the resource's first unconditional forbid, here `fw`, whatever its actions).
  it('help names a forbid that actually overrides the permit', () => {
    const findings = lint(policy('resource doc {', '  actions read, write', '  rule pw: permit write when subject.x == "a"', '  rule fw: forbid write', '  rule fr: forbid read', '  rule pr: permit read when subject.x == "a"', '}'));
    const pr = only(findings, 'LINT_PERMIT_OVERRIDDEN').find((f) => f.message.includes('`doc.pr`'));
    expect(pr?.help).toBe('see `doc.fr`');
    const pw = only(findings, 'LINT_PERMIT_OVERRIDDEN').find((f) => f.message.includes('`doc.pw`'));
    expect(pw?.help).toBe('see `doc.fw`');
  });
});

describe('LINT_SHADOWED_RULE', () => {
  const ROLES = 'roles { editor }';

  it('fires on a rule a broader rule of the same effect makes redundant', () => {
    const findings = lint(
      policy(ROLES, 'resource doc {', '  actions read, write', '  rule broad: permit read, write when subject.role("editor")', '  rule narrow: permit read when subject.role("editor") and resource.open == true', '}'),
    );
    expect(findings).toEqual([
      {
        code: 'LINT_SHADOWED_RULE',
        severity: 'warning',
        message: 'rule `doc.narrow` is redundant: `doc.broad` permits everything it does',
        location: expect.objectContaining({ source: 'p.policy', start: expect.objectContaining({ line: 5, column: 3 }) }),
        help: 'remove it, or narrow the broader rule',
      },
    ]);
  });

  it('fires for forbids ("forbids everything it does"), and for `unless` as an extra conjunct', () => {
    const forbids = lint(policy('resource doc {', '  actions read, write', '  rule ok: permit read, write when subject.ok == true', '  rule f1: forbid * when subject.suspended == true', '  rule f2: forbid write when subject.suspended == true unless subject.admin == true', '}'));
    expect(brief(only(forbids, 'LINT_SHADOWED_RULE'))).toEqual(['p.policy:5:3 LINT_SHADOWED_RULE']);
    expect(only(forbids, 'LINT_SHADOWED_RULE')[0]!.message).toBe('rule `doc.f2` is redundant: `doc.f1` forbids everything it does');
  });

  it('fires under an unconditional rule of the same effect', () => {
    const findings = lint(policy('resource doc {', '  actions read', '  rule all: permit read', '  rule some: permit read when subject.x == "a"', '}'));
    expect(only(findings, 'LINT_SHADOWED_RULE').map((f) => f.message)).toEqual(['rule `doc.some` is redundant: `doc.all` permits everything it does']);
  });

  it('of two identical rules, reports the later one only', () => {
    const findings = lint(policy('resource doc {', '  actions read', '  rule first: permit read when subject.x == "a"', '  rule second: permit read when subject.x == "a"', '}'));
    expect(brief(findings)).toEqual(['p.policy:4:3 LINT_SHADOWED_RULE']);
    expect(findings[0]!.message).toBe('rule `doc.second` is redundant: `doc.first` permits everything it does');
  });

  it('compares conditions without their locations (same test written on other lines)', () => {
    const findings = lint(policy('resource doc {', '  actions read', '  rule first: permit read when subject.x == "a"', '  rule second: permit read', '                when subject.x == "a"   and resource.y == 1', '}'));
    expect(brief(findings)).toEqual(['p.policy:4:3 LINT_SHADOWED_RULE']);
  });

  it.each([
    { name: 'two rules with different actions', a: 'permit read when subject.role("editor")', b: 'permit write when subject.role("editor")' },
    { name: 'different effects', a: 'permit read when subject.role("editor")', b: 'forbid read when subject.role("editor")' },
    { name: 'the broader condition has fewer actions', a: 'permit read when subject.role("editor")', b: 'permit read, write when subject.role("editor") and resource.open == true' },
    { name: 'different conditions', a: 'permit read when subject.role("editor")', b: 'permit read when resource.open == true' },
    { name: 'an `or` is not its disjuncts', a: 'permit read when subject.role("editor") or resource.open == true', b: 'permit read when subject.role("editor")' },
  ])('does not fire: $name', ({ a, b }) => {
    const findings = lint(policy(ROLES, 'resource doc {', '  actions read, write', '  rule w: permit write when subject.w == true', `  rule a: ${a}`, `  rule b: ${b}`, '}'));
    expect(brief(only(findings, 'LINT_SHADOWED_RULE'))).toEqual([]);
  });

  it('does not compare rules of different resource types', () => {
    const findings = lint(policy('resource doc {', '  actions read', '  rule r: permit read when subject.x == "a"', '}', 'resource folder {', '  actions read', '  rule r: permit read when subject.x == "a"', '}'));
    expect(findings).toEqual([]);
  });
});

describe('LINT_ACTION_NEVER_PERMITTED', () => {
  it('fires on each declared action no permit grants, at the action', () => {
    const findings = lint(policy('resource doc {', '  actions read, write, archive', '  rule r: permit read when subject.x == "a"', '  rule f: forbid write', '}'));
    expect(findings).toEqual([
      {
        code: 'LINT_ACTION_NEVER_PERMITTED',
        severity: 'warning',
        message: 'action `write` of `doc` is never permitted',
        location: expect.objectContaining({ source: 'p.policy', start: expect.objectContaining({ line: 2, column: 17 }) }),
        help: 'add a permit rule for it, or remove it from `actions`',
      },
      expect.objectContaining({ code: 'LINT_ACTION_NEVER_PERMITTED', message: 'action `archive` of `doc` is never permitted', location: expect.objectContaining({ start: expect.objectContaining({ line: 2, column: 24 }) }) }),
    ]);
  });

  it('does not fire: `permit *` grants every action; a conditional permit counts', () => {
    expect(lint(policy('resource doc {', '  actions read, write', '  rule all: permit * when subject.x == "a"', '}'))).toEqual([]);
    expect(codes(lint(policy('resource doc {', '  actions read, write', '  rule r: permit read when subject.x == "a"', '  rule w: permit write when subject.w == 1 and subject.w == 2', '}')))).not.toContain(
      'LINT_ACTION_NEVER_PERMITTED',
    );
  });
});

describe('LINT_UNUSED_DERIVED_ROLE', () => {
  const RESOURCE = (cond: string): string => policy('resource doc {', '  actions read', `  rule r: permit read when ${cond}`, '}');

  it('fires on a derived role no rule or derived role tests, at its name', () => {
    const findings = lint({ 'a.policy': 'derive owner for doc when resource.owner == subject.sub\n', 'b.policy': RESOURCE('subject.x == "a"') });
    expect(findings).toEqual([
      {
        code: 'LINT_UNUSED_DERIVED_ROLE',
        severity: 'warning',
        message: 'derived role `owner` is never tested',
        location: expect.objectContaining({ source: 'a.policy', start: expect.objectContaining({ line: 1, column: 8 }) }),
        help: 'test it with `subject.role("owner")`, or remove it',
      },
    ]);
  });

  it('does not fire: tested by a rule, in `when`, `unless` or under `not`', () => {
    const derive = 'derive owner for doc when resource.owner == subject.sub\n';
    expect(lint({ 'a.policy': derive, 'b.policy': RESOURCE('subject.role("owner")') })).toEqual([]);
    expect(codes(lint({ 'a.policy': derive, 'b.policy': RESOURCE('subject.x == "a" unless subject.role("owner")') }))).not.toContain('LINT_UNUSED_DERIVED_ROLE');
    expect(codes(lint({ 'a.policy': derive, 'b.policy': RESOURCE('subject.x == "a" and not subject.role("owner")') }))).not.toContain('LINT_UNUSED_DERIVED_ROLE');
    expect(codes(lint({ 'a.policy': derive, 'b.policy': RESOURCE('subject.x == "a" or (resource.y == 1 and subject.role("owner"))') }))).not.toContain('LINT_UNUSED_DERIVED_ROLE');
  });

  it('does not fire: a derived role tested from another derived role is used (and only the unused one is reported)', () => {
    const roles = policy(
      'derive owner for doc when resource.owner == subject.sub', //              1
      'derive delegate for doc when subject.role("owner") or subject.d == 1', // 2
      'derive reviewer for doc when subject.r == 1 unless subject.role("delegate")', // 3
    );
    // (reviewer's `unless` is also an info, LINT_NEGATION_IN_PERMIT at the `derive`, whether it is used or not.)
    // A rule tests reviewer; reviewer tests delegate (in `unless`); delegate tests owner: all used.
    expect(brief(lint({ 'a.policy': roles, 'b.policy': RESOURCE('subject.role("reviewer")') }))).toEqual(['a.policy:3:1 LINT_NEGATION_IN_PERMIT']);
    // A rule tests delegate: owner is used through it, reviewer is not.
    expect(brief(lint({ 'a.policy': roles, 'b.policy': RESOURCE('subject.role("delegate")') }))).toEqual(['a.policy:3:1 LINT_NEGATION_IN_PERMIT', 'a.policy:3:8 LINT_UNUSED_DERIVED_ROLE']);
    // No rule tests any: only reviewer is reported — delegate and owner count as tested by derived
    // roles that are themselves unused (one level at a time, as documented).
    expect(brief(lint({ 'a.policy': roles, 'b.policy': RESOURCE('subject.x == "a"') }))).toEqual(['a.policy:3:1 LINT_NEGATION_IN_PERMIT', 'a.policy:3:8 LINT_UNUSED_DERIVED_ROLE']);
  });
});

describe('LINT_NEGATION_IN_PERMIT', () => {
  it.each([
    { name: '`!=`', rule: 'permit read when resource.classification != "secret"' },
    { name: '`not`', rule: 'permit read when not resource.classification == "secret"' },
    { name: '`unless`', rule: 'permit read unless resource.classification == "secret"' },
    { name: 'a negation inside `or`', rule: 'permit read when subject.x == "a" or (subject.y == 1 and resource.z != 2)' },
  ])('is an info on $name in a permit', ({ rule }) => {
    const findings = lint(policy('resource doc {', '  actions read', `  rule r: ${rule}`, '}'));
    expect(findings).toEqual([
      {
        code: 'LINT_NEGATION_IN_PERMIT',
        severity: 'info',
        message: 'permit `doc.r` uses `!=`, `not` or `unless`: it grants when the attribute tested is missing',
        location: expect.objectContaining({ start: expect.objectContaining({ line: 3, column: 3 }) }),
        help: 'in a permit, test for what grants access (`x == true`), so that a missing attribute denies',
      },
    ]);
  });

  it.each([
    { name: 'negations in forbids', rules: ['rule r: permit read when subject.x == "a"', 'rule f: forbid read unless subject.mfa == true', 'rule g: forbid read when subject.t != resource.t', 'rule h: forbid read when not exists(subject.d)'] },
    { name: 'positive tests in permits', rules: ['rule r: permit read when subject.x == "a" and resource.tags has "t" and subject.x in ["a"] and resource.n >= 2 and exists(subject.y)'] },
  ])('does not fire: $name', ({ rules }) => {
    expect(codes(lint(policy('resource doc {', '  actions read', ...rules.map((r) => `  ${r}`), '}')))).not.toContain('LINT_NEGATION_IN_PERMIT');
  });

  const USES_OWNER = policy('resource doc {', '  actions read', '  rule r: permit read when subject.role("owner")', '}');

  it.each([
    { name: '`!=`', derive: 'derive owner for doc when resource.owner != subject.sub' },
    { name: '`not`', derive: 'derive owner for doc when resource.owner == subject.sub and not resource.locked == true' },
    { name: '`unless`', derive: 'derive owner for doc when resource.owner == subject.sub unless resource.locked == true' },
    { name: 'a negation inside `or`', derive: 'derive owner for doc when resource.owner == subject.sub or (subject.y == 1 and resource.z != 2)' },
  ])('is an info on $name in a derived role, at the `derive`', ({ derive }) => {
    const findings = lint({ 'a.policy': policy(derive), 'b.policy': USES_OWNER });
    expect(findings).toEqual([
      {
        code: 'LINT_NEGATION_IN_PERMIT',
        severity: 'info',
        message: 'derived role `owner` uses `!=`, `not` or `unless`: it holds when the attribute tested is missing, for every permit that tests it',
        location: expect.objectContaining({ source: 'a.policy', start: expect.objectContaining({ line: 1, column: 1 }) }),
        help: 'test for what grants the role (`x == true`), so that a missing attribute does not',
      },
    ]);
  });

  it('does not fire: a derived role with positive tests only', () => {
    const derive = policy('derive owner for doc when resource.owner == subject.sub and resource.tags has "t" and exists(subject.sub)');
    expect(lint({ 'a.policy': derive, 'b.policy': USES_OWNER })).toEqual([]);
  });
});

describe('lintPolicies', () => {
  it('sorts findings by file, then position', () => {
    const findings = lint({
      'b.policy': policy('resource folder {', '  actions list, delete', '  rule l: permit list when subject.x != "a"', '}'),
      'a.policy': policy('derive owner for doc when resource.owner == subject.sub', 'resource doc {', '  actions read', '  rule r: permit read when subject.x == "a" and subject.x == "b"', '}'),
    });
    expect(brief(findings)).toEqual(['a.policy:1:8 LINT_UNUSED_DERIVED_ROLE', 'a.policy:4:3 LINT_NEVER_APPLIES', 'b.policy:2:17 LINT_ACTION_NEVER_PERMITTED', 'b.policy:3:3 LINT_NEGATION_IN_PERMIT']);
  });

  it('the shipped policies lint clean: 0 warnings', async () => {
    const sources = await readPolicyDirectory(POLICIES);
    const findings = lintPolicies(sources.map((s) => parsePolicy(s.text, s.path)));
    expect(findings.filter((f) => f.severity === 'warning').map((f) => `${formatLocation(f.location)}: ${f.message} (${f.code})`)).toEqual([]);
  });

  it('the shipped `collaborator` derived role (`not resource.locked == true`) is an info', async () => {
    const sources = await readPolicyDirectory(POLICIES);
    const findings = lintPolicies(sources.map((s) => parsePolicy(s.text, s.path)));
    const collaborator = only(findings, 'LINT_NEGATION_IN_PERMIT').filter((f) => f.message.startsWith('derived role `collaborator` '));
    expect(brief(collaborator)).toEqual(['roles.policy:15:1 LINT_NEGATION_IN_PERMIT']);
    expect(collaborator[0]!.severity).toBe('info');
  });

  it('names rules as decisions do: each name in a message is a rule id of the compiled policy set', async () => {
    const text = policy('resource doc {', '  actions read, write', '  rule p: permit read when subject.x == "a"', '  forbid read', '  rule all: permit write', '  rule some: permit write when subject.x == "a"', '}');
    const findings = lint(text);
    const ids = (await Engine.fromDirectory(await tempDir({ 'p.policy': text }))).tree.rules.map((r) => r.id);
    const named = findings.flatMap((f) => [...`${f.message} ${f.help ?? ''}`.matchAll(/`((?:doc\.|p\.policy:)[^`]+)`/g)].map((m) => m[1]!));
    expect(new Set(named)).toEqual(new Set(['doc.p', 'p.policy:4', 'doc.some', 'doc.all']));
    for (const name of named) expect(ids).toContain(name);
  });
});

// ---------------------------------------------------------------------------

describe('arbiter lint', () => {
  const WARNS = policy('resource doc {', '  actions read, write', '  rule r: permit read when subject.x == "a" and subject.x == "b"', '}');
  const INFO_ONLY = policy('resource doc {', '  actions read', '  rule r: permit read unless subject.banned == true', '}');

  it('the shipped policies: exit 0 (real binary)', async () => {
    const r = await bin(['lint', 'policies']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/(^|\n)0 warnings, \d+ infos?\n$/);
    expect(r.out).toContain('roles.policy:15:1: info: derived role `collaborator` uses `!=`, `not` or `unless`: it holds when the attribute tested is missing, for every permit that tests it (LINT_NEGATION_IN_PERMIT)\n');
  });

  it('exit 0 with infos only', async () => {
    const r = await cli([await tempDir({ 'p.policy': INFO_ONLY })]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      [
        'p.policy:3:3: info: permit `doc.r` uses `!=`, `not` or `unless`: it grants when the attribute tested is missing (LINT_NEGATION_IN_PERMIT)',
        '  help: in a permit, test for what grants access (`x == true`), so that a missing attribute denies',
        '0 warnings, 1 info',
        '',
      ].join('\n'),
    );
  });

  it('exit 1 with warnings, each `file:line:col: warning: message (CODE)` (real binary)', async () => {
    const dir = await tempDir({ 'p.policy': WARNS });
    const r = await bin(['lint', dir]);
    expect(r.code).toBe(1);
    expect(r.out).toBe(
      [
        'p.policy:2:17: warning: action `write` of `doc` is never permitted (LINT_ACTION_NEVER_PERMITTED)',
        '  help: add a permit rule for it, or remove it from `actions`',
        'p.policy:3:3: warning: rule `doc.r` can never apply: `subject.x` cannot equal both "a" and "b" (LINT_NEVER_APPLIES)',
        '2 warnings, 0 infos',
        '',
      ].join('\n'),
    );
  });

  it('--format json', async () => {
    const r = await cli(['--format', 'json', await tempDir({ 'p.policy': WARNS })]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toEqual({
      findings: [
        { code: 'LINT_ACTION_NEVER_PERMITTED', severity: 'warning', message: 'action `write` of `doc` is never permitted', location: 'p.policy:2:17', help: 'add a permit rule for it, or remove it from `actions`' },
        { code: 'LINT_NEVER_APPLIES', severity: 'warning', message: 'rule `doc.r` can never apply: `subject.x` cannot equal both "a" and "b"', location: 'p.policy:3:3' },
      ],
      warnings: 2,
      infos: 0,
    });
    const clean = await cli(['--format', 'json', POLICIES]);
    expect(clean.code).toBe(0);
    expect(JSON.parse(clean.out)).toMatchObject({ warnings: 0 });
  });

  it('several directories: findings of all of them', async () => {
    const r = await cli([await tempDir({ 'p.policy': INFO_ONLY }), await tempDir({ 'p.policy': WARNS })]);
    expect(r.code).toBe(1);
    expect(r.out.endsWith('2 warnings, 1 info\n')).toBe(true);
  });

  it('exit 2 when the policies do not compile, with the errors (real binary)', async () => {
    const dir = await tempDir({ 'p.policy': 'resource doc {\n  actions read\n  permit read when\n}\n' });
    const r = await bin(['lint', dir]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^p\.policy:4:1: .*\(PARSE_SYNTAX\)$/m);
    expect(r.err).toContain(`arbiter lint: ${dir} does not compile; fix the errors first`);
    const semantic = await cli([await tempDir({ 'p.policy': 'resource doc {\n  actions read\n  permit raed\n}\n' })]);
    expect(semantic.code).toBe(2);
    expect(semantic.err).toContain('p.policy:3:10: action `raed` is not declared for resource type `doc` (COMPILE_UNDECLARED_ACTION)');
  });

  it.each([
    { args: ['--format', 'xml', 'policies'], err: '--format must be text or json' },
    { args: ['--bogus'], err: "Unknown option '--bogus'" },
    { args: [join(tmpdir(), 'arbiter-no-such-dir-51ab')], err: 'cannot read policy directory' },
  ])('exit 2: $args', async ({ args, err }) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(err);
  });

  it('--help: exit 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('usage: arbiter lint [DIR...]');
  });
});

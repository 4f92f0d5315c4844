/**
 * `arbiter test`: the real binary (dist/, built before the tests) and in
 * process through main(), on the shipped policies and on temp copies of them.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import type { RunResult } from '../../src/testing/runner.js';
import { parseSuite, type Suite } from '../../src/testing/suite.js';
import { runCli } from './run-cli.js';

const execFileP = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'arbiter.js');
const POLICIES = join(ROOT, 'policies');
const DEV_CONFIG = join(ROOT, 'dev', 'arbiter.yaml');

interface Outcome {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** The environment without ARBITER_CONFIG, so that no config is picked up by accident. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('ARBITER_CONFIG' in extra)) delete env['ARBITER_CONFIG'];
  return env;
}

/** The real binary. */
async function bin(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env: cleanEnv(options.env), maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

/** In process, through main(); cwd is the repository root. */
async function cli(argv: readonly string[], env: Record<string, string> = {}): Promise<Outcome> {
  return runCli(['test', ...argv], { env });
}

/** `*.test.yaml` files under a directory, sorted, relative to it. */
async function suiteFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((f) => f.endsWith('.test.yaml')).sort();
}

/** The shipped suites, parsed independently of the command. */
async function shippedSuites(): Promise<Suite[]> {
  const out: Suite[] = [];
  for (const f of await suiteFiles(POLICIES)) out.push(parseSuite(await readFile(join(POLICIES, f), 'utf8'), f));
  return out;
}

const casesIn = (tests: readonly Suite['tests'][number][]): number => tests.reduce((n, t) => n + t.subjects.length * t.resources.length * t.expect.size, 0);

/** A temp dir holding a copy of policies/ (as `policies`). */
async function copyOfPolicies(): Promise<{ root: string; policies: string }> {
  const root = await mkdtemp(join(tmpdir(), 'arbiter-test-cmd-'));
  const policies = join(root, 'policies');
  await cp(POLICIES, policies, { recursive: true });
  return { root, policies };
}

async function tempDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'arbiter-test-cmd-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const lastLine = (s: string): string => s.trimEnd().split('\n').at(-1) ?? '';

// A tiny XML well-formedness check (no XML parser is installed): elements nest and close,
// attributes are quoted and unique, `<` and `&` appear only as markup or entities.
function xmlElements(src: string): Array<{ name: string; attrs: Record<string, string> }> {
  const out: Array<{ name: string; attrs: Record<string, string> }> = [];
  if (/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u.test(src)) throw new Error('a character XML cannot carry');
  const body = src.replace(/^<\?xml[^?]*\?>/, '');
  const stack: string[] = [];
  const token = /<(\/?)([A-Za-z_][-\w.:]*)((?:\s+[A-Za-z_][-\w.:]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|([^<]+)/gy;
  let roots = 0;
  let at = 0;
  for (let m = token.exec(body); m !== null; m = token.exec(body)) {
    at = token.lastIndex;
    const [, close, name, attrText, selfClose, text] = m;
    const entityOk = (s: string): boolean => !/&(?!(?:lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(s);
    if (text !== undefined) {
      if (!entityOk(text)) throw new Error(`bad entity in text at ${at}`);
      if (stack.length === 0 && text.trim() !== '') throw new Error('text outside the root');
      continue;
    }
    if (close === '/') {
      if (stack.pop() !== name) throw new Error(`mismatched </${name}> at ${at}`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of (attrText ?? '').matchAll(/([A-Za-z_][-\w.:]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
      if (Object.hasOwn(attrs, a[1]!)) throw new Error(`duplicate attribute ${a[1]}`);
      const value = a[2] ?? a[3] ?? '';
      if (!entityOk(value)) throw new Error(`bad entity in attribute ${a[1]}`);
      attrs[a[1]!] = value.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
    }
    if (stack.length === 0 && roots++ > 0) throw new Error('more than one root element');
    out.push({ name: name!, attrs });
    if (selfClose !== '/') stack.push(name!);
  }
  if (at !== body.length) throw new Error(`not well-formed at offset ${at}`);
  if (stack.length > 0) throw new Error(`unclosed <${stack.at(-1)}>`);
  if (roots !== 1) throw new Error('no root element');
  return out;
}

// ---------------------------------------------------------------------------

describe('arbiter test on the shipped policies', () => {
  let total: number;
  let suiteCount: number;
  beforeAll(async () => {
    const suites = await shippedSuites();
    suiteCount = suites.length;
    total = suites.reduce((n, s) => n + casesIn(s.tests), 0);
    expect(total).toBeGreaterThan(0);
  });

  it('passes with --min-coverage 100, exit 0, ending with `N passed, 0 failed` (real binary)', async () => {
    const r = await bin(['test', 'policies', '--config', 'dev/arbiter.yaml', '--min-coverage', '100']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.endsWith(`\n${total} passed, 0 failed\n`)).toBe(true);
    expect(r.out).toMatch(/^coverage: (\d+)\/\1 rules decisive \(100%\)$/m);
    expect(r.out.match(/^PASS /gm)).toHaveLength(suiteCount);
    expect(r.out).not.toContain('✗');
  });

  it('passes in process too, with the same report', async () => {
    const r = await cli(['policies', '--config', 'dev/arbiter.yaml', '--min-coverage', '100']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(lastLine(r.out)).toBe(`${total} passed, 0 failed`);
  });

  it('--verbose lists every passing case', async () => {
    const quiet = await cli(['policies', '--config', DEV_CONFIG]);
    expect(quiet.out).not.toContain('✓');
    const r = await cli(['policies', '--config', DEV_CONFIG, '--verbose']);
    expect(r.code).toBe(0);
    const ticks = r.out.split('\n').filter((l) => /^ {4}✓ \S.* × .*: \S+ → (ALLOW|DENY)/.test(l));
    expect(ticks).toHaveLength(total);
  });

  it('--format json prints the result as one JSON document', async () => {
    const r = await bin(['test', 'policies', '--config', 'dev/arbiter.yaml', '--format', 'json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.out) as RunResult;
    expect(result.passed).toBe(total);
    expect(result.failed).toBe(0);
    expect(result.suites).toHaveLength(suiteCount);
    expect(result.coverage.percent).toBe(100);
    expect(result.revision).toMatch(/^[0-9a-f]{16}$/);
    const first = result.suites[0]!.cases[0]!;
    expect(first).toMatchObject({ passed: true });
    expect(first.trace?.decidedBy).toBeDefined();
  });

  it('--junit FILE writes well-formed JUnit XML beside the text report (real binary)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arbiter-junit-'));
    const file = join(dir, 'report.xml');
    const r = await bin(['test', 'policies', '--config', 'dev/arbiter.yaml', '--junit', file]);
    expect(r.code).toBe(0);
    expect(lastLine(r.out)).toBe(`${total} passed, 0 failed`);
    const elements = xmlElements(await readFile(file, 'utf8'));
    expect(elements[0]).toEqual({ name: 'testsuites', attrs: expect.objectContaining({ tests: String(total), failures: '0' }) });
    expect(elements.filter((e) => e.name === 'testsuite')).toHaveLength(suiteCount);
    expect(elements.filter((e) => e.name === 'testcase')).toHaveLength(total);
    expect(elements.filter((e) => e.name === 'failure')).toHaveLength(0);
  });

  it('--filter runs only the tests whose `suite › test` contains the text', async () => {
    const suites = await shippedSuites();
    const target = suites[0]!;
    const test = target.tests[0]!;
    const r = await cli(['policies', '--config', DEV_CONFIG, '--format', 'json', '--filter', `${target.name} › ${test.name}`]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.out) as RunResult;
    const ran = result.suites.flatMap((s) => s.cases);
    expect(new Set(ran.map((c) => c.test))).toEqual(new Set(target.tests.filter((t) => `${target.name} › ${t.name}`.includes(`${target.name} › ${test.name}`)).map((t) => t.name)));
    expect(result.passed).toBe(ran.length);
    // A filter that matches nothing does not pass: it is bad usage.
    const none = await cli(['policies', '--config', DEV_CONFIG, '--filter', 'no test is called this']);
    expect(none.code).toBe(2);
    expect(none.out).toBe('');
    expect(none.err).toBe('arbiter test: no test matches --filter "no test is called this"\n');
  });

  it('--min-coverage is not checked with --filter: a note on stderr, and the exit status of the cases', async () => {
    const suites = await shippedSuites();
    const filter = `${suites[0]!.name} › ${suites[0]!.tests[0]!.name}`;
    const r = await cli(['policies', '--config', DEV_CONFIG, '--min-coverage', '100', '--filter', filter]);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/\(100%\)/); // the subset does not cover every rule ...
    expect(r.err).toBe('arbiter test: --min-coverage is not checked with --filter (coverage of a subset of the suites)\n'); // ... and that is not a failure
    expect(r.err).not.toContain('is below --min-coverage');
  });

  it('with no DIR: the config\'s `policies` directory', async () => {
    const r = await cli(['--config', DEV_CONFIG, '--min-coverage', '100']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(lastLine(r.out)).toBe(`${total} passed, 0 failed`);
    expect(r.out.match(/^PASS /gm)).toHaveLength(suiteCount);
  });
});

it('the XML check refuses what is not well-formed (self-test)', () => {
  for (const bad of ['<a>', '<a></b>', '<a x="1" x="2"/>', '<a x="<"/>', '<a>&</a>', '<a>\u0001</a>', '<a/><b/>', '<a x=1/>', 'text']) {
    expect(() => xmlElements(bad), bad).toThrow();
  }
  expect(xmlElements('<?xml version="1.0"?>\n<a x="&lt;&amp;"><b/>t&gt;</a>\n')).toEqual([{ name: 'a', attrs: { x: '<&' } }, { name: 'b', attrs: {} }]);
});

describe('arbiter test failing', () => {
  it('one expectation flipped: exit 1, and the diff (expected vs actual) and trace in the output (real binary)', async () => {
    const { root, policies } = await copyOfPolicies();
    const file = (await suiteFiles(policies))[0]!;
    const doc = parseDocument(await readFile(join(policies, file), 'utf8'));
    const test = (doc.toJS() as { tests: Array<{ name: string; subjects: string[]; resources: string[]; expect: Record<string, string> }> }).tests[0]!;
    const [action, original] = Object.entries(test.expect)[0]!;
    const flipped = original === 'ALLOW' ? 'DENY' : 'ALLOW';
    doc.setIn(['tests', 0, 'expect', action], flipped);
    await writeFile(join(policies, file), String(doc));
    const flippedCases = test.subjects.length * test.resources.length;
    const total = (await shippedSuites()).reduce((n, s) => n + casesIn(s.tests), 0);

    const r = await bin(['test', 'policies', '--config', DEV_CONFIG], { cwd: root });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^FAIL policies/${file.replace(/\./g, '\\.')} \\(`, 'm'));
    expect(r.out).toContain(`  ${test.name}  (policies/${file}:`);
    for (const s of test.subjects) {
      for (const res of test.resources) {
        const line = r.out.split('\n').find((l) => l.startsWith(`    ✗ ${s} × ${res}: ${action}: `));
        expect(line, `${s} × ${res}`).toMatch(new RegExp(`: expected ${flipped}, got ${original} \\(`));
      }
    }
    expect(r.out).toMatch(/^ {8}decided by: /m);
    expect(lastLine(r.out)).toBe(`${total - flippedCases} passed, ${flippedCases} failed`);
  });

  it('--min-coverage above the achieved coverage: exit 1 though every case passes; at it: exit 0', async () => {
    // Find a test that alone makes some rule decisive, and drop it from a copy.
    const full = JSON.parse((await cli(['policies', '--config', DEV_CONFIG, '--format', 'json'])).out) as RunResult;
    const decidedBy = new Map<string, Set<string>>();
    for (const s of full.suites) {
      for (const c of s.cases) {
        for (const rule of c.actual.rules) {
          const set = decidedBy.get(rule) ?? new Set<string>();
          set.add(`${s.file}\0${c.test}`);
          decidedBy.set(rule, set);
        }
      }
    }
    const lone = [...decidedBy].find(([, tests]) => tests.size === 1);
    expect(lone, 'some rule is decided by one test only').toBeDefined();
    const [rule, tests] = lone!;
    const [suiteFile, testName] = [...tests][0]!.split('\0') as [string, string];

    const { root, policies } = await copyOfPolicies();
    const path = join(root, suiteFile);
    const doc = parseDocument(await readFile(path, 'utf8'));
    const index = (doc.toJS() as { tests: Array<{ name: string }> }).tests.findIndex((t) => t.name === testName);
    const removed = casesIn([parseSuite(await readFile(path, 'utf8'), path).tests[index]!]);
    doc.deleteIn(['tests', index]);
    await writeFile(path, String(doc));
    expect(policies).toBe(join(root, 'policies'));

    const r = await bin(['test', 'policies', '--config', DEV_CONFIG, '--min-coverage', '100'], { cwd: root });
    expect(r.code).toBe(1);
    const m = /arbiter test: rule coverage ([\d.]+)% is below --min-coverage 100%/.exec(r.err);
    expect(m, r.err).not.toBeNull();
    const achieved = Number(m![1]);
    expect(achieved).toBeLessThan(100);
    expect(r.out).toContain(`/${full.coverage.rules} rules decisive (${achieved}%)\n`);
    expect(r.out).toMatch(new RegExp(`^ {4}\\S+:\\d+:\\d+ ${rule.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    expect(lastLine(r.out)).toBe(`${full.passed - removed} passed, 0 failed`);

    const at = await bin(['test', 'policies', '--config', DEV_CONFIG, '--min-coverage', String(achieved)], { cwd: root });
    expect(at.code).toBe(0);
    expect(at.err).toBe('');
  });
});

describe('arbiter test: exit 2', () => {
  it('a broken suite: exit 2 with file:line:col, and no report (real binary)', async () => {
    const { root, policies } = await copyOfPolicies();
    await writeFile(
      join(policies, 'zz-broken.test.yaml'),
      ['name: broken', 'subjects: { u: { sub: u } }', 'resources: { d: { type: document } }', 'tests:', '  - name: t', '    subjects: [u]', '    resources: [d]', '    expct: { read: DENY }', ''].join('\n'),
    );
    const r = await bin(['test', 'policies', '--config', DEV_CONFIG], { cwd: root });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe('arbiter test: policies/zz-broken.test.yaml:8:5: `tests[0].expct` is not a known key; did you mean `expect`?\n');
  });

  it('a broken suite in process: the path is shown relative to the working directory', async () => {
    const { policies } = await copyOfPolicies();
    await writeFile(join(policies, 'zz-broken.test.yaml'), 'name: broken\nnow: tomorrow\ntests: []\n');
    const r = await cli([policies, '--config', DEV_CONFIG]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/zz-broken\.test\.yaml:2:1: `now` must be an RFC 3339 time/);
  });

  it('a policy with a syntax error: exit 2 with file:line:col (real binary)', async () => {
    const { root, policies } = await copyOfPolicies();
    await writeFile(join(policies, 'zz-bad.policy'), 'resource thing {\n  actions read\n  permit read when\n}\n');
    const r = await bin(['test', 'policies', '--config', DEV_CONFIG], { cwd: root });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^zz-bad\.policy:4:1: .*\(PARSE_SYNTAX\)$/m);
    expect(r.err.endsWith('\n1 error\n')).toBe(true);
  });

  it('a policy that does not compile: exit 2 with every error', async () => {
    const dir = await tempDir({
      'a.policy': 'resource doc {\n  actions read\n  permit raed when subject.role("editr")\n}\n',
      'a.test.yaml': 'subjects: { u: { sub: u } }\nresources: { d: { type: doc } }\ntests:\n  - { name: t, subjects: [u], resources: [d], expect: { read: DENY } }\n',
    });
    const r = await cli([dir]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('a.policy:3:10: action `raed` is not declared for resource type `doc` (COMPILE_UNDECLARED_ACTION)');
    expect(r.err).toContain('a.policy:3:33: unknown role `editr` (COMPILE_UNKNOWN_ROLE)');
    expect(r.err.endsWith('\n2 errors\n')).toBe(true);
  });

  it('no suites: exit 2', async () => {
    const dir = await tempDir({ 'a.policy': 'resource doc {\n  actions read\n  rule r: permit read\n}\n' });
    const r = await cli([dir]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(`arbiter test: no *.test.yaml suites under ${dir}\n`);
    const b = await bin(['test', dir]);
    expect(b.code).toBe(2);
  });

  it('a directory that does not exist: exit 2', async () => {
    const r = await cli([join(tmpdir(), 'arbiter-no-such-dir-3f9c')]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('cannot read suites under');
    expect(r.err).toContain('ENOENT');
  });

  it.each([
    { args: ['--format', 'xml'], err: '--format must be text or json' },
    { args: ['--min-coverage', '101'], err: '--min-coverage must be a number from 0 to 100' },
    { args: ['--min-coverage', 'most'], err: '--min-coverage must be a number from 0 to 100' },
    { args: ['--now', 'yesterday'], err: '--now must be an RFC 3339 time' },
    { args: ['--bogus'], err: "Unknown option '--bogus'" },
  ])('bad usage $args: exit 2', async ({ args, err }) => {
    const r = await cli(['policies', ...args]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain(err);
  });

  it('--help: exit 0 with the usage', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('usage: arbiter test [DIR...]');
  });
});

describe('arbiter test: what a suite names must exist', () => {
  const POLICY = 'resource doc {\n  actions read, write\n  rule readers: permit read when subject.x == "a"\n}\n';

  it('a `rules:` id no policy defines: exit 2 before any case, at the test, with a did-you-mean (real binary)', async () => {
    const dir = await tempDir({
      'a.policy': POLICY,
      'a.test.yaml': [
        'subjects: { u: { sub: u, x: a } }', //                                        1
        'resources: { d: { type: doc } }', //                                           2
        'tests:', //                                                                    3
        '  - { name: fine, subjects: [u], resources: [d], expect: { read: ALLOW } }', // 4
        '  - name: typo', //                                                            5
        '    subjects: [u]',
        '    resources: [d]',
        '    expect: { read: ALLOW }',
        '    rules: { read: doc.reader }',
        '',
      ].join('\n'),
    });
    const r = await bin(['test', '.'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe('arbiter test: a.test.yaml:5:5: `rules.read` names `doc.reader`, which no policy defines; did you mean `doc.readers`?\n');
    const inProcess = await cli([dir]);
    expect(inProcess.code).toBe(2);
    expect(inProcess.err).toMatch(/a\.test\.yaml:5:5: `rules\.read` names `doc\.reader`, which no policy defines; did you mean `doc\.readers`\?\n$/);
  });

  it('an `issuer:` the config does not define: exit 2 before any case, listing the issuers it has', async () => {
    const { root, policies } = await copyOfPolicies();
    const file = join(policies, 'documents.test.yaml');
    const text = await readFile(file, 'utf8');
    const edited = text.replace('    token: { sub: alice, roles: [editor], department: engineering }\n', '    token: { sub: alice, roles: [editor], department: engineering }\n    issuer: deb\n');
    expect(edited).not.toBe(text);
    await writeFile(file, edited);
    const r = await bin(['test', 'policies', '--config', DEV_CONFIG], { cwd: root });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^arbiter test: policies\/documents\.test\.yaml:\d+:\d+: subject `alice_token` names issuer `deb`, which the config does not define; did you mean `dev`\?\n$/);
  });

  // Regression test, fixed: an unknown issuer is reported at the fixture's `issuer:` with a did-you-mean.
  it('an `issuer:` the config does not define: at the fixture, with a did-you-mean', async () => {
    const dir = await tempDir({
      'p.policy': POLICY,
      'p.test.yaml': 'subjects:\n  ann:\n    token: { sub: ann, x: a }\n    issuer: crop\nresources: { d: { type: doc } }\ntests:\n  - { name: t, subjects: [ann], resources: [d], expect: { read: ALLOW } }\n',
      'arbiter.yaml': 'jwt:\n  issuers:\n    - name: corp\n      issuer: https://corp.example\n      audiences: [arbiter]\n      jwks_file: keys.json\n',
    });
    const r = await bin(['test', '.'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^arbiter test: p\.test\.yaml:\d+:\d+: .*did you mean `corp`\?/);
  });

  it('a DENY by an undeclared action is only expected with `reasons` (the shipped suite names it; without, exit 1 with the hint)', async () => {
    const { root, policies } = await copyOfPolicies();
    const file = join(policies, 'documents.test.yaml');
    const text = await readFile(file, 'utf8');
    expect(text).toContain('    reasons: { print: UNDECLARED_ACTION }\n');
    await writeFile(file, text.replace('    reasons: { print: UNDECLARED_ACTION }\n', ''));
    const r = await bin(['test', 'policies', '--config', DEV_CONFIG], { cwd: root });
    expect(r.code).toBe(1);
    expect(r.out).toContain('    ✗ ann × spec: print: DENY by UNDECLARED_ACTION, not by the policies; write `reasons: { print: UNDECLARED_ACTION }` if that is what this case tests\n');
    expect(lastLine(r.out)).toMatch(/^\d+ passed, 1 failed$/);
  });
});

describe('arbiter test: time and config', () => {
  it('--now decides for tests that give no time', async () => {
    const dir = await tempDir({
      't.policy': 'resource doc {\n  actions read\n  rule after_june: permit read when context.time >= timestamp("2026-06-01T00:00:00Z")\n}\n',
      't.test.yaml': 'subjects: { u: { sub: u } }\nresources: { d: { type: doc } }\ntests:\n  - { name: t, subjects: [u], resources: [d], expect: { read: ALLOW } }\n',
    });
    expect((await cli([dir, '--now', '2026-12-01T00:00:00Z'])).code).toBe(0);
    const before = await cli([dir, '--now', '2026-01-01T00:00:00Z']);
    expect(before.code).toBe(1);
    expect(before.out).toContain('✗ u × d: read: expected ALLOW, got DENY (NO_MATCHING_RULE)');
  });

  describe('the config whose issuers map token claims', () => {
    let dir: string;
    const CONFIG = 'jwt:\n  issuers:\n    - name: corp\n      issuer: https://corp.example\n      audiences: [arbiter]\n      jwks_file: keys.json\n      claims:\n        attributes:\n          department: department\n';
    beforeAll(async () => {
      dir = await tempDir({
        'p.policy': 'resource doc {\n  actions read\n  rule eng: permit read when subject.department == "eng"\n}\n',
        'p.test.yaml': 'subjects:\n  ann:\n    token: { sub: ann, department: eng }\nresources: { d: { type: doc } }\ntests:\n  - { name: t, subjects: [ann], resources: [d], expect: { read: ALLOW } }\n',
        'arbiter.yaml': CONFIG,
      });
    });

    it('--config FILE', async () => {
      expect((await cli([dir, '--config', join(dir, 'arbiter.yaml')])).code).toBe(0);
    });

    it('$ARBITER_CONFIG', async () => {
      expect((await cli([dir], { ARBITER_CONFIG: join(dir, 'arbiter.yaml') })).code).toBe(0);
    });

    it('./arbiter.yaml in the working directory (real binary)', async () => {
      const r = await bin(['test', '.'], { cwd: dir });
      expect(r.code).toBe(0);
      expect(lastLine(r.out)).toBe('1 passed, 0 failed');
    });

    it('without one, the claim is only under subject.claims and the case fails', async () => {
      const r = await cli([dir]);
      expect(r.code).toBe(1);
      expect(r.out).toContain('✗ ann × d: read: expected ALLOW, got DENY (NO_MATCHING_RULE)');
    });
  });

  describe('a config that does not load: exit 3', () => {
    it.each<{ name: string; args: string[]; env: Record<string, string>; err: string }>([
      { name: '--config FILE that does not exist', args: ['--config', join(tmpdir(), 'arbiter-missing-config.yaml')], env: {}, err: 'cannot read config file' },
      { name: '$ARBITER_CONFIG that does not exist', args: [], env: { ARBITER_CONFIG: join(tmpdir(), 'arbiter-missing-config.yaml') }, err: 'cannot read config file' },
    ])('$name', async ({ args, env, err }) => {
      const r = await cli(['policies', ...args], env);
      expect(r.code).toBe(3);
      expect(r.out).toBe('');
      expect(r.err).toContain(err);
      expect(r.err.startsWith('arbiter test: ')).toBe(true);
    });

    it('a config with an unknown key, as --config FILE and as ./arbiter.yaml (real binary)', async () => {
      const dir = await tempDir({
        'p.policy': 'resource doc {\n  actions read\n  rule r: permit read\n}\n',
        'p.test.yaml': 'subjects: { u: { sub: u } }\nresources: { d: { type: doc } }\ntests:\n  - { name: t, subjects: [u], resources: [d], expect: { read: ALLOW } }\n',
        'arbiter.yaml': 'polices: .\n',
      });
      const r = await cli([dir, '--config', join(dir, 'arbiter.yaml')]);
      expect(r.code).toBe(3);
      expect(r.out).toBe('');
      expect(r.err).toContain('polices');
      const b = await bin(['test', '.'], { cwd: dir });
      expect(b.code).toBe(3);
      expect(b.out).toBe('');
      expect(b.err).toContain('polices');
    });
  });

  describe('with no DIR', () => {
    const FILES = {
      'p.policy': 'resource doc {\n  actions read\n  rule r: permit read\n}\n',
      'p.test.yaml': 'subjects: { u: { sub: u } }\nresources: { d: { type: doc } }\ntests:\n  - { name: t, subjects: [u], resources: [d], expect: { read: ALLOW } }\n',
    };

    it('the config\'s `policies`, relative to the config file', async () => {
      const root = await tempDir({});
      await mkdir(join(root, 'conf'));
      await mkdir(join(root, 'pol'));
      for (const [name, text] of Object.entries(FILES)) await writeFile(join(root, 'pol', name), text);
      await writeFile(join(root, 'conf', 'arbiter.yaml'), 'policies: ../pol\n');
      const r = await cli(['--config', join(root, 'conf', 'arbiter.yaml'), '--verbose']);
      expect(r.code).toBe(0);
      expect(r.err).toBe('');
      expect(r.out).toContain('p.test.yaml');
      expect(lastLine(r.out)).toBe('1 passed, 0 failed');
      // ./arbiter.yaml found in the working directory (real binary).
      await writeFile(join(root, 'arbiter.yaml'), 'policies: pol\n');
      const b = await bin(['test'], { cwd: root });
      expect(b.code).toBe(0);
      expect(lastLine(b.out)).toBe('1 passed, 0 failed');
    });

    it('a DIR given wins over the config\'s `policies`', async () => {
      const dir = await tempDir({ ...FILES, 'arbiter.yaml': `policies: ${join(tmpdir(), 'arbiter-no-such-dir-c0de')}\n` });
      const r = await cli([dir, '--config', join(dir, 'arbiter.yaml')]);
      expect(r.code).toBe(0);
      expect(lastLine(r.out)).toBe('1 passed, 0 failed');
      const none = await cli(['--config', join(dir, 'arbiter.yaml')]);
      expect(none.code).toBe(2);
      expect(none.err).toContain('arbiter-no-such-dir-c0de');
    });

    it('and no config: the working directory (real binary)', async () => {
      const dir = await tempDir(FILES);
      const r = await bin(['test'], { cwd: dir });
      expect(r.code).toBe(0);
      expect(r.err).toBe('');
      expect(r.out).toContain('PASS p.test.yaml');
      expect(lastLine(r.out)).toBe('1 passed, 0 failed');
    });
  });
});

describe('arbiter test: fixed bugs (regression tests)', () => {
  // Regression (was a bug: an unguarded writeFile made main() reject, the binary crashing with exit 1).
  it('--junit to a path that cannot be written: exit 2 with a message, not a crash', async () => {
    const path = join(tmpdir(), 'arbiter-no-such-dir-7e1a', 'r.xml');
    const r = await cli(['policies', '--config', DEV_CONFIG, '--junit', path]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`arbiter test: cannot write --junit ${path}: ENOENT\n`);
    const b = await bin(['test', 'policies', '--config', 'dev/arbiter.yaml', '--junit', path]);
    expect(b.code).toBe(2);
    expect(b.err).toBe(`arbiter test: cannot write --junit ${path}: ENOENT\n`);
  });

  // Regression (was a bug: one JSON document per directory, back to back, which no JSON parser reads).
  it('--format json with two directories is still one JSON document: an array of the results', async () => {
    const r = await cli(['policies', 'policies', '--config', DEV_CONFIG, '--format', 'json']);
    expect(r.code).toBe(0);
    const results = JSON.parse(r.out) as RunResult[];
    expect(Array.isArray(results)).toBe(true);
    expect(results).toHaveLength(2);
    const one = JSON.parse((await cli(['policies', '--config', DEV_CONFIG, '--format', 'json'])).out) as RunResult;
    for (const result of results) {
      expect(result.passed).toBe(one.passed);
      expect(result.failed).toBe(0);
      expect(result.revision).toBe(one.revision);
    }
  });
});

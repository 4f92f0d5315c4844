/**
 * The `*.test.yaml` suite format, the runner (with a real engine over real
 * policy files in temp dirs), coverage, token fixtures, and the reports.
 */
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { parseConfig } from '../../src/config/config.js';
import { Engine } from '../../src/engine/engine.js';
import { jsonReport, junitReport, textReport } from '../../src/testing/report.js';
import { runSuites, SuiteReferenceError, type Checker, type RunResult } from '../../src/testing/runner.js';
import { parseSuite, type Suite } from '../../src/testing/suite.js';
import { createTestTokens } from '../../src/testing/tokens.js';

// ---------------------------------------------------------------------------
// Helpers

async function policyDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'arbiter-runner-'));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

/** The adapter `arbiter test` builds around the engine. */
function checkerOf(engine: Engine): Checker {
  return {
    revision: engine.revision,
    rules: engine.tree.rules,
    check: (request, options) => engine.check(request, options),
    checkToken: (token, request, options) => engine.checkToken(token, request, options),
  };
}

/** A suite from YAML lines. */
const suite = (lines: readonly string[], file = 'x.test.yaml'): Suite => parseSuite(`${lines.join('\n')}\n`, file);

const ms = (iso: string): number => Date.parse(iso);

/** Every case of a run, flat. */
const casesOf = (r: RunResult) => r.suites.flatMap((s) => s.cases);

/** The case named `subject × resource: action`. */
function caseNamed(r: RunResult, name: string) {
  const found = casesOf(r).find((c) => c.name === name);
  if (found === undefined) throw new Error(`no case ${name}; have ${casesOf(r).map((c) => c.name).join(' | ')}`);
  return found;
}

function parseError(text: string, file = 'x.test.yaml'): ConfigError {
  try {
    parseSuite(text, file);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('parseSuite accepted the suite');
}

// A tiny XML 1.0 well-formedness checker and tree builder (no XML parser is installed).
interface XmlElement {
  readonly name: string;
  readonly attrs: Record<string, string>;
  readonly children: XmlElement[];
  text: string;
}

const XML_BAD_CHAR = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function parseXml(src: string): XmlElement {
  let i = 0;
  const fail = (m: string): never => {
    throw new Error(`XML not well-formed at offset ${i}: ${m}: ${JSON.stringify(src.slice(Math.max(0, i - 30), i + 30))}`);
  };
  if (XML_BAD_CHAR.test(src)) fail('a character XML 1.0 cannot carry');
  const decode = (raw: string): string => {
    if (raw.includes('<')) fail('`<` in character data or an attribute value');
    return raw.replace(/&(?:(lt|gt|amp|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));|&/g, (m, named: string | undefined, dec: string | undefined, hex: string | undefined) => {
      if (m === '&') return fail('a bare `&`');
      if (named !== undefined) return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[named]!;
      const ch = String.fromCodePoint(dec !== undefined ? Number(dec) : parseInt(hex!, 16));
      if (XML_BAD_CHAR.test(ch)) fail('a character reference to a character XML 1.0 cannot carry');
      return ch;
    });
  };
  const name = (): string => {
    const m = /[A-Za-z_:][-A-Za-z0-9._:]*/y;
    m.lastIndex = i;
    const found = m.exec(src);
    if (found === null) return fail('expected a name');
    i += found[0].length;
    return found[0];
  };
  const ws = (): boolean => {
    const start = i;
    while (i < src.length && ' \t\r\n'.includes(src[i]!)) i++;
    return i > start;
  };
  const element = (): XmlElement => {
    if (src[i] !== '<') fail('expected `<`');
    i++;
    const el: XmlElement = { name: name(), attrs: {}, children: [], text: '' };
    for (;;) {
      const spaced = ws();
      if (src.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (src[i] === '>') {
        i++;
        break;
      }
      if (!spaced) fail('attributes must be separated by white space');
      const attr = name();
      ws();
      if (src[i] !== '=') fail('expected `=`');
      i++;
      ws();
      const quote = src[i];
      if (quote !== '"' && quote !== "'") return fail('expected a quoted attribute value');
      const end = src.indexOf(quote, i + 1);
      if (end < 0) fail('unterminated attribute value');
      if (Object.hasOwn(el.attrs, attr)) fail(`duplicate attribute ${attr}`);
      el.attrs[attr] = decode(src.slice(i + 1, end));
      i = end + 1;
    }
    for (;;) {
      if (i >= src.length) fail(`unclosed element ${el.name}`);
      if (src.startsWith('</', i)) {
        i += 2;
        if (name() !== el.name) fail(`mismatched end tag for ${el.name}`);
        ws();
        if (src[i] !== '>') fail('expected `>`');
        i++;
        return el;
      }
      if (src.startsWith('<!--', i)) {
        const end = src.indexOf('-->', i);
        if (end < 0) fail('unterminated comment');
        i = end + 3;
        continue;
      }
      if (src[i] === '<') {
        el.children.push(element());
        continue;
      }
      const next = src.indexOf('<', i);
      const raw = src.slice(i, next < 0 ? src.length : next);
      if (raw.includes(']]>')) fail('`]]>` in character data');
      el.text += decode(raw);
      i += raw.length;
    }
  };
  if (src.startsWith('<?xml')) {
    const end = src.indexOf('?>');
    if (end < 0) fail('unterminated XML declaration');
    i = end + 2;
  }
  ws();
  const root = element();
  ws();
  if (i !== src.length) fail('content after the root element');
  return root;
}

const childrenNamed = (el: XmlElement, name: string): XmlElement[] => el.children.filter((c) => c.name === name);

// ---------------------------------------------------------------------------
// parseSuite

describe('parseSuite errors', () => {
  const valid = [
    'name: s', //                                   1
    'subjects:', //                                 2
    '  alice: { sub: alice, roles: [viewer] }', //  3
    'resources:', //                                4
    '  spec: { type: doc, id: d1 }', //             5
    'contexts:', //                                 6
    '  office: { ip: 10.1.2.3 }', //                7
    'tests:', //                                    8
    '  - name: t', //                               9
    '    subjects: [alice]', //                     10
    '    resources: [spec]', //                     11
    '    context: office', //                       12
    '    expect: { read: ALLOW }', //               13
  ];
  const edit = (line: number, text: string | null): string => {
    const out = [...valid];
    if (text === null) out.splice(line - 1, 1);
    else out[line - 1] = text;
    return `${out.join('\n')}\n`;
  };

  it('accepts the base suite', () => {
    const s = parseSuite(edit(1, 'name: s'), 'x.test.yaml');
    expect(s.tests).toHaveLength(1);
    expect(s.tests[0]!.location).toBe('x.test.yaml:9:5');
    expect(s.tests[0]!.context).toEqual({ ip: '10.1.2.3' });
  });

  it.each([
    { name: 'unknown top-level key', text: edit(2, 'subjets:'), at: '2:1', key: '`subjets`', also: 'did you mean `subjects`?' },
    { name: 'unknown key in a test', text: edit(13, '    expct: { read: ALLOW }'), at: '13:5', key: '`tests[0].expct`', also: 'did you mean `expect`?' },
    { name: 'subject fixture that does not exist', text: edit(10, '    subjects: [alise]'), at: '10:5', key: '`tests[0].subjects`', also: 'names "alise", which is not a subject fixture; did you mean "alice"?' },
    { name: 'resource fixture that does not exist', text: edit(11, '    resources: [spc]'), at: '11:5', key: '`tests[0].resources`', also: 'names "spc", which is not a resource fixture; did you mean "spec"?' },
    { name: 'context fixture that does not exist', text: edit(12, '    context: ofice'), at: '12:5', key: '`tests[0].context`', also: 'names "ofice", which is not a context fixture; did you mean "office"?' },
    { name: 'fixture with nothing close', text: edit(10, '    subjects: [zzzzzzzz]'), at: '10:5', key: '`tests[0].subjects`', also: 'which is not a subject fixture' },
    { name: 'expect value other than ALLOW/DENY', text: edit(13, '    expect: { read: ALLOW, write: allow }'), at: '13:28', key: '`tests[0].expect.write`', also: 'must be ALLOW or DENY' },
    { name: 'expect value that is a boolean', text: edit(13, '    expect:\n      read: true'), at: '14:7', key: '`tests[0].expect.read`', also: 'must be ALLOW or DENY' },
    { name: '`rules` naming an action not in `expect`', text: edit(13, '    expect: { read: ALLOW }\n    rules: { delete: doc.readers }'), at: '14:14', key: '`tests[0].rules.delete`', also: 'names an action that `expect` does not' },
    { name: '`reasons` naming an action not in `expect`', text: edit(13, '    expect: { read: ALLOW }\n    reasons: { delete: NO_MATCHING_RULE }'), at: '14:16', key: '`tests[0].reasons.delete`', also: 'names an action that `expect` does not' },
    { name: '`reasons` value that is not a reason code', text: edit(13, '    expect: { read: DENY }\n    reasons: { read: undeclared_action }'), at: '14:16', key: '`tests[0].reasons.read`', also: 'must be a reason code such as UNDECLARED_ACTION or TOKEN_EXPIRED' },
    { name: '`reasons` value that is a number', text: edit(13, '    expect: { read: DENY }\n    reasons:\n      read: 5'), at: '15:7', key: '`tests[0].reasons.read`', also: 'must be a reason code' },
    { name: '`reasons` value that is a misspelt reason code', text: edit(13, '    expect: { read: DENY }\n    reasons: { read: UNDECLARED_ACTOIN }'), at: '14:16', key: '`tests[0].reasons.read`', also: 'names UNDECLARED_ACTOIN, which is not a reason code; did you mean UNDECLARED_ACTION?' },
    { name: 'unknown key in a test, near `reasons`', text: edit(13, '    expect: { read: DENY }\n    reason: { read: UNDECLARED_ACTION }'), at: '14:5', key: '`tests[0].reason`', also: 'did you mean `reasons`?' },
    { name: 'resource without `type`', text: edit(5, '  spec: { id: d1 }'), at: '5:3', key: '`resources.spec.type`', also: 'is required' },
    { name: 'bad suite `now`', text: edit(1, 'now: yesterday'), at: '1:1', key: '`now`', also: 'must be an RFC 3339 time' },
    { name: 'suite `now` without a zone', text: edit(1, 'now: 2026-11-23T10:00:00'), at: '1:1', key: '`now`', also: 'must be an RFC 3339 time' },
    { name: 'bad test `now`', text: edit(12, '    now: 2026-11-23'), at: '12:5', key: '`tests[0].now`', also: 'must be an RFC 3339 time' },
    { name: '`token:` claims not a mapping', text: edit(3, '  alice:\n    token: [sub, alice]'), at: '4:5', key: '`subjects.alice.token`', also: "must be a mapping of the token's claims" },
    { name: '`token:` fixture with an unknown key', text: edit(3, '  alice:\n    token: { sub: alice }\n    isuer: dev'), at: '5:5', key: '`subjects.alice.isuer`', also: 'did you mean `issuer`?' },
    { name: 'subject fixture not a mapping', text: edit(3, '  alice: [viewer]'), at: '3:3', key: '`subjects.alice`', also: 'must be a mapping' },
    { name: 'a test without subjects', text: edit(10, null), at: '9:5', key: '`tests[0].subjects`', also: 'must list at least one subject fixture' },
  ])('$name', ({ text, at, key, also }) => {
    const e = parseError(text);
    expect(e.message.startsWith(`x.test.yaml:${at}: ${key} `), e.message).toBe(true);
    expect(e.message).toContain(also);
  });

  it('a fixture with nothing close gets no did-you-mean', () => {
    expect(parseError(edit(10, '    subjects: [zzzzzzzz]')).message).not.toContain('did you mean');
  });

  it('duplicate test names: the second one is pointed at', () => {
    const text = `${valid.join('\n')}\n  - name: t\n    subjects: [alice]\n    resources: [spec]\n    expect: { read: DENY }\n`;
    const e = parseError(text);
    expect(e.message).toBe('x.test.yaml:14:5: `tests[1].name` repeats test name "t"');
  });

  it('no tests: an empty list points at the key, a missing key at the start of the file', () => {
    const empty = parseError(`${valid.slice(0, 7).join('\n')}\ntests: []\n`);
    expect(empty.message).toBe('x.test.yaml:8:1: `tests` must list at least one test');
    const missing = parseError(`${valid.slice(0, 7).join('\n')}\n`);
    expect(missing.message).toBe('x.test.yaml:1:1: `tests` must list at least one test');
  });

  it('a YAML syntax error has its line and column', () => {
    // An unclosed flow mapping on line 3 is noticed (by the YAML parser) where the next key starts.
    const e = parseError(edit(3, '  alice: { sub: alice, roles: [viewer]'));
    expect(e.message).toMatch(/^x\.test\.yaml:4:1: Flow map .*end with a \}$/);
    const e2 = parseError(edit(5, '  spec: { type: doc, id: d1 }\n   bad: indentation: here'));
    expect(e2.message).toMatch(/^x\.test\.yaml:6:1: /);
    expect(parseError('a: b\n  c: d\n').message).toMatch(/^x\.test\.yaml:1:4: /);
  });

  it('a YAML alias is refused where it is', () => {
    const e = parseError(edit(13, '    expect: &x { read: ALLOW }\n  - name: t2\n    subjects: [alice]\n    resources: [spec]\n    expect: *x'));
    expect(e.message).toMatch(/^x\.test\.yaml:17:13: YAML aliases/);
  });

  it('expands a test into its table: subjects × resources × actions, with the test now over the suite now', () => {
    const s = suite([
      'now: 2026-01-01T00:00:00Z',
      'subjects: { a: { sub: a }, b: { sub: b } }',
      'resources: { r1: { type: doc }, r2: { type: doc, id: x, attributes: { k: 1 } } }',
      'tests:',
      '  - name: one',
      '    subjects: [a, b]',
      '    resources: [r1, r2]',
      '    context: { ip: 10.0.0.1 }',
      '    expect: { read: ALLOW, write: DENY }',
      '    rules: { read: doc.r }',
      '    reasons: { write: UNDECLARED_ACTION }',
      '  - name: two',
      '    now: 2026-06-01T00:00:00+02:00',
      '    subjects: [a]',
      '    resources: [r1]',
      '    expect: { read: DENY }',
    ]);
    const [one, two] = s.tests;
    expect(one!.subjects).toEqual(['a', 'b']);
    expect([...one!.expect]).toEqual([['read', 'ALLOW'], ['write', 'DENY']]);
    expect([...one!.rules]).toEqual([['read', 'doc.r']]);
    expect([...one!.reasons]).toEqual([['write', 'UNDECLARED_ACTION']]);
    expect(two!.reasons.size).toBe(0);
    expect(one!.context).toEqual({ ip: '10.0.0.1' });
    expect(one!.now).toBe(ms('2026-01-01T00:00:00Z'));
    expect(two!.now).toBe(ms('2026-05-31T22:00:00Z'));
    expect(s.name).toBe('x.test.yaml'); // no name: the file
    expect(s.resources.get('r2')).toEqual({ name: 'r2', type: 'doc', id: 'x', attributes: { k: 1 } });
  });
});

// ---------------------------------------------------------------------------
// runSuites with a real engine

/** Five rules in two files. Line numbers are relied on below. */
const A_POLICY = [
  'roles {', //                                                                         1
  '  admin > editor', //                                                                2
  '  viewer', //                                                                        3
  '}', //                                                                               4
  'resource doc {', //                                                                  5
  '  actions read, write', //                                                           6
  '  rule readers: permit read when subject.role("viewer") or subject.role("editor")', // 7
  '  rule writers: permit write when subject.role("editor")', //                        8
  '  rule locked:  forbid write when resource.locked == true', //                       9
  '}', //                                                                               10
].join('\n');
const B_POLICY = [
  '# folders', //                                                   1
  'resource folder {', //                                           2
  '  actions list, delete', //                                      3
  '  rule listers: permit list when subject.role("viewer")', //     4
  '  forbid delete when resource.protected == true', //             5
  '}', //                                                           6
].join('\n');

const FIXTURES = [
  'subjects:',
  '  vic: { sub: vic, roles: [viewer] }',
  '  ed: { sub: ed, roles: [editor] }',
  'resources:',
  '  doc: { type: doc, id: d1 }',
  '  locked_doc: { type: doc, id: d2, attributes: { locked: true } }',
  '  folder: { type: folder, id: f1 }',
];

describe('runSuites', () => {
  let engine: Engine;
  let checker: Checker;
  const NOW = ms('2026-11-23T10:00:00Z');

  beforeAll(async () => {
    engine = await Engine.fromDirectory(await policyDir({ 'a.policy': A_POLICY, 'sub/b.policy': B_POLICY }));
    checker = checkerOf(engine);
  });

  it('a passing and a failing case: expected vs actual, the deciding rules, and the trace', async () => {
    const s = suite([
      'name: docs',
      ...FIXTURES,
      'tests:',
      '  - name: viewers read',
      '    subjects: [vic]',
      '    resources: [doc]',
      '    expect: { read: ALLOW }',
      '  - name: editors write locked documents',
      '    subjects: [ed]',
      '    resources: [locked_doc]',
      '    expect: { write: ALLOW }',
    ]);
    const r = await runSuites(checker, [s], { now: NOW });
    expect(r.revision).toBe(engine.revision);
    expect(r.passed).toBe(1);
    expect(r.failed).toBe(1);

    const ok = caseNamed(r, 'vic × doc: read');
    expect(ok).toMatchObject({ passed: true, expected: 'ALLOW', test: 'viewers read', subject: 'vic', resource: 'doc', action: 'read', location: 'x.test.yaml:10:5' });
    expect(ok.actual).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['doc.readers'] });
    expect(ok.failure).toBeUndefined();

    const bad = caseNamed(r, 'ed × locked_doc: write');
    expect(bad.passed).toBe(false);
    expect(bad.actual).toMatchObject({ decision: 'DENY', reason: 'RULE_FORBID', rules: ['doc.locked'] });
    expect(bad.failure).toBe('expected ALLOW, got DENY (RULE_FORBID: doc.locked)');
    expect(bad.trace?.decidedBy).toBe('forbid');
    expect(bad.trace?.evaluated).toEqual(
      expect.arrayContaining([
        { rule: 'doc.locked', effect: 'forbid', applied: true, location: 'a.policy:9:3' },
        { rule: 'doc.writers', effect: 'permit', applied: true, location: 'a.policy:8:3' },
      ]),
    );

    const text = textReport(r);
    expect(text).toContain('FAIL x.test.yaml (docs): 1/2');
    expect(text).toContain('  editors write locked documents  (x.test.yaml:14:5)');
    expect(text).toContain('    ✗ ed × locked_doc: write: expected ALLOW, got DENY (RULE_FORBID: doc.locked)');
    expect(text).toMatch(/ {8}decided by: forbid; 2 rules for this action, 2 evaluated\n/);
    expect(text).toMatch(/ {10}applied {5}forbid doc\.locked {2}\(a\.policy:9:3\)\n/);
    expect(text).not.toContain('vic × doc'); // passing cases only with verbose
    expect(textReport(r, { verbose: true })).toContain('    ✓ vic × doc: read → ALLOW by doc.readers\n');
    expect(text.endsWith('\n1 passed, 1 failed\n')).toBe(true);

    const json = JSON.parse(jsonReport(r)) as RunResult;
    expect(json.failed).toBe(1);
    expect(json.suites[0]!.cases[1]!.failure).toBe(bad.failure);
  });

  it('an unknown resource type or an undeclared action is a DENY with its reason, and no rule', async () => {
    const s = suite([
      ...FIXTURES,
      '  typo: { type: dco }',
      'tests:',
      '  - name: t',
      '    subjects: [ed]',
      '    resources: [doc, typo]',
      '    expect: { raed: ALLOW, read: ALLOW }',
    ]);
    const r = await runSuites(checker, [s], { now: NOW });
    expect(caseNamed(r, 'ed × doc: raed').failure).toBe('expected ALLOW, got DENY (UNDECLARED_ACTION)');
    expect(caseNamed(r, 'ed × typo: read').failure).toBe('expected ALLOW, got DENY (UNKNOWN_RESOURCE_TYPE)');
    expect(caseNamed(r, 'ed × doc: read').passed).toBe(true);
  });

  describe('`reasons`: a DENY not made by the policies must be expected by its reason', () => {
    const TYPO = [...FIXTURES, '  typo: { type: dco }'];

    it('a typo\'d action or resource type expected DENY, without `reasons`: fails, with the hint', async () => {
      const s = suite([...TYPO, 'tests:', '  - { name: t, subjects: [ed], resources: [doc, typo], expect: { raed: DENY, read: DENY } }']);
      const r = await runSuites(checker, [s], { now: NOW });
      const raed = caseNamed(r, 'ed × doc: raed');
      expect(raed.passed).toBe(false);
      expect(raed.actual).toMatchObject({ decision: 'DENY', reason: 'UNDECLARED_ACTION', rules: [] });
      expect(raed.failure).toBe('DENY by UNDECLARED_ACTION, not by the policies; write `reasons: { raed: UNDECLARED_ACTION }` if that is what this case tests');
      expect(caseNamed(r, 'ed × typo: read').failure).toBe('DENY by UNKNOWN_RESOURCE_TYPE, not by the policies; write `reasons: { read: UNKNOWN_RESOURCE_TYPE }` if that is what this case tests');
      expect(caseNamed(r, 'ed × typo: raed').passed).toBe(false);
      // A DENY the policies make needs no `reasons`.
      expect(caseNamed(r, 'ed × doc: read').actual.decision).toBe('ALLOW');
      expect([r.passed, r.failed]).toEqual([0, 4]);
      expect(textReport(r)).toContain('    ✗ ed × doc: raed: DENY by UNDECLARED_ACTION, not by the policies; write `reasons: { raed: UNDECLARED_ACTION }` if that is what this case tests\n');
    });

    it('the right reason passes', async () => {
      const s = suite([
        ...TYPO,
        'tests:',
        '  - name: undeclared',
        '    subjects: [ed]',
        '    resources: [doc]',
        '    expect: { raed: DENY, read: ALLOW }',
        '    reasons: { raed: UNDECLARED_ACTION }',
        '  - name: unknown type',
        '    subjects: [ed]',
        '    resources: [typo]',
        '    expect: { read: DENY }',
        '    reasons: { read: UNKNOWN_RESOURCE_TYPE }',
        '  - name: reasons of the policies can be named too',
        '    subjects: [vic, ed]',
        '    resources: [doc, locked_doc]',
        '    expect: { read: ALLOW }',
        '    reasons: { read: RULE_PERMIT }',
        '  - name: a forbid and no permit',
        '    subjects: [ed, vic]',
        '    resources: [locked_doc]',
        '    expect: { write: DENY }',
        '    rules: { write: doc.locked }',
        '    reasons: { write: RULE_FORBID }',
      ]);
      const r = await runSuites(checker, [s], { now: NOW });
      expect(casesOf(r).filter((c) => !c.passed).map((c) => `${c.name}: ${c.failure}`)).toEqual([]);
      expect(caseNamed(r, 'ed × doc: raed').actual.reason).toBe('UNDECLARED_ACTION');
      expect(caseNamed(r, 'vic × locked_doc: write').actual).toMatchObject({ reason: 'RULE_FORBID', rules: ['doc.locked'] });
      expect([r.passed, r.failed]).toEqual([9, 0]);
    });

    it('a different reason fails: the decision may be right, the reason is not', async () => {
      const s = suite([
        ...TYPO,
        'tests:',
        '  - name: by no rule, not by a typo',
        '    subjects: [vic]',
        '    resources: [doc]',
        '    expect: { write: DENY }',
        '    reasons: { write: UNDECLARED_ACTION }',
        '  - name: another reason not by the policies',
        '    subjects: [ed]',
        '    resources: [typo]',
        '    expect: { read: DENY }',
        '    reasons: { read: UNDECLARED_ACTION }',
        '  - name: an ALLOW by a permit',
        '    subjects: [vic]',
        '    resources: [doc]',
        '    expect: { read: ALLOW }',
        '    reasons: { read: RULE_FORBID }',
      ]);
      const r = await runSuites(checker, [s], { now: NOW });
      expect(caseNamed(r, 'vic × doc: write').failure).toBe('expected reason UNDECLARED_ACTION, got NO_MATCHING_RULE');
      expect(caseNamed(r, 'ed × typo: read').failure).toBe('expected reason UNDECLARED_ACTION, got UNKNOWN_RESOURCE_TYPE');
      expect(caseNamed(r, 'vic × doc: read').failure).toBe('expected reason RULE_FORBID, got RULE_PERMIT');
      expect([r.passed, r.failed]).toEqual([0, 3]);
      // A reason that does not exist is refused when the suite is read (see the parse-error table).
    });

    it('the decision is checked first, then the rule, then the reason', async () => {
      const s = suite([
        ...TYPO,
        'tests:',
        '  - { name: decision, subjects: [ed], resources: [doc], expect: { raed: ALLOW }, reasons: { raed: UNDECLARED_ACTION } }',
        '  - { name: rule, subjects: [ed], resources: [locked_doc], expect: { read: ALLOW }, rules: { read: doc.writers }, reasons: { read: RULE_FORBID } }',
      ]);
      const r = await runSuites(checker, [s], { now: NOW });
      expect(caseNamed(r, 'ed × doc: raed').failure).toBe('expected ALLOW, got DENY (UNDECLARED_ACTION)');
      expect(caseNamed(r, 'ed × locked_doc: read').failure).toBe('expected ALLOW by doc.writers, got ALLOW by doc.readers (RULE_PERMIT)');
    });

    it('EVALUATION_ERROR is not by the policies either', async () => {
      // A subject whose property reads throw makes the evaluator fail closed (nothing a suite can write).
      const hostile = new Proxy({}, { has: () => { throw new Error('boom'); }, getOwnPropertyDescriptor: () => { throw new Error('boom'); } });
      const failing: Checker = { ...checker, check: (request, options) => engine.check({ ...request, subject: hostile as Record<string, never> }, options) };
      const s = suite([
        ...FIXTURES,
        'tests:',
        '  - { name: bare, subjects: [vic], resources: [doc], expect: { read: DENY } }',
        '  - { name: named, subjects: [ed], resources: [doc], expect: { read: DENY }, reasons: { read: EVALUATION_ERROR } }',
      ]);
      const r = await runSuites(failing, [s], { now: NOW });
      expect(caseNamed(r, 'vic × doc: read').actual.reason).toBe('EVALUATION_ERROR');
      expect(caseNamed(r, 'vic × doc: read').failure).toBe('DENY by EVALUATION_ERROR, not by the policies; write `reasons: { read: EVALUATION_ERROR }` if that is what this case tests');
      expect(caseNamed(r, 'ed × doc: read').passed).toBe(true);
    });
  });

  describe('references: `rules:` ids are checked before any case runs', () => {
    /** The checker, counting the decisions it makes. */
    const counting = (): { checker: Checker; calls: () => number } => {
      let calls = 0;
      return {
        checker: {
          ...checker,
          check: (request, options) => {
            calls++;
            return checker.check(request, options);
          },
        },
        calls: () => calls,
      };
    };
    const rejection = async (c: Checker, suites: readonly Suite[]): Promise<Error> => {
      try {
        await runSuites(c, suites, { now: NOW });
      } catch (e) {
        return e as Error;
      }
      throw new Error('runSuites accepted the suites');
    };

    it('a rule id no policy defines: a SuiteReferenceError at the test, with a did-you-mean, and no case run', async () => {
      const ok = suite([...FIXTURES, 'tests:', '  - { name: fine, subjects: [vic], resources: [doc], expect: { read: ALLOW } }'], 'a.test.yaml');
      const bad = suite(
        [
          ...FIXTURES, //                                           1-7
          'tests:', //                                              8
          '  - { name: fine, subjects: [vic], resources: [doc], expect: { read: ALLOW } }', // 9
          '  - name: typo', //                                      10
          '    subjects: [vic]',
          '    resources: [doc]',
          '    expect: { read: ALLOW }',
          '    rules: { read: doc.reader }',
        ],
        'b.test.yaml',
      );
      const { checker: c, calls } = counting();
      const e = await rejection(c, [ok, bad]);
      expect(e).toBeInstanceOf(SuiteReferenceError);
      expect(e.message).toBe('b.test.yaml:10:5: `rules.read` names `doc.reader`, which no policy defines; did you mean `doc.readers`?');
      expect(calls()).toBe(0);
    });

    it('the rule name without its type, and a name with nothing close', async () => {
      const bare = await rejection(checker, [suite([...FIXTURES, 'tests:', '  - { name: t, subjects: [vic], resources: [doc], expect: { read: ALLOW }, rules: { read: readers } }'])]);
      expect(bare).toBeInstanceOf(SuiteReferenceError);
      expect(bare.message).toMatch(/^x\.test\.yaml:9:5: `rules\.read` names `readers`, which no policy defines/);
      const far = await rejection(checker, [suite([...FIXTURES, 'tests:', '  - { name: t, subjects: [vic], resources: [doc], expect: { read: ALLOW }, rules: { read: zzzzzzzzzz } }'])]);
      expect(far.message).toBe('x.test.yaml:9:5: `rules.read` names `zzzzzzzzzz`, which no policy defines');
    });

    it('an unnamed rule is named by file:line, as decisions name it', async () => {
      const s = suite([...FIXTURES, '  protected: { type: folder, attributes: { protected: true } }', 'tests:', '  - { name: t, subjects: [vic], resources: [protected], expect: { delete: DENY }, rules: { delete: sub/b.policy:5 } }']);
      const r = await runSuites(checker, [s], { now: NOW });
      expect([r.passed, r.failed]).toEqual([1, 0]);
    });
  });

  it('`rules`: the right decision by the wrong rule fails; the right rule passes, for permits and forbids', async () => {
    const s = suite([
      ...FIXTURES,
      'tests:',
      '  - name: wrong rule',
      '    subjects: [vic]',
      '    resources: [doc]',
      '    expect: { read: ALLOW }',
      '    rules: { read: doc.writers }',
      '  - name: right rules',
      '    subjects: [ed]',
      '    resources: [doc, locked_doc]',
      '    expect: { read: ALLOW }',
      '    rules: { read: doc.readers }',
      '  - name: right forbid',
      '    subjects: [ed]',
      '    resources: [locked_doc]',
      '    expect: { write: DENY }',
      '    rules: { write: doc.locked }',
      '  - name: a DENY by no rule with a rule expected',
      '    subjects: [vic]',
      '    resources: [doc]',
      '    expect: { write: DENY }',
      '    rules: { write: doc.locked }',
    ]);
    const r = await runSuites(checker, [s], { now: NOW });
    const wrong = caseNamed(r, 'vic × doc: read');
    expect(wrong.passed).toBe(false);
    expect(wrong.expectedRule).toBe('doc.writers');
    expect(wrong.failure).toBe('expected ALLOW by doc.writers, got ALLOW by doc.readers (RULE_PERMIT)');
    expect(caseNamed(r, 'ed × doc: read').passed).toBe(true);
    expect(caseNamed(r, 'ed × locked_doc: read').passed).toBe(true);
    expect(caseNamed(r, 'ed × locked_doc: write').passed).toBe(true);
    expect(caseNamed(r, 'vic × doc: write').failure).toBe('expected DENY by doc.locked, got DENY by no rule (NO_MATCHING_RULE)');
    expect([r.passed, r.failed]).toEqual([3, 2]);
  });

  describe('--filter: a plain substring of `suite › test`', () => {
    const alpha = suite(['name: alpha', ...FIXTURES, 'tests:', '  - { name: one, subjects: [vic], resources: [doc], expect: { read: ALLOW } }', '  - { name: two, subjects: [vic], resources: [folder], expect: { list: ALLOW } }'], 'alpha.test.yaml');
    const beta = suite(['name: beta', ...FIXTURES, 'tests:', '  - { name: one, subjects: [ed], resources: [doc], expect: { write: ALLOW } }'], 'beta.test.yaml');
    const run = async (filter?: string): Promise<string[]> => {
      const r = await runSuites(checker, [alpha, beta], { now: NOW, ...(filter === undefined ? {} : { filter }) });
      expect(r.suites.map((s) => s.name)).toEqual(['alpha', 'beta']); // every suite is reported, even with no case left
      expect(r.passed + r.failed).toBe(casesOf(r).length);
      return casesOf(r).map((c) => `${c.test}/${c.name}`);
    };

    it.each([
      { filter: undefined, want: ['one/vic × doc: read', 'two/vic × folder: list', 'one/ed × doc: write'] },
      { filter: 'one', want: ['one/vic × doc: read', 'one/ed × doc: write'] },
      { filter: 'alpha', want: ['one/vic × doc: read', 'two/vic × folder: list'] },
      { filter: 'alpha › one', want: ['one/vic × doc: read'] },
      { filter: 'a › o', want: ['one/vic × doc: read', 'one/ed × doc: write'] },
      { filter: 'pha › t', want: ['two/vic × folder: list'] },
      { filter: 'alpha.*', want: [] }, // not a pattern
      { filter: 'ALPHA', want: [] }, // case-sensitive
      { filter: 'alpha > one', want: [] }, // the separator is ›
      { filter: 'vic', want: [] }, // case names are not matched
    ])('filter $filter', async ({ filter, want }) => {
      expect(await run(filter)).toEqual(want);
    });
  });

  describe('now: the test over the suite over the runner', () => {
    let timed: Checker;
    beforeAll(async () => {
      const dir = await policyDir({ 't.policy': 'resource doc {\n  actions read\n  rule after_june: permit read when context.time >= timestamp("2026-06-01T00:00:00Z")\n}\n' });
      timed = checkerOf(await Engine.fromDirectory(dir));
    });
    const BEFORE = '2026-01-01T00:00:00Z';
    const AFTER = '2026-12-01T00:00:00Z';
    const decide = async (suiteNow: string | undefined, testNow: string | undefined, runnerNow: string): Promise<'ALLOW' | 'DENY'> => {
      const s = suite([
        ...(suiteNow === undefined ? [] : [`now: ${suiteNow}`]),
        'subjects: { u: { sub: u } }',
        'resources: { d: { type: doc } }',
        'tests:',
        '  - name: t',
        ...(testNow === undefined ? [] : [`    now: ${testNow}`]),
        '    subjects: [u]',
        '    resources: [d]',
        '    expect: { read: ALLOW }',
      ]);
      const r = await runSuites(timed, [s], { now: ms(runnerNow) });
      return casesOf(r)[0]!.actual.decision;
    };

    it.each([
      { suiteNow: undefined, testNow: undefined, runnerNow: AFTER, want: 'ALLOW', why: 'the runner when neither gives one' },
      { suiteNow: undefined, testNow: undefined, runnerNow: BEFORE, want: 'DENY', why: 'the runner when neither gives one' },
      { suiteNow: AFTER, testNow: undefined, runnerNow: BEFORE, want: 'ALLOW', why: 'the suite over the runner' },
      { suiteNow: BEFORE, testNow: undefined, runnerNow: AFTER, want: 'DENY', why: 'the suite over the runner' },
      { suiteNow: AFTER, testNow: BEFORE, runnerNow: AFTER, want: 'DENY', why: 'the test over the suite and the runner' },
      { suiteNow: BEFORE, testNow: AFTER, runnerNow: BEFORE, want: 'ALLOW', why: 'the test over the suite and the runner' },
      { suiteNow: undefined, testNow: AFTER, runnerNow: BEFORE, want: 'ALLOW', why: 'the test over the runner' },
    ])('$why (suite $suiteNow, test $testNow, runner $runnerNow → $want)', async ({ suiteNow, testNow, runnerNow, want }) => {
      expect(await decide(suiteNow, testNow, runnerNow)).toBe(want);
    });

    it('a context fixture: time is the decision time, other attributes from the fixture', async () => {
      const dir = await policyDir({ 'c.policy': 'resource doc {\n  actions read\n  rule office: permit read when context.ip.inCidr("10.0.0.0/8")\n}\n' });
      const c = checkerOf(await Engine.fromDirectory(dir));
      const s = suite([
        'subjects: { u: { sub: u } }',
        'resources: { d: { type: doc } }',
        'contexts: { office: { ip: 10.1.2.3 }, home: { ip: 192.0.2.1 } }',
        'tests:',
        '  - { name: office, subjects: [u], resources: [d], context: office, expect: { read: ALLOW } }',
        '  - { name: home, subjects: [u], resources: [d], context: home, expect: { read: DENY } }',
        '  - { name: inline, subjects: [u], resources: [d], context: { ip: 10.9.9.9 }, expect: { read: ALLOW } }',
        '  - { name: none, subjects: [u], resources: [d], expect: { read: DENY } }',
      ]);
      const r = await runSuites(c, [s], { now: NOW });
      expect([r.passed, r.failed]).toEqual([4, 0]);
    });
  });

  describe('coverage', () => {
    let result: RunResult;
    beforeAll(async () => {
      // Hand-checked: vic reads doc → doc.readers; ed writes locked_doc → doc.locked (doc.writers applied,
      // but a forbid decided); vic lists folder → folder.listers. vic writes doc and vic deletes the folder
      // are DENY by no rule. So 3 of 5 rules are decisive: a.policy 2/3, sub/b.policy 1/2.
      const s = suite([
        'name: coverage',
        ...FIXTURES,
        'tests:',
        '  - name: viewers read, and do not write',
        '    subjects: [vic]',
        '    resources: [doc]',
        '    expect: { read: ALLOW, write: DENY }',
        '  - name: locked documents are not written',
        '    subjects: [ed]',
        '    resources: [locked_doc]',
        '    expect: { write: DENY }',
        '  - name: viewers list folders',
        '    subjects: [vic]',
        '    resources: [folder]',
        '    expect: { list: ALLOW, delete: DENY }',
      ]);
      result = await runSuites(checker, [s], { now: NOW });
    });

    it('has the rules of the engine', () => {
      expect(engine.tree.rules.map((r) => r.id)).toEqual(['doc.readers', 'doc.writers', 'doc.locked', 'folder.listers', 'sub/b.policy:5']);
      expect([result.passed, result.failed]).toEqual([5, 0]);
    });

    it('is 3/5 = 60% overall, with per-file figures (floored to one decimal)', () => {
      expect(result.coverage).toMatchObject({ rules: 5, decisive: 3, percent: 60 });
      expect(result.coverage.files).toEqual([
        { file: 'a.policy', rules: 3, decisive: 2, percent: 66.6 },
        { file: 'sub/b.policy', rules: 2, decisive: 1, percent: 50 },
      ]);
    });

    it('lists the 2 uncovered rules with their locations', () => {
      expect(result.coverage.uncovered).toEqual([
        { id: 'doc.writers', location: 'a.policy:8:3' },
        { id: 'sub/b.policy:5', location: 'sub/b.policy:5:3' },
      ]);
      const text = textReport(result);
      expect(text).toContain(
        [
          'coverage: 3/5 rules decisive (60%)',
          '  a.policy: 2/3 (66.6%)',
          '  sub/b.policy: 1/2 (50%)',
          '  no case made these rules decisive:',
          '    a.policy:8:3 doc.writers',
          '    sub/b.policy:5:3 sub/b.policy:5',
        ].join('\n'),
      );
      expect(text.endsWith('\n5 passed, 0 failed\n')).toBe(true);
    });

    it('counts only the cases run: with a filter, coverage drops', async () => {
      const s = suite(['name: cov', ...FIXTURES, 'tests:', '  - { name: read, subjects: [vic], resources: [doc], expect: { read: ALLOW } }', '  - { name: list, subjects: [vic], resources: [folder], expect: { list: ALLOW } }']);
      const all = await runSuites(checker, [s], { now: NOW });
      expect(all.coverage.percent).toBe(40);
      const some = await runSuites(checker, [s], { now: NOW, filter: 'cov › read' });
      expect(some.coverage).toMatchObject({ decisive: 1, percent: 20 });
    });

    it('a policy set with no rules is 100% covered', async () => {
      const empty = checkerOf(await Engine.fromDirectory(await policyDir({ 'r.policy': 'roles { a }\n' })));
      const s = suite(['subjects: { u: { sub: u } }', 'resources: { d: { type: doc } }', 'tests:', '  - { name: t, subjects: [u], resources: [d], expect: { read: DENY }, reasons: { read: UNKNOWN_RESOURCE_TYPE } }']);
      const r = await runSuites(empty, [s], { now: NOW });
      expect([r.passed, r.failed]).toEqual([1, 0]);
      expect(r.coverage).toEqual({ rules: 0, decisive: 0, percent: 100, files: [], uncovered: [] });
    });
  });
});

// ---------------------------------------------------------------------------
// Token fixtures

describe('token fixtures through createTestTokens', () => {
  const POLICY = [
    'roles { admin }',
    'resource doc {',
    '  actions read, peek, manage',
    '  rule by_attribute: permit read when subject.department == "eng"',
    '  rule by_claim:     permit peek when subject.claims.department == "eng"',
    '  rule admins:       permit manage when subject.role("admin")',
    '}',
  ].join('\n');
  const SUITE = [
    'name: tokens',
    'now: 2026-11-23T10:00:00Z',
    'subjects:',
    '  ann:',
    '    token: { sub: ann, department: eng, roles: [admin] }',
    '  ann_attrs: { sub: ann, department: eng, roles: [admin] }',
    'resources:',
    '  doc: { type: doc, id: d1 }',
    'tests:',
    '  - name: t',
    '    subjects: [ann, ann_attrs]',
    '    resources: [doc]',
    '    expect: { read: ALLOW, peek: ALLOW, manage: ALLOW }',
  ];
  const CONFIG = [
    'jwt:',
    '  issuers:',
    '    - name: corp',
    '      issuer: https://corp.example',
    '      audiences: [arbiter]',
    '      jwks_file: never-read.json',
    '      claims:',
    '        attributes:',
    '          department: department',
    '    - name: plain',
    '      issuer: https://plain.example',
    '      audiences: [arbiter]',
    '      jwks_file: never-read.json',
  ].join('\n');
  /** SUITE with a fixture `ann_plain` (issuer `plain`), the test run for `subjects`. */
  const withPlain = (subjects: string): string[] =>
    [...SUITE.slice(0, 3), '  ann_plain:', '    token: { sub: ann, department: eng, roles: [admin] }', '    issuer: plain', ...SUITE.slice(3)].map((l) => l.replace('subjects: [ann, ann_attrs]', `subjects: [${subjects}]`));
  let dir: string;
  const closers: Array<() => void> = [];
  beforeAll(async () => {
    dir = await policyDir({ 'p.policy': POLICY });
  });
  afterAll(() => {
    for (const close of closers) close();
  });

  const runWith = async (jwtConfig: string | undefined, lines: readonly string[] = SUITE): Promise<RunResult> => {
    const config = jwtConfig === undefined ? undefined : parseConfig(jwtConfig, join(dir, 'arbiter.yaml'), dir, {});
    const { signer, verifier } = await createTestTokens(config?.jwt);
    closers.push(() => verifier.close());
    const engine = await Engine.fromDirectory(dir, { verifier });
    return runSuites(checkerOf(engine), [suite(lines)], { now: ms('2026-11-23T10:00:00Z'), signer });
  };

  it('without a config issuer: the token is verified, roles mapped, but department is only under subject.claims', async () => {
    const r = await runWith(undefined);
    const read = caseNamed(r, 'ann × doc: read');
    expect(read.actual).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    expect(read.failure).toBe('expected ALLOW, got DENY (NO_MATCHING_RULE)');
    expect(caseNamed(r, 'ann × doc: peek').actual).toMatchObject({ decision: 'ALLOW', rules: ['doc.by_claim'] });
    expect(caseNamed(r, 'ann × doc: manage').actual).toMatchObject({ decision: 'ALLOW', rules: ['doc.admins'] }); // `roles` is mapped by default
    // The same attributes given directly are not mapped at all.
    expect(caseNamed(r, 'ann_attrs × doc: read').passed).toBe(true);
    expect(caseNamed(r, 'ann_attrs × doc: peek').actual.decision).toBe('DENY');
  });

  it('with a config issuer mapping `department: department`: subject.department is available (and still under claims)', async () => {
    const r = await runWith(CONFIG);
    for (const action of ['read', 'peek', 'manage']) expect(caseNamed(r, `ann × doc: ${action}`).passed, action).toBe(true);
    expect(caseNamed(r, 'ann × doc: read').actual.rules).toEqual(['doc.by_attribute']);
  });

  it('`issuer:` picks the config issuer and so its claim mapping', async () => {
    const r = await runWith(CONFIG, withPlain('ann_plain'));
    expect(caseNamed(r, 'ann_plain × doc: read').actual.decision).toBe('DENY');
    expect(caseNamed(r, 'ann_plain × doc: peek').actual.decision).toBe('ALLOW');
  });

  it('an issuer the config does not have fails the run before any case, naming the issuers there are', async () => {
    const message = /^x\.test\.yaml:\d+:\d+: subject `ann_plain` names issuer `plain`, which the config does not define \(issuers: test\)$/;
    await expect(runWith(undefined, withPlain('ann_plain'))).rejects.toThrow(SuiteReferenceError);
    await expect(runWith(undefined, withPlain('ann_plain'))).rejects.toThrow(message);
    // Even when no test uses the fixture.
    await expect(runWith(undefined, withPlain('ann'))).rejects.toThrow(message);
    // A typo of a config issuer: a did-you-mean, at the fixture's `issuer:`.
    const typo = withPlain('ann_plain').map((l) => l.replace('issuer: plain', 'issuer: corb'));
    await expect(runWith(CONFIG, typo)).rejects.toThrow(/^x\.test\.yaml:\d+:\d+: subject `ann_plain` names issuer `corb`, which the config does not define; did you mean `corp`\?$/);
  });

  it('the signer itself refuses an issuer it does not have', async () => {
    const { signer, verifier } = await createTestTokens(undefined);
    closers.push(() => verifier.close());
    expect(signer.issuers).toEqual(['test']);
    await expect(signer.sign({ sub: 'a' }, 'plain', 0)).rejects.toThrow('no issuer named "plain" in the config (issuers: test)');
  });

  it('token fixtures without a signer fail the run', async () => {
    const engine = await Engine.fromDirectory(dir);
    await expect(runSuites(checkerOf(engine), [suite(SUITE)], { now: 0 })).rejects.toThrow('token fixtures need a signer');
  });

  it('a token the verifier refuses is a DENY with its reason and message, shown in the report', async () => {
    const badToken = (extra: readonly string[] = []): string[] => [...SUITE.slice(0, 3), '  bad:', '    token: { sub: bad, roles: [1, 2] }', ...SUITE.slice(6, 10), '    subjects: [bad]', '    resources: [doc]', '    expect: { manage: ALLOW, read: DENY }', ...extra];
    const r = await runWith(undefined, badToken());
    const manage = caseNamed(r, 'bad × doc: manage');
    expect(manage.actual.reason).toBe('TOKEN_INVALID_CLAIM');
    expect(manage.actual.message).toBeTruthy();
    expect(manage.failure).toBe('expected ALLOW, got DENY (TOKEN_INVALID_CLAIM)');
    expect(textReport(r)).toContain(`        token: ${manage.actual.message}\n`);
    // A DENY expectation does not pass by accident when the token itself was refused ...
    const read = caseNamed(r, 'bad × doc: read');
    expect(read.passed).toBe(false);
    expect(read.failure).toBe(`DENY by TOKEN_INVALID_CLAIM, not by the policies (${read.actual.message}); write \`reasons: { read: TOKEN_INVALID_CLAIM }\` if that is what this case tests`);
    // ... but passes when `reasons` names the token's reason, and fails on another one.
    const named = await runWith(undefined, badToken(['    reasons: { read: TOKEN_INVALID_CLAIM }']));
    expect(caseNamed(named, 'bad × doc: read').passed).toBe(true);
    const other = await runWith(undefined, badToken(['    reasons: { read: TOKEN_EXPIRED }']));
    expect(caseNamed(other, 'bad × doc: read').failure).toBe('expected reason TOKEN_EXPIRED, got TOKEN_INVALID_CLAIM');
  });
});

// ---------------------------------------------------------------------------
// JUnit

describe('junitReport', () => {
  let result: RunResult;
  beforeAll(async () => {
    const checker = checkerOf(await Engine.fromDirectory(await policyDir({ 'a.policy': A_POLICY, 'b.policy': B_POLICY })));
    const one = suite(
      [
        'name: "docs <&> \\"quoted\\" \'single\' \\x01bell"',
        'subjects:',
        '  "v<i&c": { sub: vic, roles: [viewer] }',
        '  ed: { sub: ed, roles: [editor] }',
        'resources:',
        '  doc: { type: doc, id: d1 }',
        '  locked_doc: { type: doc, id: d2, attributes: { locked: true } }',
        'tests:',
        '  - name: "reads & writes <b> \\"x\\" \\x1f\\u0000"',
        '    subjects: ["v<i&c", ed]',
        '    resources: [doc]',
        '    expect: { read: ALLOW, write: DENY }',
        '  - name: locked',
        '    subjects: [ed]',
        '    resources: [locked_doc]',
        '    expect: { write: ALLOW }',
      ],
      'dir/one & <two>.test.yaml',
    );
    const two = suite(['name: folders', ...FIXTURES, 'tests:', '  - { name: list, subjects: [vic], resources: [folder], expect: { list: ALLOW } }'], 'folders.test.yaml');
    result = await runSuites(checker, [one, two], { now: 0 });
  });

  it('has failures to report, and names with control characters', () => {
    expect([result.passed, result.failed]).toEqual([4, 2]);
    expect(result.suites[0]!.name).toContain('\u0001');
    expect(result.suites[0]!.cases[0]!.test).toContain('\u001f\u0000');
  });

  it('is well-formed XML with the counts, one testsuite per suite and one testcase per decision', () => {
    const xml = junitReport(result);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).toBe(true);
    const root = parseXml(xml);
    expect(root.name).toBe('testsuites');
    expect(root.attrs).toMatchObject({ tests: '6', failures: '2', errors: '0' });
    const suites = childrenNamed(root, 'testsuite');
    expect(suites).toHaveLength(2);
    expect(suites.map((s) => s.attrs['tests'])).toEqual(['5', '1']);
    expect(suites.map((s) => s.attrs['failures'])).toEqual(['2', '0']);
    const cases = suites.flatMap((s) => childrenNamed(s, 'testcase'));
    expect(cases).toHaveLength(6);
    const failures = cases.flatMap((c) => childrenNamed(c, 'failure'));
    expect(failures).toHaveLength(2);
    expect(Number(root.attrs['tests'])).toBe(cases.length);
    expect(Number(root.attrs['failures'])).toBe(failures.length);
    for (const s of suites) expect(s.attrs['time']).toMatch(/^\d+\.\d{3}$/);
  });

  it('escapes <, &, quotes and drops control characters, so names survive a round trip', () => {
    const root = parseXml(junitReport(result));
    const [one, two] = childrenNamed(root, 'testsuite');
    expect(one!.attrs['name']).toBe('docs <&> "quoted" \'single\' bell');
    expect(one!.attrs['file']).toBe('dir/one & <two>.test.yaml');
    expect(two!.attrs['name']).toBe('folders');
    const names = childrenNamed(one!, 'testcase').map((c) => c.attrs['name']);
    expect(names).toEqual(['v<i&c × doc: read', 'v<i&c × doc: write', 'ed × doc: read', 'ed × doc: write', 'ed × locked_doc: write']);
    const first = childrenNamed(one!, 'testcase')[0]!;
    expect(first.attrs['classname']).toBe('docs <&> "quoted" \'single\' bell.reads & writes <b> "x" ');
    expect(first.children).toEqual([]); // a pass has no failure
  });

  it('a failure carries expected vs actual, the location and the trace', () => {
    const root = parseXml(junitReport(result));
    const failing = childrenNamed(root, 'testsuite')
      .flatMap((s) => childrenNamed(s, 'testcase'))
      .filter((c) => childrenNamed(c, 'failure').length > 0);
    expect(failing.map((c) => c.attrs['name'])).toEqual(['ed × doc: write', 'ed × locked_doc: write']);
    const [f1, f2] = failing.map((c) => childrenNamed(c, 'failure')[0]!);
    expect(f1!.attrs).toMatchObject({ message: 'expected DENY, got ALLOW (RULE_PERMIT: doc.writers)', type: 'DecisionMismatch' });
    expect(f2!.attrs).toMatchObject({ message: 'expected ALLOW, got DENY (RULE_FORBID: doc.locked)', type: 'DecisionMismatch' });
    expect(f2!.text).toContain('at dir/one & <two>.test.yaml:13:5');
    expect(f2!.text).toContain('decided by: forbid');
    expect(f2!.text).toContain('applied     forbid doc.locked  (a.policy:9:3)');
  });

  it('an empty run is well-formed too', () => {
    const root = parseXml(junitReport({ revision: 'r', suites: [], passed: 0, failed: 0, coverage: { rules: 0, decisive: 0, percent: 100, files: [], uncovered: [] } }));
    expect(root.attrs).toMatchObject({ tests: '0', failures: '0' });
    expect(root.children).toEqual([]);
  });

  it('the checker refuses what is not well-formed (self-test)', () => {
    for (const bad of ['<a>', '<a></b>', '<a x="1" x="2"/>', '<a x="<"/>', '<a>&</a>', '<a>&foo;</a>', '<a>\u0001</a>', '<a/><b/>', '<a x=1/>', '<a>&#1;</a>']) {
      expect(() => parseXml(bad), bad).toThrow(/not well-formed/);
    }
    expect(parseXml('<?xml version="1.0"?>\n<a x=\'&lt;&amp;&#x41;\'><b/>t&gt;</a>\n')).toEqual({ name: 'a', attrs: { x: '<&A' }, children: [{ name: 'b', attrs: {}, children: [], text: '' }], text: 't>' });
  });
});

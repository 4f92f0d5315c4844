/**
 * The formatter (src/lang/format.ts): golden files in testdata/format (input
 * `NAME.policy`, output `NAME.golden`; `UPDATE_GOLDEN=1` rewrites them —
 * review the diff), tables for expressions, literals and the comment
 * scanner, and properties over random policies written with random
 * whitespace and comments: formatting is idempotent, keeps every comment and
 * keeps the meaning (the same decisions and routes, the same rules).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicySet, type Attributes, type DecisionTree } from '../../src/compile/index.js';
import { evaluate, type Request } from '../../src/eval/evaluate.js';
import { matchRoute } from '../../src/eval/route.js';
import { MAX_LINE_WIDTH, formatPolicy, quoteString, scanComments } from '../../src/lang/format.js';
import type { Expr } from '../../src/lang/ast.js';
import { ParseError, parsePolicy } from '../../src/lang/parse.js';
import { expectGolden } from '../golden.js';

const FORMAT_DIR = join(import.meta.dirname, 'testdata', 'format');
const POLICIES_DIR = join(import.meta.dirname, '..', '..', 'policies');

const fmt = (text: string): string => formatPolicy(text, 'test.policy');
const commentTexts = (text: string): string[] => scanComments(text).map((c) => c.text).sort();

// ---------------------------------------------------------------- golden files

describe('golden files (testdata/format)', () => {
  const inputs = readdirSync(FORMAT_DIR).filter((f) => f.endsWith('.policy')).sort();

  it('has inputs', () => {
    expect(inputs.length).toBeGreaterThanOrEqual(6);
  });

  it.each(inputs)('%s', (file) => {
    const text = readFileSync(join(FORMAT_DIR, file), 'utf8');
    const out = formatPolicy(text, file);
    expectGolden(join(FORMAT_DIR, `${basename(file, '.policy')}.golden`), out);
    expect(formatPolicy(out, file), 'formatting twice changes nothing').toBe(out);
    expect(commentTexts(out), 'every comment is kept').toEqual(commentTexts(text));
    expect(out.endsWith('\n') && !out.endsWith('\n\n'), 'one final newline').toBe(true);
    expect(out.split('\n').filter((l) => /\s$/.test(l)), 'no trailing whitespace').toEqual([]);
  });
});

describe('the shipped policies', () => {
  it.each(readdirSync(POLICIES_DIR).filter((f) => f.endsWith('.policy')))('%s is formatted', (file) => {
    const text = readFileSync(join(POLICIES_DIR, file), 'utf8');
    expect(formatPolicy(text, file)).toBe(text);
  });
});

// ---------------------------------------------------------------- tables

/** The condition of the one rule of a formatted one-rule program. */
function formatCondition(cond: string): string {
  const out = fmt(`resource d {\n  actions r\n  permit r when ${cond}\n}\n`);
  // Long conditions are broken over lines: join them back.
  const lines = out.split('\n').slice(2, -2).map((l) => l.trim());
  return lines.join(' ').replace(/^permit r when /, '');
}

describe('expressions: the fewest parentheses that keep the meaning', () => {
  it.each([
    { name: 'not over or keeps its parentheses', input: 'not (a.x or a.y)', want: 'not (a.x or a.y)' },
    { name: 'or under and keeps its parentheses', input: '(a.x or a.y) and a.z', want: '(a.x or a.y) and a.z' },
    { name: 'and under or loses them', input: 'a.x or (a.y and a.z)', want: 'a.x or a.y and a.z' },
    { name: 'redundant parentheses go', input: '((a.x))', want: 'a.x' },
    { name: 'and chains flatten', input: '(a.x and a.y) and (a.z and a.w)', want: 'a.x and a.y and a.z and a.w' },
    { name: 'or chains flatten', input: 'a.x or (a.y or a.z)', want: 'a.x or a.y or a.z' },
    { name: 'double not', input: 'not (not a.x)', want: 'not not a.x' },
    { name: 'not over a comparison needs none', input: 'not (a.x == 1)', want: 'not a.x == 1' },
    { name: 'a negation compared keeps them', input: '(not a.x) == true', want: '(not a.x) == true' },
    { name: 'comparisons compared keep them', input: '(a.x == 1) != (a.y in [1])', want: '(a.x == 1) != (a.y in [1])' },
    { name: 'a condition as a method target keeps them', input: '(a.x or a.y).size() > 0', want: '(a.x or a.y).size() > 0' },
    { name: 'a path in parentheses as a target loses them', input: '(a.x).startsWith(("p"))', want: 'a.x.startsWith("p")' },
    { name: 'an attribute of a parenthesised path is one path', input: '(a.x).y == 1', want: 'a.x.y == 1' },
    { name: 'conditions in lists and arguments need none', input: '[(a.x or a.y), (a.z)] contains f((a.w and a.v))', want: '[a.x or a.y, a.z] contains f(a.w and a.v)' },
    { name: 'spacing is canonical', input: 'a.x==1 and(a.y)in[ 1 ,2, ]and exists ( a.z )', want: 'a.x == 1 and a.y in [1, 2] and exists(a.z)' },
    { name: 'has and contains are kept as written', input: 'a.l has "x" and a.l contains "y"', want: 'a.l has "x" and a.l contains "y"' },
  ])('$name: $input', ({ input, want }) => {
    expect(formatCondition(input)).toBe(want);
    // The printed form parses back to itself.
    expect(formatCondition(want)).toBe(want);
  });
});

describe('literals', () => {
  it.each([
    { name: 'plain', input: '"abc"', want: '"abc"' },
    { name: 'quote and backslash', input: '"a\\"b\\\\c"', want: '"a\\"b\\\\c"' },
    { name: 'escaped slash becomes a slash', input: '"\\/x"', want: '"/x"' },
    { name: 'newline, return, tab escapes', input: '"\\n\\r\\t"', want: '"\\n\\r\\t"' },
    { name: 'a raw tab is escaped', input: '"a\tb"', want: '"a\\tb"' },
    { name: '\\u escapes of printable characters become the characters', input: '"\\u0041\\u00E9"', want: '"Aé"' },
    { name: 'control characters stay \\u escapes, lower-case', input: '"\\u001F\\u007F\\u2028\\uFEFF"', want: '"\\u001f\\u007f\\u2028\\ufeff"' },
    { name: 'a surrogate pair is written as the character', input: '"\\ud83d\\ude00"', want: '"😀"' },
    { name: 'a lone surrogate stays escaped', input: '"\\udc00"', want: '"\\udc00"' },
    { name: 'hash and slashes inside strings', input: '"#x // y"', want: '"#x // y"' },
    { name: 'a decimal with a trailing zero', input: '1.50', want: '1.5' },
    { name: 'leading zeros', input: '007', want: '7' },
    { name: 'negative zero stays negative', input: '-0', want: '-0' },
    { name: 'a large integer without exponent', input: '100000000000000000000000', want: '100000000000000000000000' },
    { name: 'a small decimal without exponent', input: '0.0000001', want: '0.0000001' },
    { name: 'digits beyond a double are rounded', input: '0.1000000000000000055511151231257827', want: '0.1' },
    { name: 'a literal beyond a double is written as is', input: `1${'0'.repeat(400)}`, want: `1${'0'.repeat(400)}` },
    { name: 'true', input: 'true', want: 'true' },
  ])('$name', ({ input, want }) => {
    expect(formatCondition(`a.x == ${input}`)).toBe(`a.x == ${want}`);
  });

  it('quoteString output reads back as the same string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const file = parsePolicy(`resource d { actions r  permit r when a.x == ${quoteString(s)} }`, 'q.policy');
        const decl = file.decls[0];
        const cond = decl?.kind === 'resource' ? decl.rules[0]?.when : undefined;
        expect(cond?.kind === 'cmp' && cond.right.kind === 'lit' ? cond.right.value : undefined).toBe(s);
      }),
      { numRuns: 300 },
    );
  });

  it('attribute segments print as .name when they can', () => {
    expect(formatCondition('a["x"]["y z"]["_1"]["1a"] == 1')).toBe('a.x["y z"]._1["1a"] == 1');
  });
});

describe('scanComments', () => {
  it.each([
    { name: 'hash and slash comments', input: '# a\nroles {} // b\n', want: ['# a', '// b'] },
    { name: '# and // inside strings are not comments', input: 'x == "#no" and y == "//no" # yes', want: ['# yes'] },
    { name: 'an escaped quote does not end the string', input: 'x == "a\\"#no" # yes', want: ['# yes'] },
    { name: 'trailing whitespace is not part of the comment', input: '#  spaced  \r\n', want: ['#  spaced'] },
    { name: 'a comment may hold quotes', input: '# say "hi" # twice\nx', want: ['# say "hi" # twice'] },
  ])('$name', ({ input, want }) => {
    expect(scanComments(input).map((c) => c.text)).toEqual(want);
  });

  it('tells own-line comments from end-of-line ones', () => {
    expect(scanComments('  # own\nroles {} # end\n').map((c) => c.ownLine)).toEqual([true, false]);
  });
});

describe('layout', () => {
  it.each([
    { name: 'an empty file stays empty', input: '', want: '' },
    { name: 'whitespace only becomes empty', input: '\n\n  \n', want: '' },
    { name: 'comments only', input: '\n# a\n\n\n# b', want: '# a\n\n# b\n' },
    { name: 'semicolons and commas are dropped', input: 'roles { a > b, c; };', want: 'roles {\n  a > b\n  c\n}\n' },
    {
      name: 'rule labels line up within a run, not across a blank line',
      input: 'resource d { actions r\n rule a: permit r\n rule longer: forbid r\n\n rule b: permit r }',
      want: 'resource d {\n  actions r\n  rule a:      permit r\n  rule longer: forbid r\n\n  rule b: permit r\n}\n',
    },
  ])('$name', ({ input, want }) => {
    expect(fmt(input)).toBe(want);
  });

  it('breaks a long rule before when/unless and long conditions before top-level operators, within the width', () => {
    const cond = Array.from({ length: 8 }, (_, i) => `resource.attribute_${i} == "value-${i}"`).join(' and ');
    const out = fmt(`resource d {\n  actions r\n  rule long: permit r when ${cond} unless subject.x == 1\n}\n`);
    const lines = out.split('\n');
    expect(lines[2]).toBe('  rule long: permit r');
    expect(lines[3]).toMatch(/^ {15}when resource\.attribute_0 == "value-0" and /);
    expect(lines.at(-3)).toBe(`${' '.repeat(15)}unless subject.x == 1`);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(MAX_LINE_WIDTH);
  });

  it('throws the parser’s ParseError on a syntax error', () => {
    const text = 'resource d {\n  actions r\n  permit r when a.x = 1\n}\n';
    let want: unknown;
    try {
      parsePolicy(text, 'bad.policy');
    } catch (e) {
      want = e;
    }
    expect(want).toBeInstanceOf(ParseError);
    expect(() => formatPolicy(text, 'bad.policy')).toThrow(ParseError);
    try {
      formatPolicy(text, 'bad.policy');
    } catch (e) {
      expect((e as ParseError).diagnostic).toEqual((want as ParseError).diagnostic);
    }
  });
});

// ---------------------------------------------------------------- random policies
//
// Policies are generated as text with two kinds of slots: SEP between tokens
// (filled with whitespace, blank lines or comments) and END after items (an
// optional `;`, or `,` in roles and routes blocks). Each slot is filled
// independently, so the same policy is written in many layouts.

const SEP = '\u0001';
const END = '\u0002';
const ROLES = ['admin', 'editor', 'viewer', 'auditor'] as const;
const TYPES = ['doc', 'folder'] as const;
const ACTIONS = ['read', 'write', 'delete'] as const;

/** String literals as written (some in non-canonical escapes) and the values requests draw from. */
const STRING_TEXTS = ['"a"', '"b"', '"eng"', '"x#y"', '"u//v"', '"q\\"t"', '"\\u0061"', '"\\/"', '""', '"é\\t"'] as const;
const STRING_VALUES = ['a', 'b', 'eng', 'x#y', 'u//v', 'q"t', '/', '', 'é\t'] as const;
const NUMBER_TEXTS = ['0', '-0', '1', '1.50', '007', '-2.5', '10'] as const;
const NUMBER_VALUES = [0, 1, 1.5, 7, -2.5, 10] as const;

const PATHS = {
  string: ['subject.sub', 'subject.dept', 'resource.owner', 'resource.dept', 'resource.kind', 'subject["odd key"]', 'resource.meta["k"]', 'resource["kind"]'],
  number: ['subject.level', 'resource.level'],
  bool: ['subject.active', 'resource.locked'],
  list: ['subject.tags', 'resource.tags'],
} as const;

/** A generated expression and how tightly it binds (as in the formatter: or 1, and 2, not 3, comparison 4, value 5). */
interface Gen {
  readonly t: string;
  readonly p: number;
}
const paren = (g: Gen): Gen => ({ t: `(${SEP}${g.t}${SEP})`, p: 5 });
const atLeast = (g: Gen, p: number): Gen => (g.p < p ? paren(g) : g);

const strLit = fc.constantFrom(...STRING_TEXTS);
const numLit = fc.constantFrom(...NUMBER_TEXTS);
const path = (k: keyof typeof PATHS): fc.Arbitrary<string> => fc.constantFrom(...PATHS[k]);
const list = <T,>(item: fc.Arbitrary<T>): fc.Arbitrary<string> =>
  fc.tuple(fc.array(item, { maxLength: 3 }), fc.boolean()).map(([items, trailing]) => `[${SEP}${items.join(`${SEP},${SEP}`)}${items.length > 0 && trailing ? `${SEP},` : ''}${SEP}]`);

const atom = (roles: boolean): fc.Arbitrary<Gen> => {
  const cmp = (p: number) => (t: string): Gen => ({ t, p });
  const arbs: Array<fc.Arbitrary<Gen>> = [
    fc.tuple(path('string'), fc.constantFrom('==', '!='), strLit).map(([a, op, v]) => `${a}${SEP}${op}${SEP}${v}`).map(cmp(4)),
    fc.tuple(path('number'), fc.constantFrom('==', '!=', '<', '<=', '>', '>='), numLit).map(([a, op, v]) => `${a}${SEP}${op}${SEP}${v}`).map(cmp(4)),
    fc.tuple(path('bool'), fc.constantFrom('true', 'false')).map(([a, v]) => `${a}${SEP}==${SEP}${v}`).map(cmp(4)),
    fc.tuple(path('string'), list(strLit)).map(([a, l]) => `${a}${SEP}in${SEP}${l}`).map(cmp(4)),
    fc.tuple(path('list'), fc.constantFrom('has', 'contains'), strLit).map(([a, w, v]) => `${a}${SEP}${w}${SEP}${v}`).map(cmp(4)),
    fc.tuple(path('string'), strLit).map(([a, v]) => `${a}.startsWith(${SEP}${v}${SEP})`).map(cmp(5)),
    fc.tuple(path('list'), fc.constantFrom('<', '>='), numLit).map(([a, op, n]) => `${a}.size(${SEP})${SEP}${op}${SEP}${n}`).map(cmp(4)),
    fc.constantFrom(...PATHS.string, ...PATHS.list).map((a) => `exists(${SEP}${a}${SEP})`).map(cmp(5)),
    path('bool').map(cmp(5)),
  ];
  if (roles) arbs.push(fc.constantFrom<string>(...ROLES, 'owner').map((r) => `subject.role(${SEP}${JSON.stringify(r)}${SEP})`).map(cmp(5)));
  return fc.oneof(...arbs);
};

function condition(depth: number, roles: boolean): fc.Arbitrary<Gen> {
  const leaf = atom(roles);
  if (depth === 0) return leaf;
  const sub = condition(depth - 1, roles);
  const joined = (op: 'and' | 'or', p: number) =>
    fc.array(fc.tuple(sub, fc.boolean()), { minLength: 2, maxLength: 4 }).map(
      (items): Gen => ({ t: items.map(([g, extra]) => (extra ? paren(g) : atLeast(g, p)).t).join(`${SEP}${op}${SEP}`), p }),
    );
  return fc.oneof(
    { weight: 3, arbitrary: leaf },
    { weight: 1, arbitrary: sub.map((g): Gen => ({ t: `not${SEP}${atLeast(g, 3).t}`, p: 3 })) },
    { weight: 2, arbitrary: joined('and', 2) },
    { weight: 2, arbitrary: joined('or', 1) },
    { weight: 1, arbitrary: fc.tuple(sub, fc.constantFrom('==', '!='), fc.constantFrom('true', 'false')).map(([g, op, b]): Gen => ({ t: `${paren(g).t}${SEP}${op}${SEP}${b}`, p: 4 })) },
    { weight: 1, arbitrary: sub.map(paren) },
  );
}

const ruleArb = fc.record({
  named: fc.boolean(),
  effect: fc.constantFrom('permit', 'permit', 'forbid'),
  actions: fc.option(fc.subarray([...ACTIONS], { minLength: 1 }), { freq: 4 }),
  when: fc.option(condition(2, true), { freq: 5 }),
  unless: fc.option(condition(1, true), { freq: 2 }),
});

const ROUTES = [
  `GET${SEP}"/a/{id}"${SEP}->${SEP}read${SEP}doc${SEP}{${SEP}id${SEP}}`,
  `POST${SEP}"/a/{id}"${SEP}->${SEP}write${SEP}doc${SEP}{id}`,
  `*${SEP}"/b/**"${SEP}->${SEP}public`,
  `DELETE${SEP}"/c/{x}"${SEP}->${SEP}delete${SEP}folder`,
  `GET${SEP}"/healthz"${SEP}->${SEP}public`,
] as const;

const policyArb = fc
  .record({
    chains: fc.array(fc.subarray([...ROLES], { minLength: 1 }), { minLength: 1, maxLength: 3 }),
    derive: fc.option(condition(1, false), { freq: 2 }),
    types: fc.tuple(
      ...TYPES.map(() =>
        fc.record({
          actionsAt: fc.nat(),
          rules: fc.array(ruleArb, { maxLength: 8 }),
        }),
      ),
    ),
    routes: fc.option(fc.subarray([...ROUTES], { minLength: 1 }), { freq: 2 }),
  })
  .map((m) => {
    const decls: string[] = [];
    // Every role is declared, so that any role test compiles.
    const chains = [...m.chains, ...ROLES.filter((r) => !m.chains.some((c) => c.includes(r))).map((r) => [r])];
    decls.push(`roles${SEP}{${SEP}${chains.map((c) => `${c.join(`${SEP}>${SEP}`)}${END}`).join(SEP)}${SEP}}`);
    // `owner` is defined for every type; its condition names no role, so there is no cycle.
    decls.push(`derive${SEP}owner${SEP}for${SEP}*${SEP}when${SEP}resource.owner${SEP}==${SEP}subject.sub${m.derive === null ? '' : `${SEP}and${SEP}${atLeast(m.derive, 2).t}`}`);
    m.types.forEach((t, ti) => {
      const rules = t.rules.map((r, ri) => {
        const name = r.named ? `rule${SEP}r${ri}${SEP}:${SEP}` : '';
        const actions = r.actions === null ? '*' : r.actions.join(`${SEP},${SEP}`);
        const when = r.when === null ? '' : `${SEP}when${SEP}${r.when.t}`;
        const unless = r.unless === null ? '' : `${SEP}unless${SEP}${r.unless.t}`;
        return `${name}${r.effect}${SEP}${actions}${when}${unless}${END}`;
      });
      rules.splice(t.actionsAt % (rules.length + 1), 0, `actions${SEP}${ACTIONS.join(`${SEP},${SEP}`)}${END}`);
      decls.push(`resource${SEP}${TYPES[ti] as string}${SEP}{${SEP}${rules.join(SEP)}${SEP}}`);
    });
    if (m.routes !== null) decls.push(`routes${SEP}{${SEP}${m.routes.map((r) => `${r}${END}`).join(SEP)}${SEP}}`);
    return `${SEP}${decls.map((d) => `${d}${END}`).join(SEP)}${SEP}`;
  });

/** What goes between tokens: mostly a space, sometimes line breaks, blank lines and comments of every kind. */
const SEPARATORS = [
  ' ', ' ', ' ', ' ', ' ', ' ', '  ', '\n', '\n', '\n  ', '\t', '\n\n', '\n\n\n    ', '\r\n',
  ' # note\n', '# tight\n', ' // slashes\n', '\n  # own line\n  ', '\n\n# after a blank line\n\n', ' #\n',
  ' # has "quotes" and # and //\n', '\n// two\n// lines\n',
] as const;

/** Fills every slot of a generated text; returns the text and the comments put in. */
const layoutArb = (template: string): fc.Arbitrary<{ text: string; comments: string[] }> => {
  const slots = [...template].filter((c) => c === SEP || c === END).length;
  return fc.array(fc.nat(SEPARATORS.length * 4), { minLength: slots, maxLength: slots }).map((choices) => {
    let k = 0;
    const comments: string[] = [];
    const text = template.replace(/[\u0001\u0002]/g, (slot) => {
      const n = choices[k++] ?? 0;
      if (slot === END) return n % 3 === 0 ? ';' : '';
      const sep = SEPARATORS[n % SEPARATORS.length] as string;
      for (const m of sep.matchAll(/(#|\/\/)[^\n]*/g)) comments.push(m[0].trimEnd());
      return sep;
    });
    return { text, comments };
  });
};

const writtenPolicyArb = policyArb.chain(layoutArb);

// ---------------------------------------------------------------- requests

const stringVal = fc.constantFrom<Attributes[string]>(...STRING_VALUES);
const anyVal: fc.Arbitrary<Attributes[string]> = fc.oneof(
  { weight: 4, arbitrary: stringVal },
  { weight: 2, arbitrary: fc.constantFrom(...NUMBER_VALUES) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 2, arbitrary: fc.array(stringVal, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constant(null) },
);
const attrs = (keys: readonly string[]): fc.Arbitrary<Attributes> =>
  fc
    .record(Object.fromEntries(keys.map((k) => [k, anyVal])) as Record<string, fc.Arbitrary<Attributes[string]>>, { requiredKeys: [] })
    .map((o) => Object.fromEntries(Object.entries(o).filter((e): e is [string, Attributes[string]] => e[1] !== undefined)));

const requestArb: fc.Arbitrary<Request> = fc
  .record({
    subject: attrs(['sub', 'dept', 'level', 'active', 'tags', 'odd key']),
    roles: fc.array(fc.constantFrom<string>(...ROLES, 'owner'), { maxLength: 2 }),
    type: fc.constantFrom<string>(...TYPES, 'other'),
    action: fc.constantFrom<string>(...ACTIONS, 'other'),
    resource: attrs(['owner', 'dept', 'kind', 'level', 'locked', 'tags', 'meta']),
    meta: fc.option(fc.record({ k: stringVal }), { nil: undefined }),
  })
  .map((r) => ({
    subject: { ...r.subject, roles: r.roles },
    action: r.action,
    resource: { type: r.type, attributes: r.meta === undefined ? r.resource : { ...r.resource, meta: r.meta } },
  }));

const PROBES: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['GET', ['a', '1']],
  ['POST', ['a', '1']],
  ['PUT', ['b', 'x', 'y']],
  ['DELETE', ['c', 'z']],
  ['GET', ['healthz']],
  ['GET', ['nope']],
];

/** A decision with unnamed rules (named `file:line`) renamed by their position, which formatting keeps. */
function decide(tree: DecisionTree, req: Request): { decision: string; reason: string; rules: string[] } {
  const position = new Map(tree.rules.map((r, i) => [r.id, `#${i}`]));
  const d = evaluate(tree, req, { now: Date.parse('2026-06-01T12:00:00Z') });
  return { decision: d.decision, reason: d.reason, rules: d.rules.map((id) => (id.includes(':') ? (position.get(id) ?? id) : id)) };
}

const routesOf = (tree: DecisionTree): unknown[] =>
  PROBES.map(([method, segs]) => {
    const m = matchRoute(tree.routes, method, segs);
    return m === undefined ? null : { id: m.route.id, target: m.route.target, captures: m.captures };
  });

/** A formatted line without its end-of-line comment (strings skipped). */
function withoutComment(line: string): string {
  const c = scanComments(line)[0];
  return c === undefined ? line : line.slice(0, c.start).trimEnd();
}

/** The top-level operands of a condition, chains of its operator flattened (as the formatter breaks them). */
function topLevelOperands(e: Expr): Expr[] {
  if (e.kind !== 'and' && e.kind !== 'or') return [e];
  return e.args.flatMap((a) => (a.kind === e.kind ? topLevelOperands(a) : [a]));
}

/** Lines of formatted text that hold two top-level operands of one condition. */
function linesWithTwoOperands(out: string): number[] {
  const conditions: Expr[] = [];
  for (const d of parsePolicy(out, 'out.policy').decls) {
    if (d.kind === 'derive') conditions.push(...[d.when, d.unless].filter((e): e is Expr => e !== null));
    if (d.kind === 'resource') for (const r of d.rules) conditions.push(...[r.when, r.unless].filter((e): e is Expr => e !== null));
  }
  const lines = new Set<number>();
  for (const c of conditions) {
    const seen = new Set<number>();
    for (const part of topLevelOperands(c)) {
      if (seen.has(part.loc.start.line)) lines.add(part.loc.start.line);
      seen.add(part.loc.start.line);
    }
  }
  return [...lines];
}

describe('properties over random policies written with random whitespace and comments', () => {
  it('formatting is idempotent', () => {
    fc.assert(
      fc.property(writtenPolicyArb, ({ text }) => {
        const once = fmt(text);
        expect(fmt(once), `--- input\n${text}\n--- formatted\n${once}`).toBe(once);
      }),
      { numRuns: 300 },
    );
  });

  it('formatting never drops, adds or changes a comment', () => {
    fc.assert(
      fc.property(writtenPolicyArb, ({ text, comments }) => {
        const out = fmt(text);
        const want = [...comments].sort();
        expect(commentTexts(text), 'the scanner finds the comments put in').toEqual(want);
        expect(commentTexts(out), `--- input\n${text}\n--- formatted\n${out}`).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  it('formatting keeps the meaning: same rules, same decisions, same routes', () => {
    fc.assert(
      fc.property(writtenPolicyArb, fc.array(requestArb, { minLength: 5, maxLength: 15 }), ({ text }, requests) => {
        const out = fmt(text);
        const msg = `--- input\n${text}\n--- formatted\n${out}`;
        // Every generated set compiles: a CompileError here is a generator bug.
        const before = compilePolicySet([{ path: 'p.policy', text }]).tree;
        const after = compilePolicySet([{ path: 'p.policy', text: out }]).tree;
        expect(after.rules.map((r) => [r.effect, r.resourceType, r.actions, r.id.includes(':')]), msg).toEqual(
          before.rules.map((r) => [r.effect, r.resourceType, r.actions, r.id.includes(':')]),
        );
        expect(after.rules.filter((r) => !r.id.includes(':')).map((r) => r.id), msg).toEqual(before.rules.filter((r) => !r.id.includes(':')).map((r) => r.id));
        for (const req of requests) expect(decide(after, req), `${msg}\n--- request\n${JSON.stringify(req)}`).toEqual(decide(before, req));
        expect(routesOf(after), msg).toEqual(routesOf(before));
      }),
      { numRuns: 200 },
    );
  });

  it('generates policies whose decisions vary (guards the generator)', () => {
    // Without this, a generator change could make every decision a default DENY and test nothing.
    const reasons = new Set<string>();
    let unnamedDecided = false;
    for (const [{ text }, requests] of fc.sample(fc.tuple(writtenPolicyArb, fc.array(requestArb, { minLength: 20, maxLength: 20 })), { numRuns: 30, seed: 42 })) {
      const tree = compilePolicySet([{ path: 'p.policy', text: fmt(text) }]).tree;
      for (const req of requests) {
        const d = evaluate(tree, req, { now: 0 });
        reasons.add(d.reason);
        if (d.rules.some((id) => id.includes(':'))) unnamedDecided = true;
      }
    }
    expect([...reasons].sort()).toEqual(expect.arrayContaining(['NO_MATCHING_RULE', 'RULE_FORBID', 'RULE_PERMIT']));
    expect(unnamedDecided).toBe(true);
  });

  it('a line over the width never holds two top-level operands of a condition', () => {
    fc.assert(
      fc.property(writtenPolicyArb, ({ text }) => {
        const out = fmt(text);
        const lines = out.split('\n');
        for (const n of linesWithTwoOperands(out)) {
          const line = lines[n - 1] ?? '';
          expect(withoutComment(line).length, `line ${n} could have been broken: ${line}\n--- formatted\n${out}`).toBeLessThanOrEqual(MAX_LINE_WIDTH);
        }
      }),
      { numRuns: 100 },
    );
  });
});


// ---------------------------------------------------------------- perturbed real files

/** Offsets of whitespace outside strings and comments (and not a comment's own newline): where any separator may go. */
function separatorOffsets(text: string): number[] {
  const comments = scanComments(text);
  const commentAt = new Map(comments.map((c) => [c.start, c.end]));
  const commentEnds = new Set(comments.map((c) => c.end));
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const end = commentAt.get(i);
    if (end !== undefined) {
      i = end - 1;
    } else if (text[i] === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if ((text[i] === ' ' || text[i] === '\n') && !commentEnds.has(i)) {
      out.push(i);
    }
  }
  return out;
}

describe('the shipped policies and golden inputs, with random separators put in', () => {
  const files = [
    ...readdirSync(POLICIES_DIR).filter((f) => f.endsWith('.policy')).map((f) => join(POLICIES_DIR, f)),
    ...readdirSync(FORMAT_DIR).filter((f) => f.endsWith('.policy')).map((f) => join(FORMAT_DIR, f)),
  ].map((f) => readFileSync(f, 'utf8'));

  it('format idempotently and keep every comment', () => {
    fc.assert(
      fc.property(fc.constantFrom(...files), fc.array(fc.tuple(fc.nat(), fc.constantFrom(...SEPARATORS)), { maxLength: 30 }), (original, edits) => {
        const offsets = separatorOffsets(original);
        const chosen = new Map(edits.map(([k, sep]) => [offsets[k % offsets.length] as number, sep]));
        let text = original;
        for (const at of [...chosen.keys()].sort((a, b) => b - a)) text = text.slice(0, at) + (chosen.get(at) as string) + text.slice(at + 1);
        const out = fmt(text);
        expect(fmt(out), `--- input\n${text}\n--- formatted\n${out}`).toBe(out);
        expect(commentTexts(out)).toEqual(commentTexts(text));
      }),
      { numRuns: 300 },
    );
  });
});

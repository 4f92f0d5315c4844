/**
 * Parser tests: valid programs and the shape of their syntax trees, node
 * locations, and invalid programs checked against golden diagnostics in
 * testdata/parse-errors (`UPDATE_GOLDEN=1` rewrites them; review the diff).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ArbiterError, formatDiagnostic } from '../../src/errors.js';
import type { Expr, PolicyFile, RuleDecl } from '../../src/lang/ast.js';
import { MAX_NESTING_DEPTH, ParseError, parsePolicy } from '../../src/lang/parse.js';
import { expectGolden } from '../golden.js';

const ERRORS_DIR = join(import.meta.dirname, 'testdata', 'parse-errors');
const POLICIES_DIR = join(import.meta.dirname, '..', '..', 'policies');

// ---------------------------------------------------------------- shape builders
//
// Partial AST shapes for `toMatchObject`: objects may carry more keys (such as
// `loc`), arrays must match element for element.

type Shape = Record<string, unknown>;

const id = (name: string): Shape => ({ name });
const path = (root: string, ...segments: string[]): Shape => ({ kind: 'path', root: id(root), segments: segments.map(id) });
const lit = (value: string | number | boolean): Shape => ({ kind: 'lit', value });
const list = (...items: Shape[]): Shape => ({ kind: 'list', items });
const cmp = (op: string, left: Shape, right: Shape): Shape => ({ kind: 'cmp', op, left, right });
const and = (...args: Shape[]): Shape => ({ kind: 'and', args });
const or = (...args: Shape[]): Shape => ({ kind: 'or', args });
const not = (arg: Shape): Shape => ({ kind: 'not', arg });
const inList = (left: Shape, right: Shape): Shape => ({ kind: 'in', left, right });
const has = (word: 'has' | 'contains', left: Shape, right: Shape): Shape => ({ kind: 'has', word, left, right });
const method = (target: Shape, name: string, ...args: Shape[]): Shape => ({ kind: 'call', target, name: id(name), args });
const func = (name: string, ...args: Shape[]): Shape => ({ kind: 'call', target: null, name: id(name), args });

// ---------------------------------------------------------------- helpers

const SOURCE = 'test.policy';

/** The program text around a condition, with the condition starting on line 3. */
function wrapCondition(cond: string): string {
  return `resource doc {\n  actions read\n  permit read when ${cond}\n}\n`;
}

function firstRule(file: PolicyFile): RuleDecl {
  const decl = file.decls[0];
  if (decl === undefined || decl.kind !== 'resource') throw new Error('expected a resource declaration first');
  const rule = decl.rules[0];
  if (rule === undefined) throw new Error('expected a rule');
  return rule;
}

function parseCondition(cond: string): Expr {
  const when = firstRule(parsePolicy(wrapCondition(cond), SOURCE)).when;
  if (when === null) throw new Error('expected a `when` condition');
  return when;
}

function parseFailure(text: string, source = SOURCE): ParseError {
  try {
    parsePolicy(text, source);
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('expected a ParseError, but the text parsed');
}

// ---------------------------------------------------------------- valid programs

interface Case {
  readonly name: string;
  readonly input: string;
  readonly want: Shape;
}

const PROGRAMS: readonly Case[] = [
  { name: 'an empty file', input: '', want: { kind: 'file', source: SOURCE, decls: [] } },
  {
    name: 'only comments and blank lines, in both styles',
    input: '# a comment\n\n// another comment\n   # indented\n',
    want: { kind: 'file', decls: [] },
  },
  {
    name: 'a roles block with chains separated by commas, semicolons and newlines',
    input: 'roles {\n  admin > editor > viewer, auditor > viewer; support\n  guest\n}\n',
    want: {
      decls: [
        {
          kind: 'roles',
          chains: [[id('admin'), id('editor'), id('viewer')], [id('auditor'), id('viewer')], [id('support')], [id('guest')]],
        },
      ],
    },
  },
  { name: 'an empty roles block', input: 'roles {}', want: { decls: [{ kind: 'roles', chains: [] }] } },
  {
    name: 'derive for a list of types with `when`',
    input: 'derive owner for document, folder when resource.owner == subject.sub\n',
    want: {
      decls: [
        {
          kind: 'derive',
          name: id('owner'),
          types: [id('document'), id('folder')],
          when: cmp('==', path('resource', 'owner'), path('subject', 'sub')),
          unless: null,
        },
      ],
    },
  },
  {
    name: 'derive for `*` with only `unless`',
    input: 'derive outsider for * unless subject.org == "acme"',
    want: { decls: [{ kind: 'derive', name: id('outsider'), types: '*', when: null, unless: cmp('==', path('subject', 'org'), lit('acme')) }] },
  },
  {
    name: 'derive with `when` and `unless` over several lines',
    input: 'derive collaborator for document\n  when subject.sub in resource.collaborators\n  unless resource.locked == true\n',
    want: {
      decls: [
        {
          kind: 'derive',
          types: [id('document')],
          when: inList(path('subject', 'sub'), path('resource', 'collaborators')),
          unless: cmp('==', path('resource', 'locked'), lit(true)),
        },
      ],
    },
  },
  {
    name: 'a resource with named and unnamed rules, `*` actions, permit and forbid',
    input: [
      'resource document {',
      '  actions read, update, delete',
      '  rule readers: permit read',
      '  forbid * when subject.suspended == true',
      '  permit update, delete unless resource.locked == true',
      '}',
    ].join('\n'),
    want: {
      decls: [
        {
          kind: 'resource',
          name: id('document'),
          actions: [id('read'), id('update'), id('delete')],
          rules: [
            { kind: 'rule', name: id('readers'), effect: 'permit', actions: [id('read')], when: null, unless: null },
            { kind: 'rule', name: null, effect: 'forbid', actions: '*', when: cmp('==', path('subject', 'suspended'), lit(true)), unless: null },
            { kind: 'rule', name: null, effect: 'permit', actions: [id('update'), id('delete')], when: null, unless: cmp('==', path('resource', 'locked'), lit(true)) },
          ],
        },
      ],
    },
  },
  {
    name: 'a rule spread over many lines with comments between its parts',
    input: [
      'resource document {',
      '  actions read, update   // every action',
      '  # a full-line comment',
      '  rule editors:',
      '    permit',
      '      read,',
      '      update',
      '    when subject.role("editor")   # trailing comment',
      '      // between the conditions',
      '      and resource.department == subject.department',
      '    unless resource.locked == true',
      '}',
    ].join('\n'),
    want: {
      decls: [
        {
          kind: 'resource',
          rules: [
            {
              name: id('editors'),
              effect: 'permit',
              actions: [id('read'), id('update')],
              when: and(method(path('subject'), 'role', lit('editor')), cmp('==', path('resource', 'department'), path('subject', 'department'))),
              unless: cmp('==', path('resource', 'locked'), lit(true)),
            },
          ],
        },
      ],
    },
  },
  {
    name: 'optional semicolons after actions and rules',
    input: 'resource doc { actions read, update; permit read; rule r: forbid update when subject.x == 1; }',
    want: {
      decls: [
        {
          kind: 'resource',
          actions: [id('read'), id('update')],
          rules: [
            { name: null, effect: 'permit', actions: [id('read')] },
            { name: id('r'), effect: 'forbid', actions: [id('update')], when: cmp('==', path('subject', 'x'), lit(1)) },
          ],
        },
      ],
    },
  },
  {
    name: 'newlines are not significant: a whole resource on one line',
    input: 'resource doc { actions read permit read forbid read when subject.x == 1 permit read }',
    want: {
      decls: [
        {
          kind: 'resource',
          rules: [
            { effect: 'permit', when: null },
            { effect: 'forbid', when: cmp('==', path('subject', 'x'), lit(1)) },
            { effect: 'permit', when: null },
          ],
        },
      ],
    },
  },
  {
    name: 'a condition ends where `rule` begins',
    input: 'resource doc {\n  actions read\n  permit read when subject.a\n  rule b: permit read when subject.b\n}',
    want: {
      decls: [
        {
          rules: [
            { name: null, when: path('subject', 'a') },
            { name: id('b'), when: path('subject', 'b') },
          ],
        },
      ],
    },
  },
  {
    name: 'a derive condition ends where the next declaration begins',
    input: 'derive owner for doc when resource.owner == subject.sub resource doc { actions read }',
    want: {
      decls: [
        { kind: 'derive', when: cmp('==', path('resource', 'owner'), path('subject', 'sub')) },
        { kind: 'resource', name: id('doc') },
      ],
    },
  },
  {
    name: 'names of types, actions and rules may contain `-` and `_`',
    input: 'resource order-item {\n  actions create-refund, read_all\n  rule allow-refunds: permit create-refund, read_all\n}',
    want: {
      decls: [
        {
          name: id('order-item'),
          actions: [id('create-refund'), id('read_all')],
          rules: [{ name: id('allow-refunds'), actions: [id('create-refund'), id('read_all')] }],
        },
      ],
    },
  },
  {
    name: 'several declarations in order',
    input: 'roles { admin }\nderive owner for doc when resource.owner == subject.sub\nresource doc { actions read }\nresource folder { actions list }',
    want: {
      decls: [
        { kind: 'roles' },
        { kind: 'derive' },
        { kind: 'resource', name: id('doc') },
        { kind: 'resource', name: id('folder') },
      ],
    },
  },
];

const OPERATORS = ['==', '!=', '<', '<=', '>', '>='] as const;

const CONDITIONS: readonly Case[] = [
  // Precedence: `not` binds tighter than `and`, which binds tighter than `or`.
  {
    name: '`a == b and c` is (a == b) and c',
    input: 'subject.a == resource.b and subject.c',
    want: and(cmp('==', path('subject', 'a'), path('resource', 'b')), path('subject', 'c')),
  },
  { name: '`and` binds tighter than `or` (right)', input: 'subject.a or subject.b and subject.c', want: or(path('subject', 'a'), and(path('subject', 'b'), path('subject', 'c'))) },
  { name: '`and` binds tighter than `or` (left)', input: 'subject.a and subject.b or subject.c', want: or(and(path('subject', 'a'), path('subject', 'b')), path('subject', 'c')) },
  { name: '`not` binds tighter than `and`', input: 'not subject.a and subject.b', want: and(not(path('subject', 'a')), path('subject', 'b')) },
  { name: '`not` binds tighter than `or`', input: 'subject.a or not subject.b', want: or(path('subject', 'a'), not(path('subject', 'b'))) },
  { name: '`not` covers a whole comparison', input: 'not subject.a == 1', want: not(cmp('==', path('subject', 'a'), lit(1))) },
  { name: '`not not`', input: 'not not subject.a', want: not(not(path('subject', 'a'))) },
  { name: 'parentheses override precedence', input: '(subject.a or subject.b) and subject.c', want: and(or(path('subject', 'a'), path('subject', 'b')), path('subject', 'c')) },
  { name: '`not` over parentheses', input: 'not (subject.a or subject.b)', want: not(or(path('subject', 'a'), path('subject', 'b'))) },
  { name: 'an `and` chain is one flat node', input: 'subject.a and subject.b and subject.c', want: and(path('subject', 'a'), path('subject', 'b'), path('subject', 'c')) },
  { name: 'an `or` chain is one flat node', input: 'subject.a or subject.b or subject.c', want: or(path('subject', 'a'), path('subject', 'b'), path('subject', 'c')) },
  {
    name: 'mixed chain: a or b and c or d',
    input: 'subject.a or subject.b and subject.c or subject.d',
    want: or(path('subject', 'a'), and(path('subject', 'b'), path('subject', 'c')), path('subject', 'd')),
  },
  // Comparison operators.
  ...OPERATORS.map((op) => ({ name: `operator ${op}`, input: `resource.n ${op} 3`, want: cmp(op, path('resource', 'n'), lit(3)) })),
  { name: 'operators need no spaces', input: 'subject.a==1 and subject.b!=-2', want: and(cmp('==', path('subject', 'a'), lit(1)), cmp('!=', path('subject', 'b'), lit(-2))) },
  // Membership.
  {
    name: '`in` a list literal',
    input: 'resource.classification in ["public", "internal"]',
    want: inList(path('resource', 'classification'), list(lit('public'), lit('internal'))),
  },
  { name: '`in` an attribute', input: 'subject.sub in resource.readers', want: inList(path('subject', 'sub'), path('resource', 'readers')) },
  { name: '`has`', input: 'resource.tags has "shareable"', want: has('has', path('resource', 'tags'), lit('shareable')) },
  { name: '`contains`', input: 'subject.groups contains "ops"', want: has('contains', path('subject', 'groups'), lit('ops')) },
  { name: 'an empty list', input: 'subject.a in []', want: inList(path('subject', 'a'), list()) },
  { name: 'a list with a trailing comma', input: 'subject.a in [1, 2,]', want: inList(path('subject', 'a'), list(lit(1), lit(2))) },
  { name: 'a list of attributes', input: 'subject.a in [resource.b, "c"]', want: inList(path('subject', 'a'), list(path('resource', 'b'), lit('c'))) },
  // Literals.
  { name: 'true', input: 'subject.a == true', want: cmp('==', path('subject', 'a'), lit(true)) },
  { name: 'false', input: 'subject.a != false', want: cmp('!=', path('subject', 'a'), lit(false)) },
  { name: 'a bare literal condition', input: 'true', want: lit(true) },
  { name: 'zero', input: 'resource.n == 0', want: cmp('==', path('resource', 'n'), lit(0)) },
  { name: 'a negative number', input: 'resource.n > -1', want: cmp('>', path('resource', 'n'), lit(-1)) },
  { name: 'a decimal number', input: 'resource.n <= 2.5', want: cmp('<=', path('resource', 'n'), lit(2.5)) },
  { name: 'a negative decimal number', input: 'resource.n >= -0.25', want: cmp('>=', path('resource', 'n'), lit(-0.25)) },
  { name: 'an empty string', input: 'resource.s == ""', want: cmp('==', path('resource', 's'), lit('')) },
  {
    name: 'string escapes',
    input: String.raw`resource.s == "q\"b\\s\/n\nr\rt\tu\u00e9"`,
    want: cmp('==', path('resource', 's'), lit('q"b\\s/n\nr\rt\tu\u00e9')),
  },
  { name: '`#` and `//` inside a string are not comments', input: 'resource.s == "#1 // x"', want: cmp('==', path('resource', 's'), lit('#1 // x')) },
  // Paths.
  { name: 'a deep path', input: 'resource.a.b.c == 1', want: cmp('==', path('resource', 'a', 'b', 'c'), lit(1)) },
  {
    name: 'a bracket path segment',
    input: 'subject.claims["https://example.com/roles"] has "admin"',
    want: has('has', path('subject', 'claims', 'https://example.com/roles'), lit('admin')),
  },
  { name: 'bracket and dot segments mixed', input: 'resource["a b"].c["d"] == 1', want: cmp('==', path('resource', 'a b', 'c', 'd'), lit(1)) },
  { name: 'keywords as attribute names', input: 'resource.in.when == subject.actions', want: cmp('==', path('resource', 'in', 'when'), path('subject', 'actions')) },
  {
    name: 'roots that start with keywords are not keywords',
    input: 'notes.x == 1 or orders.y == 2 and android.z == 3',
    want: or(cmp('==', path('notes', 'x'), lit(1)), and(cmp('==', path('orders', 'y'), lit(2)), cmp('==', path('android', 'z'), lit(3)))),
  },
  { name: 'a bare root (rejected later by the compiler)', input: 'subject == 1', want: cmp('==', path('subject'), lit(1)) },
  // Calls.
  { name: 'a role test', input: 'subject.role("editor")', want: method(path('subject'), 'role', lit('editor')) },
  { name: 'a method call', input: 'resource.name.startsWith("Q1")', want: method(path('resource', 'name'), 'startsWith', lit('Q1')) },
  { name: 'a method call without arguments', input: 'resource.tags.size() > 3', want: cmp('>', method(path('resource', 'tags'), 'size'), lit(3)) },
  {
    name: 'a method call on a bracket path, with a list argument',
    input: 'subject.claims["groups"].containsAny(["a", "b"])',
    want: method(path('subject', 'claims', 'groups'), 'containsAny', list(lit('a'), lit('b'))),
  },
  { name: 'a method call on a literal', input: '"abc".startsWith(resource.prefix)', want: method(lit('abc'), 'startsWith', path('resource', 'prefix')) },
  {
    name: 'method and function calls compared',
    input: 'context.time.timeOfDay("+02:00") >= time("09:00")',
    want: cmp('>=', method(path('context', 'time'), 'timeOfDay', lit('+02:00')), func('time', lit('09:00'))),
  },
  { name: 'a function call', input: 'exists(resource.owner)', want: func('exists', path('resource', 'owner')) },
  { name: 'a function call with a space before `(`', input: 'exists (resource.owner)', want: func('exists', path('resource', 'owner')) },
  { name: 'a function call with several arguments', input: 'f(1, "a", subject.b)', want: func('f', lit(1), lit('a'), path('subject', 'b')) },
  { name: 'a function call without arguments', input: 'now() == 1', want: cmp('==', func('now'), lit(1)) },
  {
    name: 'expressions as arguments',
    input: 'f(subject.a == 1 and not subject.b, [1])',
    want: func('f', and(cmp('==', path('subject', 'a'), lit(1)), not(path('subject', 'b'))), list(lit(1))),
  },
  // Layout.
  {
    name: 'a condition over several lines with comments inside',
    input: 'subject.a == 1   # first\n    // second\n    and subject.b == 2',
    want: and(cmp('==', path('subject', 'a'), lit(1)), cmp('==', path('subject', 'b'), lit(2))),
  },
];

describe('parsePolicy: valid programs', () => {
  it.each(PROGRAMS)('$name', ({ input, want }) => {
    expect(parsePolicy(input, SOURCE)).toMatchObject(want);
  });
});

describe('parsePolicy: conditions', () => {
  it.each(CONDITIONS)('$name', ({ input, want }) => {
    expect(parseCondition(input)).toMatchObject(want);
  });
});

describe('parsePolicy: the example policies', () => {
  const files = readdirSync(POLICIES_DIR).filter((f) => f.endsWith('.policy'));

  it('finds the example policies', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  it.each(files)('%s parses', (file) => {
    const ast = parsePolicy(readFileSync(join(POLICIES_DIR, file), 'utf8'), file);
    expect(ast.kind).toBe('file');
    expect(ast.source).toBe(file);
    expect(ast.decls.length).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------- locations

describe('parsePolicy: locations', () => {
  const text = [
    'resource document {', // 1
    '  actions read, update', // 2
    '', // 3
    '  rule editors: permit read', // 4
    '    when subject.a == "x" and not resource.b', // 5
    '}', // 6
  ].join('\n');
  const file = parsePolicy(text, 'dir/locs.policy');
  const decl = file.decls[0];
  if (decl === undefined || decl.kind !== 'resource') throw new Error('expected a resource');
  const rule = firstRule(file);
  const when = rule.when;
  if (when === null || when.kind !== 'and') throw new Error('expected an `and` condition');
  const [eq, negated] = when.args;
  if (eq === undefined || eq.kind !== 'cmp' || negated === undefined || negated.kind !== 'not') throw new Error('unexpected condition shape');
  const action = rule.actions === '*' ? undefined : rule.actions[0];

  const LOCS: ReadonlyArray<{ name: string; loc: { start: { line: number; column: number }; end: { line: number; column: number } } | undefined; start: [number, number]; end?: [number, number] }> = [
    { name: 'resource declaration', loc: decl.loc, start: [1, 1], end: [6, 2] },
    { name: 'resource type name', loc: decl.name.loc, start: [1, 10], end: [1, 18] },
    { name: 'second declared action', loc: decl.actions[1]?.loc, start: [2, 17], end: [2, 23] },
    { name: '`actions` clause', loc: decl.actionClauses[0], start: [2, 3], end: [2, 23] },
    { name: 'rule', loc: rule.loc, start: [4, 3] },
    { name: 'rule name', loc: rule.name?.loc, start: [4, 8], end: [4, 15] },
    { name: 'rule action', loc: action?.loc, start: [4, 24], end: [4, 28] },
    { name: '`and` condition', loc: when.loc, start: [5, 10], end: [5, 45] },
    { name: 'comparison', loc: eq.loc, start: [5, 10], end: [5, 26] },
    { name: 'path', loc: eq.left.loc, start: [5, 10], end: [5, 19] },
    { name: 'path root', loc: eq.left.kind === 'path' ? eq.left.root.loc : undefined, start: [5, 10], end: [5, 17] },
    { name: 'path segment', loc: eq.left.kind === 'path' ? eq.left.segments[0]?.loc : undefined, start: [5, 18], end: [5, 19] },
    { name: 'string literal', loc: eq.right.loc, start: [5, 23], end: [5, 26] },
    { name: '`not`', loc: negated.loc, start: [5, 31], end: [5, 45] },
    { name: 'operand of `not`', loc: negated.arg.loc, start: [5, 35], end: [5, 45] },
  ];

  it.each(LOCS)('$name', ({ loc, start, end }) => {
    expect(loc).toBeDefined();
    expect([loc?.start.line, loc?.start.column]).toEqual(start);
    if (end !== undefined) expect([loc?.end.line, loc?.end.column]).toEqual(end);
  });

  it('offsets agree with lines and columns, and every node names its source', () => {
    expect(eq.loc).toMatchObject({ source: 'dir/locs.policy', start: { offset: text.indexOf('subject.a') }, end: { offset: text.indexOf(' and') } });
    expect(text.slice(negated.loc.start.offset, negated.loc.end.offset)).toBe('not resource.b');
    expect(decl.name.loc.source).toBe('dir/locs.policy');
  });

  it('a location serialises to its plain form (source, start and end positions), as diagnostics print it', () => {
    const start = text.indexOf('subject.a');
    const end = text.indexOf(' and');
    expect(JSON.parse(JSON.stringify(eq.loc))).toEqual({
      source: 'dir/locs.policy',
      start: { offset: start, line: 5, column: 10 },
      end: { offset: end, line: 5, column: 26 },
    });
  });

  it('method calls span from the target to the closing parenthesis', () => {
    const call = parseCondition('resource.name.startsWith("a")');
    expect(call.loc.start).toMatchObject({ line: 3, column: 20 });
    expect(call.loc.end).toMatchObject({ line: 3, column: 49 });
    if (call.kind !== 'call') throw new Error('expected a call');
    expect(call.name.loc.start).toMatchObject({ line: 3, column: 34 });
  });
});

// ---------------------------------------------------------------- nesting bound

describe('parsePolicy: nesting bound', () => {
  const nest = (open: string, close: string, depth: number, inner: string): string => `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
  const NESTING: ReadonlyArray<{ name: string; cond: string; ok: boolean }> = [
    { name: `${MAX_NESTING_DEPTH} parentheses parse`, cond: nest('(', ')', MAX_NESTING_DEPTH, 'subject.a'), ok: true },
    { name: `${MAX_NESTING_DEPTH + 1} parentheses are too deep`, cond: nest('(', ')', MAX_NESTING_DEPTH + 1, 'subject.a'), ok: false },
    { name: `${MAX_NESTING_DEPTH + 1} list brackets are too deep`, cond: `subject.a in ${nest('[', ']', MAX_NESTING_DEPTH + 1, '1')}`, ok: false },
    { name: 'call parentheses count too', cond: `f(${nest('(', ')', MAX_NESTING_DEPTH, 'subject.a')})`, ok: false },
    { name: 'brackets inside strings do not count', cond: `subject.a == "${'('.repeat(100)}"`, ok: true },
    { name: 'brackets inside comments do not count', cond: `subject.a # ${'('.repeat(100)}\n`, ok: true },
    { name: 'deep nesting spread over sequential groups is fine', cond: Array.from({ length: 50 }, () => nest('(', ')', 40, 'subject.a')).join(' and '), ok: true },
    { name: 'long `and` chains are not nesting', cond: Array.from({ length: 5000 }, (_, i) => `subject.a${i} == ${i}`).join(' and '), ok: true },
    // `not` chains parse iteratively but nest in the tree, which the compiler walks recursively.
    { name: `${MAX_NESTING_DEPTH - 1} \`not\`s parse`, cond: `${'not '.repeat(MAX_NESTING_DEPTH - 1)}subject.a`, ok: true },
    { name: `${MAX_NESTING_DEPTH} \`not\`s are too deep`, cond: `${'not '.repeat(MAX_NESTING_DEPTH)}subject.a`, ok: false },
    { name: 'a very long `not` chain is too deep, not a crash', cond: `${'not '.repeat(100_000)}subject.a`, ok: false },
    { name: 'a very long method chain is too deep, not a crash', cond: `subject.a${'.size()'.repeat(10_000)} == 1`, ok: false },
  ];

  it.each(NESTING)('$name', ({ cond, ok }) => {
    if (ok) {
      expect(() => parseCondition(cond)).not.toThrow();
    } else {
      const e = parseFailure(wrapCondition(cond));
      expect(e.code).toBe('PARSE_TOO_DEEP');
      expect(e.diagnostic.location.start.line).toBe(3);
    }
  });
});

// ---------------------------------------------------------------- invalid programs

describe('parsePolicy: invalid programs (golden files in testdata/parse-errors)', () => {
  const inputs = readdirSync(ERRORS_DIR)
    .filter((f) => f.endsWith('.policy'))
    .sort();

  it('has cases', () => {
    expect(inputs.length).toBeGreaterThanOrEqual(14);
  });

  it('every golden file has an input', () => {
    for (const g of readdirSync(ERRORS_DIR).filter((f) => f.endsWith('.golden'))) {
      expect(inputs, `${g} has no matching .policy input`).toContain(`${basename(g, '.golden')}.policy`);
    }
  });

  it.each(inputs)('%s', (file) => {
    const text = readFileSync(join(ERRORS_DIR, file), 'utf8');
    const e = parseFailure(text, file);
    const d = e.diagnostic;
    expect(e).toBeInstanceOf(ArbiterError);
    expect(e.code).toBe(file.startsWith('too-deep') ? 'PARSE_TOO_DEEP' : 'PARSE_SYNTAX');
    expect(d.code).toBe(e.code);
    expect(e.message).toBe(d.message);
    expect(d.location.source).toBe(file);
    expect(d.frame).toBeDefined();
    // A message built from expectations names every one of them.
    for (const item of d.expected ?? []) expect(d.message).toContain(item);
    if ((d.expected ?? []).length > 0) expect(d.message).toMatch(/^expected .* but found .+$/);
    expectGolden(join(ERRORS_DIR, file.replace(/\.policy$/, '.golden')), formatDiagnostic(d));
  });
});

/** Slips inside strings and blocks are reported where they are, with what to do. */
describe('parsePolicy: strings and blocks', () => {
  const CASES: ReadonlyArray<{ name: string; input: string; at: [number, number]; message: string }> = [
    { name: 'unterminated string', input: wrapCondition('resource.s == "abc'), at: [3, 38], message: 'unterminated string: close it with \'"\' on the same line' },
    { name: 'unterminated string before another rule', input: wrapCondition('resource.s == "abc\n  permit read'), at: [3, 38], message: 'unterminated string' },
    { name: 'unknown escape', input: wrapCondition('resource.s == "a\\qb"'), at: [3, 36], message: 'unknown escape sequence' },
    { name: 'unclosed roles block', input: 'roles {\n  admin > viewer\n', at: [3, 1], message: "expected a role name, ',', ';', '>' or '}' but found end of input" },
  ];

  it.each(CASES)('$name', ({ input, at, message }) => {
    const e = parseFailure(input);
    expect(e.code).toBe('PARSE_SYNTAX');
    expect([e.diagnostic.location.start.line, e.diagnostic.location.start.column]).toEqual(at);
    expect(e.message).toContain(message);
  });
});

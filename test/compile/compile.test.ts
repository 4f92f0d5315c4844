/**
 * Compiler tests: every compile error against golden files in
 * testdata/compile-errors (`UPDATE_GOLDEN=1` rewrites them; review the diff),
 * and what a successful compile produces: the revision, rule ids, `*`
 * actions, stage timings and the rule index.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePolicySet, policyRevision, STAGES, type CompileOptions, type IndexNode, type PolicySource } from '../../src/compile/index.js';
import { SCHEMA_FILE, type SchemaSource } from '../../src/compile/schema.js';
import { LEAF_SIZE } from '../../src/compile/rule-index.js';
import { CompileError, formatDiagnostic, formatLocation, sortDiagnostics } from '../../src/errors.js';
import { expectGolden } from '../golden.js';

const ERRORS_DIR = join(import.meta.dirname, 'testdata', 'compile-errors');
const POLICIES_DIR = join(import.meta.dirname, '..', '..', 'policies');

function compileFailure(sources: readonly PolicySource[], options: CompileOptions = {}): CompileError {
  try {
    compilePolicySet(sources, options);
  } catch (e) {
    if (e instanceof CompileError) return e;
    throw e;
  }
  throw new Error('expected a CompileError, but the set compiled');
}

// ---------------------------------------------------------------- compile errors

interface ErrorCase {
  /** File or directory name under testdata/compile-errors. */
  readonly name: string;
  readonly sources: readonly PolicySource[];
  /** The directory's `schema.yaml`, when it has one. */
  readonly schema?: SchemaSource;
  readonly golden: string;
}

/** Compile options for a case: its schema, if any. */
const optionsOf = (c: ErrorCase): CompileOptions => (c.schema === undefined ? {} : { schema: c.schema });

/**
 * A `NAME.policy` file is a one-file policy set; a `NAME/` directory holds a
 * set of several files (paths relative to it), and may hold a `schema.yaml`.
 * Either way the expected output is `NAME.golden`.
 */
function loadErrorCases(): ErrorCase[] {
  const out: ErrorCase[] = [];
  for (const entry of readdirSync(ERRORS_DIR).sort()) {
    const full = join(ERRORS_DIR, entry);
    if (statSync(full).isDirectory()) {
      const files = readdirSync(full)
        .filter((f) => f.endsWith('.policy'))
        .sort();
      const schemaPath = join(full, SCHEMA_FILE);
      const schema = existsSync(schemaPath) ? { schema: { path: SCHEMA_FILE, text: readFileSync(schemaPath, 'utf8') } } : {};
      out.push({
        name: entry,
        sources: files.map((f) => ({ path: f, text: readFileSync(join(full, f), 'utf8') })),
        ...schema,
        golden: join(ERRORS_DIR, `${entry}.golden`),
      });
    } else if (entry.endsWith('.policy')) {
      const name = entry.slice(0, -'.policy'.length);
      out.push({ name, sources: [{ path: entry, text: readFileSync(full, 'utf8') }], golden: join(ERRORS_DIR, `${name}.golden`) });
    }
  }
  return out;
}

const ERROR_CASES = loadErrorCases();

/** Every code the compiler reports must be exercised by at least one golden case. */
const REQUIRED_CODES = [
  'PARSE_SYNTAX',
  'COMPILE_BAD_ROUTE',
  'COMPILE_AMBIGUOUS_ROUTE',
  'COMPILE_UNKNOWN_CAPTURE',
  'COMPILE_UNKNOWN_ROLE',
  'COMPILE_UNDECLARED_ACTION',
  'COMPILE_DUPLICATE_RULE',
  'COMPILE_DERIVED_ROLE_SCOPE',
  'COMPILE_TYPE_MISMATCH',
  'COMPILE_BAD_OPERAND',
  'COMPILE_UNKNOWN_ROOT',
  'COMPILE_NOT_A_VALUE',
  'COMPILE_UNKNOWN_METHOD',
  'COMPILE_BAD_METHOD',
  'COMPILE_UNKNOWN_FUNCTION',
  'COMPILE_BAD_ARGUMENTS',
  'COMPILE_BAD_LITERAL',
  'COMPILE_NOT_A_CONDITION',
  'COMPILE_DUPLICATE_RESOURCE',
  'COMPILE_MISSING_ACTIONS',
  'COMPILE_DUPLICATE_ACTIONS',
  'COMPILE_DUPLICATE_ACTION',
  'COMPILE_ROLE_CYCLE',
  'COMPILE_ROLE_CLASH',
  'COMPILE_DUPLICATE_DERIVED_ROLE',
  'COMPILE_DERIVED_ROLE_CYCLE',
  'COMPILE_UNKNOWN_RESOURCE_TYPE',
  // With a schema (directories holding a schema.yaml):
  'COMPILE_SCHEMA_INVALID',
  'COMPILE_SCHEMA_MISSING_TYPE',
  'COMPILE_UNKNOWN_ATTRIBUTE',
  'COMPILE_NEVER_TRUE',
] as const;

describe('compilePolicySet: errors (golden files in testdata/compile-errors)', () => {
  it('has cases', () => {
    expect(ERROR_CASES.length).toBeGreaterThanOrEqual(REQUIRED_CODES.length);
  });

  it('every golden file has a case', () => {
    const names = new Set(ERROR_CASES.map((c) => c.name));
    for (const g of readdirSync(ERRORS_DIR).filter((f) => f.endsWith('.golden'))) {
      expect(names.has(g.slice(0, -'.golden'.length)), `${g} has no matching .policy file or directory`).toBe(true);
    }
  });

  it.each(ERROR_CASES)('$name', (c) => {
    const { sources, schema, golden } = c;
    const e = compileFailure(sources, optionsOf(c));
    const ds = e.diagnostics;
    const first = ds[0];
    expect(first).toBeDefined();
    if (first === undefined) return;
    // Sorted by file and position, no duplicates, each pointing into the set with a frame.
    expect(ds).toEqual(sortDiagnostics(ds));
    const paths = [...sources, ...(schema === undefined ? [] : [schema])].map((s) => s.path);
    for (const d of ds) {
      expect(paths).toContain(d.location.source);
      expect(d.frame).toBeDefined();
      expect(d.message).not.toMatch(/\.$/);
    }
    // The error itself summarises the first diagnostic.
    expect(e.code).toBe(first.code);
    expect(e.message).toBe(`${formatLocation(first.location)}: ${first.message}${ds.length > 1 ? ` (and ${ds.length - 1} more)` : ''}`);
    expectGolden(golden, ds.map(formatDiagnostic).join('\n'));
  });

  it('covers every compile error code', () => {
    const seen = new Set<string>();
    for (const c of ERROR_CASES) {
      try {
        compilePolicySet(c.sources, optionsOf(c));
      } catch (e) {
        if (e instanceof CompileError) for (const d of e.diagnostics) seen.add(d.code);
      }
    }
    const missing = REQUIRED_CODES.filter((code) => !seen.has(code));
    expect(missing).toEqual([]);
  });

  it('reports every error of one file, sorted by position', () => {
    const c = ERROR_CASES.find((x) => x.name === 'several-errors');
    expect(c).toBeDefined();
    if (c === undefined) return;
    const ds = compileFailure(c.sources).diagnostics;
    expect(ds.map((d) => d.code)).toEqual([
      'COMPILE_UNKNOWN_ROLE',
      'COMPILE_UNKNOWN_ROOT',
      'COMPILE_UNDECLARED_ACTION',
      'COMPILE_TYPE_MISMATCH',
      'COMPILE_BAD_OPERAND',
      'COMPILE_DUPLICATE_RULE',
      'COMPILE_UNKNOWN_METHOD',
    ]);
    const offsets = ds.map((d) => d.location.start.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  });

  it('sorts diagnostics found out of source order (derived roles are compiled per resource type)', () => {
    const c = ERROR_CASES.find((x) => x.name === 'several-errors-derived');
    expect(c).toBeDefined();
    if (c === undefined) return;
    const ds = compileFailure(c.sources).diagnostics;
    expect(ds.map((d) => [d.code, d.location.start.line])).toEqual([
      ['COMPILE_UNKNOWN_ROOT', 2],
      ['COMPILE_UNKNOWN_METHOD', 3],
    ]);
  });

  it('rejects the whole set when one file does not parse', () => {
    const c = ERROR_CASES.find((x) => x.name === 'parse-error-rejects-set');
    expect(c).toBeDefined();
    if (c === undefined) return;
    // The other files are fine on their own ...
    const valid = c.sources.filter((s) => s.path !== 'b-documents.policy');
    expect(valid).toHaveLength(2);
    expect(compilePolicySet(valid).tree.resources.has('folder')).toBe(true);
    // ... but with the broken one, nothing compiles.
    let result: unknown;
    expect(() => {
      result = compilePolicySet(c.sources);
    }).toThrow(CompileError);
    expect(result).toBeUndefined();
    const ds = compileFailure(c.sources).diagnostics;
    expect(ds.map((d) => [d.code, d.location.source])).toEqual([['PARSE_SYNTAX', 'b-documents.policy']]);
  });

  it('reports a parse error in every file, not just the first', () => {
    const c = ERROR_CASES.find((x) => x.name === 'parse-errors-in-two-files');
    expect(c).toBeDefined();
    if (c === undefined) return;
    const ds = compileFailure(c.sources).diagnostics;
    expect(ds.map((d) => d.location.source)).toEqual(['documents.policy', 'folders.policy']);
  });
});

// ---------------------------------------------------------------- results

const ROLES = 'roles {\n  admin > editor > viewer\n}\n';

describe('compilePolicySet: the example policies', () => {
  it('compile', () => {
    const sources = readdirSync(POLICIES_DIR)
      .filter((f) => f.endsWith('.policy'))
      .map((f) => ({ path: f, text: readFileSync(join(POLICIES_DIR, f), 'utf8') }));
    const { tree } = compilePolicySet(sources);
    expect([...tree.resources.keys()].sort()).toEqual(['admin_console', 'document', 'folder', 'order', 'report']);
    expect(tree.rules.map((r) => r.id)).toContain('document.dept_editors');
    expect(tree.revision).toBe(policyRevision(sources));
  });
});

describe('compilePolicySet: revision', () => {
  const base: readonly PolicySource[] = [
    { path: 'a.policy', text: ROLES },
    { path: 'b.policy', text: 'resource doc {\n  actions read\n  permit read when subject.role("viewer")\n}\n' },
    { path: 'team/c.policy', text: 'resource folder {\n  actions list\n}\n' },
  ];
  const revisionOf = (sources: readonly PolicySource[]): string => compilePolicySet(sources).tree.revision;
  const baseRevision = revisionOf(base);
  const edit = (path: string, f: (text: string) => string): PolicySource[] => base.map((s) => (s.path === path ? { path, text: f(s.text) } : s));

  it('is a 16-hex content hash, the same as policyRevision', () => {
    expect(baseRevision).toMatch(/^[0-9a-f]{16}$/);
    expect(baseRevision).toBe(policyRevision(base));
  });

  it('is the same on every compile', () => {
    expect(revisionOf(base)).toBe(baseRevision);
  });

  const CASES: ReadonlyArray<{ name: string; sources: readonly PolicySource[]; same: boolean }> = [
    { name: 'files in reverse order', sources: [...base].reverse(), same: true },
    { name: 'files in another order', sources: [base[1], base[2], base[0]].filter((s): s is PolicySource => s !== undefined), same: true },
    { name: 'the first file changed', sources: edit('a.policy', (t) => t.replace('viewer', 'reader\n  viewer')), same: false },
    { name: 'the second file changed', sources: edit('b.policy', (t) => t.replace('"viewer"', '"editor"')), same: false },
    { name: 'a file in a folder changed', sources: edit('team/c.policy', (t) => t.replace('list', 'list, create')), same: false },
    { name: 'only a comment added', sources: edit('b.policy', (t) => `# reviewed\n${t}`), same: false },
    { name: 'only whitespace changed', sources: edit('a.policy', (t) => `${t}\n`), same: false },
    { name: 'a file renamed', sources: base.map((s) => (s.path === 'team/c.policy' ? { ...s, path: 'team/d.policy' } : s)), same: false },
    { name: 'a file added', sources: [...base, { path: 'z.policy', text: '# empty\n' }], same: false },
    { name: 'a file removed', sources: base.filter((s) => s.path !== 'team/c.policy'), same: false },
  ];

  it.each(CASES)('$name', ({ sources, same }) => {
    const r = revisionOf(sources);
    expect(r).toMatch(/^[0-9a-f]{16}$/);
    if (same) expect(r).toBe(baseRevision);
    else expect(r).not.toBe(baseRevision);
  });
});

describe('compilePolicySet: rule ids and order', () => {
  const CASES: ReadonlyArray<{ name: string; sources: readonly PolicySource[]; want: string[] }> = [
    {
      name: 'named rules are `type.name`',
      sources: [{ path: 'docs.policy', text: 'resource document {\n  actions read\n  rule readers: permit read\n  rule no-archive: forbid read when resource.archived == true\n}\n' }],
      want: ['document.readers', 'document.no-archive'],
    },
    {
      name: 'unnamed rules are `file:line`',
      sources: [{ path: 'docs.policy', text: 'resource document {\n  actions read, update\n\n  permit read\n  forbid update\n    when resource.locked == true\n}\n' }],
      want: ['docs.policy:4', 'docs.policy:5'],
    },
    {
      name: 'the file part of an unnamed rule id is its path in the set',
      sources: [{ path: 'team/docs.policy', text: 'resource document {\n  actions read\n  permit read\n}\n' }],
      want: ['team/docs.policy:3'],
    },
    {
      name: 'named and unnamed rules mixed, across resources',
      sources: [{ path: 'p.policy', text: 'resource a {\n  actions x\n  rule one: permit x\n  permit x\n}\nresource b {\n  actions y\n  rule one: permit y\n}\n' }],
      want: ['a.one', 'p.policy:4', 'b.one'],
    },
    {
      name: 'rules are ordered by file path, then source order, whatever the input order',
      sources: [
        { path: 'b.policy', text: 'resource b {\n  actions y\n  rule first: permit y\n  rule second: permit y\n}\n' },
        { path: 'a.policy', text: 'resource a {\n  actions x\n  permit x\n}\n' },
      ],
      want: ['a.policy:3', 'b.first', 'b.second'],
    },
  ];

  it.each(CASES)('$name', ({ sources, want }) => {
    const { tree } = compilePolicySet(sources);
    expect(tree.rules.map((r) => r.id)).toEqual(want);
    expect(tree.rules.map((r) => r.order)).toEqual(want.map((_, i) => i));
  });

  it('locates each rule at its first token', () => {
    const { tree } = compilePolicySet([{ path: 'p.policy', text: 'resource a {\n  actions x\n    rule one: permit x\n  permit x\n}\n' }]);
    expect(tree.rules.map((r) => [r.location.source, r.location.start.line, r.location.start.column])).toEqual([
      ['p.policy', 3, 5],
      ['p.policy', 4, 3],
    ]);
  });
});

describe('compilePolicySet: rule actions', () => {
  const CASES: ReadonlyArray<{ name: string; actions: string; rule: string; want: string[] }> = [
    { name: '`permit *` is every declared action, in declaration order', actions: 'read, update, delete', rule: 'permit *', want: ['read', 'update', 'delete'] },
    { name: '`forbid *` likewise', actions: 'share, read', rule: 'forbid * when subject.suspended == true', want: ['share', 'read'] },
    { name: '`*` with one action', actions: 'read', rule: 'permit *', want: ['read'] },
    { name: 'listed actions keep their order', actions: 'read, update, delete', rule: 'permit delete, read', want: ['delete', 'read'] },
    { name: 'an action listed twice counts once', actions: 'read, update', rule: 'permit read, read', want: ['read'] },
  ];

  it.each(CASES)('$name', ({ actions, rule, want }) => {
    const { tree } = compilePolicySet([{ path: 'p.policy', text: `resource doc {\n  actions ${actions}\n  ${rule}\n}\n` }]);
    const [compiled] = tree.rules;
    expect(compiled?.actions).toEqual(want);
    const res = tree.resources.get('doc');
    for (const [action, at] of res?.actions ?? []) {
      const all = compiled?.effect === 'forbid' ? at.allForbids : at.allPermits;
      expect(all.map((r) => r.id), `rules for ${action}`).toEqual(want.includes(action) ? [compiled?.id] : []);
    }
  });
});

describe('compilePolicySet: stage timings', () => {
  const sources: readonly PolicySource[] = [
    { path: 'a.policy', text: `${ROLES}derive owner for doc when resource.owner == subject.sub\nresource doc {\n  actions read\n  permit read when subject.role("owner")\n}\n` },
  ];

  it('are empty without a clock', () => {
    expect(compilePolicySet(sources).timings).toEqual([]);
  });

  it('are reported for every stage, in stage order, when a clock is passed', () => {
    let now = 1000;
    const calls: number[] = [];
    const clock = (): number => {
      now += 2.5;
      calls.push(now);
      return now;
    };
    const { timings } = compilePolicySet(sources, { clock });
    expect(timings.map((t) => t.stage)).toEqual(['parse', 'declarations', 'derived-roles', 'rules', 'routes', 'index']);
    expect(timings.map((t) => t.stage)).toEqual(STAGES.map((s) => s.name));
    // Each stage reads the clock before and after it runs.
    expect(calls).toHaveLength(2 * STAGES.length);
    expect(timings.map((t) => t.ms)).toEqual(STAGES.map(() => 2.5));
  });
});

describe('compilePolicySet: rule index', () => {
  /** A policy with `n` rules for `doc`/`read`, the i-th built by `rule(i)`. */
  const policy = (n: number, rule: (i: number) => string, roles = 'editor'): PolicySource[] => [
    { path: 'p.policy', text: `roles { ${roles} }\nresource doc {\n  actions read, update\n${Array.from({ length: n }, (_, i) => `  ${rule(i)}\n`).join('')}}\n` },
  ];
  const tenantRule = (i: number): string => `permit read when subject.tenant == "t${i}" and subject.role("editor")`;
  const permitsOf = (sources: readonly PolicySource[]): IndexNode => {
    const node = compilePolicySet(sources).tree.resources.get('doc')?.actions.get('read')?.permits;
    if (node === undefined) throw new Error('no index for doc/read');
    return node;
  };

  const CASES: ReadonlyArray<{ name: string; sources: PolicySource[]; kind: IndexNode['kind']; path?: string; buckets?: number }> = [
    { name: '1,000 tenant rules switch on subject.tenant at the root', sources: policy(1000, tenantRule), kind: 'eq', path: 'subject.tenant', buckets: 1000 },
    { name: 'the literal may be on the left', sources: policy(100, (i) => `permit read when "t${i}" == subject.tenant`), kind: 'eq', path: 'subject.tenant', buckets: 100 },
    { name: 'bracket paths are keyed canonically', sources: policy(50, (i) => `permit read when subject.claims["https://x/t"] == ${i}`), kind: 'eq', path: 'subject.claims["https://x/t"]', buckets: 50 },
    {
      name: '1,000 rules on different roles switch on the role',
      sources: policy(1000, (i) => `permit read when subject.role("r${i}")`, Array.from({ length: 1000 }, (_, i) => `r${i}`).join(', ')),
      kind: 'role',
      buckets: 1000,
    },
    { name: 'one rule stays a leaf', sources: policy(1, tenantRule), kind: 'leaf' },
    { name: `${LEAF_SIZE} rules (LEAF_SIZE) stay a leaf`, sources: policy(LEAF_SIZE, tenantRule), kind: 'leaf' },
    { name: 'many rules without a shared test stay a leaf', sources: policy(100, (i) => `permit read when resource.n${i} > ${i}`), kind: 'leaf' },
    { name: '`!=` is not an index key', sources: policy(100, (i) => `permit read when subject.tenant != "t${i}"`), kind: 'leaf' },
    { name: 'a test under `or` is not an index key', sources: policy(100, (i) => `permit read when subject.tenant == "t${i}" or subject.x == 1`), kind: 'leaf' },
  ];

  it.each(CASES)('$name', ({ sources, kind, path, buckets }) => {
    const root = permitsOf(sources);
    expect(root.kind).toBe(kind);
    if (root.kind === 'eq') expect(root.path).toBe(path);
    if (root.kind !== 'leaf' && buckets !== undefined) expect(root.buckets.size).toBe(buckets);
  });

  it('puts each tenant rule in its own bucket, keeps every rule in the unindexed list, and indexes only its actions', () => {
    const sources = policy(1000, tenantRule);
    const { tree } = compilePolicySet(sources);
    const read = tree.resources.get('doc')?.actions.get('read');
    expect(read?.allPermits).toHaveLength(1000);
    const root = read?.permits;
    if (root?.kind !== 'eq') throw new Error('expected an eq node');
    const bucket = root.buckets.get('t7');
    expect(bucket?.kind).toBe('leaf');
    if (bucket?.kind === 'leaf') expect(bucket.rules.map((r) => r.id)).toEqual(['p.policy:11']);
    expect(root.buckets.has(7)).toBe(false);
    expect(root.rest).toEqual({ kind: 'leaf', rules: [] });
    // `update` has no rules, and forbids of `read` none either.
    expect(tree.resources.get('doc')?.actions.get('update')?.permits).toEqual({ kind: 'leaf', rules: [] });
    expect(read?.forbids).toEqual({ kind: 'leaf', rules: [] });
  });

  it('keeps small rule sets as a leaf in policy order', () => {
    const root = permitsOf(policy(LEAF_SIZE, tenantRule));
    if (root.kind !== 'leaf') throw new Error('expected a leaf');
    expect(root.rules.map((r) => r.id)).toEqual(Array.from({ length: LEAF_SIZE }, (_, i) => `p.policy:${4 + i}`));
  });
});

describe('compilePolicySet: details found in review', () => {
  const errorsOf = (sources: Array<{ path: string; text: string }>): string[] => {
    try {
      compilePolicySet(sources);
    } catch (e) {
      if (e instanceof CompileError) return e.diagnostics.map((d) => `${d.code} ${d.message}${d.help === undefined ? '' : ` | ${d.help}`}`);
      throw e;
    }
    return [];
  };

  it('names a second unnamed rule on one line by file:line:col', () => {
    const { tree } = compilePolicySet([{ path: 'x.policy', text: 'resource doc { actions read, update\n permit read permit update }' }]);
    expect(tree.rules.map((r) => r.id)).toEqual(['x.policy:2', 'x.policy:2:14']);
  });

  it('reports a resource type listed twice in a derive', () => {
    expect(errorsOf([{ path: 'x.policy', text: 'resource doc { actions read }\nderive o for doc, doc when true' }])).toEqual(['COMPILE_DUPLICATE_TYPE resource type `doc` is listed twice']);
  });

  it('suggests names one transposition away', () => {
    expect(errorsOf([{ path: 'x.policy', text: 'resource doc { actions read }\nderive o for dco when true' }])).toEqual(['COMPILE_UNKNOWN_RESOURCE_TYPE unknown resource type `dco` | did you mean `doc`?']);
  });

  it('rejects the same file path given twice', () => {
    const src = { path: 'x.policy', text: 'resource doc { actions read }' };
    expect(errorsOf([src, src])).toEqual(['COMPILE_DUPLICATE_FILE policy file `x.policy` is given twice']);
  });

  it('says "strings" when strings are ordered', () => {
    expect(errorsOf([{ path: 'x.policy', text: 'resource doc { actions read\n permit read when subject.a < "b" }' }])).toEqual(['COMPILE_BAD_OPERAND `<` orders numbers, timestamps and times of day, not strings']);
  });
});

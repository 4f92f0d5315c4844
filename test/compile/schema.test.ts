/**
 * Schemas and type checking: parsing `schema.yaml`, checking the shipped
 * policies against policies/schema.yaml, run-time request validation
 * (validateAgainstSchema, the engine's `validateRequests`, the config key),
 * loading and reloading a directory with a schema, and a property test that
 * a schema never changes a decision. Schema and type errors themselves are
 * golden files in testdata/compile-errors/schema-* (see compile.test.ts).
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicySet, policyRevision, type AttrValue, type Attributes, type PolicySource } from '../../src/compile/index.js';
import {
  formatSchemaType,
  parseSchema,
  SCHEMA_FILE,
  validateAgainstSchema,
  type ObjectType,
  type Schema,
  type SchemaSource,
  type SchemaType,
  type SchemaViolation,
} from '../../src/compile/schema.js';
import { parseConfig } from '../../src/config/config.js';
import { Engine, type SchemaViolationEvent } from '../../src/engine/engine.js';
import { loadPolicySet, PolicyStore, readPolicyDirectory, readPolicyFiles } from '../../src/engine/policy-store.js';
import { CompileError, ConfigError, type Diagnostic } from '../../src/errors.js';
import { evaluate, type Request } from '../../src/eval/evaluate.js';

const POLICIES_DIR = join(import.meta.dirname, '..', '..', 'policies');
const SHIPPED: readonly PolicySource[] = readdirSync(POLICIES_DIR)
  .filter((f) => f.endsWith('.policy'))
  .sort()
  .map((f) => ({ path: f, text: readFileSync(join(POLICIES_DIR, f), 'utf8') }));
const SHIPPED_SCHEMA: SchemaSource = { path: SCHEMA_FILE, text: readFileSync(join(POLICIES_DIR, SCHEMA_FILE), 'utf8') };

function schemaOf(text: string): Schema {
  const errors: Diagnostic[] = [];
  const schema = parseSchema({ path: SCHEMA_FILE, text }, (d) => errors.push(d));
  expect(errors).toEqual([]);
  if (schema === undefined) throw new Error('schema did not parse');
  return schema;
}

function schemaErrors(text: string): string[] {
  const errors: Diagnostic[] = [];
  parseSchema({ path: SCHEMA_FILE, text }, (d) => errors.push(d));
  return errors.map((d) => `${d.location.start.line}:${d.location.start.column} ${d.message}`);
}

/** An object type as `{ name: 'string?', address: { city: 'string' } }`, for readable expectations. */
function render(t: ObjectType): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, a] of t.attributes) {
    out[name] = a.type.kind === 'object' ? { ...render(a.type), ...(a.optional ? { '(optional)': true } : {}) } : `${formatSchemaType(a.type)}${a.optional ? '?' : ''}`;
  }
  return out;
}

function compileErrors(sources: readonly PolicySource[], schema?: SchemaSource): Diagnostic[] {
  try {
    compilePolicySet(sources, schema === undefined ? {} : { schema });
  } catch (e) {
    if (e instanceof CompileError) return [...e.diagnostics];
    throw e;
  }
  return [];
}

// ---------------------------------------------------------------- parsing

describe('parseSchema', () => {
  const CASES: ReadonlyArray<{ name: string; text: string; want: { subject?: unknown; resources?: Record<string, unknown>; context?: unknown } }> = [
    { name: 'an empty file checks nothing', text: '# nothing yet\n', want: {} },
    {
      name: 'every type, required and optional',
      text: 'subject:\n  a: string\n  b: number?\n  c: bool\n  d: ip?\n  e: timestamp\n  f: record?\n  g: set<string>\n  h: set<number>?\n',
      want: { subject: { a: 'string', b: 'number?', c: 'bool', d: 'ip?', e: 'timestamp', f: 'record?', g: 'set<string>', h: 'set<number>?' } },
    },
    { name: 'spaces inside a type are allowed', text: 'context:\n  s: set < string > ?\n', want: { context: { s: 'set<string>?' } } },
    {
      name: 'enums, with quoted values',
      text: 'resources:\n  doc:\n    level: enum(public, internal, secret)\n    label: \'enum("top secret", "a,b", plain)?\'\n',
      want: { resources: { doc: { level: 'enum(public, internal, secret)', label: 'enum(top secret, a,b, plain)?' } } },
    },
    {
      name: 'nested objects, block and flow, optional on the key',
      text: 'subject:\n  address:\n    city: string\n    zip: string?\n  office?: { floor: number, wing: string? }\n',
      want: { subject: { address: { city: 'string', zip: 'string?' }, office: { floor: 'number', wing: 'string?', '(optional)': true } } },
    },
    { name: 'an empty resources section is strict (no types)', text: 'resources: {}\n', want: { resources: {} } },
    { name: 'a resource type with no attributes', text: 'resources:\n  console: {}\n', want: { resources: { console: {} } } },
  ];

  it.each(CASES)('$name', ({ text, want }) => {
    const s = schemaOf(text);
    expect(s.subject === undefined ? undefined : render(s.subject)).toEqual(want.subject);
    expect(s.context === undefined ? undefined : render(s.context)).toEqual(want.context);
    expect(s.resources === undefined ? undefined : Object.fromEntries([...s.resources].map(([k, r]) => [k, render(r.attributes)]))).toEqual(want.resources);
  });

  const ERRORS: ReadonlyArray<{ name: string; text: string; want: string[] }> = [
    { name: 'the root must be a mapping', text: '- subject\n', want: ['1:1 the schema must be a mapping with the sections `subject`, `resources` and `context`'] },
    { name: 'a section must be a mapping', text: 'subject: string\n', want: ['1:10 `subject` must be a mapping of attribute names to types'] },
    { name: 'a null section', text: 'context:\n', want: ['1:1 `context` must be a mapping of attribute names to types'] },
    { name: 'resources must be a mapping', text: 'resources: [a]\n', want: ['1:12 `resources` must be a mapping of resource types to their attributes'] },
    { name: 'a YAML alias is refused', text: 'subject:\n  a: &t string\n  b: *t\n', want: ['3:6 invalid YAML: YAML aliases (`*name`) are not supported; write the value out'] },
    { name: 'a key given twice', text: 'subject:\n  a: string\n  a: number\n', want: ['3:3 invalid YAML: map keys must be unique'] },
    { name: 'an unknown word with no near type', text: 'subject:\n  a: zzzzzzzz\n', want: ['2:6 unknown type `zzzzzzzz` for `subject.a`'] },
    { name: 'a number is not a type', text: 'subject:\n  a: 3\n', want: ['2:6 `subject.a` must be a type such as `string`, `set<string>` or `enum(a, b)`, or a mapping of attributes'] },
    { name: 'an empty enum', text: 'subject:\n  a: enum()\n', want: ['2:6 `subject.a`: an enum value is empty'] },
    { name: 'an unquoted enum value with a space', text: 'subject:\n  a: enum(top secret, b)\n', want: ['2:6 `subject.a`: enum value `top secret` must be quoted'] },
    { name: 'the same attribute twice (once as an optional object)', text: 'subject:\n  a: string\n  a?: { b: string }\n', want: ['3:3 attribute `subject.a` is declared twice'] },
    { name: '`id` is not a resource attribute', text: 'resources:\n  doc:\n    id: string\n', want: ['3:5 `id` cannot be a resource attribute: `resource.id` is the resource\'s id (always a string)'] },
    {
      name: 'nesting deeper than the bound',
      text: `subject:\n${Array.from({ length: 17 }, (_, i) => `${'  '.repeat(i + 1)}n${i}:`).join('\n')}\n${'  '.repeat(18)}leaf: string\n`,
      want: ['17:33 the schema nests objects deeper than 16 levels'],
    },
  ];

  it.each(ERRORS)('reports $name', ({ text, want }) => {
    expect(schemaErrors(text)).toEqual(want);
  });

  it('suggests the word other languages use', () => {
    const help = (type: string): string | undefined => {
      const errors: Diagnostic[] = [];
      parseSchema({ path: SCHEMA_FILE, text: `subject:\n  a: ${type}\n` }, (d) => errors.push(d));
      return errors[0]?.help;
    };
    expect(help('boolean')).toBe('did you mean `bool`?');
    expect(help('int')).toBe('did you mean `number`?');
    expect(help('list<string>')).toBe('did you mean `set<string>`?');
    expect(help('object')).toBe('did you mean `record`?');
    expect(help('Number')).toBe('did you mean `number`?');
    expect(help('nmber')).toBe('did you mean `number`?');
  });
});

// ---------------------------------------------------------------- the shipped policies

describe('policies/schema.yaml', () => {
  it('type-checks the shipped policies cleanly', () => {
    const { tree, schema } = compilePolicySet(SHIPPED, { schema: SHIPPED_SCHEMA });
    expect(schema).toBeDefined();
    expect([...(schema?.resources?.keys() ?? [])].sort()).toEqual([...tree.resources.keys()].sort());
  });

  it('admits every example request in policies/examples', () => {
    const schema = schemaOf(SHIPPED_SCHEMA.text);
    const dir = join(POLICIES_DIR, 'examples');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
      const request = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Request;
      expect(validateAgainstSchema(schema, request), f).toEqual([]);
    }
  });

  const TYPOS: ReadonlyArray<{ name: string; file: string; from: string; to: string; code: string; message: string; help: string }> = [
    {
      name: 'a misspelt resource attribute',
      file: 'documents.policy',
      from: 'resource.classification == "public"',
      to: 'resource.clasification == "public"',
      code: 'COMPILE_UNKNOWN_ATTRIBUTE',
      message: 'unknown attribute `resource.clasification` for resource type `document`',
      help: 'did you mean `resource.classification`?',
    },
    {
      name: 'a misspelt subject attribute in a derived role',
      file: 'roles.policy',
      from: 'subject.department == "finance"',
      to: 'subject.departmen == "finance"',
      code: 'COMPILE_UNKNOWN_ATTRIBUTE',
      message: 'unknown attribute `subject.departmen`',
      help: 'did you mean `subject.department`?',
    },
    {
      name: 'a misspelt enum value',
      file: 'documents.policy',
      from: 'resource.classification == "secret"',
      to: 'resource.classification == "secrets"',
      code: 'COMPILE_NEVER_TRUE',
      message: '`resource.classification` can never be "secrets"',
      help: 'did you mean `secret`? (`resource.classification` is one of `public`, `internal`, `secret`)',
    },
    {
      name: 'a count compared with a string',
      file: 'documents.policy',
      from: 'resource.document_count == 0',
      to: 'resource.document_count == "0"',
      code: 'COMPILE_TYPE_MISMATCH',
      message: 'cannot compare `resource.document_count` (a number) with a string',
      help: 'both sides of a comparison must have the same type',
    },
  ];

  it.each(TYPOS)('catches $name in a copy of them, with a suggestion', ({ file, from, to, code, message, help }) => {
    const copy = SHIPPED.map((s) => (s.path === file ? { ...s, text: s.text.replace(from, to) } : s));
    expect(copy.find((s) => s.path === file)?.text).toContain(to);
    // Without the schema the mistake compiles (and silently never matches) ...
    expect(compileErrors(copy)).toEqual([]);
    // ... with it, it is caught, located at the mistake.
    const errors = compileErrors(copy, SHIPPED_SCHEMA);
    expect(errors.map((d) => ({ code: d.code, message: d.message, help: d.help }))).toEqual([{ code, message, help }]);
    const d = errors[0];
    const line = (copy.find((s) => s.path === file)?.text.split('\n') ?? [])[(d?.location.start.line ?? 1) - 1] ?? '';
    expect(d?.location.source).toBe(file);
    expect(line.slice((d?.location.start.column ?? 1) - 1)).toMatch(/^(resource|subject|"|\w)/);
    expect(d?.frame).toContain('^');
  });
});

// ---------------------------------------------------------------- strictness

describe('what a schema checks', () => {
  const DOC = 'resource document {\n  actions read\n  permit read when resource.owner == subject.sub and context.tenant == "t"\n}\n';
  const sources = [{ path: 'd.policy', text: DOC }];
  const codesWith = (schema: string): string[] => compileErrors(sources, { path: SCHEMA_FILE, text: schema }).map((d) => `${d.code} ${d.message}`);

  const CASES: ReadonlyArray<{ name: string; schema: string; want: string[] }> = [
    { name: 'an empty schema checks nothing', schema: '', want: [] },
    { name: 'sections left out are not checked', schema: 'subject:\n  sub: string\n', want: [] },
    { name: 'a section present is strict', schema: 'context:\n  ip: ip?\n', want: ['COMPILE_UNKNOWN_ATTRIBUTE unknown attribute `context.tenant`'] },
    {
      name: 'with `resources`, a policy type missing from it is an error',
      schema: 'resources:\n  folder: {}\n',
      want: ['COMPILE_SCHEMA_MISSING_TYPE resource type `document` is not in the schema', 'COMPILE_UNKNOWN_RESOURCE_TYPE resource type `folder` in the schema is not declared by any policy'],
    },
    { name: 'a type that is listed is strict', schema: 'resources:\n  document: {}\n', want: ['COMPILE_UNKNOWN_ATTRIBUTE unknown attribute `resource.owner` for resource type `document`'] },
    { name: 'resource.type, resource.id, action and context.time need no declaring', schema: 'subject: { sub: string }\nresources: { document: { owner: string } }\ncontext: { tenant: string }\n', want: [] },
  ];

  it.each(CASES)('$name', ({ schema, want }) => {
    expect(codesWith(schema)).toEqual(want);
  });

  it('reports type errors in derived roles and in rules together', () => {
    const text = 'derive owner for document when resource.ownr == subject.sub\nresource document {\n  actions read\n  permit read when resource.ownr == "x"\n}\n';
    const errors = compileErrors([{ path: 'p.policy', text }], { path: SCHEMA_FILE, text: 'resources:\n  document:\n    owner: string\n' });
    expect(errors.map((d) => `${d.location.start.line} ${d.code}`)).toEqual(['1 COMPILE_UNKNOWN_ATTRIBUTE', '4 COMPILE_UNKNOWN_ATTRIBUTE']);
  });

  it('stops at the schema\'s own errors before checking rules against it', () => {
    const errors = compileErrors(sources, { path: SCHEMA_FILE, text: 'subject:\n  sub: strng\n' });
    expect(errors.map((d) => [d.location.source, d.code])).toEqual([[SCHEMA_FILE, 'COMPILE_SCHEMA_INVALID']]);
  });
});

// ---------------------------------------------------------------- revision

describe('the revision covers the schema', () => {
  const sources = [{ path: 'd.policy', text: 'resource document { actions read  permit read }' }];
  const schema = { path: SCHEMA_FILE, text: 'resources:\n  document: {}\n' };

  it('is unchanged for a set without a schema', () => {
    expect(compilePolicySet(sources).tree.revision).toBe(policyRevision(sources));
    expect(policyRevision(sources, undefined)).toBe(policyRevision(sources));
  });

  it('changes when a schema is added or edited, even by a comment', () => {
    const a = compilePolicySet(sources, { schema }).tree.revision;
    const b = compilePolicySet(sources, { schema: { ...schema, text: `# typed\n${schema.text}` } }).tree.revision;
    expect(a).toBe(policyRevision(sources, schema));
    expect(new Set([policyRevision(sources), a, b]).size).toBe(3);
  });
});

// ---------------------------------------------------------------- run-time validation

const SCHEMA = schemaOf(`
subject:
  sub: string
  roles: set<string>?
  level: number?
  mfa: bool?
  claims: record?
  address?:
    city: string
    zip: string?
resources:
  document:
    owner: string
    classification: enum(public, internal, secret)
    scores: set<number>?
    "x-tag": string?
context:
  ip: ip?
  time: timestamp?
`);

const req = (parts: { subject?: Attributes; type?: string; attributes?: Attributes; context?: Attributes }): Request => ({
  subject: parts.subject ?? { sub: 'a' },
  action: 'read',
  resource: { type: parts.type ?? 'document', id: 'd1', attributes: parts.attributes ?? { owner: 'a', classification: 'public' } },
  ...(parts.context === undefined ? {} : { context: parts.context }),
});

describe('validateAgainstSchema', () => {
  const CASES: ReadonlyArray<{ name: string; request: Request; want: SchemaViolation[] }> = [
    { name: 'a matching request', request: req({}), want: [] },
    {
      name: 'every optional attribute present and well typed',
      request: req({
        subject: { sub: 'a', roles: ['x'], level: 3, mfa: false, claims: { any: [1, { x: null }] }, address: { city: 'Paris' } },
        attributes: { owner: 'a', classification: 'secret', scores: [1, 2.5], 'x-tag': 't' },
        context: { ip: '::ffff:10.0.0.1', time: 1_700_000_000 },
      }),
      want: [],
    },
    { name: 'attributes the schema does not declare are allowed', request: req({ subject: { sub: 'a', extra: { deep: true } }, context: { caller: 'x' } }), want: [] },
    { name: 'null counts as absent for optional attributes', request: req({ subject: { sub: 'a', level: null } }), want: [] },
    { name: 'a resource type the schema does not list is not checked', request: req({ type: 'spaceship', attributes: { owner: 7 } }), want: [] },
    { name: 'a missing required attribute', request: req({ subject: {} }), want: [{ field: 'subject.sub', message: '`subject.sub` is required' }] },
    { name: 'null for a required attribute', request: req({ subject: { sub: null } }), want: [{ field: 'subject.sub', message: '`subject.sub` is required' }] },
    { name: 'a string that is a number', request: req({ subject: { sub: 7 } }), want: [{ field: 'subject.sub', message: '`subject.sub` must be a string' }] },
    { name: 'a number that is a string', request: req({ subject: { sub: 'a', level: '3' } }), want: [{ field: 'subject.level', message: '`subject.level` must be a number' }] },
    { name: 'a bool that is a string', request: req({ subject: { sub: 'a', mfa: 'true' } }), want: [{ field: 'subject.mfa', message: '`subject.mfa` must be true or false' }] },
    { name: 'a set that is a string', request: req({ subject: { sub: 'a', roles: 'admin' } }), want: [{ field: 'subject.roles', message: '`subject.roles` must be a list of strings' }] },
    { name: 'a set with an item of the wrong type', request: req({ subject: { sub: 'a', roles: ['a', 2, 3] } }), want: [{ field: 'subject.roles[1]', message: '`subject.roles[1]` must be a string' }] },
    { name: 'a record that is a list', request: req({ subject: { sub: 'a', claims: [] } }), want: [{ field: 'subject.claims', message: '`subject.claims` must be an object' }] },
    { name: 'a nested required member', request: req({ subject: { sub: 'a', address: { zip: 1 } } }), want: [{ field: 'subject.address.city', message: '`subject.address.city` is required' }, { field: 'subject.address.zip', message: '`subject.address.zip` must be a string' }] },
    { name: 'an object that is a string', request: req({ subject: { sub: 'a', address: 'Paris' } }), want: [{ field: 'subject.address', message: '`subject.address` must be an object' }] },
    {
      name: 'a value outside an enum',
      request: req({ attributes: { owner: 'a', classification: 'pubic' } }),
      want: [{ field: 'resource.attributes.classification', message: '`resource.attributes.classification` must be one of `public`, `internal`, `secret`' }],
    },
    { name: 'a set of numbers with a string', request: req({ attributes: { owner: 'a', classification: 'public', scores: ['1'] } }), want: [{ field: 'resource.attributes.scores[0]', message: '`resource.attributes.scores[0]` must be a number' }] },
    { name: 'a name that is not an identifier', request: req({ attributes: { owner: 'a', classification: 'public', 'x-tag': 1 } }), want: [{ field: 'resource.attributes["x-tag"]', message: '`resource.attributes["x-tag"]` must be a string' }] },
    { name: 'missing resource attributes', request: { subject: { sub: 'a' }, action: 'read', resource: { type: 'document' } }, want: [{ field: 'resource.attributes.owner', message: '`resource.attributes.owner` is required' }, { field: 'resource.attributes.classification', message: '`resource.attributes.classification` is required' }] },
    { name: 'an ip that is not an address', request: req({ context: { ip: '10.0.0.300' } }), want: [{ field: 'context.ip', message: '`context.ip` must be an IPv4 or IPv6 address' }] },
    { name: 'a CIDR block is not an address', request: req({ context: { ip: '10.0.0.0/8' } }), want: [{ field: 'context.ip', message: '`context.ip` must be an IPv4 or IPv6 address' }] },
    { name: 'a timestamp without a zone', request: req({ context: { time: '2026-01-01T00:00:00' } }), want: [{ field: 'context.time', message: '`context.time` must be a timestamp (an RFC 3339 string with a zone, or seconds since the epoch)' }] },
    { name: 'a timestamp as an RFC 3339 string', request: req({ context: { time: '2026-01-01T00:00:00+02:00' } }), want: [] },
    {
      name: 'several violations, in schema order',
      request: req({ subject: { sub: 1, level: 'x' }, attributes: { classification: 'top' }, context: { ip: 5 } }),
      want: [
        { field: 'subject.sub', message: '`subject.sub` must be a string' },
        { field: 'subject.level', message: '`subject.level` must be a number' },
        { field: 'resource.attributes.owner', message: '`resource.attributes.owner` is required' },
        { field: 'resource.attributes.classification', message: '`resource.attributes.classification` must be one of `public`, `internal`, `secret`' },
        { field: 'context.ip', message: '`context.ip` must be an IPv4 or IPv6 address' },
      ],
    },
  ];

  it.each(CASES)('$name', ({ request, want }) => {
    expect(validateAgainstSchema(SCHEMA, request)).toEqual(want);
  });

  it('never echoes a value in a message', () => {
    const secret = 'hunter2-secret-value';
    const vs = validateAgainstSchema(SCHEMA, req({ subject: { sub: 'a', level: secret, roles: [secret, 1] }, attributes: { owner: 'a', classification: secret } }));
    expect(vs.length).toBe(3);
    for (const v of vs) expect(v.message).not.toContain(secret);
  });

  it('a schema without sections admits anything', () => {
    expect(validateAgainstSchema({ source: SCHEMA_FILE }, req({ subject: { sub: 1 } }))).toEqual([]);
  });
});

describe('Engine: schema.validate_requests', () => {
  const POLICY = 'resource document {\n  actions read\n  permit read when resource.owner == subject.sub\n}\n';
  const SCHEMA_TEXT = 'subject:\n  sub: string\nresources:\n  document:\n    owner: string\n    classification: enum(public, secret)?\n';
  const engineWith = (mode: 'off' | 'warn' | 'reject' | undefined, events: SchemaViolationEvent[], schema = true): Engine => {
    const sources = [{ path: 'p.policy', text: POLICY }];
    const schemaSource = { path: SCHEMA_FILE, text: SCHEMA_TEXT };
    const compiled = compilePolicySet(sources, schema ? { schema: schemaSource } : {});
    return new Engine(
      { ...compiled, directory: 'mem', sources },
      { cache: { maxEntries: 100, ttlSeconds: 60 }, ...(mode === undefined ? {} : { validateRequests: mode }), onSchemaViolation: (e) => events.push(e) },
    );
  };
  const good = { principal: { subject: { sub: 'a' } }, action: 'read', resource: { type: 'document', id: 'd', attributes: { owner: 'a' } } };
  const bad = { ...good, resource: { ...good.resource, attributes: { owner: 'a', classification: 'pubic' } } };

  it('rejects a request that does not match with DENY REQUEST_SCHEMA_VIOLATION, naming the field', async () => {
    const events: SchemaViolationEvent[] = [];
    const engine = engineWith('reject', events);
    expect(await engine.decide(good)).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT' });
    const d = await engine.decide(bad);
    expect(d).toMatchObject({ decision: 'DENY', reason: 'REQUEST_SCHEMA_VIOLATION', rules: [], cached: false, revision: engine.revision });
    expect(d.message).toBe('request does not match the policy schema: `resource.attributes.classification` must be one of `public`, `secret`');
    expect(events).toEqual([
      { mode: 'reject', action: 'read', resourceType: 'document', revision: engine.revision, violations: [{ field: 'resource.attributes.classification', message: '`resource.attributes.classification` must be one of `public`, `secret`' }] },
    ]);
  });

  it('rejects in batches too, item by item', async () => {
    const engine = engineWith('reject', []);
    const out = await engine.decideBatch({ principal: good.principal, items: [{ resource: good.resource, actions: ['read'] }, { resource: bad.resource, actions: ['read'] }] });
    expect(out.results.map((r) => r.map((d) => d.reason))).toEqual([['RULE_PERMIT'], ['REQUEST_SCHEMA_VIOLATION']]);
  });

  it('is never answered from the cache', async () => {
    const events: SchemaViolationEvent[] = [];
    const engine = engineWith('reject', events);
    await engine.decide(bad);
    expect(await engine.decide(bad)).toMatchObject({ reason: 'REQUEST_SCHEMA_VIOLATION', cached: false });
    expect(events).toHaveLength(2);
  });

  it('warn decides as usual and reports the violations', async () => {
    const events: SchemaViolationEvent[] = [];
    const engine = engineWith('warn', events);
    expect(await engine.decide(bad)).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT' });
    expect(events.map((e) => [e.mode, e.violations.map((v) => v.field)])).toEqual([['warn', ['resource.attributes.classification']]]);
  });

  it.each([
    { name: 'off', mode: 'off' as const, schema: true },
    { name: 'the default', mode: undefined, schema: true },
    { name: 'reject without a schema', mode: 'reject' as const, schema: false },
  ])('$name checks nothing', async ({ mode, schema }) => {
    const events: SchemaViolationEvent[] = [];
    const engine = engineWith(mode, events, schema);
    expect(await engine.decide(bad)).toMatchObject({ decision: 'ALLOW' });
    expect(events).toEqual([]);
  });

  it('a failing listener does not change the decision', async () => {
    const compiled = compilePolicySet([{ path: 'p.policy', text: POLICY }], { schema: { path: SCHEMA_FILE, text: SCHEMA_TEXT } });
    const engine = new Engine({ ...compiled, directory: 'mem', sources: [] }, { validateRequests: 'reject', onSchemaViolation: () => { throw new Error('boom'); } });
    expect(await engine.decide(bad)).toMatchObject({ decision: 'DENY', reason: 'REQUEST_SCHEMA_VIOLATION' });
  });
});

describe('config: schema.validate_requests', () => {
  const parse = (text: string) => parseConfig(text, 'arbiter.yaml', '/etc/arbiter', {});

  it.each([
    { text: 'policies: p\n', want: undefined },
    { text: 'schema: {}\n', want: 'off' },
    { text: 'schema:\n  validate_requests: off\n', want: 'off' },
    { text: 'schema:\n  validate_requests: warn\n', want: 'warn' },
    { text: 'schema:\n  validate_requests: reject\n', want: 'reject' },
  ])('$text', ({ text, want }) => {
    expect(parse(text).validateRequests).toBe(want);
  });

  it.each([
    { text: 'schema:\n  validate_requests: yes\n', want: 'arbiter.yaml:2:3: `schema.validate_requests` must be one of `off`, `warn`, `reject`' },
    { text: 'schema:\n  validate_request: warn\n', want: 'arbiter.yaml:2:3: `schema.validate_request` is not a known key; did you mean `validate_requests`?' },
    { text: 'schemas:\n  validate_requests: warn\n', want: 'arbiter.yaml:1:1: `schemas` is not a known key; did you mean `schema`?' },
  ])('refuses $text', ({ text, want }) => {
    expect(() => parse(text)).toThrow(ConfigError);
    expect(() => parse(text)).toThrow(want);
  });
});

// ---------------------------------------------------------------- loading

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'arbiter-schema-'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}

describe('a policy directory with a schema', () => {
  const DOC = 'resource document {\n  actions read\n  permit read when resource.owner == subject.sub\n}\n';
  const GOOD = 'resources:\n  document:\n    owner: string\n';

  it('reads schema.yaml at the root only, apart from the policy files', async () => {
    const dir = await dirWith({ 'd.policy': DOC, [SCHEMA_FILE]: GOOD, [`sub/${SCHEMA_FILE}`]: 'garbage: [', 'notes.yaml': 'x: 1' });
    const files = await readPolicyFiles(dir);
    expect(files.sources.map((s) => s.path)).toEqual(['d.policy']);
    expect(files.schema).toEqual({ path: SCHEMA_FILE, text: GOOD });
    expect((await readPolicyDirectory(dir)).map((s) => s.path)).toEqual(['d.policy']);
    const set = await loadPolicySet(dir);
    expect(set.schema?.resources?.has('document')).toBe(true);
    expect(set.schemaSource).toEqual({ path: SCHEMA_FILE, text: GOOD });
    expect(set.tree.revision).toBe(policyRevision(set.sources, set.schemaSource));
  });

  it('rejects the whole set for a bad schema, located in the schema', async () => {
    const dir = await dirWith({ 'd.policy': DOC, [SCHEMA_FILE]: 'resources:\n  document:\n    owner: strin\n' });
    const err = await loadPolicySet(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CompileError);
    expect((err as CompileError).diagnostics.map((d) => `${d.location.source}:${d.location.start.line}:${d.location.start.column} ${d.code} ${d.help ?? ''}`)).toEqual([
      'schema.yaml:3:12 COMPILE_SCHEMA_INVALID did you mean `string`?',
    ]);
  });

  it('keeps serving the last good set when a reload brings a bad schema, and takes the fixed one', async () => {
    const dir = await dirWith({ 'd.policy': DOC, [SCHEMA_FILE]: GOOD });
    const store = await PolicyStore.open(dir);
    const first = store.current.tree.revision;
    await writeFile(join(dir, SCHEMA_FILE), 'resources:\n  document:\n    ownr: string\n');
    const failed = await store.reload('manual');
    expect(failed.outcome).toBe('failed');
    expect((failed.error as CompileError).diagnostics.map((d) => d.code)).toEqual(['COMPILE_UNKNOWN_ATTRIBUTE']);
    expect(store.current.tree.revision).toBe(first);
    // A schema change alone is a new revision.
    await writeFile(join(dir, SCHEMA_FILE), `${GOOD}    title: string?\n`);
    const updated = await store.reload('manual');
    expect(updated.outcome).toBe('updated');
    expect(store.current.schema?.resources?.get('document')?.attributes.attributes.has('title')).toBe(true);
    expect((await store.reload('manual')).outcome).toBe('unchanged');
  });

  it('counts the schema against the size bounds', async () => {
    const { POLICY_LIMITS } = await import('../../src/engine/policy-store.js');
    const dir = await dirWith({ 'd.policy': DOC, [SCHEMA_FILE]: `# ${'x'.repeat(POLICY_LIMITS.maxFileBytes)}\n` });
    await expect(readPolicyFiles(dir)).rejects.toMatchObject({ code: 'POLICY_LOAD_FAILED', message: expect.stringContaining('`schema.yaml` is larger than') });
  });
});

// ---------------------------------------------------------------- meaning

const STRINGS = ['alice', 'bob', 'carl', 'finance', 'engineering', 'sales', '/drafts/x', '/team/', 'x@partner.example', 'Q3 sales-report', 'Q4', 'eu', 'us', 'c1', 'u1', ''];
const SET_ITEMS = ['editor', 'admin', 'viewer', 'auditor', 'support', 'finance', 'owner', 'collaborator', 'orders:read', 'orders:write', 'orders:export', 'shareable', 'finance-ops', 'embargoed', 'legal-hold', 'mfa', 'pwd', 'alice', 'bob', 'u1', 'eu'];

/** Values of a declared type, drawn from what the shipped policies test for. */
function valueOf(t: SchemaType): fc.Arbitrary<AttrValue> {
  switch (t.kind) {
    case 'string':
      return fc.oneof(fc.constantFrom(...STRINGS), fc.string({ maxLength: 6 }));
    case 'number':
      return fc.oneof(fc.constantFrom(0, 3, 4, 100, 4999, 5000, 10000, 10001), fc.integer({ min: -10, max: 20000 }), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }));
    case 'bool':
      return fc.boolean();
    case 'ip':
      return fc.constantFrom('10.1.2.3', '10.255.0.1', 'fd00::1', '203.0.113.9', '::ffff:10.0.0.1', '2001:db8::1');
    case 'timestamp':
      return fc.oneof(fc.constantFrom('2025-12-31T23:59:59Z', '2026-11-23T10:15:00Z', '2026-11-22T10:00:00+01:00', '2026-11-23T19:00:00Z'), fc.integer({ min: 1_700_000_000, max: 1_800_000_000 }));
    case 'enum':
      return fc.constantFrom(...t.values);
    case 'set':
      return t.of === 'string' ? fc.array(fc.constantFrom(...SET_ITEMS), { maxLength: 4 }) : fc.array(fc.integer({ min: -5, max: 5 }), { maxLength: 4 });
    case 'record':
      return fc.oneof(fc.constant({}), fc.record({ amr: fc.array(fc.constantFrom('pwd', 'mfa', 'otp'), { maxLength: 3 }) }));
    case 'object':
      return objectOf(t);
  }
}

function objectOf(t: ObjectType): fc.Arbitrary<Attributes> {
  const model: Record<string, fc.Arbitrary<AttrValue>> = {};
  const required: string[] = [];
  for (const [name, a] of t.attributes) {
    model[name] = valueOf(a.type);
    if (!a.optional) required.push(name);
  }
  return fc.record(model, { requiredKeys: required }) as fc.Arbitrary<Attributes>;
}

/** Any JSON values under the declared names: requests the schema would reject. */
function anyValuesOf(t: ObjectType): fc.Arbitrary<Attributes> {
  const model: Record<string, fc.Arbitrary<AttrValue>> = {};
  for (const name of t.attributes.keys()) model[name] = fc.oneof(valueOf(t.attributes.get(name)!.type), fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<AttrValue>);
  return fc.record(model, { requiredKeys: [] }) as fc.Arbitrary<Attributes>;
}

describe('type checking never changes meaning', () => {
  const schema = schemaOf(SHIPPED_SCHEMA.text);
  const typed = compilePolicySet(SHIPPED, { schema: SHIPPED_SCHEMA }).tree;
  const untyped = compilePolicySet(SHIPPED).tree;
  const types = [...typed.resources.keys()];
  const subjectSchema = schema.subject!;
  const contextSchema = schema.context!;
  const now = fc.integer({ min: Date.parse('2026-11-16T00:00:00Z'), max: Date.parse('2026-11-23T23:59:59Z') });

  const requestFrom = (subject: fc.Arbitrary<Attributes>, resourceAttrs: (type: string) => fc.Arbitrary<Attributes>, context: fc.Arbitrary<Attributes>): fc.Arbitrary<Request> =>
    fc.constantFrom(...types).chain((type) =>
      fc.record({
        subject,
        action: fc.constantFrom(...(typed.resources.get(type)?.actions.keys() ?? []), 'print'),
        resource: fc.record({ type: fc.constant(type), id: fc.constantFrom('r1', 'o-1'), attributes: resourceAttrs(type) }),
        context,
      }),
    );

  const same = (req: Request, at: number): void => {
    for (const useIndex of [true, false]) {
      const a = evaluate(typed, req, { now: at, useIndex });
      const b = evaluate(untyped, req, { now: at, useIndex });
      expect({ decision: a.decision, reason: a.reason, rules: a.rules }).toEqual({ decision: b.decision, reason: b.reason, rules: b.rules });
    }
  };

  it('for well-typed random requests, the decision with the schema is the decision without it', () => {
    const wellTyped = requestFrom(objectOf(subjectSchema), (type) => objectOf(schema.resources!.get(type)!.attributes), objectOf(contextSchema));
    let allowed = 0;
    fc.assert(
      fc.property(wellTyped, now, (req, at) => {
        expect(validateAgainstSchema(schema, req)).toEqual([]);
        same(req, at);
        if (evaluate(typed, req, { now: at }).decision === 'ALLOW') allowed++;
      }),
      { numRuns: 2000 },
    );
    // The generator reaches both outcomes, so the comparison means something.
    expect(allowed).toBeGreaterThan(50);
  });

  it('and for requests with values of any type under the declared names', () => {
    const anyTyped = requestFrom(anyValuesOf(subjectSchema), (type) => anyValuesOf(schema.resources!.get(type)!.attributes), anyValuesOf(contextSchema));
    fc.assert(fc.property(anyTyped, now, (req, at) => same(req, at)), { numRuns: 1000 });
  });
});

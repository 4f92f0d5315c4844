/**
 * Differential property tests: the compiled, indexed decision tree must decide
 * exactly as the naive reference evaluator (reference.ts), which walks the
 * syntax tree of every rule, and exactly as the compiled tree with the index
 * switched off.
 *
 * Policy sets are generated as text from a small vocabulary (so that random
 * requests actually hit the generated constants), then parsed and compiled.
 * Every generated set must compile: a compile error here is a generator bug.
 *
 * Below the properties: a table of documented edge cases, where the expected
 * decision is written out so that the reference itself is checked against
 * the language's meaning, and random requests against the shipped policies.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicySet, type Attributes, type DecisionTree } from '../../src/compile/index.js';
import { evaluate, evaluateActions, type Decision, type Request } from '../../src/eval/evaluate.js';
import { loadReference, referenceDecide, type ReferenceDecision, type ReferencePolicySet } from './reference.js';

// ---------------------------------------------------------------- vocabulary

/** Static roles, in hierarchy order: chains only ever point right, so no cycle can be generated. */
const ROLES = ['admin', 'editor', 'viewer', 'auditor', 'support', 'guest'] as const;
const DERIVED = ['owner', 'collab', 'member'] as const;
const TYPES = ['doc', 'folder', 'order'] as const;
const ACTIONS = ['read', 'write', 'delete', 'share'] as const;
const FILES = ['main.policy', 'a/roles.policy', 'z.policy'] as const;

/** Small pools, shared by policies and requests, so that `==` and `in` often hold. */
const STRINGS = ['t0', 't1', 't2', 'a', 'ab', 'eng', 'alice', 'bob', 'k0', 'k1', ''] as const;
const NUMBERS = [-1, 0, -0, 1, 2, 3, 10, 1.5] as const;
/** Number literals as written in policies; `-0` must still equal 0, in a bucket lookup as with `==`. */
const NUMBER_TEXTS = ['-1', '0', '-0', '1', '2', '3', '10', '1.5'] as const;
const TIMESTAMPS = ['2026-01-01T00:00:00Z', '2026-11-23T09:30:00+02:00', '2026-11-22T23:59:59Z'] as const;
/** Around the timestamps above, so that time comparisons go both ways. */
const NOW_BASE = Date.parse('2026-11-23T00:00:00Z');

/** Attribute paths a condition may read, with the kind of value they usually hold. */
const PATHS = {
  string: ['subject.tenant', 'subject.dept', 'subject.sub', 'resource.owner', 'resource.dept', 'resource.kind', 'resource.id', 'resource.type', 'action', 'context.ip', 'subject.profile.team', 'subject["odd key"]', 'resource.meta["owner"]', 'subject.toString'],
  number: ['subject.level', 'resource.level', 'resource.size', 'subject.profile.level'],
  bool: ['subject.active', 'resource.public', 'context.mfa'],
  list: ['subject.groups', 'resource.tags', 'resource.readers', 'subject.scopes', 'subject.roles'],
  time: ['resource.created', 'context.time'],
} as const;
const ALL_PATHS: readonly string[] = Object.values(PATHS).flat();

const q = (s: string): string => JSON.stringify(s);
const strLit = fc.constantFrom(...STRINGS).map(q);
const numLit = fc.constantFrom(...NUMBER_TEXTS);
const boolLit = fc.constantFrom('true', 'false');
const scalarLit = fc.oneof(strLit, numLit, boolLit);
const path = (kind: keyof typeof PATHS): fc.Arbitrary<string> => fc.constantFrom(...PATHS[kind]);
const anyPath = fc.constantFrom(...ALL_PATHS);
/** Lists of literals of one type (the compiler rejects mixed literal lists). */
const litList = fc.oneof(
  fc.array(strLit, { maxLength: 3 }),
  fc.array(numLit, { minLength: 1, maxLength: 3 }),
).map((items) => `[${items.join(', ')}]`);

/**
 * Role tests are placeholders (`@S3`, `@D1`) resolved when a rule is
 * rendered, because which derived roles are in scope depends on the
 * resource type the condition ends up in.
 */
const roleRef = fc.oneof(fc.nat(9).map((k) => `@S${k}`), fc.nat(9).map((k) => `@D${k}`));

/** One test, of every kind the language has. */
const atom: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(path('string'), fc.constantFrom('==', '!='), strLit).map(([p, op, v]) => `${p} ${op} ${v}`) },
  { weight: 2, arbitrary: fc.tuple(path('number'), fc.constantFrom('==', '!=', '<', '<=', '>', '>='), numLit).map(([p, op, v]) => `${p} ${op} ${v}`) },
  { weight: 1, arbitrary: fc.tuple(anyPath, fc.constantFrom('==', '!='), scalarLit).map(([p, op, v]) => `${p} ${op} ${v}`) },
  { weight: 1, arbitrary: fc.tuple(scalarLit, fc.constantFrom('==', '!='), anyPath).map(([v, op, p]) => `${v} ${op} ${p}`) },
  { weight: 2, arbitrary: fc.tuple(anyPath, fc.constantFrom('==', '!=', '<', '>='), anyPath).map(([a, op, b]) => `${a} ${op} ${b}`) },
  { weight: 2, arbitrary: fc.tuple(anyPath, litList).map(([p, l]) => `${p} in ${l}`) },
  { weight: 1, arbitrary: fc.tuple(anyPath, path('list')).map(([p, l]) => `${p} in ${l}`) },
  { weight: 1, arbitrary: fc.tuple(anyPath, anyPath, strLit).map(([p, a, s]) => `${p} in [${a}, ${s}]`) },
  { weight: 2, arbitrary: fc.tuple(path('list'), fc.constantFrom('has', 'contains'), fc.oneof(scalarLit, anyPath)).map(([l, w, v]) => `${l} ${w} ${v}`) },
  { weight: 1, arbitrary: fc.tuple(scalarLit, path('list')).map(([v, l]) => `${v} in ${l}`) },
  // Tests as list items are booleans.
  { weight: 1, arbitrary: fc.tuple(anyPath, anyPath, strLit).map(([p, a, s]) => `${p} in [${a} == ${s}, true]`) },
  // Literal against literal (same type, as the compiler requires).
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.tuple(strLit, fc.constantFrom('==', '!='), strLit).map(([a, op, b]) => `${a} ${op} ${b}`),
      fc.tuple(numLit, fc.constantFrom('==', '!=', '<', '>='), numLit).map(([a, op, b]) => `${a} ${op} ${b}`),
      fc.tuple(fc.constantFrom(...TIMESTAMPS), fc.constantFrom('==', '<'), fc.constantFrom(...TIMESTAMPS)).map(([a, op, b]) => `timestamp(${q(a)}) ${op} timestamp(${q(b)})`),
      fc.tuple(fc.constantFrom('09:30', '12:00'), fc.constantFrom('==', '<='), fc.constantFrom('09:30', '12:00')).map(([a, op, b]) => `time(${q(a)}) ${op} time(${q(b)})`),
    ),
  },
  { weight: 5, arbitrary: roleRef },
  { weight: 1, arbitrary: anyPath.map((p) => `exists(${p})`) },
  { weight: 2, arbitrary: fc.tuple(anyPath, fc.constantFrom('startsWith', 'endsWith'), fc.oneof(strLit, anyPath)).map(([p, m, a]) => `${p}.${m}(${a})`) },
  { weight: 1, arbitrary: fc.tuple(anyPath, fc.constantFrom('a*', '?', '*b', 'al?ce', '')).map(([p, g]) => `${p}.matches(${q(g)})`) },
  { weight: 1, arbitrary: fc.tuple(anyPath, fc.constantFrom('10.0.0.0/8', '192.168.1.1', 'fd00::/8')).map(([p, c]) => `${p}.inCidr(${q(c)})`) },
  { weight: 1, arbitrary: fc.tuple(anyPath, fc.constantFrom('==', '<', '>='), numLit).map(([p, op, n]) => `${p}.size() ${op} ${n}`) },
  { weight: 1, arbitrary: fc.tuple(anyPath, fc.constantFrom('containsAny', 'containsAll'), fc.oneof(litList, path('list'))).map(([p, m, l]) => `${p}.${m}(${l})`) },
  { weight: 2, arbitrary: fc.oneof(path('bool'), anyPath, boolLit) },
  { weight: 2, arbitrary: fc.tuple(anyPath, fc.constantFrom('==', '!=', '<', '>='), fc.constantFrom(...TIMESTAMPS)).map(([p, op, t]) => `${p} ${op} timestamp(${q(t)})`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...TIMESTAMPS), fc.constantFrom('<', '=='), path('time')).map(([t, op, p]) => `timestamp(${q(t)}) ${op} ${p}`) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(path('time'), fc.constantFrom('', '"+02:00"', '"-05:30"'), fc.constantFrom('<', '>=', '=='), fc.constantFrom('09:30', '12:00', '00:00'))
      .map(([p, off, op, t]) => `${p}.timeOfDay(${off}) ${op} time(${q(t)})`),
  },
  { weight: 1, arbitrary: fc.tuple(path('time'), fc.constantFrom('', '"+02:00"')).map(([p, off]) => `${p}.dayOfWeek(${off}) in ["sat", "sun", "mon"]`) },
);

/** Conditions: atoms under not / and / or, up to `depth` levels, sometimes used as boolean values. */
function condition(depth: number): fc.Arbitrary<string> {
  if (depth === 0) return atom;
  const sub = condition(depth - 1);
  return fc.oneof(
    { weight: 4, arbitrary: atom },
    { weight: 1, arbitrary: sub.map((c) => `not ${c.startsWith('not ') ? c : `(${c})`}`) },
    { weight: 2, arbitrary: fc.array(sub, { minLength: 2, maxLength: 3 }).map((cs) => `(${cs.join(' and ')})`) },
    { weight: 2, arbitrary: fc.array(sub, { minLength: 2, maxLength: 3 }).map((cs) => `(${cs.join(' or ')})`) },
    { weight: 1, arbitrary: fc.tuple(sub, fc.constantFrom('==', '!='), boolLit).map(([c, op, b]) => `(${c}) ${op} ${b}`) },
  );
}
const cond = condition(2);

// ---------------------------------------------------------------- policy model

interface RuleModel {
  readonly named: boolean;
  readonly effect: 'permit' | 'forbid';
  /** `null` for `*`; otherwise indices into the type's actions. */
  readonly actions: readonly number[] | null;
  readonly when: string | null;
  readonly unless: string | null;
}

interface PolicyModel {
  readonly chains: readonly (readonly string[])[];
  /**
   * Derived roles. A name may be defined again for other resource types, with another condition;
   * `types` null means every type (rendered `*` when nothing else claimed the name).
   */
  readonly derived: ReadonlyArray<{ readonly name: number; readonly types: readonly number[] | null; readonly when: string | null; readonly unless: string | null }>;
  readonly types: ReadonlyArray<{ readonly actions: readonly string[]; readonly rules: readonly RuleModel[] }>;
  /** Rules of the indexable shape, added to type `bigType`. */
  readonly bigType: number;
  readonly big: readonly RuleModel[];
  /** Which file each declaration goes to (cycled). */
  readonly fileOf: readonly number[];
}

const ruleArb: fc.Arbitrary<RuleModel> = fc.record({
  named: fc.boolean(),
  effect: fc.constantFrom('permit', 'permit', 'permit', 'forbid'),
  actions: fc.option(fc.array(fc.nat(3), { minLength: 1, maxLength: 3 }), { freq: 4 }),
  when: fc.option(cond, { freq: 6 }),
  unless: fc.option(cond, { freq: 1 }),
});

/**
 * The indexable shape: `subject.tenant == "tK" and subject.role("r") and …`,
 * with other shared `==` tests (resource.kind, numbers, booleans, action)
 * so that the index builds nested switches, and one random conjunct.
 */
const bigRuleArb: fc.Arbitrary<RuleModel> = fc
  .record({
    named: fc.boolean(),
    effect: fc.constantFrom('permit', 'permit', 'permit', 'permit', 'forbid'),
    actions: fc.option(fc.array(fc.nat(3), { minLength: 1, maxLength: 2 }), { freq: 4 }),
    tenant: fc.nat(4),
    role: roleRef,
    extra: fc.subarray([
      fc.constantFrom('k0', 'k1', 'k2').map((k) => `resource.kind == ${q(k)}`),
      fc.constantFrom(0, 1, 2).map((n) => `subject.level == ${n}`),
      fc.constantFrom('subject.active == true', 'resource.public == false'),
      fc.constantFrom(...ACTIONS).map((a) => `action == ${q(a)}`),
      atom,
      cond,
    ]),
    shuffle: fc.nat(),
    unless: fc.option(atom, { freq: 5 }),
  })
  .chain((r) =>
    fc.tuple(...r.extra).map((extra) => {
      const parts = [`subject.tenant == ${q(`t${r.tenant}`)}`, r.role, ...extra];
      // Conjunct order must not matter: rotate it.
      const k = r.shuffle % parts.length;
      const when = [...parts.slice(k), ...parts.slice(0, k)].join(' and ');
      return { named: r.named, effect: r.effect, actions: r.actions, when, unless: r.unless };
    }),
  );

const policyArb = (bigCount: { min: number; max: number }): fc.Arbitrary<PolicyModel> =>
  fc.record({
    chains: fc.array(fc.subarray([...ROLES], { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
    derived: fc.array(
      fc.record({
        name: fc.nat(DERIVED.length - 1),
        types: fc.option(fc.subarray([0, 1, 2], { minLength: 1 }), { freq: 2 }),
        when: fc.option(cond, { freq: 8 }),
        unless: fc.option(atom, { freq: 2 }),
      }),
      { maxLength: 4 },
    ),
    types: fc.array(
      fc.record({
        actions: fc.subarray([...ACTIONS], { minLength: 1 }),
        rules: fc.array(ruleArb, { maxLength: 12 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    bigType: fc.nat(2),
    // size 'max': spread lengths over the whole range instead of fast-check's default bias to short arrays.
    big: fc.array(bigRuleArb, { minLength: bigCount.min, maxLength: bigCount.max, size: 'max' }),
    fileOf: fc.array(fc.nat(2), { minLength: 1, maxLength: 6 }),
  });

/** Replaces role placeholders with role tests that compile in this scope. */
function resolveRoles(text: string, statics: readonly string[], derived: readonly string[]): string {
  return text.replace(/@([SD])(\d+)/g, (_, kind: string, n: string) => {
    const k = Number(n);
    const pool = kind === 'D' && derived.length > 0 ? derived : statics;
    return `subject.role(${q(pool[k % pool.length] as string)})`;
  });
}

/** Renders a model as policy files. Declarations are spread over files to exercise cross-file lookups. */
function render(m: PolicyModel): Array<{ path: string; text: string }> {
  const statics = [...new Set(m.chains.flat())];
  const typeNames = m.types.map((_, i) => TYPES[i] as string);
  // definedFor[type][name] = the declaration index that defines derived role `name` for `type`.
  const definedFor = new Map<string, Map<string, number>>(typeNames.map((t) => [t, new Map()]));
  const decls: string[] = [];
  decls.push(`roles {\n${m.chains.map((c) => `  ${c.join(' > ')}`).join('\n')}\n}`);
  m.derived.forEach((d, i) => {
    const name = DERIVED[d.name] as string;
    const wanted = d.types === null ? typeNames : typeNames.filter((_, ti) => d.types?.includes(ti));
    // A name defined twice for one type is an error: leave out the types that already have it.
    const types = wanted.filter((t) => !definedFor.get(t)?.has(name));
    if (types.length === 0) return;
    // References go only to roles that earlier declarations define for every one of these types,
    // so derived roles can never depend on each other in a cycle.
    const inScope = DERIVED.filter((r) => types.every((t) => (definedFor.get(t)?.get(r) ?? i) < i));
    for (const t of types) definedFor.get(t)?.set(name, i);
    const when = d.when === null && d.unless === null ? 'true' : d.when;
    decls.push(
      `derive ${name} for ${d.types === null && types.length === typeNames.length ? '*' : types.join(', ')}` +
        (when === null ? '' : ` when ${resolveRoles(when, statics, inScope)}`) +
        (d.unless === null ? '' : `\n  unless ${resolveRoles(d.unless, statics, inScope)}`),
    );
  });
  m.types.forEach((t, ti) => {
    const type = typeNames[ti] as string;
    const derived = [...(definedFor.get(type)?.keys() ?? [])];
    const rules = ti === m.bigType % m.types.length ? [...t.rules, ...m.big] : t.rules;
    const lines = rules.map((r, ri) => {
      const actions = r.actions === null ? '*' : [...new Set(r.actions.map((a) => t.actions[a % t.actions.length] as string))].join(', ');
      const name = r.named ? `rule r${ri}: ` : '';
      const when = r.when === null ? '' : ` when ${resolveRoles(r.when, statics, derived)}`;
      const unless = r.unless === null ? '' : ` unless ${resolveRoles(r.unless, statics, derived)}`;
      // Some rules span lines: an unnamed rule's id is the line it starts on.
      return `  ${name}${r.effect} ${actions}${ri % 3 === 1 ? '\n   ' : ''}${when}${unless}`;
    });
    decls.push(`resource ${type} {\n  actions ${t.actions.join(', ')}\n${lines.join('\n')}\n}`);
  });
  const files = new Map<string, string[]>();
  decls.forEach((d, i) => {
    const file = FILES[(m.fileOf[i % m.fileOf.length] ?? 0) % FILES.length] as string;
    files.set(file, [...(files.get(file) ?? []), d]);
  });
  return [...files].map(([p, ds]) => ({ path: p, text: `# generated\n${ds.join('\n\n')}\n` }));
}

// ---------------------------------------------------------------- requests

const scalarVal = fc.oneof(fc.constantFrom(...STRINGS), fc.constantFrom(...NUMBERS), fc.boolean());
/** Attribute values: usually a pool scalar, sometimes null, a list, an object or a timestamp. */
const attrVal: fc.Arbitrary<Attributes[string]> = fc.oneof(
  { weight: 6, arbitrary: scalarVal },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 3, arbitrary: fc.array(scalarVal, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.record({ team: scalarVal, level: scalarVal, owner: scalarVal }, { requiredKeys: [] }) },
  { weight: 2, arbitrary: fc.oneof(fc.constantFrom(...TIMESTAMPS), fc.constantFrom('10.1.2.3', 'fd00::1', '192.168.1.1', 'not-a-time'), fc.integer({ min: 1_700_000_000, max: 1_800_000_000 })) },
);
const attrs = (keys: readonly string[]): fc.Arbitrary<Attributes> =>
  fc
    .record(Object.fromEntries(keys.map((k) => [k, attrVal])) as Record<string, fc.Arbitrary<Attributes[string]>>, { requiredKeys: [] })
    // Keys are left out, never set to undefined (JSON has no undefined); the filter only narrows the type.
    .map((o) => Object.fromEntries(Object.entries(o).filter((e): e is [string, Attributes[string]] => e[1] !== undefined)));

const rolesVal: fc.Arbitrary<Attributes[string]> = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.constantFrom<string>(...ROLES, ...DERIVED, 'nobody'), { maxLength: 4 }) },
  // Non-strings inside the list are ignored; a string instead of a list holds no role.
  { weight: 1, arbitrary: fc.array(fc.oneof(fc.constantFrom<string>(...ROLES), fc.constant(null), fc.constant(1)), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.oneof(fc.constant('admin'), fc.constant(null)) },
);

/** A request, with its resource type and action still to be picked from the policy set it is checked against. */
interface RequestModel {
  readonly subject: Attributes;
  /** A number picks a declared type; a string is an unknown type. */
  readonly type: number | string;
  /** A number picks a declared action of the type; a string is an undeclared action. */
  readonly action: number | string;
  readonly id: string | undefined;
  readonly attributes: Attributes | undefined;
  readonly context: Attributes | undefined;
}

const requestArb: fc.Arbitrary<RequestModel> = fc
  .record({
    subject: attrs(['tenant', 'dept', 'sub', 'level', 'active', 'groups', 'scopes', 'profile', 'odd key', 'toString']),
    roles: fc.option(rolesVal, { freq: 8 }),
    tenant: fc.option(fc.oneof(fc.constantFrom('t0', 't1', 't2', 't3', 't4'), fc.constant(0)), { freq: 3 }),
    type: fc.oneof({ weight: 12, arbitrary: fc.nat(2) }, { weight: 1, arbitrary: fc.constantFrom('unknown', '__proto__') }),
    action: fc.oneof({ weight: 12, arbitrary: fc.nat(3) }, { weight: 1, arbitrary: fc.constantFrom<string>(...ACTIONS, 'toString') }),
    id: fc.option(fc.constantFrom('a', 'alice', ''), { nil: undefined }),
    attributes: fc.option(attrs(['owner', 'dept', 'kind', 'level', 'size', 'public', 'tags', 'readers', 'created', 'meta', 'type', 'id']), { nil: undefined }),
    context: fc.option(attrs(['ip', 'time', 'mfa']), { nil: undefined }),
  })
  .map((r) => {
    // The tenant is the index's main switch: bias it towards the generated constants.
    const subject: Record<string, Attributes[string]> = { ...r.subject };
    if (r.roles !== null) subject['roles'] = r.roles;
    if (r.tenant !== null) subject['tenant'] = r.tenant;
    return { subject, type: r.type, action: r.action, id: r.id, attributes: r.attributes, context: r.context };
  });

/** The request for a policy set: mostly declared types and actions, so that rules get evaluated. */
function toRequest(m: PolicyModel, r: RequestModel): Request {
  const t = typeof r.type === 'number' ? m.types[r.type % m.types.length] : undefined;
  const type = t === undefined ? String(r.type) : (TYPES[m.types.indexOf(t)] as string);
  const action = t === undefined || typeof r.action === 'string' ? String(r.action) : (t.actions[r.action % t.actions.length] as string);
  const resource: { type: string; id?: string; attributes?: Attributes } = { type };
  if (r.id !== undefined) resource.id = r.id;
  if (r.attributes !== undefined) resource.attributes = r.attributes;
  return r.context === undefined ? { subject: r.subject, action, resource } : { subject: r.subject, action, resource, context: r.context };
}

const nowArb = fc.integer({ min: NOW_BASE - 3 * 86_400_000, max: NOW_BASE + 3 * 86_400_000 });

// ---------------------------------------------------------------- properties

interface Compiled {
  readonly tree: DecisionTree;
  readonly reference: ReferencePolicySet;
  readonly sources: ReadonlyArray<{ path: string; text: string }>;
}

/** Compiles a model; every generated set must compile, so a CompileError fails the property with its diagnostics. */
function build(m: PolicyModel): Compiled {
  const sources = render(m);
  const { tree } = compilePolicySet(sources);
  return { tree, reference: loadReference(sources), sources };
}

const decisionOf = (d: { decision: string; reason: string; rules: readonly string[] }): ReferenceDecision =>
  ({ decision: d.decision, reason: d.reason, rules: [...d.rules] }) as ReferenceDecision;

/** What a failing assertion prints: the policy text and the request, ready to paste into a repro. */
const repro = (sources: ReadonlyArray<{ path: string; text: string }>, req: Request, now: number): string =>
  `${sources.map((f) => `--- ${f.path}\n${f.text}`).join('')}--- request (now=${now})\n${JSON.stringify(req)}`;

/** Decides with the reference and with the compiled tree, indexed and not: all three must agree. */
function expectAgreement(c: Compiled, req: Request, now: number): void {
  const want = referenceDecide(c.reference, req, now);
  expect(decisionOf(evaluate(c.tree, req, { now })), repro(c.sources, req, now)).toEqual(want);
  expect(decisionOf(evaluate(c.tree, req, { now, useIndex: false })), repro(c.sources, req, now)).toEqual(want);
}

const checkRequests = fc.array(fc.tuple(requestArb, nowArb), { minLength: 4, maxLength: 10 });

describe('compiled decision tree vs. reference evaluator', () => {
  // Two size classes: small sets test the semantics rule by rule; big ones make the index build real switch nodes.
  it.each([
    { name: 'mixed rules, a few indexable ones', big: { min: 0, max: 12 }, runs: 300 },
    { name: 'sets with 20-200 indexable rules', big: { min: 20, max: 200 }, runs: 150 },
  ])('$name: indexed == reference == unindexed', ({ big, runs }) => {
    fc.assert(
      fc.property(policyArb(big), checkRequests, (model, requests) => {
        const c = build(model);
        for (const [r, now] of requests) expectAgreement(c, toRequest(model, r), now);
      }),
      { numRuns: runs },
    );
  });

  it('explain mode decides the same and lists the deciding rule as matched', () => {
    fc.assert(
      fc.property(policyArb({ min: 0, max: 60 }), checkRequests, (model, requests) => {
        const c = build(model);
        for (const [r, now] of requests) {
          const req = toRequest(model, r);
          const want = referenceDecide(c.reference, req, now);
          for (const useIndex of [true, false]) {
            const got = evaluate(c.tree, req, { now, explain: true, useIndex });
            const msg = repro(c.sources, req, now);
            expect({ decision: got.decision, reason: got.reason }, msg).toEqual({ decision: want.decision, reason: want.reason });
            // Explain lists every applying rule of the deciding effect, in policy order: the first is the decider.
            expect(got.rules[0], msg).toBe(want.rules[0]);
            if (want.rules[0] !== undefined) expect(got.trace?.matched, msg).toContain(want.rules[0]);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('evaluateActions decides each action as evaluate does, sharing one context across them', () => {
    const actionLists = fc.array(fc.constantFrom(...ACTIONS, 'fly'), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(policyArb({ min: 0, max: 60 }), fc.array(fc.tuple(requestArb, nowArb, actionLists), { minLength: 2, maxLength: 6 }), (model, requests) => {
        const c = build(model);
        for (const [r, now, actions] of requests) {
          const { action: _asked, ...rest } = toRequest(model, r);
          const got: Decision[] = [];
          evaluateActions(c.tree, rest, actions, now, got);
          const want = actions.map((action) => evaluate(c.tree, { ...rest, action }, { now }));
          expect(got, repro(c.sources, { ...rest, action: actions.join(',') }, now)).toEqual(want);
        }
        // A batch: one subject (and context and clock) over every item's resource, one scratch for all.
        const first = toRequest(model, requests[0]![0]);
        const now = requests[0]![1];
        const scratch = {};
        for (const [r, , actions] of requests) {
          const item = { subject: first.subject, resource: toRequest(model, r).resource, ...(first.context === undefined ? {} : { context: first.context }) };
          const got: Decision[] = [];
          evaluateActions(c.tree, item, actions, now, got, scratch);
          const want = actions.map((action) => evaluate(c.tree, { ...item, action }, { now }));
          expect(got, repro(c.sources, { ...item, action: actions.join(',') }, now)).toEqual(want);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('generates sets whose index actually switches (guards the generator)', () => {
    // Without this, a generator change could silently produce only leaf nodes and test nothing.
    const sample = fc.sample(policyArb({ min: 60, max: 120 }), { numRuns: 10, seed: 42 });
    const kinds = new Set<string>();
    for (const m of sample) {
      for (const r of build(m).tree.resources.values()) for (const a of r.actions.values()) kinds.add(a.permits.kind);
    }
    expect(kinds).toContain('eq');
  });
});

// ---------------------------------------------------------------- documented edge cases

/** A one-file policy set around `rules`, with a hierarchy and a derived role for the edge cases below. */
const edgePolicy = (rules: string): Compiled => {
  const text = `roles {\n  admin > editor > viewer\n  suspended\n}\nderive owner for doc when resource.owner == subject.sub\nresource doc {\n  actions read, write\n${rules}\n}\n`;
  const sources = [{ path: 'p.policy', text }];
  return { tree: compilePolicySet(sources).tree, reference: loadReference(sources), sources };
};
const EDGE_NOW = Date.parse('2026-06-01T12:00:00Z');
const docRequest = (subject: Attributes, over: Partial<Request> = {}): Request => ({ subject, action: 'read', resource: { type: 'doc' }, ...over });
const allow = (rule: string): Pick<ReferenceDecision, 'decision' | 'rules'> => ({ decision: 'ALLOW', rules: [rule] });
const deny = (rule?: string): Pick<ReferenceDecision, 'decision' | 'rules'> => ({ decision: 'DENY', rules: rule === undefined ? [] : [rule] });
/** Twelve rules on `subject.level`, so that the index switches on it (the 0 is written `-0`). */
const levelRules = Array.from({ length: 12 }, (_, k) => `  rule l${k}: permit read when subject.level == ${k === 0 ? '-0' : k}`).join('\n');

describe('documented edge cases: the reference means what the language documents, and the compiled tree agrees', () => {
  it.each([
    { name: 'a role implies the roles below it', rules: 'rule v: permit read when subject.role("viewer")', req: docRequest({ roles: ['admin'] }), want: allow('doc.v') },
    { name: 'a role does not imply the roles above it', rules: 'rule e: permit read when subject.role("editor")', req: docRequest({ roles: ['viewer'] }), want: deny() },
    { name: '`roles` that is not a list holds no role', rules: 'rule a: permit read when subject.role("admin")', req: docRequest({ roles: 'admin' }), want: deny() },
    { name: 'non-strings in `roles` are ignored', rules: 'rule a: permit read when subject.role("admin")', req: docRequest({ roles: [1, null, 'admin'] }), want: allow('doc.a') },
    { name: 'a derived role holds by its condition', rules: 'rule o: permit read when subject.role("owner")', req: docRequest({ sub: 'al' }, { resource: { type: 'doc', attributes: { owner: 'al' } } }), want: allow('doc.o') },
    { name: 'naming a derived role in `roles` does not grant it', rules: 'rule o: permit read when subject.role("owner")', req: docRequest({ sub: 'al', roles: ['owner'] }, { resource: { type: 'doc', attributes: { owner: 'bo' } } }), want: deny() },
    { name: '`!=` holds on a missing attribute (it is `not ==`)', rules: 'rule n: permit read when subject.dept != "eng"', req: docRequest({}), want: allow('doc.n') },
    { name: 'JSON null is missing', rules: 'rule x: permit read when exists(subject.dept)', req: docRequest({ dept: null }), want: deny() },
    { name: 'values of different types are never equal', rules: 'rule l: permit read when subject.level == 1', req: docRequest({ level: '1' }), want: deny() },
    { name: '`-0` equals 0, through the index too', rules: levelRules, req: docRequest({ level: 0 }), want: allow('doc.l0') },
    { name: 'an empty resource id is missing', rules: 'rule i: permit read when exists(resource.id)', req: docRequest({}, { resource: { type: 'doc', id: '' } }), want: deny() },
    { name: '`context.time` defaults to the decision clock', rules: 'rule t: permit read when context.time >= timestamp("2026-01-01T00:00:00Z")', req: docRequest({}, { context: { time: null } }), want: allow('doc.t') },
    { name: 'epoch seconds compare with timestamp literals', rules: 'rule t: permit read when context.time == timestamp("2026-01-01T00:00:00Z")', req: docRequest({}, { context: { time: 1_767_225_600 } }), want: allow('doc.t') },
    { name: 'forbid overrides permit; the first forbid in policy order decides', rules: 'rule p: permit read\n  rule f1: forbid *\n  rule f2: forbid read', req: docRequest({}), want: deny('doc.f1') },
    { name: 'an unnamed rule is named by file and line', rules: '  rule w: permit write\n  permit read', req: docRequest({}), want: allow('p.policy:9') },
    { name: 'an undeclared action is denied', rules: 'rule p: permit *', req: docRequest({}, { action: 'delete' }), want: deny() },
    { name: 'an unknown resource type is denied', rules: 'rule p: permit *', req: docRequest({}, { resource: { type: 'folder' } }), want: deny() },
    {
      // Found by this suite: the compiled tree reads only the first 1024 roles, so a forbid on a later role fails open.
      name: 'every role in `roles` counts, however long the list',
      rules: 'rule ok: permit read when subject.role("admin")\n  rule block: forbid read when subject.role("suspended")',
      req: docRequest({ roles: ['admin', ...Array.from({ length: 1024 }, (_, i) => `filler${i}`), 'suspended'] }),
      want: deny('doc.block'),
    },
    {
      // Found by this suite: the compiled tree reads `resource.type.x` from the attributes, not through the type.
      name: '`resource.type.x` reads through the type string: missing',
      rules: 'rule t: permit read when exists(resource.type.x)',
      req: docRequest({}, { resource: { type: 'doc', attributes: { type: { x: 1 } } } }),
      want: deny(),
    },
  ])('$name', ({ rules, req, want }) => {
    const c = edgePolicy(rules);
    const ref = referenceDecide(c.reference, req, EDGE_NOW);
    expect({ decision: ref.decision, rules: ref.rules }, 'the reference itself').toEqual(want);
    expectAgreement(c, req, EDGE_NOW);
  });
});

// ---------------------------------------------------------------- the shipped policies

const POLICY_DIR = join(import.meta.dirname, '..', '..', 'policies');
const shipped = (): Compiled => {
  const sources = readdirSync(POLICY_DIR)
    .filter((f) => f.endsWith('.policy'))
    .map((f) => ({ path: f, text: readFileSync(join(POLICY_DIR, f), 'utf8') }));
  return { tree: compilePolicySet(sources).tree, reference: loadReference(sources), sources };
};

/** Values the shipped policies test for, so that random requests reach their rules. */
const SHIPPED_VALUES = [
  'alice', 'bob', 'public', 'internal', 'secret', 'engineering', 'finance', 'shareable', 'x@partner.example',
  '/drafts/a', '/docs/a', 'orders:read', 'orders:write', 'orders:export', 'finance-ops', 'eu', 'Q1 x-report',
  'embargoed', '10.1.2.3', 'fd00::1', '8.8.8.8', '2026-11-23T10:15:00Z', '2025-12-31T23:00:00Z', 'c-77',
  0, 3, 120, 5000, 20000, true, false,
] as const;
const shippedScalar = fc.constantFrom(...SHIPPED_VALUES);
const shippedVal: fc.Arbitrary<Attributes[string]> = fc.oneof({ weight: 3, arbitrary: shippedScalar }, fc.array(shippedScalar, { maxLength: 3 }), fc.constant(null));
const shippedAttrs = (keys: readonly string[]): fc.Arbitrary<Attributes> =>
  fc.record(Object.fromEntries(keys.map((k) => [k, shippedVal])) as Record<string, fc.Arbitrary<Attributes[string]>>, { requiredKeys: [] })
    .map((o) => Object.fromEntries(Object.entries(o).filter((e): e is [string, Attributes[string]] => e[1] !== undefined)));
const shippedRequest: fc.Arbitrary<Request> = fc
  .record({
    subject: shippedAttrs(['sub', 'department', 'suspended', 'scopes', 'frozen_regions', 'groups']),
    roles: fc.array(fc.constantFrom('admin', 'editor', 'viewer', 'auditor', 'support', 'owner', 'finance'), { maxLength: 3 }),
    target: fc.constantFrom(
      ...[
        ['document', ['read', 'update', 'delete', 'share', 'comment']],
        ['folder', ['list', 'create_document', 'delete']],
        ['order', ['read', 'create', 'refund', 'export']],
        ['report', ['read', 'publish', 'delete']],
      ].flatMap(([t, as]) => (as as string[]).map((a) => [t as string, a] as const)),
    ),
    id: fc.option(fc.constantFrom('d1', ''), { nil: undefined }),
    attributes: shippedAttrs(['classification', 'department', 'owner', 'tags', 'audience', 'archived', 'path', 'document_count', 'collaborators', 'locked', 'customer', 'amount', 'region', 'name', 'readers', 'labels']),
    context: shippedAttrs(['ip', 'time']),
  })
  .map((r) => {
    const resource = r.id === undefined ? { type: r.target[0], attributes: r.attributes } : { type: r.target[0], id: r.id, attributes: r.attributes };
    return { subject: { ...r.subject, roles: r.roles }, action: r.target[1], resource, context: r.context };
  });

describe('the shipped policies (policies/*.policy)', () => {
  const c = shipped();

  it.each(readdirSync(join(POLICY_DIR, 'examples')).filter((f) => f.endsWith('.json')))('reference and compiled agree on examples/%s', (file) => {
    const req = JSON.parse(readFileSync(join(POLICY_DIR, 'examples', file), 'utf8')) as Request;
    expectAgreement(c, req, Date.parse('2026-11-23T10:15:00Z'));
  });

  it('reference and compiled agree on random requests', () => {
    fc.assert(
      fc.property(shippedRequest, nowArb, (req, now) => expectAgreement(c, req, now)),
      { numRuns: 2000 },
    );
  });
});

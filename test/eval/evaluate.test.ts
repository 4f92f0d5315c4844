import { describe, expect, it } from 'vitest';
import { compilePolicySet, type Attributes, type DecisionTree } from '../../src/compile/index.js';
import { evaluate, evaluateActions, type Decision, type Request } from '../../src/eval/evaluate.js';

const NOW = Date.parse('2026-11-23T10:00:00Z'); // a Monday

function compile(text: string): DecisionTree {
  return compilePolicySet([{ path: 'test.policy', text }]).tree;
}

/** Decides with the index and without it, and checks both paths agree. */
function decide(tree: DecisionTree, req: Request, now = NOW): ReturnType<typeof evaluate> {
  const indexed = evaluate(tree, req, { now });
  const scanned = evaluate(tree, req, { now, useIndex: false });
  expect(scanned).toEqual(indexed);
  return indexed;
}

/**
 * A one-rule policy: `permit read when <cond>`; returns whether a request
 * with the given attributes is allowed.
 */
function holds(cond: string, subject: Attributes = {}, resource: Attributes = {}, context: Attributes = {}): boolean {
  const tree = compile(`roles { admin > editor > viewer }\nresource doc { actions read\n permit read when ${cond} }`);
  return decide(tree, { subject, action: 'read', resource: { type: 'doc', id: 'd1', attributes: resource }, context }).decision === 'ALLOW';
}

interface OpCase {
  cond: string;
  subject?: Attributes;
  resource?: Attributes;
  context?: Attributes;
  want: boolean;
}

describe('operators', () => {
  it.each<OpCase>([
    // equality: same type and value; other types never equal; missing never equal
    { cond: 'subject.a == "x"', subject: { a: 'x' }, want: true },
    { cond: 'subject.a == "x"', subject: { a: 'y' }, want: false },
    { cond: 'subject.a == "1"', subject: { a: 1 }, want: false },
    { cond: 'subject.a == 1', subject: { a: 1 }, want: true },
    { cond: 'subject.a == 1.5', subject: { a: 1.5 }, want: true },
    { cond: 'subject.a == true', subject: { a: 'true' }, want: false },
    { cond: 'subject.a == "x"', subject: {}, want: false },
    { cond: 'subject.a == "x"', subject: { a: null }, want: false },
    { cond: 'subject.a == subject.b', subject: { a: 'x', b: 'x' }, want: true },
    { cond: 'subject.a == subject.b', subject: {}, want: false },
    { cond: 'subject.a == subject.b', subject: { a: ['x'], b: ['x'] }, want: false },
    // != is exactly `not ==`: a missing attribute is unequal to everything
    { cond: 'subject.a != "x"', subject: { a: 'y' }, want: true },
    { cond: 'subject.a != "x"', subject: { a: 'x' }, want: false },
    { cond: 'subject.a != "x"', subject: {}, want: true },
    { cond: 'subject.a != subject.b', subject: { a: 1, b: '1' }, want: true },
    // ordering: numbers only
    { cond: 'subject.n < 5', subject: { n: 4 }, want: true },
    { cond: 'subject.n < 5', subject: { n: 5 }, want: false },
    { cond: 'subject.n <= 5', subject: { n: 5 }, want: true },
    { cond: 'subject.n > 5', subject: { n: 6 }, want: true },
    { cond: 'subject.n >= 5', subject: { n: 5 }, want: true },
    { cond: 'subject.n >= 5', subject: { n: '9' }, want: false },
    { cond: 'subject.n >= 5', subject: {}, want: false },
    { cond: 'not subject.n >= 5', subject: {}, want: true },
    { cond: 'subject.n > -1.5', subject: { n: -1 }, want: true },
    // membership
    { cond: 'subject.a in ["x", "y"]', subject: { a: 'y' }, want: true },
    { cond: 'subject.a in ["x", "y"]', subject: { a: 'z' }, want: false },
    { cond: 'subject.a in [1, 2]', subject: { a: '1' }, want: false },
    { cond: 'subject.a in []', subject: { a: 'x' }, want: false },
    { cond: 'subject.a in subject.list', subject: { a: 'x', list: ['w', 'x'] }, want: true },
    { cond: 'subject.a in subject.list', subject: { a: 'x', list: 'x' }, want: false },
    { cond: 'subject.a in [subject.b, "q"]', subject: { a: 'x', b: 'x' }, want: true },
    { cond: 'subject.scopes has "orders:read"', subject: { scopes: ['orders:read'] }, want: true },
    { cond: 'subject.scopes has "orders:read"', subject: { scopes: ['orders:write'] }, want: false },
    { cond: 'subject.scopes has "orders:read"', subject: {}, want: false },
    { cond: 'subject.groups contains "ops"', subject: { groups: ['ops'] }, want: true },
    { cond: 'subject.scopes.containsAny(["a", "b"])', subject: { scopes: ['b'] }, want: true },
    { cond: 'subject.scopes.containsAny(["a", "b"])', subject: { scopes: ['c'] }, want: false },
    { cond: 'subject.scopes.containsAll(["a", "b"])', subject: { scopes: ['a', 'b', 'c'] }, want: true },
    { cond: 'subject.scopes.containsAll(["a", "b"])', subject: { scopes: ['a'] }, want: false },
    { cond: 'subject.scopes.containsAll([])', subject: {}, want: false },
    { cond: 'subject.scopes.size() == 2', subject: { scopes: ['a', 'b'] }, want: true },
    { cond: 'subject.name.size() > 3', subject: { name: 'abcd' }, want: true },
    { cond: 'subject.scopes.size() == 0', subject: {}, want: false },
    // logic
    { cond: 'subject.a == 1 and subject.b == 2', subject: { a: 1, b: 2 }, want: true },
    { cond: 'subject.a == 1 and subject.b == 2', subject: { a: 1 }, want: false },
    { cond: 'subject.a == 1 or subject.b == 2', subject: { b: 2 }, want: true },
    { cond: 'not subject.a == 1', subject: { a: 2 }, want: true },
    { cond: 'not not subject.a == 1', subject: { a: 1 }, want: true },
    { cond: 'subject.a == 1 or subject.b == 2 and subject.c == 3', subject: { a: 1 }, want: true },
    { cond: '(subject.a == 1 or subject.b == 2) and subject.c == 3', subject: { a: 1 }, want: false },
    { cond: 'subject.flag', subject: { flag: true }, want: true },
    { cond: 'subject.flag', subject: { flag: 'true' }, want: false },
    { cond: 'true', subject: {}, want: true },
    { cond: 'false', subject: {}, want: false },
    // strings: prefix, suffix, glob
    { cond: 'subject.email.endsWith("@example.com")', subject: { email: 'a@example.com' }, want: true },
    { cond: 'subject.email.endsWith("@example.com")', subject: { email: 'a@example.com.evil' }, want: false },
    { cond: 'subject.path.startsWith("/home/")', subject: { path: '/home/a' }, want: true },
    { cond: 'subject.path.startsWith(subject.home)', subject: { path: '/home/a/x', home: '/home/a' }, want: true },
    { cond: 'subject.path.startsWith(subject.home)', subject: { path: '/home/a/x' }, want: false },
    { cond: 'subject.name.matches("Q? *-report")', subject: { name: 'Q3 sales-report' }, want: true },
    { cond: 'subject.name.matches("Q? *-report")', subject: { name: 'Q34 sales-report' }, want: false },
    { cond: 'subject.name.matches("a\\\\*b")', subject: { name: 'a*b' }, want: true },
    { cond: 'subject.name.matches("a\\\\*b")', subject: { name: 'axb' }, want: false },
    { cond: 'subject.name.matches("*")', subject: { name: 7 }, want: false },
    // networks
    { cond: 'context.ip.inCidr("10.0.0.0/8")', context: { ip: '10.9.8.7' }, want: true },
    { cond: 'context.ip.inCidr("10.0.0.0/8")', context: { ip: '11.0.0.1' }, want: false },
    { cond: 'context.ip.inCidr("10.0.0.0/8")', context: { ip: '::ffff:10.1.2.3' }, want: true },
    { cond: 'context.ip.inCidr("10.0.0.0/8")', context: { ip: 'not-an-ip' }, want: false },
    { cond: 'context.ip.inCidr("2001:db8::/32")', context: { ip: '2001:db8::1' }, want: true },
    { cond: 'context.ip.inCidr("192.168.1.7")', context: { ip: '192.168.1.7' }, want: true },
    // presence
    { cond: 'exists(subject.a)', subject: { a: 0 }, want: true },
    { cond: 'exists(subject.a)', subject: { a: null }, want: false },
    { cond: 'exists(subject.a.b)', subject: { a: { b: false } }, want: true },
    { cond: 'not exists(subject.a)', subject: {}, want: true },
    // nested and bracket paths; no prototype reads
    { cond: 'subject.claims["https://example.com/roles"] has "x"', subject: { claims: { 'https://example.com/roles': ['x'] } }, want: true },
    { cond: 'subject.a.b.c == 1', subject: { a: { b: { c: 1 } } }, want: true },
    { cond: 'subject.a.b.c == 1', subject: { a: [{ b: { c: 1 } }] }, want: false },
    { cond: 'exists(subject.constructor)', subject: {}, want: false },
    { cond: 'exists(subject.toString)', subject: {}, want: false },
    { cond: 'exists(subject["__proto__"])', subject: {}, want: false },
  ])('$cond with $subject $context → $want', ({ cond, subject, context, want }) => {
    expect(holds(cond, subject ?? {}, {}, context ?? {})).toBe(want);
  });

  it.each([
    { cond: 'resource.type == "doc"', want: true },
    { cond: 'resource.id == "d1"', want: true },
    { cond: 'resource.owner == "bob"', want: true },
    { cond: 'action == "read"', want: true },
    { cond: 'action in ["write"]', want: false },
  ])('resource and action: $cond → $want', ({ cond, want }) => {
    expect(holds(cond, {}, { owner: 'bob' })).toBe(want);
  });

  it('reads an empty resource id as missing', () => {
    const tree = compile('resource doc { actions read\n permit read when exists(resource.id) }');
    const req = (id?: string): Request => ({ subject: {}, action: 'read', resource: id === undefined ? { type: 'doc' } : { type: 'doc', id } });
    expect(decide(tree, req('x')).decision).toBe('ALLOW');
    expect(decide(tree, req('')).decision).toBe('DENY');
    expect(decide(tree, req()).decision).toBe('DENY');
  });
});

describe('time', () => {
  it.each<OpCase>([
    { cond: 'context.time >= timestamp("2026-01-01T00:00:00Z")', context: {}, want: true },
    { cond: 'context.time < timestamp("2026-01-01T00:00:00Z")', context: {}, want: false },
    { cond: 'context.time < timestamp("2026-01-01T00:00:00Z")', context: { time: '2025-06-01T00:00:00Z' }, want: true },
    { cond: 'context.time < timestamp("2026-01-01T00:00:00Z")', context: { time: 1_700_000_000 }, want: true },
    { cond: 'context.time < timestamp("2026-01-01T00:00:00Z")', context: { time: 'last week' }, want: false },
    { cond: 'resource.expires > timestamp("2026-11-23T09:59:59+00:00")', context: {}, resource: { expires: '2026-11-23T11:00:00+01:00' }, want: true },
    { cond: 'context.time.timeOfDay() >= time("09:00") and context.time.timeOfDay() < time("17:00")', context: {}, want: true },
    { cond: 'context.time.timeOfDay() >= time("09:00")', context: { time: '2026-11-23T08:59:59Z' }, want: false },
    { cond: 'context.time.timeOfDay("+02:00") >= time("11:00")', context: { time: '2026-11-23T09:30:00Z' }, want: true },
    { cond: 'context.time.timeOfDay("-05:00") < time("06:00")', context: { time: '2026-11-23T10:30:00Z' }, want: true },
    { cond: 'context.time.dayOfWeek() == "mon"', context: {}, want: true },
    { cond: 'context.time.dayOfWeek("-11:00") == "sun"', context: {}, want: true },
    { cond: 'context.time.dayOfWeek() in ["sat", "sun"]', context: { time: '2026-11-22T10:00:00Z' }, want: true },
  ])('$cond with $context → $want', ({ cond, context, resource, want }) => {
    expect(holds(cond, {}, resource ?? {}, context ?? {})).toBe(want);
  });
});

describe('roles', () => {
  const tree = compile(`
    roles { admin > editor > viewer, auditor > viewer, support }
    derive owner for doc, folder when resource.owner == subject.sub
    derive delegate for doc when subject.sub in resource.delegates and not subject.role("owner")
    resource doc {
      actions read, write, delete, audit
      rule viewers: permit read when subject.role("viewer")
      rule editors: permit write when subject.role("editor")
      rule owners: permit delete when subject.role("owner")
      rule delegates: permit write when subject.role("delegate")
      rule auditors: permit audit when subject.role("auditor")
    }
    resource folder { actions list
      permit list when subject.role("owner") }
  `);
  const q = (roles: unknown, action: string, attributes: Attributes = {}, sub = 'alice'): string =>
    decide(tree, { subject: { sub, roles } as Attributes, action, resource: { type: 'doc', id: 'd', attributes } }).decision;

  it.each([
    { roles: ['admin'], action: 'read', want: 'ALLOW' },
    { roles: ['admin'], action: 'write', want: 'ALLOW' },
    { roles: ['editor'], action: 'read', want: 'ALLOW' },
    { roles: ['viewer'], action: 'write', want: 'DENY' },
    { roles: ['auditor'], action: 'read', want: 'ALLOW' },
    { roles: ['auditor'], action: 'write', want: 'DENY' },
    { roles: ['admin'], action: 'audit', want: 'DENY' },
    { roles: ['support'], action: 'read', want: 'DENY' },
    { roles: ['unknown-role'], action: 'read', want: 'DENY' },
    { roles: 'admin', action: 'read', want: 'DENY' },
    { roles: [7, null, 'viewer'], action: 'read', want: 'ALLOW' },
    { roles: undefined, action: 'read', want: 'DENY' },
  ])('hierarchy: $roles may $action → $want', ({ roles, action, want }) => {
    expect(q(roles, action)).toBe(want);
  });

  it('derives owner from the resource, for every type it is defined for', () => {
    expect(q([], 'delete', { owner: 'alice' })).toBe('ALLOW');
    expect(q([], 'delete', { owner: 'bob' })).toBe('DENY');
    expect(q([], 'delete', {})).toBe('DENY');
    const folder = decide(tree, { subject: { sub: 'alice' }, action: 'list', resource: { type: 'folder', attributes: { owner: 'alice' } } });
    expect(folder.decision).toBe('ALLOW');
  });

  it('cannot be granted a derived role by a claimed role name', () => {
    expect(q(['owner'], 'delete', { owner: 'bob' })).toBe('DENY');
  });

  it('lets derived roles use other roles', () => {
    expect(q([], 'write', { owner: 'bob', delegates: ['alice'] })).toBe('ALLOW');
    expect(q([], 'write', { owner: 'alice', delegates: ['alice'] })).toBe('DENY');
  });
});

describe('combining', () => {
  const tree = compile(`
    roles { admin > editor }
    resource doc {
      actions read, update, delete
      rule r1: permit read when subject.role("editor")
      rule r2: permit read, update when resource.owner == subject.sub
      rule f1: forbid * when subject.suspended == true
      rule f2: forbid delete when resource.locked == true unless subject.role("admin")
      rule admins: permit * when subject.role("admin")
      permit read when resource.public == true
    }
  `);
  const req = (subject: Attributes, action: string, attributes: Attributes = {}, type = 'doc'): Request => ({ subject, action, resource: { type, id: 'x', attributes } });

  it.each<{ name: string; subject: Attributes; action: string; attrs: Attributes; want: object }>([
    { name: 'permit', subject: { roles: ['editor'] }, action: 'read', attrs: {}, want: { decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['doc.r1'] } },
    { name: 'first permit in policy order decides', subject: { sub: 'a', roles: ['editor'] }, action: 'read', attrs: { owner: 'a' }, want: { decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['doc.r1'] } },
    { name: 'unnamed rule is named by file:line', subject: {}, action: 'read', attrs: { public: true }, want: { decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['test.policy:10'] } },
    { name: 'forbid overrides permit', subject: { roles: ['admin'], suspended: true }, action: 'read', attrs: {}, want: { decision: 'DENY', reason: 'RULE_FORBID', rules: ['doc.f1'] } },
    { name: 'unless exempts', subject: { roles: ['admin'] }, action: 'delete', attrs: { locked: true }, want: { decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['doc.admins'] } },
    { name: 'forbid on a * rule', subject: { sub: 'a', suspended: true }, action: 'update', attrs: { owner: 'a' }, want: { decision: 'DENY', reason: 'RULE_FORBID', rules: ['doc.f1'] } },
    { name: 'default deny', subject: { roles: ['editor'] }, action: 'delete', attrs: {}, want: { decision: 'DENY', reason: 'NO_MATCHING_RULE', rules: [] } },
    { name: 'undeclared action', subject: { roles: ['admin'] }, action: 'fly', attrs: {}, want: { decision: 'DENY', reason: 'UNDECLARED_ACTION', rules: [] } },
  ])('$name', ({ subject, action, attrs, want }) => {
    expect(decide(tree, req(subject, action, attrs))).toMatchObject(want);
  });

  it('denies an unknown resource type with its own reason', () => {
    expect(decide(tree, req({ roles: ['admin'] }, 'read', {}, 'spaceship'))).toMatchObject({ decision: 'DENY', reason: 'UNKNOWN_RESOURCE_TYPE' });
  });

  it('explains: every rule evaluated, all matches, and which kind decided', () => {
    const d = evaluate(tree, req({ sub: 'a', roles: ['admin'], suspended: true }, 'read', { owner: 'a' }), { now: NOW, explain: true });
    expect(d.decision).toBe('DENY');
    expect(d.rules).toEqual(['doc.f1']);
    expect(d.trace?.decidedBy).toBe('forbid');
    expect(d.trace?.matched).toEqual(['doc.f1', 'doc.r1', 'doc.r2', 'doc.admins']);
    expect(d.trace?.evaluated.find((t) => t.rule === 'test.policy:10')).toMatchObject({ applied: false, location: 'test.policy:10:7' });
    const none = evaluate(tree, req({}, 'delete'), { now: NOW, explain: true });
    expect(none.trace?.decidedBy).toBe('no-permit');
    const allow = evaluate(tree, req({ roles: ['editor'] }, 'read'), { now: NOW, explain: true });
    expect(allow).toMatchObject({ decision: 'ALLOW', rules: ['doc.r1'], trace: { decidedBy: 'permit' } });
  });

  it('fails closed when evaluation itself throws', () => {
    // A subject whose property read throws: nothing a JSON caller can send, but the evaluator must still deny.
    const hostile = new Proxy({}, { has: () => { throw new Error('boom'); }, getOwnPropertyDescriptor: () => { throw new Error('boom'); } });
    const d = evaluate(tree, req(hostile as Attributes, 'read'), { now: NOW });
    expect(d).toMatchObject({ decision: 'DENY', reason: 'EVALUATION_ERROR' });
  });
});

describe('rule indexing', () => {
  // 2,000 tenant rules share `subject.tenant == "tN"` and a role test, so the index switches on them.
  const lines: string[] = [];
  for (let i = 0; i < 1000; i++) {
    lines.push(`rule p${i}: permit read, update when subject.tenant == "t${i}" and subject.role("editor") and resource.tenant == "t${i}"`);
    lines.push(`rule f${i}: forbid * when subject.tenant == "t${i}" and resource.tenant != "t${i}"`);
  }
  const tree = compile(`roles { admin > editor > viewer }\nresource doc { actions read, update, delete\n${lines.join('\n')}\n rule admins: permit * when subject.role("admin") }`);
  const actions = tree.resources.get('doc')?.actions;

  it('builds switch nodes for shared tests', () => {
    expect(actions?.get('read')?.permits.kind).toBe('eq');
    expect(actions?.get('read')?.forbids.kind).toBe('eq');
  });

  it.each<{ subject: Attributes; resource: Attributes; action: string; want: string | undefined }>([
    { subject: { tenant: 't7', roles: ['editor'] }, resource: { tenant: 't7' }, action: 'read', want: 'doc.p7' },
    { subject: { tenant: 't7', roles: ['admin'] }, resource: { tenant: 't7' }, action: 'update', want: 'doc.p7' },
    { subject: { tenant: 't7', roles: ['viewer'] }, resource: { tenant: 't7' }, action: 'read', want: undefined },
    { subject: { tenant: 't7', roles: ['admin'] }, resource: { tenant: 't8' }, action: 'read', want: 'doc.f7' },
    { subject: { tenant: 't7', roles: ['admin'] }, resource: {}, action: 'delete', want: 'doc.f7' },
    { subject: { tenant: 7, roles: ['admin'] }, resource: { tenant: 't8' }, action: 'read', want: 'doc.admins' },
    { subject: { roles: ['admin'] }, resource: { tenant: 't8' }, action: 'delete', want: 'doc.admins' },
  ])('indexed and scanned paths agree: $subject on $resource', ({ subject, resource, action, want }) => {
    const d = decide(tree, { subject, action, resource: { type: 'doc', attributes: resource } });
    expect(d.rules[0]).toBe(want);
  });
});

describe('decisions are shared, frozen objects', () => {
  const tree = compile(`resource doc {
  actions read, edit
  rule readers: permit read when subject.reader == true
  rule blocked: forbid * when subject.blocked == true
}`);
  const at = (subject: Attributes, action = 'read', type = 'doc'): ReturnType<typeof evaluate> => evaluate(tree, { subject, action, resource: { type } }, { now: NOW });

  it('the same rule deciding gives the same object, and each early answer is one object per tree', () => {
    expect(at({ reader: true })).toBe(at({ reader: true, other: 1 }));
    expect(at({ blocked: true })).toBe(at({ blocked: true, reader: true }));
    expect(at({})).toBe(at({ reader: false }));
    expect(at({}, 'fly')).toBe(at({ reader: true }, 'fly'));
    expect(at({}, 'read', 'nope')).toBe(at({}, 'edit', 'nope'));
    expect(at({ reader: true })).toEqual({ decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['doc.readers'], revision: tree.revision });
    expect(at({}, 'fly')).toEqual({ decision: 'DENY', reason: 'UNDECLARED_ACTION', rules: [], revision: tree.revision });
  });

  it('cannot be changed by a caller (they are shared by every evaluation)', () => {
    const d = at({ reader: true });
    expect(Object.isFrozen(d) && Object.isFrozen(d.rules)).toBe(true);
    expect(() => ((d as { decision: string }).decision = 'DENY')).toThrow(TypeError);
    expect(() => (d.rules as string[]).push('x')).toThrow(TypeError);
    expect(at({ reader: true })).toMatchObject({ decision: 'ALLOW', rules: ['doc.readers'] });
  });

  it('another tree (a reload) has its own, carrying its revision', () => {
    const other = compile(`resource doc {
  actions read, edit
  rule readers: permit read when subject.reader == true
  rule blocked: forbid * when subject.blocked == false
}`);
    const d = evaluate(other, { subject: { reader: true }, action: 'read', resource: { type: 'doc' } }, { now: NOW });
    expect(d).not.toBe(at({ reader: true }));
    expect(d.revision).toBe(other.revision);
    expect(other.revision).not.toBe(tree.revision);
  });

  it('explain still builds a decision of its own, with its trace', () => {
    const d = evaluate(tree, { subject: { reader: true }, action: 'read', resource: { type: 'doc' } }, { now: NOW, explain: true });
    expect(d).not.toBe(at({ reader: true }));
    expect(d.trace?.decidedBy).toBe('permit');
  });
});

describe('evaluateActions', () => {
  it('a derived role that reads the action is worked out again for each action (its memo is not carried over)', () => {
    const tree = compile(`derive asking_to_read for doc when action == "read"
resource doc {
  actions read, edit
  rule readers: permit read, edit when subject.role("asking_to_read")
}`);
    const out: Decision[] = [];
    evaluateActions(tree, { subject: {}, resource: { type: 'doc' } }, ['read', 'edit', 'read', 'fly'], NOW, out);
    expect(out.map((d) => `${d.decision} ${d.reason}`)).toEqual(['ALLOW RULE_PERMIT', 'DENY NO_MATCHING_RULE', 'ALLOW RULE_PERMIT', 'DENY UNDECLARED_ACTION']);
    const unknown: Decision[] = [];
    evaluateActions(tree, { subject: {}, resource: { type: 'nope' } }, ['read', 'edit'], NOW, unknown);
    expect(unknown.map((d) => d.reason)).toEqual(['UNKNOWN_RESOURCE_TYPE', 'UNKNOWN_RESOURCE_TYPE']);
  });
});

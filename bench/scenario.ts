/**
 * The benchmark scenario: a document store with role- and attribute-based
 * rules, written in Arbiter's own language, plus N per-tenant rules that the
 * main request stream never matches.
 *
 * Everything here is deterministic: the policy text depends only on N and the
 * request stream only on its seed (mulberry32, never `Math.random`), so every
 * child process measures exactly the same work and their decision counts can
 * be compared.
 */
import type { PolicySource } from '../src/compile/index.js';
import type { Effect, Request } from '../src/eval/evaluate.js';

/** Extra-rule counts measured by default; 0 is the baseline the others are compared with. */
export const RULE_COUNTS: readonly number[] = [0, 10, 100, 1000, 10000];
/** Requests in the main stream. */
export const STREAM_SIZE = 100_000;
/** Seed of the main stream (any constant will do; it only has to be the same in every child). */
export const STREAM_SEED = 0x0a7b_17e5;
/** The decision clock passed to `evaluate`: fixed, because no rule reads the time and runs must be reproducible. */
export const DECISION_TIME = Date.UTC(2026, 0, 15, 12, 0, 0);
/**
 * Tenant of every subject and document in the main stream. Extra rules use
 * `t0`, `t1`, …, so none of them can match a main-stream request.
 */
export const MAIN_TENANT = 'main';
/** File name the generated policy is compiled under (it appears in diagnostics and unnamed rule ids). */
export const POLICY_PATH = 'bench/documents.policy';

/** The static roles of the scenario, most powerful last (`admin > editor > viewer`). */
export type Role = 'viewer' | 'editor' | 'admin';
/** A document's sensitivity. */
export type Classification = 'public' | 'internal' | 'secret';
/** The document actions the stream asks for. */
export type Action = 'read' | 'update' | 'delete' | 'share';

// Type aliases rather than interfaces: only aliases are assignable to the
// engine's index-signature `Attributes` type.

/** A subject's attributes, as a gateway would send them. */
export type Subject = {
  readonly sub: string;
  readonly roles: readonly Role[];
  readonly department: string;
  readonly suspended: boolean;
  readonly tenant: string;
};

/** A document's attributes. */
export type Doc = {
  readonly owner: string;
  readonly department: string;
  readonly classification: Classification;
  readonly tenant: string;
};

/** One request of the stream, with the typed pieces it was built from (for the reference decision). */
export interface StreamEntry {
  readonly request: Request;
  readonly subject: Subject;
  readonly action: Action;
  readonly doc: Doc;
}

/** A decision as the engine reports it: the effect and the deciding rule (`null` for the default deny). */
export interface ExpectedDecision {
  readonly decision: Effect;
  readonly rule: string | null;
}

/** A request whose decision is known in advance, used to prove that the extra rules are live. */
export interface Probe {
  readonly name: string;
  readonly request: Request;
  readonly expect: ExpectedDecision;
}

/** A single request timed on its own, so its cost can be compared across N. */
export interface FixedRequest {
  readonly name: string;
  readonly request: Request;
}

const DEPARTMENTS = ['engineering', 'sales', 'finance', 'legal', 'support', 'marketing'] as const;
const SUBJECT_COUNT = 400;
const DOC_COUNT = 2_000;
/** Share of requests aimed at a document the subject owns (the derived `owner` role). */
const OWN_DOC_SHARE = 0.15;

/**
 * mulberry32: a tiny seeded PRNG, uniform in [0, 1). Good enough to mix a
 * workload and fully reproducible, unlike `Math.random`.
 */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniformly random item (seeded by `rand`). */
export function pick<T>(rand: () => number, items: readonly T[]): T {
  const item = items[Math.floor(rand() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

/** Picks by weight; weights need not sum to 1. */
export function weighted<T>(rand: () => number, choices: ReadonlyArray<readonly [T, number]>): T {
  const total = choices.reduce((s, [, w]) => s + w, 0);
  let r = rand() * total;
  for (const [value, w] of choices) {
    r -= w;
    if (r < 0) return value;
  }
  const last = choices[choices.length - 1];
  if (last === undefined) throw new Error('weighted choice from an empty list');
  return last[0];
}

// ---------------------------------------------------------------- policy

/** How many per-tenant permits and forbids N extra rules split into (half each; an odd one goes to permits). */
export function tenantRuleSplit(extraRules: number): { readonly permits: number; readonly forbids: number } {
  return { permits: Math.ceil(extraRules / 2), forbids: Math.floor(extraRules / 2) };
}

/** Id of the per-tenant permit for tenant `t` (the compiler names rules `type.name`). */
export function tenantPermitId(tenant: string): string {
  return `document.tenant_${tenant}_edit`;
}

/** Id of the per-tenant isolation forbid for tenant `t`. */
export function tenantForbidId(tenant: string): string {
  return `document.tenant_${tenant}_isolation`;
}

/**
 * The policy text: the base document rules followed by `extraRules`
 * per-tenant rules (tenants `t0`, `t1`, …; permit and forbid of one tenant
 * side by side, as a policy author would write them).
 *
 * @param extraRules N, the number of per-tenant rules to add
 */
export function policyText(extraRules: number): string {
  const lines = [
    '# Generated by bench/scenario.ts: the benchmark document policy',
    `# plus ${extraRules} per-tenant rules that the main stream never matches.`,
    'roles { admin > editor > viewer }',
    '',
    'derive owner for document when resource.owner == subject.sub',
    '',
    'resource document {',
    '  actions read, update, delete, share',
    '',
    '  rule public_read:  permit read when resource.classification == "public"',
    '  rule dept_editors: permit read, update when subject.role("editor") and subject.department == resource.department',
    '  rule owners:       permit read, update, delete, share when subject.role("owner")',
    '  rule admins:       permit * when subject.role("admin")',
    '  rule suspended:    forbid * when subject.suspended == true',
    '  rule keep_secrets: forbid delete when resource.classification == "secret" unless subject.role("admin")',
  ];
  const { permits, forbids } = tenantRuleSplit(extraRules);
  if (extraRules > 0) lines.push('', '  # Per-tenant rules.');
  for (let i = 0; i < permits; i++) {
    const t = `t${i}`;
    lines.push(`  rule tenant_${t}_edit: permit read, update when subject.tenant == "${t}" and subject.role("editor") and resource.tenant == "${t}"`);
    if (i < forbids) lines.push(`  rule tenant_${t}_isolation: forbid * when subject.tenant == "${t}" and resource.tenant != "${t}"`);
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** The policy set for N extra rules, ready for `compilePolicySet`. */
export function policySources(extraRules: number): PolicySource[] {
  return [{ path: POLICY_PATH, text: policyText(extraRules) }];
}

// ---------------------------------------------------------------- requests

function documentRequest(subject: Subject, action: Action, id: string, doc: Doc): Request {
  return { subject, action, resource: { type: 'document', id, attributes: doc } };
}

/** A document with its id. */
export interface DocEntry {
  readonly id: string;
  readonly doc: Doc;
}

/** The seeded subject and document pools both benches draw their streams from. */
export interface Pools {
  readonly subjects: readonly Subject[];
  readonly docs: readonly DocEntry[];
  /** Documents by owner. */
  readonly owned: ReadonlyMap<string, readonly DocEntry[]>;
}

/**
 * 400 subjects (mixed roles, 3 % suspended) and 2,000 documents, every one
 * in tenant `main`; every subject owns at least one document.
 */
export function pools(rand: () => number): Pools {
  const subjects: Subject[] = [];
  for (let i = 0; i < SUBJECT_COUNT; i++) {
    const roles = weighted<readonly Role[]>(rand, [
      [['viewer'], 45],
      [['editor'], 30],
      [['viewer', 'editor'], 5],
      [['admin'], 7],
      [[], 13],
    ]);
    subjects.push({ sub: `u${i}`, roles, department: pick(rand, DEPARTMENTS), suspended: rand() < 0.03, tenant: MAIN_TENANT });
  }
  const docs: DocEntry[] = [];
  const owned = new Map<string, DocEntry[]>();
  for (let i = 0; i < DOC_COUNT; i++) {
    // The first SUBJECT_COUNT documents go one to each subject, so every subject owns at least one.
    const owner = i < SUBJECT_COUNT ? `u${i}` : pick(rand, subjects).sub;
    const classification = weighted<Classification>(rand, [
      ['public', 30],
      ['internal', 55],
      ['secret', 15],
    ]);
    const entry: DocEntry = { id: `doc-${i}`, doc: { owner, department: pick(rand, DEPARTMENTS), classification, tenant: MAIN_TENANT } };
    docs.push(entry);
    const list = owned.get(owner);
    if (list === undefined) owned.set(owner, [entry]);
    else list.push(entry);
  }
  return { subjects, docs, owned };
}

/** The document a request of the stream is about: one the subject owns for OWN_DOC_SHARE of requests, else any. */
export function aimedDoc(rand: () => number, pool: Pools, subject: Subject): DocEntry {
  const own = rand() < OWN_DOC_SHARE ? pool.owned.get(subject.sub) : undefined;
  return own !== undefined ? pick(rand, own) : pick(rand, pool.docs);
}

/**
 * The main request stream: mixed subjects and actions over a pool of
 * documents, about 15% of them aimed at the subject's own documents. Every
 * subject and document is in tenant `main`.
 *
 * Subjects and documents are pooled and shared between requests, so memory
 * reflects the decision tree rather than a copy of each request's attributes.
 *
 * @param size number of requests
 * @param seed PRNG seed
 */
export function requestStream(size: number = STREAM_SIZE, seed: number = STREAM_SEED): StreamEntry[] {
  const rand = mulberry32(seed);
  const pool = pools(rand);
  const out: StreamEntry[] = [];
  for (let i = 0; i < size; i++) {
    const subject = pick(rand, pool.subjects);
    const action = weighted<Action>(rand, [
      ['read', 50],
      ['update', 25],
      ['delete', 12],
      ['share', 13],
    ]);
    const { id, doc } = aimedDoc(rand, pool, subject);
    out.push({ request: documentRequest(subject, action, id, doc), subject, action, doc });
  }
  return out;
}

/**
 * The decision the base rules call for, worked out by hand in TypeScript: a
 * reference for the engine on the main stream, where no extra rule applies.
 * Mirrors Arbiter's combining: any forbid wins, then the first permit in
 * policy order, else the default deny.
 */
export function expectedDecision(subject: Subject, action: Action, doc: Doc): ExpectedDecision {
  const roles = new Set<string>();
  for (const r of subject.roles) {
    // admin > editor > viewer: each role holds the ones below it.
    if (r === 'admin') roles.add('admin').add('editor').add('viewer');
    else if (r === 'editor') roles.add('editor').add('viewer');
    else roles.add('viewer');
  }
  const owner = doc.owner === subject.sub;
  if (subject.suspended) return { decision: 'DENY', rule: 'document.suspended' };
  if (action === 'delete' && doc.classification === 'secret' && !roles.has('admin')) return { decision: 'DENY', rule: 'document.keep_secrets' };
  if (action === 'read' && doc.classification === 'public') return { decision: 'ALLOW', rule: 'document.public_read' };
  if ((action === 'read' || action === 'update') && roles.has('editor') && subject.department === doc.department) return { decision: 'ALLOW', rule: 'document.dept_editors' };
  if (owner) return { decision: 'ALLOW', rule: 'document.owners' };
  if (roles.has('admin')) return { decision: 'ALLOW', rule: 'document.admins' };
  return { decision: 'DENY', rule: null };
}

/**
 * Requests aimed at the extra rules, with the decision each must get for
 * this N. With no extra rules they show the baseline (nothing grants the
 * tenant editor; the admin is allowed); with them, they prove the rules are
 * compiled, indexed and applied.
 */
export function probes(extraRules: number): Probe[] {
  const { permits, forbids } = tenantRuleSplit(extraRules);
  const out: Probe[] = [];
  // The last permit is the one an unindexed scan would reach last.
  const pt = `t${Math.max(permits - 1, 0)}`;
  const editor: Subject = { sub: `probe-editor-${pt}`, roles: ['editor'], department: 'sales', suspended: false, tenant: pt };
  // Another department and not the owner, so no base rule grants it.
  const tenantDoc: Doc = { owner: 'someone-else', department: 'legal', classification: 'internal', tenant: pt };
  const viaPermit: ExpectedDecision = permits > 0 ? { decision: 'ALLOW', rule: tenantPermitId(pt) } : { decision: 'DENY', rule: null };
  out.push({ name: `editor of ${pt} reads a ${pt} document`, request: documentRequest(editor, 'read', 'probe-1', tenantDoc), expect: viaPermit });
  out.push({ name: `editor of ${pt} updates a ${pt} document`, request: documentRequest(editor, 'update', 'probe-2', tenantDoc), expect: viaPermit });
  // The tenant permit covers read and update only.
  out.push({ name: `editor of ${pt} deletes a ${pt} document`, request: documentRequest(editor, 'delete', 'probe-3', tenantDoc), expect: { decision: 'DENY', rule: null } });

  const ft = `t${Math.floor(forbids / 2)}`;
  // An admin, so that only the isolation forbid can turn the answer into DENY.
  const admin: Subject = { sub: `probe-admin-${ft}`, roles: ['admin'], department: 'sales', suspended: false, tenant: ft };
  const mainDoc: Doc = { owner: 'u1', department: 'sales', classification: 'public', tenant: MAIN_TENANT };
  // Another department: an admin is also an editor, and `dept_editors` would otherwise decide first.
  const ownDoc: Doc = { owner: 'u1', department: 'legal', classification: 'internal', tenant: ft };
  out.push({
    name: `admin of ${ft} reads a document of tenant ${MAIN_TENANT}`,
    request: documentRequest(admin, 'read', 'probe-4', mainDoc),
    expect: forbids > 0 ? { decision: 'DENY', rule: tenantForbidId(ft) } : { decision: 'ALLOW', rule: 'document.public_read' },
  });
  out.push({
    name: `admin of ${ft} reads a document of its own tenant`,
    request: documentRequest(admin, 'read', 'probe-5', ownDoc),
    expect: { decision: 'ALLOW', rule: 'document.admins' },
  });
  return out;
}

/**
 * Requests timed one at a time for the N=10000 vs N=10 comparison: each
 * goes through an index bucket that the extra rules crowd (the `editor` role
 * bucket for permits, the forbid list for every action).
 */
export function fixedRequests(): FixedRequest[] {
  const editor: Subject = { sub: 'fixed-editor', roles: ['editor'], department: 'engineering', suspended: false, tenant: MAIN_TENANT };
  const viewer: Subject = { sub: 'fixed-viewer', roles: ['viewer'], department: 'engineering', suspended: false, tenant: MAIN_TENANT };
  const spec: Doc = { owner: 'u7', department: 'engineering', classification: 'internal', tenant: MAIN_TENANT };
  const plan: Doc = { owner: 'u7', department: 'engineering', classification: 'secret', tenant: MAIN_TENANT };
  return [
    { name: 'editor reads a department document (ALLOW)', request: documentRequest(editor, 'read', 'spec-42', spec) },
    { name: 'viewer deletes a secret document (DENY)', request: documentRequest(viewer, 'delete', 'plan-7', plan) },
  ];
}

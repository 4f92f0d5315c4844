/**
 * The cross-engine scenario (`npm run bench:engines`): one document policy,
 * written once per engine, plus N per-tenant rules that the main request
 * stream never matches.
 *
 * This module holds what every engine shares: the seeded pools of subjects
 * and documents, the request stream (as indices into the pools, so it costs
 * little memory and each engine builds its own request form from it), the
 * per-tenant rule list and the probes. The policy text of each engine is in
 * `policies.ts`; the engines themselves in `engines.ts`.
 *
 * Everything is deterministic (mulberry32, never `Math.random`): every child
 * process sees exactly the same requests, so decisions can be compared
 * request by request across engines and across N.
 */
import { aimedDoc, MAIN_TENANT, mulberry32, pick, pools, STREAM_SEED, STREAM_SIZE, tenantRuleSplit, weighted, type Classification, type Doc, type DocEntry, type Role, type Subject } from '../scenario.js';

// The rule counts, the stream's size and seed and the main tenant are the in-process bench's.
export { MAIN_TENANT, RULE_COUNTS, STREAM_SEED, STREAM_SIZE, tenantRuleSplit } from '../scenario.js';

/** The three document actions of the scenario. */
export type Action = 'read' | 'update' | 'delete';

// Subjects, documents, roles and classifications are the in-process bench's (bench/scenario.ts).
export type { Classification, Doc, DocEntry, Role, Subject };

/** One request of the stream, engine-neutral: a subject, an action and a document of the pools. */
export interface Entry {
  readonly subject: Subject;
  readonly action: Action;
  readonly doc: DocEntry;
}

/** The seeded pools and the stream built over them. */
export interface Workload {
  readonly subjects: readonly Subject[];
  readonly docs: readonly DocEntry[];
  readonly stream: readonly Entry[];
}

/**
 * The pools and the main stream: 400 subjects (mixed roles, 3 % suspended),
 * 2,000 documents, and `size` requests of mixed subjects and actions, about
 * 15 % of them aimed at the subject's own documents. Everything is in tenant
 * `main`.
 *
 * @param size number of requests
 * @param seed PRNG seed
 */
export function workload(size: number = STREAM_SIZE, seed: number = STREAM_SEED): Workload {
  const rand = mulberry32(seed);
  const pool = pools(rand);
  const stream: Entry[] = [];
  for (let i = 0; i < size; i++) {
    const subject = pick(rand, pool.subjects);
    const action = weighted<Action>(rand, [
      ['read', 50],
      ['update', 30],
      ['delete', 20],
    ]);
    stream.push({ subject, action, doc: aimedDoc(rand, pool, subject) });
  }
  return { subjects: pool.subjects, docs: pool.docs, stream };
}

// ---------------------------------------------------------------- extra rules

/** One per-tenant rule, engine-neutral; each engine writes it in its own language. */
export interface TenantRule {
  /** Rule name without the resource type, e.g. `tenant_t3_edit` (Arbiter reports `document.tenant_t3_edit`). */
  readonly name: string;
  readonly tenant: string;
  /**
   * `edit`: permit read, update when the subject is an editor of the tenant
   * and the document is the tenant's. `isolation`: forbid every action when
   * the subject belongs to the tenant and the document does not.
   */
  readonly kind: 'edit' | 'isolation';
}

/** The N extra rules in policy order: a tenant's permit and forbid side by side, as an author would write them. */
export function tenantRules(extraRules: number): TenantRule[] {
  const { permits, forbids } = tenantRuleSplit(extraRules);
  const out: TenantRule[] = [];
  for (let i = 0; i < permits; i++) {
    const t = `t${i}`;
    out.push({ name: `tenant_${t}_edit`, tenant: t, kind: 'edit' });
    if (i < forbids) out.push({ name: `tenant_${t}_isolation`, tenant: t, kind: 'isolation' });
  }
  return out;
}

// ---------------------------------------------------------------- probes

/** A request whose decision is known for this N; it proves the extra rules are live in an engine. */
export interface Probe {
  readonly name: string;
  readonly entry: Entry;
  readonly allow: boolean;
  /**
   * The rule that alone decides this probe (a tenant rule), when there is
   * one: engines that report deciding rules must name it.
   */
  readonly decidingRule: string | null;
}

/**
 * Probes aimed at the extra rules. At N = 0 they show the baseline (the
 * tenant editor gets nothing, the tenant admin reads the public document);
 * with extra rules, the decisions of probes 1, 2 and 4 flip, which only the
 * tenant rules can do — in every engine.
 */
export function probes(extraRules: number): Probe[] {
  const { permits, forbids } = tenantRuleSplit(extraRules);
  // The last permit: the one a linear scan reaches last.
  const pt = `t${Math.max(permits - 1, 0)}`;
  const editor: Subject = { sub: `probe-editor-${pt}`, roles: ['editor'], department: 'sales', suspended: false, tenant: pt };
  // Another department and not the owner, so no base rule grants it.
  const tenantDoc: DocEntry = { id: 'probe-doc-1', doc: { owner: 'someone-else', department: 'legal', classification: 'internal', tenant: pt } };
  const editRule = permits > 0 ? `tenant_${pt}_edit` : null;
  const ft = `t${Math.floor(forbids / 2)}`;
  // An admin, so that only the isolation forbid can make it DENY.
  const admin: Subject = { sub: `probe-admin-${ft}`, roles: ['admin'], department: 'sales', suspended: false, tenant: ft };
  const mainDoc: DocEntry = { id: 'probe-doc-2', doc: { owner: 'u1', department: 'sales', classification: 'public', tenant: MAIN_TENANT } };
  const ownDoc: DocEntry = { id: 'probe-doc-3', doc: { owner: 'u1', department: 'legal', classification: 'internal', tenant: ft } };
  return [
    { name: `editor of ${pt} reads a ${pt} document`, entry: { subject: editor, action: 'read', doc: tenantDoc }, allow: permits > 0, decidingRule: editRule },
    { name: `editor of ${pt} updates a ${pt} document`, entry: { subject: editor, action: 'update', doc: tenantDoc }, allow: permits > 0, decidingRule: editRule },
    // The tenant permit covers read and update only.
    { name: `editor of ${pt} deletes a ${pt} document`, entry: { subject: editor, action: 'delete', doc: tenantDoc }, allow: false, decidingRule: null },
    {
      name: `admin of ${ft} reads a public document of tenant ${MAIN_TENANT}`,
      entry: { subject: admin, action: 'read', doc: mainDoc },
      allow: forbids === 0,
      decidingRule: forbids > 0 ? `tenant_${ft}_isolation` : null,
    },
    { name: `admin of ${ft} reads a document of its own tenant`, entry: { subject: admin, action: 'read', doc: ownDoc }, allow: true, decidingRule: null },
  ];
}

/** Subjects of the probes (Casbin must know their role assignments up front). */
export function probeSubjects(extraRules: number): Subject[] {
  const seen = new Map<string, Subject>();
  for (const p of probes(extraRules)) seen.set(p.entry.subject.sub, p.entry.subject);
  return [...seen.values()];
}

/**
 * The engines compared, behind one small interface: set up from the
 * scenario's policy for N extra rules, turn stream entries into the engine's
 * own request form (untimed, as a caller would already hold its request),
 * decide, and explain a probe.
 *
 * Cedar and Casbin are imported only by the worker that runs them, so they
 * never weigh on another engine's memory.
 */
import type { AuthorizationAnswer, AuthorizationCall, EntityJson, StatefulAuthorizationCall } from '@cedar-policy/cedar-wasm/nodejs';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { compilePolicySet } from '../../src/compile/index.js';
import { evaluate, type EvaluateOptions, type Request } from '../../src/eval/evaluate.js';
import { ARBITER_POLICY_PATH, arbiterPolicy, casbinPolicy, CASBIN_MODEL, cedarPolicies } from './policies.js';
import type { EngineName } from './protocol.js';
import { tenantRules, type Doc, type Entry, type Subject } from './scenario.js';

/** What an engine says about one request when asked to explain. */
export interface Explained {
  readonly allow: boolean;
  /** The rules the engine reports as deciding (names without the `document.` prefix); `null` if it reports none. */
  readonly rules: readonly string[] | null;
}

/** One engine, set up for one N. `R` is its native request form. */
export interface Engine<R> {
  readonly version: string;
  readonly setupMs: number;
  readonly setupNote: string;
  /** Builds native requests for the given entries (not timed). */
  prepare(entries: readonly Entry[]): R[];
  /** The decision: true for ALLOW. This is what is timed. */
  decide(request: R): boolean;
  /** The decision with the rules behind it, for probes. */
  explain(entry: Entry): Explained;
  /** The decision, and any problem the engine reported beside it (Cedar evaluation errors), for the untimed verification pass. */
  verify(request: R): { readonly allow: boolean; readonly problem: string | null };
}

/** The decision clock: fixed, no rule reads the time. */
const DECISION_TIME = Date.UTC(2026, 0, 15, 12, 0, 0);
const OPTIONS: EvaluateOptions = { now: DECISION_TIME };

function timed<T>(f: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = f();
  return { value, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------- Arbiter

function arbiterRequest(e: Entry): Request {
  return { subject: e.subject, action: e.action, resource: { type: 'document', id: e.doc.id, attributes: e.doc.doc } };
}

function createArbiter(n: number): Engine<Request> {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  const sources = [{ path: ARBITER_POLICY_PATH, text: arbiterPolicy(n) }];
  const { value: compiled, ms } = timed(() => compilePolicySet(sources));
  const tree = compiled.tree;
  return {
    version: `arbiter ${pkg.version}`,
    setupMs: ms,
    setupNote: `compilePolicySet, ${tree.rules.length} rules`,
    prepare: (entries) => entries.map(arbiterRequest),
    decide: (r) => evaluate(tree, r, OPTIONS).decision === 'ALLOW',
    verify: (r) => ({ allow: evaluate(tree, r, OPTIONS).decision === 'ALLOW', problem: null }),
    explain: (e) => {
      const d = evaluate(tree, arbiterRequest(e), OPTIONS);
      return { allow: d.decision === 'ALLOW', rules: d.rules.map((r) => r.replace(/^document\./, '')) };
    },
  };
}

// ---------------------------------------------------------------- hand-written JavaScript

/** A verdict: the decision and the rule behind it (as Arbiter reports: forbids first, then the first permit in policy order). */
interface Verdict {
  readonly allow: boolean;
  readonly rule: string | null;
}

const DENY_DEFAULT: Verdict = { allow: false, rule: null };
const V_SUSPENDED: Verdict = { allow: false, rule: 'suspended' };
const V_KEEP_SECRETS: Verdict = { allow: false, rule: 'keep_secrets' };
const V_PUBLIC_READ: Verdict = { allow: true, rule: 'public_read' };
const V_DEPT_EDITORS: Verdict = { allow: true, rule: 'dept_editors' };
const V_OWNERS: Verdict = { allow: true, rule: 'owners' };
const V_ADMINS: Verdict = { allow: true, rule: 'admins' };

/** A per-tenant rule, precompiled to what the hand-written code tests. */
interface JsTenantRule {
  readonly tenant: string;
  readonly verdict: Verdict;
}

/** Roles through the hierarchy, computed from the request as any evaluator must. */
function hasEditor(roles: readonly string[]): boolean {
  for (let i = 0; i < roles.length; i++) {
    const r = roles[i];
    if (r === 'editor' || r === 'admin') return true;
  }
  return false;
}

function hasAdmin(roles: readonly string[]): boolean {
  for (let i = 0; i < roles.length; i++) if (roles[i] === 'admin') return true;
  return false;
}

/**
 * The base rules as if/else, then the tenant rules: `forbids` and `permits`
 * are the candidates for this subject — every tenant rule (scan), or the
 * subject's tenant's bucket (Map).
 */
function decideByHand(s: Subject, action: string, d: Doc, forbids: readonly JsTenantRule[] | undefined, permits: readonly JsTenantRule[] | undefined): Verdict {
  // Forbids first: deny overrides.
  if (s.suspended === true) return V_SUSPENDED;
  if (action === 'delete' && d.classification === 'secret' && !hasAdmin(s.roles)) return V_KEEP_SECRETS;
  if (forbids !== undefined) {
    for (let i = 0; i < forbids.length; i++) {
      const f = forbids[i] as JsTenantRule;
      if (s.tenant === f.tenant && d.tenant !== f.tenant) return f.verdict;
    }
  }
  // Permits, in policy order.
  const readOrUpdate = action === 'read' || action === 'update';
  if (action === 'read' && d.classification === 'public') return V_PUBLIC_READ;
  if (readOrUpdate && hasEditor(s.roles) && s.department === d.department) return V_DEPT_EDITORS;
  if (d.owner === s.sub) return V_OWNERS;
  if (hasAdmin(s.roles)) return V_ADMINS;
  if (permits !== undefined && readOrUpdate) {
    for (let i = 0; i < permits.length; i++) {
      const p = permits[i] as JsTenantRule;
      if (s.tenant === p.tenant && d.tenant === p.tenant && hasEditor(s.roles)) return p.verdict;
    }
  }
  return DENY_DEFAULT;
}

function jsRules(n: number): { forbids: JsTenantRule[]; permits: JsTenantRule[] } {
  const forbids: JsTenantRule[] = [];
  const permits: JsTenantRule[] = [];
  for (const r of tenantRules(n)) {
    const rule = { tenant: r.tenant, verdict: { allow: r.kind === 'edit', rule: r.name } };
    (r.kind === 'edit' ? permits : forbids).push(rule);
  }
  return { forbids, permits };
}

function jsEngine(setupMs: number, setupNote: string, verdict: (e: Entry) => Verdict): Engine<Entry> {
  return {
    version: `hand-written, Node ${process.version}`,
    setupMs,
    setupNote,
    prepare: (entries) => [...entries],
    decide: (e) => verdict(e).allow,
    verify: (e) => ({ allow: verdict(e).allow, problem: null }),
    explain: (e) => {
      const v = verdict(e);
      return { allow: v.allow, rules: v.rule === null ? [] : [v.rule] };
    },
  };
}

/** The floor of an unindexed evaluator: base rules as if/else, tenant rules scanned in a list. */
function createJsScan(n: number): Engine<Entry> {
  const { value: rules, ms } = timed(() => jsRules(n));
  const { forbids, permits } = rules;
  return jsEngine(ms, `if/else + ${forbids.length + permits.length} tenant rules in two arrays`, (e) =>
    decideByHand(e.subject, e.action, e.doc.doc, forbids, permits),
  );
}

/** The floor of an indexed evaluator: tenant rules bucketed by tenant in a Map. */
function createJsMap(n: number): Engine<Entry> {
  const { value: buckets, ms } = timed(() => {
    const { forbids, permits } = jsRules(n);
    const byTenant = (rules: readonly JsTenantRule[]): Map<string, JsTenantRule[]> => {
      const m = new Map<string, JsTenantRule[]>();
      for (const r of rules) {
        const list = m.get(r.tenant);
        if (list === undefined) m.set(r.tenant, [r]);
        else list.push(r);
      }
      return m;
    };
    return { forbids: byTenant(forbids), permits: byTenant(permits) };
  });
  return jsEngine(ms, `if/else + tenant rules in ${buckets.forbids.size + buckets.permits.size} Map buckets`, (e) =>
    decideByHand(e.subject, e.action, e.doc.doc, buckets.forbids.get(e.subject.tenant), buckets.permits.get(e.subject.tenant)),
  );
}

// ---------------------------------------------------------------- Cedar

type Cedar = typeof import('@cedar-policy/cedar-wasm/nodejs');
type CedarUid = { readonly type: string; readonly id: string };

/** A Cedar request without the policy part (the stateful and stateless calls differ only in that). */
interface CedarRequest {
  readonly principal: CedarUid;
  readonly action: CedarUid;
  readonly resource: CedarUid;
  readonly context: Record<string, never>;
  readonly entities: EntityJson[];
}

const CEDAR_SET_ID = 'bench';
const CEDAR_ROLES: EntityJson[] = [
  { uid: { type: 'Role', id: 'admin' }, attrs: {}, parents: [{ type: 'Role', id: 'editor' }] },
  { uid: { type: 'Role', id: 'editor' }, attrs: {}, parents: [{ type: 'Role', id: 'viewer' }] },
  { uid: { type: 'Role', id: 'viewer' }, attrs: {}, parents: [] },
];
const CEDAR_ACTIONS: Record<string, CedarUid> = {
  read: { type: 'Action', id: 'read' },
  update: { type: 'Action', id: 'update' },
  delete: { type: 'Action', id: 'delete' },
};

/**
 * Builds Cedar requests, sharing one entity object per subject and per
 * document of the pools (as a caller with an entity cache would).
 */
function cedarRequestBuilder(): (e: Entry) => CedarRequest {
  const users = new Map<Subject, EntityJson>();
  const docs = new Map<Doc, EntityJson>();
  const empty: Record<string, never> = {};
  return (e) => {
    let user = users.get(e.subject);
    if (user === undefined) {
      const s = e.subject;
      user = { uid: { type: 'User', id: s.sub }, attrs: { department: s.department, suspended: s.suspended, tenant: s.tenant }, parents: s.roles.map((r) => ({ type: 'Role', id: r })) };
      users.set(s, user);
    }
    let doc = docs.get(e.doc.doc);
    if (doc === undefined) {
      const d = e.doc.doc;
      doc = {
        uid: { type: 'Document', id: e.doc.id },
        attrs: { owner: { __entity: { type: 'User', id: d.owner } }, department: d.department, classification: d.classification, tenant: d.tenant },
        parents: [],
      };
      docs.set(e.doc.doc, doc);
    }
    return {
      principal: { type: 'User', id: e.subject.sub },
      action: CEDAR_ACTIONS[e.action] as CedarUid,
      resource: { type: 'Document', id: e.doc.id },
      context: empty,
      entities: [user, doc, ...CEDAR_ROLES],
    };
  };
}

function cedarAllow(a: AuthorizationAnswer): boolean {
  if (a.type !== 'success') throw new Error(`cedar failed: ${a.errors.map((e) => e.message).join('; ')}`);
  return a.response.decision === 'allow';
}

function cedarVerify(a: AuthorizationAnswer): { allow: boolean; problem: string | null } {
  if (a.type !== 'success') return { allow: false, problem: `cedar failed: ${a.errors.map((e) => e.message).join('; ')}` };
  const errs = a.response.diagnostics.errors;
  const problem = errs.length === 0 ? null : `cedar evaluation errors: ${errs.map((e) => `${e.policyId}: ${e.error.message}`).join('; ')}`;
  return { allow: a.response.decision === 'allow', problem };
}

function cedarExplain(a: AuthorizationAnswer): Explained {
  if (a.type !== 'success') throw new Error(`cedar failed: ${a.errors.map((e) => e.message).join('; ')}`);
  return { allow: a.response.decision === 'allow', rules: a.response.diagnostics.reason };
}

/** Cedar with the policy set preparsed once (`preparsePolicySet`) and `statefulIsAuthorized` per request. */
async function createCedar(n: number): Promise<Engine<StatefulAuthorizationCall>> {
  const cedar: Cedar = await import('@cedar-policy/cedar-wasm/nodejs');
  const policies = cedarPolicies(n);
  const { value: parsed, ms } = timed(() => cedar.preparsePolicySet(CEDAR_SET_ID, { staticPolicies: policies }));
  if (parsed.type !== 'success') throw new Error(`cedar preparsePolicySet failed: ${parsed.errors.map((e) => e.message).join('; ')}`);
  const build = cedarRequestBuilder();
  const call = (e: Entry): StatefulAuthorizationCall => ({ ...build(e), preparsedPolicySetId: CEDAR_SET_ID });
  return {
    version: `cedar-wasm ${cedar.getCedarSDKVersion()} (Cedar ${cedar.getCedarVersion()})`,
    setupMs: ms,
    setupNote: `preparsePolicySet, ${Object.keys(policies).length} policies`,
    prepare: (entries) => entries.map(call),
    decide: (r) => cedarAllow(cedar.statefulIsAuthorized(r)),
    explain: (e) => cedarExplain(cedar.statefulIsAuthorized(call(e))),
    verify: (r) => cedarVerify(cedar.statefulIsAuthorized(r)),
  };
}

/** Cedar's stateless `isAuthorized`: the policy set travels with (and is parsed on) every call. */
async function createCedarStateless(n: number): Promise<Engine<AuthorizationCall>> {
  const cedar: Cedar = await import('@cedar-policy/cedar-wasm/nodejs');
  const { value: policies, ms } = timed(() => ({ staticPolicies: cedarPolicies(n) }));
  const build = cedarRequestBuilder();
  const call = (e: Entry): AuthorizationCall => ({ ...build(e), policies });
  return {
    version: `cedar-wasm ${cedar.getCedarSDKVersion()} (Cedar ${cedar.getCedarVersion()})`,
    setupMs: ms,
    setupNote: `policy text only; every call parses ${Object.keys(policies.staticPolicies).length} policies`,
    prepare: (entries) => entries.map(call),
    decide: (r) => cedarAllow(cedar.isAuthorized(r)),
    explain: (e) => cedarExplain(cedar.isAuthorized(call(e))),
    verify: (r) => cedarVerify(cedar.isAuthorized(r)),
  };
}

// ---------------------------------------------------------------- Casbin

/** Casbin's arguments: `r = sub, obj, act`. */
type CasbinRequest = readonly [Subject, Doc, string];

async function createCasbin(n: number, subjects: readonly Subject[]): Promise<Engine<CasbinRequest>> {
  const casbin = await import('casbin');
  const pkg = createRequire(import.meta.url)('casbin/package.json') as { version: string };
  const { text, policyLines } = casbinPolicy(n, subjects);
  const t0 = performance.now();
  const enforcer = await casbin.newEnforcer(casbin.newModelFromString(CASBIN_MODEL), new casbin.StringAdapter(text));
  const ms = performance.now() - t0;
  return {
    version: `casbin ${pkg.version}`,
    setupMs: ms,
    setupNote: `newEnforcer, ${policyLines} p lines + role lines`,
    prepare: (entries) => entries.map((e) => [e.subject, e.doc.doc, e.action] as const),
    decide: (r) => enforcer.enforceSync(r[0], r[1], r[2]),
    verify: (r) => ({ allow: enforcer.enforceSync(r[0], r[1], r[2]), problem: null }),
    explain: (e) => {
      const [allow, line] = enforcer.enforceExSync(e.subject, e.doc.doc, e.action);
      // Casbin reports one line: the deny that ended the scan, or the last allow it met.
      return { allow, rules: line.length === 0 ? [] : [line[0] ?? ''] };
    },
  };
}

// ---------------------------------------------------------------- factory

/**
 * Sets up `engine` for N extra rules. `subjects` are every subject that will
 * be asked about (Casbin loads their role assignments as `g` lines).
 */
export async function createEngine(engine: EngineName, n: number, subjects: readonly Subject[]): Promise<Engine<unknown>> {
  switch (engine) {
    case 'arbiter':
      return createArbiter(n) as Engine<unknown>;
    case 'js-scan':
      return createJsScan(n) as Engine<unknown>;
    case 'js-map':
      return createJsMap(n) as Engine<unknown>;
    case 'cedar':
      return (await createCedar(n)) as Engine<unknown>;
    case 'cedar-stateless':
      return (await createCedarStateless(n)) as Engine<unknown>;
    case 'casbin':
      return (await createCasbin(n, subjects)) as Engine<unknown>;
  }
}

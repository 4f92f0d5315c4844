/**
 * Policy test suites: `*.test.yaml` files beside the policies. A suite names
 * fixtures (subjects, resources, contexts) and writes cases as tables — the
 * subjects × the resources × the actions of `expect` — so one entry covers
 * many decisions:
 *
 * ```yaml
 * name: documents
 * now: 2026-11-23T10:00:00Z          # optional: decide as of this time
 * subjects:
 *   alice: { sub: alice, roles: [editor], department: engineering }
 *   ann:                              # a token: these claims, signed with the run's key
 *     token: { sub: ann, realm_access: { roles: [admin] } }
 *     issuer: keycloak                # the config issuer whose claim mapping applies
 * resources:
 *   spec: { type: document, id: spec-42, attributes: { owner: bob, department: engineering } }
 * contexts:
 *   office: { ip: 10.1.2.3 }
 * tests:
 *   - name: editors read and update documents of their department
 *     subjects: [alice]
 *     resources: [spec]
 *     context: office                 # a context fixture, or an inline mapping
 *     expect: { read: ALLOW, update: ALLOW, delete: DENY }
 *     rules: { read: document.dept_editors }   # optional: the deciding rule
 *     reasons: { print: UNDECLARED_ACTION }    # needed to expect a DENY not made by the policies
 * ```
 *
 * Parsing reports the first error with `file:line:col` and a did-you-mean for
 * references to fixtures that do not exist.
 */
import type { Attributes } from '../compile/index.js';
import { toTimestamp } from '../compile/ops.js';
import { closest } from '../compile/suggest.js';
import { ConfigDocument, type Section } from '../config/reader.js';
import { ENGINE_REASONS } from '../engine/engine.js';
import { REASONS } from '../eval/evaluate.js';
import { TOKEN_REASON_CODES } from '../jwt/reasons.js';

/** A subject: attributes given directly, or (`token:`) claims the runner signs into a token. */
export type SubjectFixture =
  | { readonly kind: 'attributes'; readonly name: string; readonly attributes: Attributes }
  | { readonly kind: 'token'; readonly name: string; readonly claims: Readonly<Record<string, unknown>>; readonly issuer?: string; readonly location: string };

export interface ResourceFixture {
  readonly name: string;
  readonly type: string;
  readonly id?: string;
  readonly attributes: Attributes;
}

/** One table of cases: every subject × every resource × every action of `expect`. */
export interface SuiteTest {
  readonly name: string;
  readonly subjects: readonly string[];
  readonly resources: readonly string[];
  readonly context: Attributes;
  /** Decision time, ms since the epoch (the test's, else the suite's). */
  readonly now?: number;
  readonly expect: ReadonlyMap<string, 'ALLOW' | 'DENY'>;
  /** The rule expected to decide, by action. */
  readonly rules: ReadonlyMap<string, string>;
  /** The reason code expected, by action (needed to expect UNDECLARED_ACTION, UNKNOWN_RESOURCE_TYPE or a TOKEN_* reason). */
  readonly reasons: ReadonlyMap<string, string>;
  /** `file:line:col` of the test, for reports. */
  readonly location: string;
}

export interface Suite {
  readonly name: string;
  /** The file, as given to the runner. */
  readonly file: string;
  readonly subjects: ReadonlyMap<string, SubjectFixture>;
  readonly resources: ReadonlyMap<string, ResourceFixture>;
  readonly tests: readonly SuiteTest[];
}

/** Every reason a decision can carry: the evaluator's, the engine's and the token verifier's. */
const KNOWN_REASONS: ReadonlySet<string> = new Set([...Object.values(REASONS), ...Object.values(ENGINE_REASONS), ...TOKEN_REASON_CODES]);

/** Largest suite file read. */
export const MAX_SUITE_BYTES = 4 * 1024 * 1024;

/**
 * Parses a suite.
 *
 * @throws {ConfigError} with `file:line:col` of the first problem
 * @example
 * const suite = parseSuite(text, 'policies/documents.test.yaml');
 */
export function parseSuite(text: string, file: string): Suite {
  const root = ConfigDocument.parse(text, file, '.').root();
  root.allowOnly(['name', 'description', 'now', 'subjects', 'resources', 'contexts', 'tests']);
  const suiteNow = timeOf(root, 'now');
  const subjects = new Map<string, SubjectFixture>();
  for (const [name] of root.entries('subjects')) subjects.set(name, subjectFixture(root.section('subjects'), name));
  const resources = new Map<string, ResourceFixture>();
  for (const [name] of root.entries('resources')) resources.set(name, resourceFixture(root.section('resources').section(name), name));
  const contexts = new Map<string, Attributes>();
  for (const [name, value] of root.entries('contexts')) {
    if (!isObject(value)) throw root.section('contexts').error(name, 'must be a mapping of context attributes');
    contexts.set(name, value as Attributes);
  }
  const tests = root.sections('tests').map((t) => suiteTest(t, subjects, resources, contexts, suiteNow));
  if (tests.length === 0) throw root.error('tests', 'must list at least one test');
  const names = new Set<string>();
  for (const [i, t] of tests.entries()) {
    if (names.has(t.name)) throw root.sections('tests')[i]!.error('name', `repeats test name ${JSON.stringify(t.name)}`);
    names.add(t.name);
  }
  return { name: root.string('name') ?? file, file, subjects, resources, tests };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function timeOf(s: Section, key: string): number | undefined {
  const raw = s.raw(key);
  if (raw === undefined || raw === null) return undefined;
  const t = typeof raw === 'string' ? toTimestamp(raw) : undefined;
  if (t === undefined) throw s.error(key, 'must be an RFC 3339 time such as 2026-11-23T10:00:00Z');
  return t;
}

function subjectFixture(parent: Section, name: string): SubjectFixture {
  const value = parent.raw(name);
  if (!isObject(value)) throw parent.error(name, 'must be a mapping of subject attributes, or `token:` (and `issuer:`) for a token');
  if (!Object.hasOwn(value, 'token')) return { kind: 'attributes', name, attributes: value as Attributes };
  const s = parent.section(name);
  s.allowOnly(['token', 'issuer']);
  const claims = s.raw('token');
  if (!isObject(claims)) throw s.error('token', 'must be a mapping of the token\'s claims');
  const issuer = s.string('issuer');
  const location = s.doc.locate(issuer === undefined ? s.path : [...s.path, 'issuer']);
  return issuer === undefined ? { kind: 'token', name, claims, location } : { kind: 'token', name, claims, issuer, location };
}

function resourceFixture(s: Section, name: string): ResourceFixture {
  s.allowOnly(['type', 'id', 'attributes']);
  const type = s.requiredString('type');
  const id = s.string('id');
  const attributes = s.raw('attributes') ?? {};
  if (!isObject(attributes)) throw s.error('attributes', 'must be a mapping of resource attributes');
  return { name, type, ...(id === undefined ? {} : { id }), attributes: attributes as Attributes };
}

function suiteTest(
  s: Section,
  subjects: ReadonlyMap<string, SubjectFixture>,
  resources: ReadonlyMap<string, ResourceFixture>,
  contexts: ReadonlyMap<string, Attributes>,
  suiteNow: number | undefined,
): SuiteTest {
  s.allowOnly(['name', 'subjects', 'resources', 'context', 'now', 'expect', 'rules', 'reasons']);
  const name = s.requiredString('name');
  const refs = (key: 'subjects' | 'resources', known: ReadonlyMap<string, unknown>): string[] => {
    const list = s.stringList(key, []);
    if (list.length === 0) throw s.error(key, `must list at least one ${key === 'subjects' ? 'subject' : 'resource'} fixture`);
    for (const ref of list) {
      if (!known.has(ref)) {
        const near = closest(ref, known.keys());
        throw s.error(key, `names ${JSON.stringify(ref)}, which is not a ${key === 'subjects' ? 'subject' : 'resource'} fixture${near === undefined ? '' : `; did you mean ${JSON.stringify(near)}?`}`);
      }
    }
    return [...list];
  };
  const subjectRefs = refs('subjects', subjects);
  const resourceRefs = refs('resources', resources);
  let context: Attributes = {};
  const rawContext = s.raw('context');
  if (typeof rawContext === 'string') {
    const found = contexts.get(rawContext);
    if (found === undefined) {
      const near = closest(rawContext, contexts.keys());
      throw s.error('context', `names ${JSON.stringify(rawContext)}, which is not a context fixture${near === undefined ? '' : `; did you mean ${JSON.stringify(near)}?`}`);
    }
    context = found;
  } else if (isObject(rawContext)) {
    context = rawContext as Attributes;
  } else if (rawContext !== undefined && rawContext !== null) {
    throw s.error('context', 'must be a context fixture name or a mapping of context attributes');
  }
  const expect = new Map<string, 'ALLOW' | 'DENY'>();
  for (const [action, want] of s.entries('expect')) {
    if (want !== 'ALLOW' && want !== 'DENY') throw s.section('expect').error(action, 'must be ALLOW or DENY');
    expect.set(action, want);
  }
  if (expect.size === 0) throw s.error('expect', 'must map at least one action to ALLOW or DENY');
  const rules = new Map<string, string>();
  for (const [action, rule] of s.entries('rules')) {
    if (typeof rule !== 'string' || rule === '') throw s.section('rules').error(action, 'must be the id of the rule expected to decide');
    if (!expect.has(action)) throw s.section('rules').error(action, `names an action that \`expect\` does not`);
    rules.set(action, rule);
  }
  const reasons = new Map<string, string>();
  for (const [action, reason] of s.entries('reasons')) {
    if (typeof reason !== 'string' || !/^[A-Z][A-Z0-9_]*$/.test(reason)) throw s.section('reasons').error(action, 'must be a reason code such as UNDECLARED_ACTION or TOKEN_EXPIRED');
    if (!KNOWN_REASONS.has(reason)) {
      const near = closest(reason, KNOWN_REASONS);
      throw s.section('reasons').error(action, `names ${reason}, which is not a reason code${near === undefined ? '' : `; did you mean ${near}?`}`);
    }
    if (!expect.has(action)) throw s.section('reasons').error(action, `names an action that \`expect\` does not`);
    reasons.set(action, reason);
  }
  const now = timeOf(s, 'now') ?? suiteNow;
  return {
    name,
    subjects: subjectRefs,
    resources: resourceRefs,
    context,
    ...(now === undefined ? {} : { now }),
    expect,
    rules,
    reasons,
    location: s.doc.locate(s.path),
  };
}

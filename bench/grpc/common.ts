/**
 * What the gRPC benchmark's processes share: the Arbiter config they serve,
 * the request mix (tokens signed with the DEV-ONLY key, with the decision
 * each request must get), the messages sent on the wire, the load
 * generator's report, and a few measuring helpers.
 *
 * The same for Envoy's ext_authz (`envoy.service.auth.v3.Authorization/Check`):
 * a few Envoy-shaped HTTP requests on the routes of policies/gateway.policy,
 * with the answer each must get.
 *
 * Nothing here starts a server or times anything.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerUnaryCall } from '@grpc/grpc-js';
import { importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { Document, parseDocument } from 'yaml';
import { memoryDecisionLog } from '../../src/audit/decision-log.js';
import { parseConfig } from '../../src/config/config.js';
import { readServeSections } from '../../src/config/server.js';
import { Engine } from '../../src/engine/engine.js';
import { PolicyStore } from '../../src/engine/policy-store.js';
import { parseRequest } from '../../src/engine/request.js';
import { TokenVerifier } from '../../src/jwt/verify.js';
import { silentLogger } from '../../src/log/logger.js';
import { packageRoot } from '../../src/paths.js';
import { createExtAuthz } from '../../src/server/ext-authz.js';
import { loadExtAuthzProto } from '../../src/server/proto.js';
import { jsonToStruct, type ProtoStruct } from '../../src/server/struct.js';

/** The dev issuer and audience (dev/arbiter.yaml, `arbiter token --dev`). */
export const DEV_ISSUER = 'https://dev.arbiter.invalid';
export const DEV_AUDIENCE = 'arbiter';

/** The repository root (where package.json, dev/ and policies/ are). */
export const ROOT = packageRoot();

/**
 * dev/arbiter.yaml, adapted for the benchmark: plaintext on 127.0.0.1, port 0
 * (any free one), `workers` processes, no decision log, no metrics port, log
 * level `warn`; absolute paths so the text can be written anywhere. The
 * decision cache and the subject cache stay as dev/arbiter.yaml sets them.
 */
export function benchConfigYaml(workers = 1): string {
  const doc: Document = parseDocument(readFileSync(join(ROOT, 'dev', 'arbiter.yaml'), 'utf8'));
  doc.set('policies', join(ROOT, 'policies'));
  const issuers = doc.getIn(['jwt', 'issuers']) as { items: unknown[] } | undefined;
  const n = issuers?.items.length ?? 0;
  for (let i = 0; i < n; i++) {
    if (doc.hasIn(['jwt', 'issuers', i, 'jwks_file'])) doc.setIn(['jwt', 'issuers', i, 'jwks_file'], join(ROOT, 'dev', 'jwks.json'));
  }
  doc.setIn(['server', 'address'], '127.0.0.1:0');
  doc.setIn(['server', 'plaintext'], true);
  doc.setIn(['server', 'workers'], workers);
  doc.delete('metrics');
  doc.setIn(['decision_log', 'path'], 'off');
  doc.setIn(['log', 'level'], 'warn');
  return doc.toString();
}

/** The bench config parsed, as `arbiter serve` would (relative paths against dev/). */
export function benchConfig(workers = 1): ReturnType<typeof parseConfig> {
  return parseConfig(benchConfigYaml(workers), '(bench config from dev/arbiter.yaml)', join(ROOT, 'dev'), {});
}

/** One request of the mix, as JSON (the shape `arbiter check` reads, minus the subject). */
export interface RequestJson {
  readonly action: string;
  readonly resource: { readonly type: string; readonly id: string; readonly attributes: Readonly<Record<string, unknown>> };
  readonly context?: Readonly<Record<string, unknown>>;
}

/** A (subject, request) pair of the mix; the subject is given as token claims. */
export interface Template {
  readonly name: string;
  readonly claims: Readonly<Record<string, unknown>> & { readonly sub: string };
  readonly request: RequestJson;
}

/**
 * The fixed set of (token, request) pairs, over the shipped policies/: role,
 * derived-role, department and attribute rules, permits and forbids, a
 * default deny, and an order refund whose context carries the time and the
 * network (so it is cacheable and exercises a bigger message).
 */
export const TEMPLATES: readonly Template[] = [
  {
    name: 'editor reads a department document',
    claims: { sub: 'alice', roles: ['editor'], department: 'engineering' },
    request: { action: 'read', resource: { type: 'document', id: 'spec-42', attributes: { owner: 'bob', department: 'engineering', classification: 'internal' } }, context: { ip: '10.1.2.3' } },
  },
  {
    name: 'owner deletes a secret document',
    claims: { sub: 'bob', roles: ['viewer'] },
    request: { action: 'delete', resource: { type: 'document', id: 'plan-7', attributes: { owner: 'bob', classification: 'secret' } } },
  },
  {
    name: 'admin shares a shareable document',
    claims: { sub: 'carol', roles: ['admin'], department: 'it' },
    request: { action: 'share', resource: { type: 'document', id: 'deck-3', attributes: { owner: 'zoe', classification: 'internal', tags: ['shareable'], audience: 'x@partner.example' } } },
  },
  {
    name: 'viewer updates another department document',
    claims: { sub: 'dave', roles: ['viewer'], department: 'sales' },
    request: { action: 'update', resource: { type: 'document', id: 'roadmap-1', attributes: { owner: 'alice', department: 'engineering', classification: 'internal' } } },
  },
  {
    name: 'auditor reads a confidential document',
    claims: { sub: 'erin', roles: ['auditor'] },
    request: { action: 'read', resource: { type: 'document', id: 'ledger-9', attributes: { owner: 'frank', classification: 'confidential' } } },
  },
  {
    name: 'collaborator comments',
    claims: { sub: 'frank', roles: [] },
    request: { action: 'comment', resource: { type: 'document', id: 'notes-5', attributes: { owner: 'gina', classification: 'internal', collaborators: ['frank', 'harry'] } } },
  },
  {
    name: 'finance refunds an order from the office',
    claims: { sub: 'fiona', roles: ['viewer'], department: 'finance', scope: 'orders:read' },
    request: {
      action: 'refund',
      resource: { type: 'order', id: 'o-1001', attributes: { customer: 'c-77', amount: 120, region: 'eu' } },
      context: { ip: '10.20.0.5', time: '2026-11-23T10:15:00Z' },
    },
  },
  {
    name: 'viewer lists a drafts folder',
    claims: { sub: 'gina', roles: ['viewer'] },
    request: { action: 'list', resource: { type: 'folder', id: 'f-1', attributes: { owner: 'harry', path: '/drafts/q3' } } },
  },
];

/** The decision Arbiter must give a request. */
export interface Expected {
  readonly decision: 'ALLOW' | 'DENY';
  readonly reason: string;
  readonly rules: readonly string[];
}

/** Everything the load generator needs to drive Arbiter, computed once (by run.ts) before any timing. */
export interface MixFile {
  /** Per template: its token (reused by the `hits` and `misses` mixes) and expected decision. */
  readonly templates: readonly { readonly name: string; readonly token: string; readonly request: RequestJson; readonly expected: Expected }[];
  /** Fresh tokens for `token-misses`: token i carries the claims of template i mod T, with its own `jti`. */
  readonly tokenPool: readonly string[];
  /** The subject cache's capacity in the served config: the pool is larger, so cycling it never hits. */
  readonly subjectCacheEntries: number;
  /** Per ext_authz template: its token (none for a public route), its request, and the answer it must get. */
  readonly ext: readonly ExtMixTemplate[];
}

/** The mixes: see load.ts. */
export const MIXES = ['hits', 'misses', 'token-misses'] as const;
export type Mix = (typeof MIXES)[number];

/** What each mix does to Arbiter's two caches (printed with the tables). */
export const MIX_NOTES: Readonly<Record<Mix, string>> = {
  hits: `${TEMPLATES.length} fixed (token, request) pairs repeated: decision cache hit, subject (token) cache hit`,
  misses: 'every call a distinct resource id (same tokens): decision cache miss, subject cache hit — evaluation runs, JWT verification does not',
  'token-misses': 'every call a freshly signed token from a pre-signed pool larger than the subject cache, and a distinct resource id: both caches miss — ES256 verification and evaluation run on every call',
};

async function devKey(): Promise<{ key: Awaited<ReturnType<typeof importJWK>>; alg: string; kid: string | undefined }> {
  const jwk = JSON.parse(readFileSync(join(ROOT, 'dev', 'signing-key.jwk.json'), 'utf8')) as JWK;
  if (typeof jwk.alg !== 'string') throw new Error('dev/signing-key.jwk.json has no "alg"');
  return { key: await importJWK(jwk, jwk.alg), alg: jwk.alg, kid: jwk.kid };
}

/** Signs `count` tokens, token i with the claims of template i mod T, each with its own `jti`; valid for two hours. */
export async function signTokens(count: number, templates: readonly { readonly claims: Template['claims'] }[] = TEMPLATES): Promise<string[]> {
  const { key, alg, kid } = await devKey();
  const now = Math.floor(Date.now() / 1000);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const t = templates[i % templates.length]!;
    const { sub, ...claims } = t.claims;
    out.push(
      await new SignJWT(claims as JWTPayload)
        .setProtectedHeader({ alg, typ: 'JWT', ...(kid === undefined ? {} : { kid }) })
        .setIssuer(DEV_ISSUER)
        .setAudience(DEV_AUDIENCE)
        .setSubject(sub)
        .setIssuedAt(now)
        .setExpirationTime(now + 2 * 3600)
        .setJti(`bench-${i}-${crypto.randomUUID()}`)
        .sign(key),
    );
  }
  return out;
}

/**
 * The resource id of a `misses` / `token-misses` call: distinct for every
 * (run, loop, call) — `run` tells load-generator processes apart, so a later
 * run never meets an entry an earlier one left in the decision cache.
 */
export function missId(base: string, run: string, loop: number, n: number): string {
  return `${base}~${run}.${loop}.${n}`;
}

/**
 * Builds the mix: signs the template tokens and the token pool, and computes
 * each template's decision with the in-process engine on the same config
 * (verifier, policies, request parser). Also checks, in process, that what the
 * `misses` and `token-misses` mixes change (the resource id, the token) does
 * not change the decision, so the load generator can hold every answer to its
 * template's. Then the same for ext_authz (see buildExtMix).
 *
 * @throws {Error} when a changed request decides differently, or the mix has no ALLOW or no DENY
 */
export async function buildMix(poolSize: number): Promise<MixFile> {
  const config = benchConfig();
  if (config.jwt === undefined || config.policies === undefined) throw new Error('the bench config has no jwt section or no policies');
  const tokens = await signTokens(TEMPLATES.length);
  const pool = await signTokens(poolSize);
  const verifier = await TokenVerifier.create(config.jwt);
  try {
    const store = await PolicyStore.open(config.policies);
    const engine = new Engine(store, { verifier });
    const decide = async (token: string, r: RequestJson): Promise<Expected> => {
      const parsed = parseRequest({ action: r.action, resource: r.resource, ...(r.context === undefined ? {} : { context: r.context }) }, { subjectFromToken: true });
      const d = await engine.decide({ principal: { token }, action: parsed.action, resource: parsed.resource, ...(r.context === undefined ? {} : { context: parsed.context }) });
      return { decision: d.decision, reason: d.reason, rules: [...d.rules] };
    };
    const same = (a: Expected, b: Expected): boolean => a.decision === b.decision && a.reason === b.reason && a.rules.join(',') === b.rules.join(',');
    const templates: MixFile['templates'][number][] = [];
    for (const [i, t] of TEMPLATES.entries()) {
      const token = tokens[i]!;
      const expected = await decide(token, t.request);
      if (expected.reason.startsWith('TOKEN_')) throw new Error(`template "${t.name}": its token was refused (${expected.reason})`);
      const moved = await decide(token, { ...t.request, resource: { ...t.request.resource, id: missId(t.request.resource.id, 'probe', 63, 123_456) } });
      if (!same(moved, expected)) throw new Error(`template "${t.name}": a distinct resource id changes the decision (${expected.decision} → ${moved.decision})`);
      templates.push({ name: t.name, token, request: t.request, expected });
    }
    // A sample of the pool: fresh tokens with the template's claims decide as the template.
    for (let i = 0; i < Math.min(pool.length, 4 * TEMPLATES.length); i++) {
      const tpl = templates[i % templates.length]!;
      const got = await decide(pool[i]!, tpl.request);
      if (!same(got, tpl.expected)) throw new Error(`pool token ${i} decides ${got.decision}/${got.reason}, its template "${tpl.name}" ${tpl.expected.decision}/${tpl.expected.reason}`);
    }
    const decisions = new Set(templates.map((t) => t.expected.decision));
    if (!decisions.has('ALLOW') || !decisions.has('DENY')) throw new Error('the mix must hold both ALLOW and DENY decisions');
    const ext = await buildExtMix(config, store, verifier);
    return { templates, tokenPool: pool, subjectCacheEntries: config.jwt.cache.maxEntries, ext };
  } finally {
    verifier.close();
  }
}

/** The APIs measured. */
export const APIS = ['check', 'ext_authz'] as const;
export type Api = (typeof APIS)[number];

/** A CheckRequest message as proto-loader encodes it (keepCase, oneofs). */
export interface CheckRequestMsg {
  token: string;
  action: string;
  resource: { type: string; id: string; attributes: ProtoStruct };
  context?: ProtoStruct;
}

/** The wire message of a template request with `token`, and optionally another resource id. */
export function checkMessage(token: string, r: RequestJson, id: string = r.resource.id): CheckRequestMsg {
  return {
    token,
    action: r.action,
    resource: { type: r.resource.type, id, attributes: jsonToStruct(r.resource.attributes) },
    ...(r.context === undefined ? {} : { context: jsonToStruct(r.context) }),
  };
}

// ---------------------------------------------------------------------------
// Envoy ext_authz (envoy.service.auth.v3.Authorization/Check).

/** One HTTP request of the ext_authz mixes, on a route of policies/gateway.policy. */
export interface ExtTemplate {
  readonly name: string;
  /** The claims of its bearer token; absent: no `authorization` header. */
  readonly claims?: Template['claims'];
  readonly method: string;
  /** The path; for a route with a resource id, the path up to the id. */
  readonly path: string;
  /** The resource id that ends the path (`ext-misses` puts a distinct one there on every call); absent: the path is fixed. */
  readonly id?: string;
}

/**
 * The fixed Envoy requests, over the routes of policies/gateway.policy: an
 * admin reads a document (allowed), a viewer deletes one and an editor of no
 * matching department updates one (denied: 403), an auditor views the admin
 * console (a `**` route), and the public health check (no token).
 */
export const EXT_TEMPLATES: readonly ExtTemplate[] = [
  { name: 'admin reads a document', claims: { sub: 'carol', roles: ['admin'], department: 'it' }, method: 'GET', path: '/api/documents/', id: 'spec-42' },
  { name: 'viewer deletes a document', claims: { sub: 'bob', roles: ['viewer'] }, method: 'DELETE', path: '/api/documents/', id: 'plan-7' },
  { name: 'editor updates a document', claims: { sub: 'alice', roles: ['editor'], department: 'engineering' }, method: 'PUT', path: '/api/documents/', id: 'roadmap-1' },
  { name: 'auditor views the admin console', claims: { sub: 'erin', roles: ['auditor'] }, method: 'GET', path: '/admin/audit-log' },
  { name: 'public health check, no token', method: 'GET', path: '/healthz' },
];

/** An ext_authz template as the load generator gets it: its token, and the answer it must get. */
export interface ExtMixTemplate {
  readonly name: string;
  readonly token?: string;
  readonly method: string;
  readonly path: string;
  readonly id?: string;
  /** Envoy's request id (stream id and `x-request-id`) of its fixed request. */
  readonly requestId: string;
  /** The answer as {@link extAnswer} sums it up; every answer to this template, whatever the id, must equal it. */
  readonly answer: string;
  /** Whether the answer lets the request through (`ok_response`). */
  readonly allowed: boolean;
  /** Whether the in-process server answered a repeat from the decision cache (a public route makes no decision to cache). */
  readonly cacheable: boolean;
}

/** The ext_authz mixes: see load.ts. */
export const EXT_MIXES = ['ext-hits', 'ext-misses'] as const;
export type ExtMix = (typeof EXT_MIXES)[number];

/** What each ext_authz mix does to Arbiter's two caches (printed with the tables). */
export const EXT_MIX_NOTES: Readonly<Record<ExtMix, string>> = {
  'ext-hits': `${EXT_TEMPLATES.length} fixed Envoy requests repeated (${EXT_TEMPLATES.map((t) => `${t.method} ${t.path}${t.id ?? ''}`).join(', ')}): decision cache hit, subject cache hit; the public route is answered from the routes alone`,
  'ext-misses': `the ${EXT_TEMPLATES.filter((t) => t.id !== undefined).length} requests with a document id, every call a distinct id in the path (and its own request id), same tokens: decision cache miss, subject cache hit — evaluation runs, JWT verification does not`,
};

/** Every mix the load generator knows. */
export type AnyMix = Mix | ExtMix;
export const isExtMix = (m: string): m is ExtMix => (EXT_MIXES as readonly string[]).includes(m);

/** An ext_authz CheckRequest as proto-loader encodes it (keepCase). */
export interface ExtCheckRequestMsg {
  attributes: {
    source: object;
    destination: object;
    request: { time: { seconds: number; nanos: number }; http: { id: string; method: string; headers: Record<string, string>; path: string; host: string; scheme: string; protocol: string } };
  };
}

/** The request id of an `ext-misses` call (the characters Arbiter accepts in one): distinct for every (run, loop, call). */
export function extRequestId(run: string, loop: number, n: number): string {
  return `${run}.${loop}.${n}`;
}

/** Envoy's CheckRequest for one HTTP request (the shape of test/server/ext-authz.test.ts): lower-case headers with the pseudo-headers, the source and destination peers. */
export function envoyMessage(method: string, token: string | undefined, path: string, requestId: string, seconds: number): ExtCheckRequestMsg {
  const host = 'api.example.test';
  return {
    attributes: {
      source: { address: { socket_address: { address: '192.0.2.10', port_value: 51_234 } } },
      destination: { address: { socket_address: { address: '10.0.0.5', port_value: 8443 } }, principal: 'spiffe://cluster.local/ns/edge/sa/gateway' },
      request: {
        time: { seconds, nanos: 0 },
        http: {
          id: requestId,
          method,
          headers: {
            ':authority': host,
            ':method': method,
            ':path': path,
            ':scheme': 'https',
            accept: 'application/json',
            'user-agent': 'curl/8.5.0',
            'x-forwarded-proto': 'https',
            'x-request-id': requestId,
            ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          },
          path,
          host,
          scheme: 'https',
          protocol: 'HTTP/1.1',
        },
      },
    },
  };
}

/** An ext_authz CheckResponse as the client decodes it (PROTO_LOADER_OPTIONS: defaults off, so a zero code is absent; oneofs named). */
export interface ExtCheckResponseMsg {
  status?: { code?: number; message?: string } | null;
  http_response?: string;
  ok_response?: { headers?: { header?: { key?: string; value?: string } | null }[]; headers_to_remove?: string[] } | null;
  denied_response?: { status?: { code?: string } | null; body?: string } | null;
}

/**
 * What an answer says, as one line: the gRPC-in-message status code and,
 * when allowed, the headers set and removed upstream; when denied, the HTTP
 * status and the reason (the status message). The denial's body is left
 * out: it carries the request id.
 */
export function extAnswer(res: ExtCheckResponseMsg): string {
  const code = res.status?.code ?? 0;
  if (res.http_response === 'ok_response') {
    const ok = res.ok_response;
    const set = (ok?.headers ?? []).map((h) => `${h.header?.key ?? ''}: ${h.header?.value ?? ''}`).join(', ');
    return `${code} ok [${set}] remove [${(ok?.headers_to_remove ?? []).join(', ')}]`;
  }
  if (res.http_response === 'denied_response') return `${code} denied ${res.denied_response?.status?.code ?? '?'} ${res.status?.message ?? ''}`;
  return `${code} no http_response`;
}

type UnaryHandler = (call: ServerUnaryCall<unknown, unknown>, callback: (err: unknown, res?: unknown) => void) => void;

/**
 * The ext_authz templates with their expected answers: signs their tokens and
 * asks Arbiter's own ext_authz handler (createExtAuthz, on an engine with the
 * served config's decision cache), in process, through the wire format both
 * ways. Checks that a repeat of each request with a token is answered from
 * the decision cache, and that a distinct id in the path changes the cache
 * key (a miss) but not the answer.
 */
async function buildExtMix(config: ReturnType<typeof parseConfig>, store: PolicyStore, verifier: TokenVerifier): Promise<ExtMixTemplate[]> {
  const serve = readServeSections(config.root);
  if (!serve.extAuthz.enabled) throw new Error('the bench config has ext_authz off');
  const engine = new Engine(store, { verifier, cache: serve.cache });
  const log = memoryDecisionLog();
  const handler = createExtAuthz({ engine, decisionLog: log, logger: silentLogger, options: serve.extAuthz })['Check'] as unknown as UnaryHandler;
  const method = loadExtAuthzProto().authorization['Check']!;
  const ask = (msg: ExtCheckRequestMsg): Promise<{ answer: string; allowed: boolean; cached: boolean }> =>
    new Promise((resolve, reject) => {
      const before = log.records.length;
      const request = method.requestDeserialize(method.requestSerialize(msg));
      handler({ request } as ServerUnaryCall<unknown, unknown>, (err, res) => {
        if (err !== null && err !== undefined) {
          reject(new Error(`ext_authz in process: ${(err as Error).message}`));
          return;
        }
        const decoded = method.responseDeserialize(method.responseSerialize(res)) as ExtCheckResponseMsg;
        resolve({ answer: extAnswer(decoded), allowed: decoded.http_response === 'ok_response', cached: log.records[before]?.cached === true });
      });
    });
  const tokens = await signTokens(EXT_TEMPLATES.length, EXT_TEMPLATES.map((t) => ({ claims: t.claims ?? { sub: 'unused' } })));
  const seconds = Math.floor(Date.now() / 1000);
  const out: ExtMixTemplate[] = [];
  for (const [i, t] of EXT_TEMPLATES.entries()) {
    const token = t.claims === undefined ? undefined : tokens[i]!;
    const requestId = crypto.randomUUID();
    const msg = envoyMessage(t.method, token, t.path + (t.id ?? ''), requestId, seconds);
    const first = await ask(msg);
    if (first.answer.includes('TOKEN_')) throw new Error(`ext_authz template "${t.name}": its token was refused (${first.answer})`);
    const again = await ask(msg);
    if (again.answer !== first.answer) throw new Error(`ext_authz template "${t.name}": a repeat answers differently (${first.answer} → ${again.answer})`);
    if (token !== undefined && !again.cached) throw new Error(`ext_authz template "${t.name}": a repeat was not answered from the decision cache`);
    if (t.id !== undefined) {
      const moved = await ask(envoyMessage(t.method, token, t.path + missId(t.id, 'probe', 63, 123_456), extRequestId('probe', 63, 123_456), seconds));
      if (moved.answer !== first.answer) throw new Error(`ext_authz template "${t.name}": a distinct id changes the answer (${first.answer} → ${moved.answer})`);
      if (moved.cached) throw new Error(`ext_authz template "${t.name}": a distinct id was answered from the decision cache`);
    }
    out.push({ name: t.name, ...(token === undefined ? {} : { token }), method: t.method, path: t.path, ...(t.id === undefined ? {} : { id: t.id }), requestId, answer: first.answer, allowed: first.allowed, cacheable: again.cached });
  }
  if (!out.some((t) => t.allowed) || !out.some((t) => !t.allowed)) throw new Error('the ext_authz mix must hold both allowed and denied requests');
  if (!out.some((t) => t.id !== undefined)) throw new Error('the ext_authz mix has no request with an id: ext-misses would be empty');
  return out;
}

/** What one load-generator run prints (one JSON line on stdout). */
export interface LoadResult {
  readonly target: string;
  readonly mix: string;
  /** The API called: `check` (arbiter.v1.Authorizer/Check) or `ext_authz` (envoy.service.auth.v3.Authorization/Check). */
  readonly api: Api;
  readonly concurrency: number;
  readonly channels: number;
  /** Length of the timed window, seconds. */
  readonly seconds: number;
  /** Calls completed inside the timed window. */
  readonly calls: number;
  readonly rps: number;
  readonly p50_us: number;
  readonly p99_us: number;
  readonly mean_us: number;
  readonly errors: number;
  readonly errorExamples: readonly string[];
  readonly allow: number;
  readonly deny: number;
  /** Answers that said `cached: true` (decision cache hits); always 0 for ext_authz, whose answers do not say. */
  readonly cached: number;
  /** Answers that differ from the expected decision of their request. */
  readonly mismatches: number;
  readonly mismatchExamples: readonly string[];
  /** Where in the token pool this run started and stopped (token-misses only; the next run starts at `poolEnd`). */
  readonly poolStart: number;
  readonly poolEnd: number;
  /** Whether the run went round the token pool (harmless: the pool is larger than the subject cache, an LRU). */
  readonly poolWrapped: boolean;
  /** CPU the load generator used in the window, in cores (1.0 = one core busy). */
  readonly clientCpu: number;
  /** CPU the server process tree used in the window, in cores; null when not measurable (no /proc). */
  readonly serverCpu: number | null;
  /** CPU the whole machine used in the window, in cores (/proc/stat); null when not measurable. */
  readonly machineCpu: number | null;
}

export function isLoadResult(v: unknown): v is LoadResult {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<LoadResult>;
  return typeof r.rps === 'number' && typeof r.p50_us === 'number' && typeof r.errors === 'number' && typeof r.mismatches === 'number';
}

/** The q-quantile (0..1) of an ascending-sorted array, nearest rank. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

/**
 * CPU seconds the whole machine has spent busy (everything but idle and
 * iowait, /proc/stat), or `null` without /proc. The difference over a window,
 * less the load generator's and the server's, is what other processes took.
 */
export function machineBusyCpuSeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Linux USER_HZ: the unit of utime/stime in /proc/PID/stat and /proc/stat. */
const CLOCK_TICKS = 100;

/**
 * Process `pid` and all its descendants (Linux /proc: a cluster primary and
 * its workers), `pid` first. Throws when /proc cannot say.
 */
export function processTree(pid: number): number[] {
  const all: number[] = [];
  const walk = (p: number): void => {
    if (all.includes(p)) return;
    all.push(p);
    for (const tid of readdirSync(`/proc/${p}/task`)) {
      let children = '';
      try {
        children = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const c of children.split(' ')) if (c.trim() !== '') walk(Number(c));
    }
  };
  walk(pid);
  return all;
}

/**
 * CPU seconds used so far by process `pid` and all its descendants (Linux
 * /proc; a cluster primary and its workers). `null` when /proc cannot say.
 */
export function processTreeCpuSeconds(pid: number): number | null {
  try {
    let ticks = 0;
    for (const p of processTree(pid)) {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after "(comm)": state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return ticks / CLOCK_TICKS;
  } catch {
    return null;
  }
}

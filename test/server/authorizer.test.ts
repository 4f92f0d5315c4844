/**
 * The `arbiter.v1.Authorizer` gRPC API end to end: a real server in process
 * (test/server/harness.ts), a real grpc-js client, real signed tokens against
 * a JWKS file, the shipped policies. Health checking, reflection, the ops
 * HTTP port, the decision log and the decision cache are observed from the
 * outside, the way an operator or a client sees them. No mocks, no sleeps.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import fc from 'fast-check';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jsonToStruct, type ProtoStruct } from '../../src/server/struct.js';
import { AUDIENCE, ISSUER, jwksOf, makeKey, sign, type TestKey } from '../jwt/fixtures.js';
import { call, checkRequest, POLICIES, REPO, startHarness, testIssuerYaml, type Harness } from './harness.js';

// ---------------------------------------------------------------------------
// Shapes of what the client decodes (proto-loader: keepCase, enums as
// strings, defaults: false — so a false bool or an empty list is absent).

type Client = ReturnType<Harness['client']>;

interface RuleTraceMsg {
  rule?: string;
  effect?: string;
  applied?: boolean;
  location?: string;
}

interface TraceMsg {
  decided_by?: string;
  evaluated?: RuleTraceMsg[];
  matched?: string[];
  rules_for_action?: number;
}

interface CheckRes {
  decision?: string;
  reason?: string;
  rules?: string[];
  policy_revision?: string;
  message?: string;
  trace?: TraceMsg;
  request_id?: string;
  cached?: boolean;
}

interface ActionDecisionMsg {
  action?: string;
  decision?: string;
  reason?: string;
  rules?: string[];
  cached?: boolean;
}

interface BatchRes {
  results?: { decisions?: ActionDecisionMsg[] }[];
  policy_revision?: string;
  request_id?: string;
  token_reason?: string;
  message?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// ---------------------------------------------------------------------------
// Keys, tokens and config shared by every server in this file.

let key: TestKey;
/** Same kid as `key`, not in the JWKS: its signatures must not verify. */
let attacker: TestKey;
let jwksPath: string;

function jwtYaml(extra = ''): string {
  return testIssuerYaml(`jwks_file: ${JSON.stringify(jwksPath)}`, { sectionLines: extra === '' ? [] : [extra] });
}

const SERVER_SMALL_BATCH = 'server:\n  address: 127.0.0.1:0\n  plaintext: true\n  max_batch_items: 5\n';

interface Who {
  readonly sub: string;
  readonly roles?: readonly string[];
  readonly department?: string;
  readonly scopes?: readonly string[];
}

/** A token the test issuer signs for `who` (valid for 10 minutes from `now`). */
function tokenFor(who: Who, options: { now?: number; key?: TestKey; claims?: Record<string, unknown> } = {}): Promise<string> {
  return sign(options.key ?? key, {
    ...(options.now === undefined ? {} : { now: options.now }),
    claims: {
      sub: who.sub,
      roles: who.roles === undefined ? undefined : [...who.roles],
      department: who.department,
      scope: who.scopes === undefined ? undefined : who.scopes.join(' '),
      ...options.claims,
    },
  });
}

/** An unsigned (`alg: none`) token claiming to be an admin. */
function unsignedAdminToken(): string {
  const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ iss: ISSUER, aud: AUDIENCE, sub: 'mallory', roles: ['admin'], iat: now, exp: now + 600 })}.`;
}

/** A token with `header`, a valid-looking payload for the test issuer, and a signature that is 64 random bytes. */
function forge(header: object, claims: object = {}): string {
  const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${enc(header)}.${enc({ iss: ISSUER, aud: AUDIENCE, sub: 'mallory', roles: ['admin'], iat: now, exp: now + 600, ...claims })}.${randomBytes(64).toString('base64url')}`;
}

/** `err` must not contain the token nor any long part of it. */
function expectNoToken(text: string, token: string): void {
  // A short string is no secret, and may well appear in any message.
  if (token.length < 16) return;
  expect(text).not.toContain(token);
  for (const part of token.split('.')) {
    if (part.length >= 16) expect(text).not.toContain(part);
  }
}

function example(name: string): { subject: Who & Record<string, unknown>; action: string; resource: { type: string; id: string; attributes: Record<string, unknown> }; context?: Record<string, unknown> } {
  return JSON.parse(readFileSync(join(POLICIES, 'examples', name), 'utf8')) as ReturnType<typeof example>;
}

const ALICE: Who = { sub: 'alice', roles: ['editor'], department: 'engineering' };
const ENG_DOC = { owner: 'bob', department: 'engineering', classification: 'internal' };

function check(client: Client, request: object): Promise<CheckRes> {
  return call<CheckRes>(client, 'Check', request);
}

function batch(client: Client, request: object): Promise<BatchRes> {
  return call<BatchRes>(client, 'CheckBatch', request);
}

/** The error a call fails with (fails the test if it succeeds). */
async function failure(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    const res = await p;
    throw new Error(`expected the call to fail, it answered ${JSON.stringify(res)}`);
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('expected the call to fail')) throw e;
    return e as grpc.ServiceError;
  }
}

function fieldOf(err: grpc.ServiceError): string | undefined {
  const v = err.metadata?.get('arbiter-field')[0];
  return v === undefined ? undefined : String(v);
}

/** A good request the server must still answer after something bad. */
async function expectStillServing(client: Client, token: string): Promise<void> {
  const res = await check(client, checkRequest({ token, action: 'read', resource: { type: 'document', id: 'spec-42', attributes: ENG_DOC } }));
  expect(res.decision).toBe('ALLOW');
}

/** Nests `{a: {a: ... {leaf: 1}}}` `depth` objects deep (the outermost is depth 1). */
function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

async function httpGet(port: number | undefined, path: string): Promise<{ status: number; text: string }> {
  expect(port).toBeTypeOf('number');
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** A small parser of the Prometheus text format (samples only). */
function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (m === null) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2] !== undefined) {
      for (const lm of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      }
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample of `name` whose labels include `labels` (0 when none). */
function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return matching.reduce((sum, s) => sum + s.value, 0);
}

beforeAll(async () => {
  key = await makeKey('ES256', 'k1');
  attacker = await makeKey('ES256', 'k1');
  const dir = mkdtempSync(join(tmpdir(), 'arbiter-authz-'));
  jwksPath = join(dir, 'jwks.json');
  writeFileSync(jwksPath, JSON.stringify(jwksOf(key)));
});

// ---------------------------------------------------------------------------
// The main server: token issuer configured, at most 5 batch items.

describe('Authorizer over gRPC', () => {
  let h: Harness;
  let client: Client;
  let alice: string;

  beforeAll(async () => {
    h = await startHarness({ yaml: `${SERVER_SMALL_BATCH}${jwtYaml()}` });
    client = h.client();
    alice = await tokenFor(ALICE);
  });

  afterAll(async () => {
    await h?.close();
  });

  describe('Check decides the example policies for verified tokens', () => {
    const cases: { file: string; decision: string; reason: string; rules: string[] }[] = [
      { file: 'alice-reads-spec.json', decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['document.dept_editors'] },
      { file: 'bob-deletes-secret.json', decision: 'DENY', reason: 'RULE_FORBID', rules: ['document.keep_secrets'] },
      { file: 'refund-from-office.json', decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['order.refund_staff'] },
    ];
    for (const c of cases) {
      it(`${c.file}: ${c.decision} ${c.reason} by ${c.rules.join(', ')}`, async () => {
        const { subject, ...request } = example(c.file);
        const token = await tokenFor(subject);
        const res = await check(client, checkRequest({ ...request, token }));
        expect(res.decision).toBe(c.decision);
        expect(res.reason).toBe(c.reason);
        expect(res.rules).toEqual(c.rules);
        expect(res.policy_revision).toBe(h.server.engine.revision);
        expect(res.message).toBeUndefined();
        expect(res.trace).toBeUndefined();
      });
    }

    it('NO_MATCHING_RULE: an editor of another department', async () => {
      const res = await check(client, checkRequest({ token: alice, action: 'update', resource: { type: 'document', id: 'd-sales', attributes: { ...ENG_DOC, department: 'sales' } } }));
      expect(res).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE', policy_revision: h.server.engine.revision });
      expect(res.rules ?? []).toEqual([]);
    });

    it('UNKNOWN_RESOURCE_TYPE: a type no policy declares', async () => {
      const res = await check(client, checkRequest({ token: alice, action: 'read', resource: { type: 'spaceship', id: 'ncc-1701' } }));
      expect(res).toMatchObject({ decision: 'DENY', reason: 'UNKNOWN_RESOURCE_TYPE', policy_revision: h.server.engine.revision });
      expect(res.rules ?? []).toEqual([]);
    });

    it('UNDECLARED_ACTION: an action the type does not declare', async () => {
      const res = await check(client, checkRequest({ token: alice, action: 'print', resource: { type: 'document', id: 'spec-42', attributes: ENG_DOC } }));
      expect(res).toMatchObject({ decision: 'DENY', reason: 'UNDECLARED_ACTION', policy_revision: h.server.engine.revision });
    });

    it('a copied "Bearer " prefix is tolerated', async () => {
      const res = await check(client, checkRequest({ token: `Bearer ${alice}`, action: 'read', resource: { type: 'document', id: 'spec-42', attributes: ENG_DOC } }));
      expect(res).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT' });
    });

    it('echoes request_id when given and generates a UUID when not', async () => {
      const req = { token: alice, action: 'read', resource: { type: 'document', id: 'spec-42', attributes: ENG_DOC } };
      const given = await check(client, checkRequest({ ...req, request_id: 'req-123:a/b.c_d' }));
      expect(given.request_id).toBe('req-123:a/b.c_d');
      const generated = await check(client, checkRequest(req));
      expect(generated.request_id).toMatch(UUID);
      const again = await check(client, checkRequest(req));
      expect(again.request_id).toMatch(UUID);
      expect(again.request_id).not.toBe(generated.request_id);
    });
  });

  describe('a refused token is a DENY answer, never an error', () => {
    const refused: { name: string; reason: string; token: () => Promise<string> }[] = [
      { name: 'an expired token', reason: 'TOKEN_EXPIRED', token: () => tokenFor(ALICE, { now: Date.now() - 2 * 3600_000 }) },
      { name: 'a bad signature (same kid, another key)', reason: 'TOKEN_INVALID_SIGNATURE', token: () => tokenFor({ ...ALICE, roles: ['admin'] }, { key: attacker }) },
      { name: 'a garbage string', reason: 'TOKEN_MALFORMED', token: async () => 'this-is-not-a-jwt-at-all-0123456789' },
      { name: 'an empty token', reason: 'TOKEN_MISSING', token: async () => '' },
      { name: 'a token of an unknown issuer', reason: 'TOKEN_UNKNOWN_ISSUER', token: () => tokenFor(ALICE, { claims: { iss: 'https://evil.test/realms/acme' } }) },
      { name: 'a token for another audience', reason: 'TOKEN_WRONG_AUDIENCE', token: () => tokenFor(ALICE, { claims: { aud: 'some-other-app' } }) },
      { name: 'an unsigned token', reason: 'TOKEN_ALG_NONE', token: async () => unsignedAdminToken() },
      { name: 'a token over 16 KiB', reason: 'TOKEN_TOO_LARGE', token: async () => `${'eyJhbGciOiJFUzI1NiJ9'}.${'A'.repeat(17_000)}.${'B'.repeat(86)}` },
      { name: 'a header that is not JSON', reason: 'TOKEN_MALFORMED', token: async () => `${Buffer.from('{"alg":"ES256",').toString('base64url')}.${Buffer.from('{"sub":"alice-secret-payload"}').toString('base64url')}.c2lnbmF0dXJlLWJ5dGVzLWhlcmU` },
      { name: 'a key id the issuer does not have', reason: 'TOKEN_UNKNOWN_KID', token: async () => tokenFor(ALICE, { key: await makeKey('ES256', 'k-unknown') }) },
      { name: 'an HMAC token for an issuer with public keys', reason: 'TOKEN_ALG_CONFUSION', token: () => sign({ secret: new Uint8Array(Buffer.from(JSON.stringify(key.jwk))), alg: 'HS256' }, { header: { kid: 'k1' } }) },
      { name: 'a crit header', reason: 'TOKEN_UNSUPPORTED_CRIT', token: async () => forge({ alg: 'ES256', kid: 'k1', crit: ['x-ext'], 'x-ext': 1 }) },
      { name: 'no exp', reason: 'TOKEN_MISSING_CLAIM', token: () => tokenFor(ALICE, { claims: { exp: undefined } }) },
      { name: 'nbf in the future', reason: 'TOKEN_NOT_YET_VALID', token: () => tokenFor(ALICE, { claims: { nbf: Math.floor(Date.now() / 1000) + 3600 } }) },
      { name: 'roles that are not strings', reason: 'TOKEN_INVALID_CLAIM', token: () => tokenFor(ALICE, { claims: { roles: ['editor', 7] } }) },
    ];
    for (const r of refused) {
      it(`${r.name} → DENY ${r.reason}`, async () => {
        const token = await r.token();
        const res = await check(client, checkRequest({ token, action: 'read', resource: { type: 'document', id: 'spec-42', attributes: { ...ENG_DOC, classification: 'public' } } }));
        expect(res.decision).toBe('DENY');
        expect(res.reason).toBe(r.reason);
        expect(res.rules ?? []).toEqual([]);
        expect(res.policy_revision).toBe(h.server.engine.revision);
        expect(res.message).toBeTypeOf('string');
        expect(res.message).not.toBe('');
        expectNoToken(JSON.stringify(res), token);
      });
    }

    it('no principal at all → DENY TOKEN_MISSING', async () => {
      const res = await check(client, { action: 'read', resource: { type: 'document', attributes: jsonToStruct({ classification: 'public' }) } });
      expect(res).toMatchObject({ decision: 'DENY', reason: 'TOKEN_MISSING' });
    });
  });

  describe('subject attributes from an untrusted caller', () => {
    it('Check with `subject` over plaintext → PERMISSION_DENIED', async () => {
      const err = await failure(check(client, checkRequest({ subject: { sub: 'root', roles: ['admin'] }, action: 'delete', resource: { type: 'document', id: 'x' } })));
      expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(err.details).toContain('subject');
      await expectStillServing(client, alice);
    });

    it('CheckBatch with `subject` over plaintext → PERMISSION_DENIED', async () => {
      const err = await failure(batch(client, { subject: jsonToStruct({ sub: 'root', roles: ['admin'] }), items: [{ resource: { type: 'document', id: 'x' }, actions: ['delete'] }] }));
      expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
      await expectStillServing(client, alice);
    });
  });

  describe('a malformed request is INVALID_ARGUMENT naming the field', () => {
    const doc = { type: 'document', id: 'spec-42', attributes: ENG_DOC };
    const checks: { name: string; request: () => object; field: string | RegExp }[] = [
      { name: 'no action', request: () => checkRequest({ token: alice, resource: doc }), field: 'action' },
      { name: 'an action over 256 characters', request: () => checkRequest({ token: alice, action: 'r'.repeat(257), resource: doc }), field: 'action' },
      { name: 'no resource', request: () => checkRequest({ token: alice, action: 'read' }), field: 'resource' },
      { name: 'an empty resource', request: () => ({ token: alice, action: 'read', resource: {} }), field: 'resource.type' },
      { name: 'a resource with id and attributes but no type', request: () => checkRequest({ token: alice, action: 'read', resource: { id: 'spec-42', attributes: ENG_DOC } }), field: 'resource.type' },
      { name: 'a resource id over 1024 characters', request: () => checkRequest({ token: alice, action: 'read', resource: { type: 'document', id: 'i'.repeat(1025) } }), field: 'resource.id' },
      { name: 'resource.attributes nested 20 deep', request: () => checkRequest({ token: alice, action: 'read', resource: { type: 'document', attributes: nested(20) } }), field: /^resource\.attributes(\.a)+$/ },
      { name: 'resource.attributes nested 40 deep (beyond the Struct bound)', request: () => checkRequest({ token: alice, action: 'read', resource: { type: 'document', attributes: nested(40) } }), field: /^resource\.attributes(\.a)+$/ },
      { name: 'context nested 20 deep', request: () => checkRequest({ token: alice, action: 'read', resource: doc, context: nested(20) }), field: /^context(\.a)+$/ },
      {
        name: 'more than 10,000 attribute values',
        request: () => checkRequest({ token: alice, action: 'read', resource: { type: 'document', attributes: { xs: Array.from({ length: 10_001 }, (_, i) => i) } } }),
        field: /^resource\.attributes\.xs\[\d+\]$/,
      },
      { name: 'a string over 64 KiB', request: () => checkRequest({ token: alice, action: 'read', resource: { type: 'document', attributes: { s: 'x'.repeat(65_537) } } }), field: 'resource.attributes.s' },
      {
        name: 'a number that is not finite',
        request: () => ({ token: alice, action: 'read', resource: { type: 'document', attributes: { fields: { n: { kind: 'numberValue', numberValue: Number.NaN } } } } }),
        field: 'resource.attributes.n',
      },
      { name: 'a Value with no kind', request: () => ({ token: alice, action: 'read', resource: { type: 'document', attributes: { fields: { v: {} } } } }), field: 'resource.attributes.v' },
      { name: 'an invalid request_id', request: () => checkRequest({ token: alice, action: 'read', resource: doc, request_id: 'has spaces and ünïcode' }), field: 'request_id' },
      { name: 'a request_id over 128 characters', request: () => checkRequest({ token: alice, action: 'read', resource: doc, request_id: 'r'.repeat(129) }), field: 'request_id' },
    ];
    for (const c of checks) {
      it(`Check: ${c.name}`, async () => {
        const err = await failure(check(client, c.request()));
        expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
        const field = fieldOf(err);
        if (typeof c.field === 'string') {
          expect(field).toBe(c.field);
        } else {
          expect(field).toMatch(c.field);
        }
        expect(err.details.startsWith(`${field}: `)).toBe(true);
        await expectStillServing(client, alice);
      });
    }

    const item = (type: string, ...actions: string[]): object => ({ resource: { type, id: `${type}-1` }, actions });
    const batches: { name: string; request: () => object; field: string }[] = [
      { name: 'no items', request: () => ({ token: alice, items: [] }), field: 'items' },
      { name: 'more items than max_batch_items (6 > 5)', request: () => ({ token: alice, items: Array.from({ length: 6 }, () => item('document', 'read')) }), field: 'items' },
      { name: 'an item with no actions', request: () => ({ token: alice, items: [item('document', 'read'), item('document')] }), field: 'items[1].actions' },
      { name: 'an item with more than 100 actions', request: () => ({ token: alice, items: [item('document', ...Array.from({ length: 101 }, (_, i) => `a${i}`))] }), field: 'items[0].actions' },
      { name: 'an item with an empty action', request: () => ({ token: alice, items: [item('document', 'read', '')] }), field: 'items[0].actions[1]' },
      { name: 'an item whose resource has no type', request: () => ({ token: alice, items: [item('document', 'read'), { resource: { id: 'x' }, actions: ['read'] }] }), field: 'items[1].resource.type' },
      { name: 'an item with no resource', request: () => ({ token: alice, items: [item('document', 'read'), item('folder', 'list'), { actions: ['read'] }] }), field: 'items[2].resource' },
      {
        name: 'an item whose attributes nest too deep',
        request: () => ({ token: alice, items: [{ resource: { type: 'document', attributes: jsonToStruct(nested(20)) }, actions: ['read'] }] }),
        field: 'items[0].resource.attributes.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a',
      },
      { name: 'an invalid request_id', request: () => ({ token: alice, request_id: 'no spaces please', items: [item('document', 'read')] }), field: 'request_id' },
    ];
    for (const c of batches) {
      it(`CheckBatch: ${c.name}`, async () => {
        const err = await failure(batch(client, c.request()));
        expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(fieldOf(err)).toBe(c.field);
        expect(err.details.startsWith(`${c.field}: `)).toBe(true);
        await expectStillServing(client, alice);
      });
    }

    it('CheckBatch: exactly max_batch_items items is accepted', async () => {
      const res = await batch(client, { token: alice, items: Array.from({ length: 5 }, () => item('document', 'read')) });
      expect(res.results).toHaveLength(5);
    });
  });

  describe('CheckBatch', () => {
    const items: { resource: { type: string; id: string; attributes: Record<string, unknown> }; actions: string[] }[] = [
      { resource: { type: 'document', id: 'spec-42', attributes: ENG_DOC }, actions: ['read', 'update', 'delete', 'print'] },
      { resource: { type: 'document', id: 'plan-7', attributes: { owner: 'alice', classification: 'secret' } }, actions: ['read', 'delete', 'share'] },
      { resource: { type: 'folder', id: 'team', attributes: { path: '/team/' } }, actions: ['list', 'create_document'] },
    ];
    const want = [
      [
        ['ALLOW', 'RULE_PERMIT', ['document.dept_editors']],
        ['ALLOW', 'RULE_PERMIT', ['document.dept_editors']],
        ['DENY', 'NO_MATCHING_RULE', []],
        ['DENY', 'UNDECLARED_ACTION', []],
      ],
      [
        ['ALLOW', 'RULE_PERMIT', ['document.owners']],
        ['DENY', 'RULE_FORBID', ['document.keep_secrets']],
        ['DENY', 'RULE_FORBID', ['document.keep_secrets']],
      ],
      [
        ['ALLOW', 'RULE_PERMIT', ['folder.folder_readers']],
        ['ALLOW', 'RULE_PERMIT', ['folder.folder_writers']],
      ],
    ] as const;
    const toMsg = (it: (typeof items)[number]): object => ({ resource: { ...it.resource, attributes: jsonToStruct(it.resource.attributes) }, actions: it.actions });

    it('decides every (item, action) in order, for one token', async () => {
      const res = await batch(client, { token: alice, items: items.map(toMsg), request_id: 'batch-1' });
      expect(res.request_id).toBe('batch-1');
      expect((await batch(client, { token: alice, items: items.map(toMsg) })).request_id).toMatch(UUID);
      expect(res.policy_revision).toBe(h.server.engine.revision);
      expect(res.token_reason).toBeUndefined();
      expect(res.message).toBeUndefined();
      expect(res.results).toHaveLength(items.length);
      for (const [i, item] of items.entries()) {
        const decisions = res.results?.[i]?.decisions ?? [];
        expect(decisions.map((d) => d.action)).toEqual(item.actions);
        for (const [j, d] of decisions.entries()) {
          const [decision, reason, rules] = want[i]![j]!;
          expect({ decision: d.decision, reason: d.reason, rules: d.rules ?? [] }, `items[${i}].actions[${j}]`).toEqual({ decision, reason, rules });
        }
      }
    });

    it('agrees with Check, decision by decision', async () => {
      const res = await batch(client, { token: alice, items: items.map(toMsg) });
      for (const [i, item] of items.entries()) {
        for (const [j, action] of item.actions.entries()) {
          const one = await check(client, checkRequest({ token: alice, action, resource: item.resource }));
          const d = res.results?.[i]?.decisions?.[j];
          expect({ decision: d?.decision, reason: d?.reason, rules: d?.rules ?? [] }).toEqual({ decision: one.decision, reason: one.reason, rules: one.rules ?? [] });
        }
      }
    });

    it('a refused token makes every decision DENY with the token reason', async () => {
      const expired = await tokenFor({ ...ALICE, roles: ['admin'] }, { now: Date.now() - 2 * 3600_000 });
      const res = await batch(client, { token: expired, items: items.map(toMsg) });
      expect(res.token_reason).toBe('TOKEN_EXPIRED');
      expect(res.message).toBeTypeOf('string');
      expect(res.message).not.toBe('');
      expect(res.policy_revision).toBe(h.server.engine.revision);
      expect(res.results).toHaveLength(items.length);
      for (const [i, item] of items.entries()) {
        const decisions = res.results?.[i]?.decisions ?? [];
        expect(decisions.map((d) => d.action)).toEqual(item.actions);
        for (const d of decisions) {
          expect(d.decision).toBe('DENY');
          expect(d.reason).toBe('TOKEN_EXPIRED');
          expect(d.rules ?? []).toEqual([]);
        }
      }
      expectNoToken(JSON.stringify(res), expired);
    });

    it('a repeated batch is answered from the decision cache', async () => {
      const request = { token: alice, items: items.map((it, i) => toMsg({ ...it, resource: { ...it.resource, id: `batch-cache-${i}` } })) };
      const first = await batch(client, request);
      const second = await batch(client, request);
      const flat = (r: BatchRes): ActionDecisionMsg[] => r.results?.flatMap((x) => x.decisions ?? []) ?? [];
      expect(flat(first).every((d) => d.cached !== true)).toBe(true);
      expect(flat(second).every((d) => d.cached === true)).toBe(true);
      expect(flat(second).map((d) => [d.action, d.decision, d.reason, d.rules ?? []])).toEqual(flat(first).map((d) => [d.action, d.decision, d.reason, d.rules ?? []]));
    });

    it('a garbage token: TOKEN_MALFORMED for every decision', async () => {
      const res = await batch(client, { token: 'garbage', items: items.map(toMsg) });
      expect(res.token_reason).toBe('TOKEN_MALFORMED');
      expect(res.results?.flatMap((r) => r.decisions ?? []).every((d) => d.decision === 'DENY' && d.reason === 'TOKEN_MALFORMED')).toBe(true);
    });
  });

  describe('the decision cache', () => {
    it('answers the same Check the second time', async () => {
      const req = checkRequest({ token: alice, action: 'read', resource: { type: 'document', id: 'cache-1', attributes: ENG_DOC } });
      const first = await check(client, req);
      const second = await check(client, req);
      expect(first.cached ?? false).toBe(false);
      expect(second.cached).toBe(true);
      expect({ ...second, cached: undefined, request_id: undefined }).toEqual({ ...first, cached: undefined, request_id: undefined });
    });

    it('a different resource id, attributes or context is a different entry', async () => {
      const base = { token: alice, action: 'read', resource: { type: 'document', id: 'cache-2', attributes: ENG_DOC } };
      await check(client, checkRequest(base));
      expect((await check(client, checkRequest(base))).cached).toBe(true);
      expect((await check(client, checkRequest({ ...base, resource: { ...base.resource, id: 'cache-3' } }))).cached ?? false).toBe(false);
      expect((await check(client, checkRequest({ ...base, resource: { ...base.resource, attributes: { ...ENG_DOC, classification: 'public' } } }))).cached ?? false).toBe(false);
      expect((await check(client, checkRequest({ ...base, context: { ip: '10.0.0.1' } }))).cached ?? false).toBe(false);
    });

    it('explain bypasses the cache and returns the trace', async () => {
      const req = { token: alice, action: 'read', resource: { type: 'document', id: 'cache-explain', attributes: ENG_DOC } };
      await check(client, checkRequest(req));
      expect((await check(client, checkRequest(req))).cached).toBe(true);
      for (let n = 0; n < 2; n++) {
        const res = await check(client, checkRequest({ ...req, explain: true }));
        expect(res.cached ?? false).toBe(false);
        expect(res.decision).toBe('ALLOW');
        expect(res.rules).toContain('document.dept_editors');
        const trace = res.trace;
        expect(trace?.decided_by).toBe('permit');
        expect(trace?.matched).toContain('document.dept_editors');
        expect(trace?.rules_for_action).toBeGreaterThan(0);
        const evaluated = trace?.evaluated ?? [];
        expect(evaluated.length).toBeGreaterThan(0);
        for (const r of evaluated) {
          expect(r.rule).toBeTypeOf('string');
          expect(['permit', 'forbid']).toContain(r.effect);
          expect(r.location).toMatch(/^[^:]+\.policy:\d+:\d+$/);
        }
        const dept = evaluated.find((r) => r.rule === 'document.dept_editors');
        expect(dept).toMatchObject({ effect: 'permit', applied: true });
        expect(dept?.location).toMatch(/^documents\.policy:\d+:\d+$/);
        const suspended = evaluated.find((r) => r.rule === 'document.suspended');
        expect(suspended?.effect).toBe('forbid');
        expect(suspended?.applied ?? false).toBe(false);
      }
    });

    it('explain of a forbid and of an unknown type', async () => {
      const forbid = await check(client, checkRequest({ token: await tokenFor({ sub: 'bob' }), action: 'delete', resource: { type: 'document', id: 'plan-7', attributes: { owner: 'bob', classification: 'secret' } }, explain: true }));
      expect(forbid).toMatchObject({ decision: 'DENY', reason: 'RULE_FORBID' });
      expect(forbid.trace?.decided_by).toBe('forbid');
      expect(forbid.trace?.evaluated?.find((r) => r.rule === 'document.keep_secrets')).toMatchObject({ effect: 'forbid', applied: true });
      const unknown = await check(client, checkRequest({ token: alice, action: 'read', resource: { type: 'spaceship' }, explain: true }));
      expect(unknown.trace?.decided_by).toBe('unknown-resource-type');
    });
  });

  describe('health checking (grpc.health.v1)', () => {
    it('SERVING for the server and for arbiter.v1.Authorizer; NOT_FOUND for others', async () => {
      const health = healthClient(h.address);
      try {
        expect(await healthCheck(health, '')).toBe('SERVING');
        expect(await healthCheck(health, 'arbiter.v1.Authorizer')).toBe('SERVING');
        const err = await failure(healthCheck(health, 'no.such.Service'));
        expect(err.code).toBe(grpc.status.NOT_FOUND);
      } finally {
        health.close();
      }
    });
  });

  describe('server reflection', () => {
    for (const version of ['v1', 'v1alpha'] as const) {
      it(`${version}: file_containing_symbol arbiter.v1.Authorizer gives its file descriptor`, async () => {
        const r = reflectionClient(h.address, version);
        try {
          const [res] = await reflect(r, [{ file_containing_symbol: 'arbiter.v1.Authorizer' }]);
          const files = res?.file_descriptor_response?.file_descriptor_proto ?? [];
          expect(files.length).toBeGreaterThan(0);
          // proto-loader names files by package (`arbiter_v1.proto`); the Struct's file comes along as a dependency.
          const all = Buffer.concat(files.map((f) => Buffer.from(f)));
          for (const s of ['arbiter.v1', 'Authorizer', 'Check', 'CheckBatch', 'CheckRequest', 'CheckBatchResponse', 'Struct']) {
            expect(all.includes(Buffer.from(s)), s).toBe(true);
          }
          expect(files.some((f) => Buffer.from(f).includes(Buffer.from('google.protobuf')) && Buffer.from(f).includes(Buffer.from('ListValue')))).toBe(true);
        } finally {
          r.close();
        }
      });

      it(`${version}: list_services names arbiter.v1.Authorizer`, async () => {
        const r = reflectionClient(h.address, version);
        try {
          const [res] = await reflect(r, [{ list_services: '' }]);
          const names = (res?.list_services_response?.service ?? []).map((s) => s.name);
          expect(names).toContain('arbiter.v1.Authorizer');
        } finally {
          r.close();
        }
      });
    }

    // Regression test, fixed (was: src/server/grpc.ts, `new ReflectionService(definition)`): the
    // reflection service is built from the Authorizer's package definition
    // only, so list_services answers ['arbiter.v1.Authorizer'] although the
    // server also serves grpc.health.v1.Health and the reflection services
    // themselves (`grpcurl list` does not show them; `grpcurl describe
    // grpc.health.v1.Health` fails with "Symbol not found").
    it('v1: list_services also names the health and reflection services the server registers', async () => {
      const r = reflectionClient(h.address, 'v1');
      try {
        const [res] = await reflect(r, [{ list_services: '' }]);
        const names = (res?.list_services_response?.service ?? []).map((s) => s.name);
        expect(names).toEqual(expect.arrayContaining(['arbiter.v1.Authorizer', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection']));
      } finally {
        r.close();
      }
    });
  });

  describe('the decision log', () => {
    it('one record per Check decision, without the token', async () => {
      const start = h.decisionLog.records.length;
      const expired = await tokenFor(ALICE, { now: Date.now() - 2 * 3600_000 });
      await check(client, checkRequest({ token: alice, action: 'read', resource: { type: 'document', id: 'log-1', attributes: ENG_DOC }, request_id: 'log-req-1' }));
      await check(client, checkRequest({ token: alice, action: 'read', resource: { type: 'document', id: 'log-1', attributes: ENG_DOC }, request_id: 'log-req-2' }));
      await check(client, checkRequest({ token: expired, action: 'delete', resource: { type: 'folder', id: 'log-2' }, request_id: 'log-req-3' }));
      await failure(check(client, checkRequest({ token: alice, resource: { type: 'document' }, request_id: 'log-req-invalid' })));
      const records = h.decisionLog.records.slice(start);
      expect(records).toHaveLength(3);
      const [allow, cached, deny] = records;
      expect(allow).toMatchObject({
        request_id: 'log-req-1',
        method: 'Check',
        sub: 'alice',
        issuer: 'test',
        action: 'read',
        resource_type: 'document',
        resource_id: 'log-1',
        decision: 'ALLOW',
        reason: 'RULE_PERMIT',
        rules: ['document.dept_editors'],
        revision: h.server.engine.revision,
        cached: false,
      });
      expect(allow?.latency_ms).toBeTypeOf('number');
      expect(allow?.latency_ms).toBeGreaterThanOrEqual(0);
      expect(Number.isNaN(Date.parse(allow?.time ?? ''))).toBe(false);
      expect(allow?.caller).toBeUndefined();
      expect(cached).toMatchObject({ request_id: 'log-req-2', decision: 'ALLOW', cached: true, sub: 'alice' });
      expect(deny).toMatchObject({ request_id: 'log-req-3', method: 'Check', action: 'delete', resource_type: 'folder', resource_id: 'log-2', decision: 'DENY', reason: 'TOKEN_EXPIRED', rules: [], cached: false });
      expect(deny?.sub).toBeUndefined();
      const text = JSON.stringify(records);
      expectNoToken(text, alice);
      expectNoToken(text, expired);
    });

    it('one record per (item, action) of a CheckBatch, in order', async () => {
      const start = h.decisionLog.records.length;
      await batch(client, {
        token: alice,
        request_id: 'log-batch-1',
        items: [
          { resource: { type: 'document', id: 'lb-1', attributes: jsonToStruct(ENG_DOC) }, actions: ['read', 'delete'] },
          { resource: { type: 'folder', id: 'lb-2' }, actions: ['list'] },
          { resource: { type: 'spaceship', id: 'lb-3' }, actions: ['fly', 'land'] },
        ],
      });
      const records = h.decisionLog.records.slice(start);
      expect(records.map((r) => [r.method, r.request_id, r.resource_id, r.action, r.decision, r.reason])).toEqual([
        ['CheckBatch', 'log-batch-1', 'lb-1', 'read', 'ALLOW', 'RULE_PERMIT'],
        ['CheckBatch', 'log-batch-1', 'lb-1', 'delete', 'DENY', 'NO_MATCHING_RULE'],
        ['CheckBatch', 'log-batch-1', 'lb-2', 'list', 'ALLOW', 'RULE_PERMIT'],
        ['CheckBatch', 'log-batch-1', 'lb-3', 'fly', 'DENY', 'UNKNOWN_RESOURCE_TYPE'],
        ['CheckBatch', 'log-batch-1', 'lb-3', 'land', 'DENY', 'UNKNOWN_RESOURCE_TYPE'],
      ]);
      for (const r of records) expect(r).toMatchObject({ sub: 'alice', issuer: 'test', revision: h.server.engine.revision });
      expectNoToken(JSON.stringify(records), alice);
    });

    it('a refused batch token: one DENY record per (item, action), without the token', async () => {
      const start = h.decisionLog.records.length;
      const forged = await tokenFor({ sub: 'mallory', roles: ['admin'] }, { key: attacker });
      await batch(client, { token: forged, items: [{ resource: { type: 'document', id: 'lb-4' }, actions: ['read', 'share'] }, { resource: { type: 'folder' }, actions: ['delete'] }] });
      const records = h.decisionLog.records.slice(start);
      expect(records).toHaveLength(3);
      for (const r of records) {
        expect(r).toMatchObject({ method: 'CheckBatch', decision: 'DENY', reason: 'TOKEN_INVALID_SIGNATURE' });
        expect(r.sub).toBeUndefined();
      }
      expectNoToken(JSON.stringify(records), forged);
    });
  });

  describe('under load', () => {
    it('1,000 concurrent Check calls, mixed tokens and resources, all answered', async () => {
      const bob = await tokenFor({ sub: 'bob' });
      const expired = await tokenFor(ALICE, { now: Date.now() - 2 * 3600_000 });
      const clients = [client, h.client(), h.client()];
      const kinds = [
        { token: alice, action: 'read', resource: { type: 'document', attributes: ENG_DOC }, want: ['ALLOW', 'RULE_PERMIT'] },
        { token: alice, action: 'delete', resource: { type: 'document', attributes: ENG_DOC }, want: ['DENY', 'NO_MATCHING_RULE'] },
        { token: bob, action: 'delete', resource: { type: 'document', attributes: { owner: 'bob', classification: 'secret' } }, want: ['DENY', 'RULE_FORBID'] },
        { token: bob, action: 'delete', resource: { type: 'document', attributes: { owner: 'bob' } }, want: ['ALLOW', 'RULE_PERMIT'] },
        { token: expired, action: 'read', resource: { type: 'document', attributes: ENG_DOC }, want: ['DENY', 'TOKEN_EXPIRED'] },
        { token: 'garbage', action: 'read', resource: { type: 'document', attributes: ENG_DOC }, want: ['DENY', 'TOKEN_MALFORMED'] },
        { token: alice, action: 'read', resource: { type: 'spaceship' }, want: ['DENY', 'UNKNOWN_RESOURCE_TYPE'] },
      ] as const;
      const results = await Promise.all(
        Array.from({ length: 1000 }, async (_, i) => {
          const k = kinds[i % kinds.length]!;
          const res = await check(clients[i % clients.length]!, checkRequest({ token: k.token, action: k.action, resource: { ...k.resource, id: `load-${i % 50}` }, request_id: `load-${i}` }));
          return { i, k, res };
        }),
      );
      expect(results).toHaveLength(1000);
      for (const { i, k, res } of results) {
        expect(res.request_id).toBe(`load-${i}`);
        expect([res.decision, res.reason]).toEqual(k.want);
        expect(res.policy_revision).toBe(h.server.engine.revision);
      }
    });
  });

  describe('nothing a caller sends crashes the server or becomes ALLOW', () => {
    it('arbitrary CheckRequest-shaped messages (no valid token among them)', async () => {
      const now = Date.now();
      const admin = { sub: 'mallory', roles: ['admin'], department: 'engineering' };
      const forged = [
        unsignedAdminToken(),
        await tokenFor(admin, { key: attacker }),
        await tokenFor(admin, { key: await makeKey('ES256', 'k2') }),
        await sign({ secret: new Uint8Array(Buffer.from(JSON.stringify(key.jwk))), alg: 'HS256' }, { header: { kid: 'k1' }, claims: { ...admin } }),
        await tokenFor(admin, { now: now - 2 * 3600_000 }),
        await tokenFor(admin, { now: now + 2 * 3600_000 }),
        await tokenFor(admin, { claims: { aud: 'another-app' } }),
        await tokenFor(admin, { claims: { iss: 'https://evil.test/' } }),
        await tokenFor(admin, { claims: { exp: undefined } }),
        await tokenFor(admin, { claims: { roles: [1, 2] } }),
        forge({ alg: 'ES256', kid: 'k1' }),
        forge({ alg: 'HS256', kid: 'k1' }),
        forge({ alg: 'ES256', kid: 'k1', crit: ['b64'], b64: false }),
        forge({ alg: 'ES256', kid: 'k1' }, { exp: 'never', roles: 'admin' }),
        // A genuine signature over another payload: the parts do not belong together.
        await (async () => {
          const [hdr, , sig] = (await tokenFor({ sub: 'nobody' })).split('.');
          const payload = Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'mallory', roles: ['admin'], exp: Math.floor(now / 1000) + 600 })).toString('base64url');
          return `${hdr}.${payload}.${sig}`;
        })(),
      ];
      const text = fc.oneof(fc.string({ minLength: 1 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }));
      const token = fc.option(
        fc.oneof(text, fc.constantFrom(...forged), fc.constantFrom(...forged).map((t) => `Bearer ${t}`), fc.constantFrom(...forged).map((t) => `${t}x`)),
        { nil: undefined },
      );
      const action = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('read', 'update', 'delete', 'share', 'comment', 'list', 'refund', 'export', 'publish', '*') }, { weight: 3, arbitrary: text }, { weight: 1, arbitrary: fc.constant('') });
      const type = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('document', 'folder', 'order', 'report') }, { weight: 3, arbitrary: text }, { weight: 1, arbitrary: fc.constant('') });
      const json = fc.dictionary(fc.oneof(fc.constantFrom('owner', 'department', 'classification', 'customer', 'amount', 'region', 'tags', 'readers', '__proto__', 'constructor'), fc.string()), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 6 });
      // A raw Struct: numbers that JSON cannot hold (NaN, ±Infinity), values with no kind.
      const rawValue: fc.Arbitrary<object> = fc.oneof(
        fc.double().map((n) => ({ kind: 'numberValue', numberValue: n })),
        fc.string().map((s) => ({ kind: 'stringValue', stringValue: s })),
        fc.constant({}),
      );
      const rawStruct = fc.dictionary(fc.string(), rawValue, { maxKeys: 4 }).map((fields) => ({ fields }) as ProtoStruct);
      const attrs = fc.option(fc.oneof({ weight: 9, arbitrary: json.map((o) => jsonToStruct(o)) }, { weight: 1, arbitrary: rawStruct }), { nil: undefined });
      /** `undefined` one time in twenty. */
      const mostly = <T,>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.oneof({ weight: 19, arbitrary: a }, { weight: 1, arbitrary: fc.constant(undefined) });
      /** `undefined` nine times in ten. */
      const rarely = <T,>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a });
      const request = fc.record(
        {
          token,
          subject: rarely(json.map((o) => jsonToStruct(o))),
          action: mostly(action),
          resource: mostly(fc.record({ type: mostly(type), id: fc.option(text, { nil: undefined }), attributes: attrs })),
          context: attrs,
          explain: fc.boolean(),
          request_id: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: fc.uuid() }, { weight: 1, arbitrary: text }),
        },
      );
      const seen = { deny: 0, invalid: 0, permission: 0, exhausted: 0 };
      await fc.assert(
        fc.asyncProperty(request, async (raw) => {
          // Drop undefined keys: proto-loader would otherwise see `token: undefined` and `subject` together.
          const req = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
          if (req['resource'] !== undefined) req['resource'] = Object.fromEntries(Object.entries(req['resource'] as object).filter(([, v]) => v !== undefined));
          // With both members of the `principal` oneof set, the last on the wire (`subject`) is the one decoded.
          const hasSubject = raw.subject !== undefined;
          try {
            const res = await check(client, req);
            expect(res.decision).toBe('DENY');
            expect(typeof res.reason === 'string' && res.reason.length > 0).toBe(true);
            expect(res.policy_revision).toBe(h.server.engine.revision);
            if (typeof raw.token === 'string') expectNoToken(`${res.message ?? ''}${JSON.stringify(res.trace ?? {})}`, raw.token.replace(/^bearer\s+/i, ''));
            seen.deny++;
          } catch (e) {
            const err = e as grpc.ServiceError;
            if (typeof err.code !== 'number') throw e;
            if (err.code === grpc.status.PERMISSION_DENIED) {
              expect(hasSubject).toBe(true);
              seen.permission++;
            } else if (err.code === grpc.status.RESOURCE_EXHAUSTED) {
              seen.exhausted++;
            } else {
              expect(err.code, err.details).toBe(grpc.status.INVALID_ARGUMENT);
              seen.invalid++;
            }
          }
        }),
        { numRuns: 200 },
      );
      expect(seen.deny).toBeGreaterThan(0);
      expect(seen.invalid).toBeGreaterThan(0);
      expect(h.logger.lines.filter((l) => l.level === 'error')).toEqual([]);
      await expectStillServing(client, alice);
    });
  });
});

// ---------------------------------------------------------------------------
// `context.caller` is the certificate identity: a plaintext caller cannot write it.

describe('context.caller from a caller without a certificate', () => {
  let h: Harness;

  beforeAll(async () => {
    const policies = mkdtempSync(join(tmpdir(), 'arbiter-caller-policies-'));
    writeFileSync(
      join(policies, 'gate.policy'),
      'resource gate {\n  actions open\n  rule from_ingress: permit open when context.caller == "spiffe://acme/ingress"\n  rule anyone: permit open when context.note == "hello"\n}\n',
    );
    h = await startHarness({ policies, yaml: jwtYaml() });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('is dropped from what the caller sent, in Check and CheckBatch', async () => {
    const client = h.client();
    const alice = await tokenFor(ALICE);
    // The policy is live: another context attribute passes through.
    expect(await check(client, checkRequest({ token: alice, action: 'open', resource: { type: 'gate', id: 'g1' }, context: { note: 'hello' } }))).toMatchObject({ decision: 'ALLOW', rules: ['gate.anyone'] });
    const forged = { caller: 'spiffe://acme/ingress' };
    expect(await check(client, checkRequest({ token: alice, action: 'open', resource: { type: 'gate', id: 'g1' }, context: forged }))).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    expect(await check(client, checkRequest({ token: alice, action: 'open', resource: { type: 'gate', id: 'g1' }, context: forged, explain: true }))).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    const res = await batch(client, { token: alice, context: jsonToStruct(forged), items: [{ resource: { type: 'gate', id: 'g1' }, actions: ['open'] }, { resource: { type: 'gate', id: 'g2' }, actions: ['open'] }] });
    expect(res.results?.flatMap((r) => r.decisions ?? []).map((d) => [d.decision, d.reason])).toEqual([
      ['DENY', 'NO_MATCHING_RULE'],
      ['DENY', 'NO_MATCHING_RULE'],
    ]);
    expect(h.decisionLog.records.every((r) => r.caller === undefined)).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Message size: grpc-js refuses what is over max_message_bytes.

describe('max_message_bytes', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ yaml: `server:\n  address: 127.0.0.1:0\n  plaintext: true\n  max_message_bytes: 65536\n${jwtYaml()}` });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('a message over the bound → RESOURCE_EXHAUSTED, and the server keeps serving', async () => {
    const client = h.client();
    const alice = await tokenFor(ALICE);
    for (const size of [70_000, 1_000_000]) {
      const err = await failure(check(client, checkRequest({ token: alice, action: 'read', resource: { type: 'document', attributes: { blob: 'x'.repeat(size) } } })));
      expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      await expectStillServing(client, alice);
    }
    const err = await failure(
      batch(client, { token: alice, items: Array.from({ length: 3 }, () => ({ resource: { type: 'document', attributes: jsonToStruct({ blob: 'y'.repeat(30_000) }) }, actions: ['read'] })) }),
    );
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await expectStillServing(h.client(), alice);
  });
});

// ---------------------------------------------------------------------------
// The decision cache against the token's lifetime, on a clock the test moves.

describe('the decision cache on a clock the test moves', () => {
  let h: Harness;
  let now = Date.now();

  beforeAll(async () => {
    // Both caches keep entries for an hour: only the token's `exp` can end them.
    h = await startHarness({ clock: () => now, yaml: `${jwtYaml('  cache:\n    ttl: 1h\n')}\ncache:\n  ttl: 1h\n` });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('a cached ALLOW is not served past the token exp', async () => {
    const client = h.client();
    const issued = now;
    const token = await tokenFor(ALICE, { now: issued });
    const exp = Math.floor(issued / 1000) * 1000 + 600_000;
    const req = checkRequest({ token, action: 'read', resource: { type: 'document', id: 'exp-1', attributes: ENG_DOC } });
    expect(await check(client, req)).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT' });
    expect((await check(client, req)).cached).toBe(true);
    now = issued + 5 * 60_000;
    expect(await check(client, req)).toMatchObject({ decision: 'ALLOW', cached: true });
    // Past `exp` but inside the 30s clock tolerance: the token still verifies, the cached decision is not reused.
    now = exp + 10_000;
    const late = await check(client, req);
    expect(late.decision).toBe('ALLOW');
    expect(late.cached ?? false).toBe(false);
    now = exp + 60_000;
    const expired = await check(client, req);
    expect(expired).toMatchObject({ decision: 'DENY', reason: 'TOKEN_EXPIRED' });
    expect(expired.cached ?? false).toBe(false);
    expectNoToken(JSON.stringify(expired), token);
  });

  // order.refund_staff reads `context.time`, which is the decision clock when the caller gives none.
  const FIONA: Who = { sub: 'fiona', roles: ['viewer'], department: 'finance', scopes: ['orders:read'] };
  const BEFORE_SIX = Date.parse('2026-11-23T17:59:00Z'); // a Monday
  const AFTER_SIX = Date.parse('2026-11-23T18:01:00Z');
  const refund = (token: string, id: string, context: Record<string, unknown>): object =>
    checkRequest({ token, action: 'refund', resource: { type: 'order', id, attributes: { customer: 'c-77', amount: 120, region: 'eu' } }, context });

  it('a decision that reads the clock (no context.time) is never cached', async () => {
    const client = h.client();
    now = BEFORE_SIX;
    const token = await tokenFor(FIONA, { now });
    const first = await check(client, refund(token, 'o-clock-1', { ip: '10.20.0.5' }));
    expect(first).toMatchObject({ decision: 'ALLOW', rules: ['order.refund_staff'] });
    expect((await check(client, refund(token, 'o-clock-1', { ip: '10.20.0.5' }))).cached ?? false).toBe(false);
    now = AFTER_SIX;
    const late = await check(client, refund(token, 'o-clock-1', { ip: '10.20.0.5' }));
    expect(late).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
  });

  it('a decision with an explicit context.time is cached (it does not read the clock)', async () => {
    const client = h.client();
    now = BEFORE_SIX;
    const token = await tokenFor(FIONA, { now });
    const ctx = { ip: '10.20.0.5', time: '2026-11-23T10:15:00Z' };
    expect(await check(client, refund(token, 'o-clock-2', ctx))).toMatchObject({ decision: 'ALLOW' });
    now = AFTER_SIX;
    expect(await check(client, refund(token, 'o-clock-2', ctx))).toMatchObject({ decision: 'ALLOW', cached: true });
  });

  // Regression test, fixed (was: src/engine/engine.ts:227): a decision counts as clock-bound only when
  // `context.time === undefined`, but the evaluator reads a null attribute as
  // absent (src/compile/expr.ts:142 `step` maps null to undefined, and
  // expr.ts:421 falls back to the clock). `context: {time: null}` therefore
  // evaluates on the clock and is cached: an ALLOW decided at 17:59 is served
  // from the cache at 18:01, when the policy says DENY.
  it('a decision with context.time = null reads the clock and must not be served from the cache', async () => {
    const client = h.client();
    now = BEFORE_SIX;
    const token = await tokenFor(FIONA, { now });
    const ctx = { ip: '10.20.0.5', time: null };
    expect(await check(client, refund(token, 'o-clock-3', ctx))).toMatchObject({ decision: 'ALLOW', rules: ['order.refund_staff'] });
    now = AFTER_SIX;
    // Evaluated afresh (explain bypasses the cache), the same request is a DENY now...
    const fresh = await check(client, { ...refund(token, 'o-clock-3', ctx), explain: true });
    expect(fresh).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    // ...but the plain call is answered from the cache with the 17:59 ALLOW (actual: ALLOW, RULE_PERMIT, cached: true).
    const late = await check(client, refund(token, 'o-clock-3', ctx));
    expect(late).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    expect(late.cached ?? false).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Reload: a new revision is never answered from the old one's cache.

describe('policy reload', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ copyPolicies: true, yaml: jwtYaml() });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('a reload that changes the revision makes the next identical call uncached, with the new revision', async () => {
    const client = h.client();
    const alice = await tokenFor(ALICE);
    const req = checkRequest({ token: alice, action: 'read', resource: { type: 'document', id: 'reload-1', attributes: ENG_DOC } });
    const before = h.server.engine.revision;
    expect(await check(client, req)).toMatchObject({ policy_revision: before });
    expect(await check(client, req)).toMatchObject({ policy_revision: before, cached: true });

    appendFileSync(join(h.policies, 'documents.policy'), '\nresource memo {\n  actions read\n  rule memo_readers: permit read when subject.role("viewer")\n}\n');
    const event = await h.server.reload();
    // The file watcher may have reloaded first; either way the new set is in force.
    expect(['updated', 'unchanged']).toContain(event.outcome);
    const after = h.server.engine.revision;
    expect(after).not.toBe(before);

    const res = await check(client, req);
    expect(res).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['document.dept_editors'], policy_revision: after });
    expect(res.cached ?? false).toBe(false);
    expect(await check(client, req)).toMatchObject({ policy_revision: after, cached: true });
    // The new rule is live.
    expect(await check(client, checkRequest({ token: alice, action: 'read', resource: { type: 'memo', id: 'm-1' } }))).toMatchObject({ decision: 'ALLOW', rules: ['memo.memo_readers'], policy_revision: after });

    const samples = parseProm((await httpGet(h.server.opsPort, '/metrics')).text);
    expect(samples.filter((s) => s.name === 'arbiter_policy_revision_info').map((s) => [s.labels['revision'], s.value])).toEqual([[after, 1]]);
  });
});

// ---------------------------------------------------------------------------
// Metrics and the ops port, on a server of its own so that counts are exact.

describe('metrics and the ops port', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ yaml: jwtYaml() });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('/healthz and /readyz answer 200 while serving; nothing else is served', async () => {
    expect(await httpGet(h.server.opsPort, '/healthz')).toEqual({ status: 200, text: 'ok\n' });
    expect(await httpGet(h.server.opsPort, '/readyz')).toEqual({ status: 200, text: 'ready\n' });
    expect((await httpGet(h.server.opsPort, '/nope')).status).toBe(404);
    const post = await fetch(`http://127.0.0.1:${h.server.opsPort}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
  });

  it('counts decisions, cache lookups, token rejections and calls; no label holds a subject, token or resource id', async () => {
    const client = h.client();
    const who: Who = { sub: 'subj-7c1e9a-metrics', roles: ['editor'], department: 'engineering' };
    const good = await tokenFor(who);
    const expired = await tokenFor(who, { now: Date.now() - 2 * 3600_000 });
    const forged = await tokenFor(who, { key: attacker });
    const ids = ['rid-9f3a51-doc', 'rid-9f3a51-exp', 'rid-9f3a51-ship', 'rid-9f3a51-folder', 'rid-9f3a51-forged'];
    const doc = { type: 'document', id: ids[0], attributes: ENG_DOC };
    await check(client, checkRequest({ token: good, action: 'read', resource: doc }));
    await check(client, checkRequest({ token: good, action: 'read', resource: doc }));
    await check(client, checkRequest({ token: expired, action: 'read', resource: { ...doc, id: ids[1] } }));
    await check(client, checkRequest({ token: good, action: 'read', resource: { type: 'spaceship', id: ids[2] } }));
    await check(client, checkRequest({ token: forged, action: 'read', resource: { ...doc, id: ids[4] } }));
    await failure(check(client, checkRequest({ token: good, resource: doc })));
    await batch(client, { token: good, items: [{ resource: { type: 'folder', id: ids[3], attributes: jsonToStruct({ path: '/team/' }) }, actions: ['list', 'create_document'] }] });

    const res = await fetch(`http://127.0.0.1:${h.server.opsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const samples = parseProm(await res.text());

    const decisions = (labels: Record<string, string>): number => sampleValue(samples, 'arbiter_decisions_total', labels);
    expect(decisions({ decision: 'ALLOW', reason: 'RULE_PERMIT', resource_type: 'document' })).toBe(2);
    expect(decisions({ decision: 'ALLOW', reason: 'RULE_PERMIT', resource_type: 'folder' })).toBe(2);
    expect(decisions({ decision: 'DENY', reason: 'TOKEN_EXPIRED', resource_type: 'document' })).toBe(1);
    expect(decisions({ decision: 'DENY', reason: 'TOKEN_INVALID_SIGNATURE', resource_type: 'document' })).toBe(1);
    expect(decisions({ decision: 'DENY', reason: 'UNKNOWN_RESOURCE_TYPE', resource_type: '(undeclared)' })).toBe(1);
    expect(decisions({})).toBe(7);
    expect(samples.some((s) => s.name === 'arbiter_decisions_total' && s.labels['resource_type'] === 'spaceship')).toBe(false);

    // Misses: the document (once), the spaceship, the two folder actions; one hit.
    expect(sampleValue(samples, 'arbiter_decision_cache_lookups_total', { result: 'hit' })).toBe(1);
    expect(sampleValue(samples, 'arbiter_decision_cache_lookups_total', { result: 'miss' })).toBe(4);

    expect(sampleValue(samples, 'arbiter_jwt_rejected_total', { reason: 'TOKEN_EXPIRED' })).toBe(1);
    expect(sampleValue(samples, 'arbiter_jwt_rejected_total', { reason: 'TOKEN_INVALID_SIGNATURE' })).toBe(1);
    expect(sampleValue(samples, 'arbiter_jwt_rejected_total')).toBe(2);
    for (const s of samples.filter((x) => x.name === 'arbiter_jwt_rejected_total')) expect(['test', 'unknown']).toContain(s.labels['issuer']);
    expect(sampleValue(samples, 'arbiter_jwt_verified_total', { issuer: 'test' })).toBeGreaterThanOrEqual(1);

    expect(sampleValue(samples, 'arbiter_grpc_calls_total', { method: 'Check', code: 'OK' })).toBe(5);
    expect(sampleValue(samples, 'arbiter_grpc_calls_total', { method: 'Check', code: 'INVALID_ARGUMENT' })).toBe(1);
    expect(sampleValue(samples, 'arbiter_grpc_calls_total', { method: 'CheckBatch', code: 'OK' })).toBe(1);
    expect(sampleValue(samples, 'arbiter_grpc_in_flight')).toBe(0);

    expect(samples.filter((s) => s.name === 'arbiter_policy_revision_info').map((s) => [s.labels['revision'], s.value])).toEqual([[h.server.engine.revision, 1]]);
    expect(samples.filter((s) => s.name === 'arbiter_decision_duration_seconds_count').length).toBeGreaterThan(0);

    const labelValues = samples.flatMap((s) => Object.values(s.labels));
    expect(labelValues.length).toBeGreaterThan(0);
    for (const v of labelValues) {
      expect(v).not.toContain(who.sub);
      for (const id of ids) expect(v).not.toContain(id);
      for (const t of [good, expired, forged]) {
        for (const part of t.split('.')) if (part.length >= 8) expect(v).not.toContain(part);
      }
    }
  });
});

// ---------------------------------------------------------------------------
// Health during shutdown: NOT_SERVING is announced before the port closes.

describe('health during shutdown', () => {
  let h: Harness | undefined;

  afterAll(async () => {
    await h?.close();
  });

  it('a Watch stream sees SERVING, then NOT_SERVING when shutdown starts; /readyz turns 503 while draining', async () => {
    h = await startHarness({ yaml: 'server:\n  address: 127.0.0.1:0\n  plaintext: true\n  shutdown_grace: 60s\n' });
    const server = h.server;
    const health = healthClient(h.address);
    const seen: string[] = [];
    const watch = health['Watch'] as (req: object) => grpc.ClientReadableStream<{ status?: string }>;
    const stream = watch.call(health, { service: 'arbiter.v1.Authorizer' });
    stream.on('data', (m: { status?: string }) => seen.push(m.status ?? ''));
    stream.on('error', () => {}); // CANCELLED when the test ends the stream.
    await vi.waitFor(() => expect(seen).toContain('SERVING'));
    expect(server.ready).toBe(true);
    expect((await httpGet(server.opsPort, '/readyz')).status).toBe(200);

    let stopped = false;
    const stopping = server.shutdown().then(() => {
      stopped = true;
    });
    await vi.waitFor(() => expect(seen).toContain('NOT_SERVING'));
    expect(seen.indexOf('NOT_SERVING')).toBeGreaterThan(seen.indexOf('SERVING'));
    expect(server.ready).toBe(false);
    // The open Watch stream holds the drain: the ops port is still up and says "not ready".
    expect(stopped).toBe(false);
    expect(await httpGet(server.opsPort, '/readyz')).toEqual({ status: 503, text: 'not ready\n' });
    expect((await httpGet(server.opsPort, '/healthz')).status).toBe(200);

    stream.cancel();
    await stopping;
    expect(stopped).toBe(true);
    health.close();
  });
});

// ---------------------------------------------------------------------------
// Health and reflection clients, from the protos their packages ship.

function healthClient(address: string): grpc.Client & Record<string, Function> {
  const def = protoLoader.loadSync(healthProtoPath, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  return new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
}

function healthCheck(client: grpc.Client & Record<string, Function>, service: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    (client['Check'] as Function).call(client, { service }, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: { status?: string }) =>
      err === null ? resolve(res.status) : reject(err),
    );
  });
}

const REFLECTION_PROTOS = join(REPO, 'node_modules', '@grpc', 'reflection', 'build', 'proto', 'grpc', 'reflection');

interface ReflectionResponse {
  list_services_response?: { service?: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto?: Uint8Array[] };
  error_response?: { error_code?: number; error_message?: string };
}

function reflectionClient(address: string, version: 'v1' | 'v1alpha'): grpc.Client & Record<string, Function> {
  const def = protoLoader.loadSync(join(REFLECTION_PROTOS, version, 'reflection.proto'), { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> } };
  const Ctor = pkg.grpc.reflection[version]!.ServerReflection;
  return new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
}

/** Sends `requests` on one ServerReflectionInfo stream and collects one response per request. */
function reflect(client: grpc.Client & Record<string, Function>, requests: object[]): Promise<ReflectionResponse[]> {
  return new Promise((resolve, reject) => {
    const stream = (client['ServerReflectionInfo'] as Function).call(client, { deadline: Date.now() + 10_000 }) as grpc.ClientDuplexStream<object, ReflectionResponse>;
    const out: ReflectionResponse[] = [];
    stream.on('data', (m: ReflectionResponse) => {
      out.push(m);
      if (out.length === requests.length) stream.end();
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(out));
    for (const r of requests) stream.write(r);
  });
}

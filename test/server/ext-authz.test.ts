/**
 * Envoy's external authorization API (`envoy.service.auth.v3.Authorization/Check`)
 * end to end: a real Arbiter server in process (./harness.ts), a real grpc-js
 * client built with extAuthzClient() playing Envoy, real signed tokens
 * against a JWKS file, the shipped routes (policies/gateway.policy), real
 * X.509 certificates for mTLS (./certs.ts). Requests are shaped the way Envoy
 * sends them: lower-case header names (pseudo-headers included), the request
 * target as it was on the request line (path + query, not decoded), the
 * source and destination peers. No mocks, no sleeps, no timing assertions.
 */
import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { Root as ProtoRoot, Type as ProtoType } from 'protobufjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DecisionRecord } from '../../src/audit/decision-log.js';
import { parseConfig } from '../../src/config/config.js';
import { readServeSections } from '../../src/config/server.js';
import { ConfigError } from '../../src/errors.js';
import { extAuthzClient, protoDir } from '../../src/server/proto.js';
import { jwksOf, makeKey, sign, writeJson, type TestKey } from '../jwt/fixtures.js';
import { CLIENT_DNS, createTestPki, SPIFFE_ENVOY, type Issued, type TestPki } from './certs.js';
import { POLICIES, startHarness, testIssuerYaml, type Harness } from './harness.js';

// ---------------------------------------------------------------------------
// What the client decodes (proto-loader with PROTO_LOADER_OPTIONS: keepCase,
// enums as strings, defaults: false — a zero code or an empty list is absent —
// and oneofs: true, which names the chosen `http_response`).

interface HeaderValueOptionMsg {
  header?: { key?: string; value?: string };
  append?: { value?: boolean } | null;
  append_action?: string;
}

interface CheckResponseMsg {
  status?: { code?: number; message?: string };
  http_response?: 'ok_response' | 'denied_response';
  ok_response?: { headers?: HeaderValueOptionMsg[]; headers_to_remove?: string[] } | null;
  denied_response?: { status?: { code?: string }; headers?: HeaderValueOptionMsg[]; body?: string } | null;
}

type Client = grpc.Client & Record<string, Function>;

/** google.rpc.Code values. */
const RPC = { OK: 0, INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, UNAUTHENTICATED: 16 } as const;

/** Deadline for calls expected to fail at the gRPC level: short, so the suite stays fast. */
const FAIL_DEADLINE_MS = 3_000;

// ---------------------------------------------------------------------------
// Keys, tokens, config.

let key: TestKey;
/** Same kid as `key`, not in the JWKS: its signatures must not verify. */
let attacker: TestKey;
let jwksPath: string;
let work: string;
let adminToken: string;
let viewerToken: string;
let auditorToken: string;

function jwtYaml(): string {
  return testIssuerYaml(`jwks_file: ${JSON.stringify(jwksPath)}`, { algorithms: 'ES256', department: false });
}

function tokenFor(sub: string, roles: readonly string[], options: { now?: number; key?: TestKey } = {}): Promise<string> {
  return sign(options.key ?? key, { ...(options.now === undefined ? {} : { now: options.now }), claims: { sub, roles: [...roles] } });
}

// ---------------------------------------------------------------------------
// Servers and clients. Every server and client started here is closed.

const servers: Harness[] = [];
/** The Envoy clients of each server, closed before it is. */
const clients = new Map<Harness, grpc.Client[]>();

async function serve(extra = '', options: { policies?: string } = {}): Promise<Harness> {
  const h = await startHarness({ yaml: `${jwtYaml()}${extra}`, ...(options.policies === undefined ? {} : { policies: options.policies }) });
  servers.push(h);
  return h;
}

/** A client of `envoy.service.auth.v3.Authorization`: the test plays Envoy. */
function envoyClient(h: Harness, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}): Client {
  const Ctor = extAuthzClient();
  const c = new Ctor(h.address, credentials, options) as unknown as Client;
  clients.set(h, [...(clients.get(h) ?? []), c]);
  return c;
}

async function closeServer(h: Harness): Promise<void> {
  for (const c of clients.get(h) ?? []) c.close();
  clients.delete(h);
  await h.close();
}

function closeAll(list: Harness[]): Promise<void[]> {
  return Promise.all(list.splice(0).map(closeServer));
}

/** Calls Check and resolves with the decoded CheckResponse, or rejects with the gRPC error. */
function check(client: Client, request: object, deadlineMs = 10_000): Promise<CheckResponseMsg> {
  return new Promise((resolve, reject) => {
    (client['Check'] as Function)(request, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: CheckResponseMsg) => (err === null ? resolve(res) : reject(err)));
  });
}

interface EnvoyCall {
  readonly method?: string;
  readonly path: string;
  /** A bearer token for `authorization: Bearer <token>`. */
  readonly token?: string;
  /** More headers (names as given: Envoy lower-cases them, tests of mixed case do not). */
  readonly headers?: Record<string, string>;
  readonly id?: string;
  readonly sourceIp?: string;
  readonly principal?: string;
}

let requestCounter = 0;

/** A CheckRequest as Envoy's ext_authz filter sends it for one HTTP request. */
function envoyRequest(c: EnvoyCall): { attributes: object } {
  const method = c.method ?? 'GET';
  const id = c.id ?? `${(13_000_000 + ++requestCounter).toString()}`;
  const host = 'api.example.test';
  return {
    attributes: {
      source: {
        address: { socket_address: { address: c.sourceIp ?? '192.0.2.10', port_value: 51_234 } },
        ...(c.principal === undefined ? {} : { principal: c.principal }),
      },
      destination: {
        address: { socket_address: { address: '10.0.0.5', port_value: 8443 } },
        principal: 'spiffe://cluster.local/ns/edge/sa/gateway',
      },
      request: {
        time: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
        http: {
          id,
          method,
          headers: {
            ':authority': host,
            ':method': method,
            ':path': c.path,
            ':scheme': 'https',
            'user-agent': 'curl/8.5.0',
            'x-request-id': id,
            ...(c.token === undefined ? {} : { authorization: `Bearer ${c.token}` }),
            ...c.headers,
          },
          path: c.path,
          host,
          scheme: 'https',
          protocol: 'HTTP/1.1',
        },
      },
    },
  };
}

function rpcCode(res: CheckResponseMsg): number {
  return res.status?.code ?? 0;
}

function headerOf(options: readonly HeaderValueOptionMsg[] | undefined, name: string): HeaderValueOptionMsg | undefined {
  return (options ?? []).find((o) => o.header?.key === name);
}

/** The JSON body of a denied response. */
function bodyOf(res: CheckResponseMsg): { decision?: string; reason?: string; request_id?: string } {
  expect(res.http_response).toBe('denied_response');
  return JSON.parse(res.denied_response?.body ?? 'null') as { decision?: string; reason?: string; request_id?: string };
}

/** The decision log record for the Envoy request id `id`. */
function recordOf(h: Harness, id: string): DecisionRecord {
  const found = h.decisionLog.records.filter((r) => r.request_id === id);
  expect(found, `one decision log record for request ${id}`).toHaveLength(1);
  return found[0]!;
}

/** `text` must not contain `token`, nor any long part of it. */
function expectNoToken(text: string, token: string): void {
  expect(text).not.toContain(token);
  for (const part of token.split('.')) if (part.length >= 16) expect(text).not.toContain(part);
}

function configError(yaml: string): ConfigError {
  const dir = mkdtempSync(join(tmpdir(), 'arbiter-ext-authz-config-'));
  const text = `policies: ${JSON.stringify(POLICIES)}\n${yaml}\n`;
  try {
    readServeSections(parseConfig(text, join(dir, 'arbiter.yaml'), dir, {}).root);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

// ---------------------------------------------------------------------------

/** The server with the shipped policies and the default `ext_authz` section. */
let main: Harness;
let envoy: Client;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'arbiter-ext-authz-'));
  key = await makeKey('ES256', 'ext-authz-key');
  attacker = await makeKey('ES256', 'ext-authz-key');
  jwksPath = writeJson(work, 'jwks.json', jwksOf(key));
  [adminToken, viewerToken, auditorToken] = await Promise.all([tokenFor('ada', ['admin']), tokenFor('vic', ['viewer']), tokenFor('aud', ['auditor'])]);
  main = await startHarness({ yaml: jwtYaml() });
  envoy = envoyClient(main);
});

afterEach(async () => {
  await closeAll(servers);
});

afterAll(async () => {
  if (main !== undefined) await closeServer(main);
});

// ---------------------------------------------------------------------------

describe('allowed requests', () => {
  it('an admin GETs a document: OK, ok_response with the subject and the deciding rule for the upstream, logged with its route', async () => {
    const res = await check(envoy, envoyRequest({ path: '/api/documents/d1', token: adminToken, id: '1001' }));
    expect(rpcCode(res)).toBe(RPC.OK);
    expect(res.http_response).toBe('ok_response');
    expect(res.denied_response ?? undefined).toBeUndefined();
    const headers = res.ok_response?.headers ?? [];
    expect(headerOf(headers, 'x-arbiter-subject')).toMatchObject({ header: { key: 'x-arbiter-subject', value: 'ada' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
    expect(headerOf(headers, 'x-arbiter-rule')).toMatchObject({ header: { key: 'x-arbiter-rule', value: 'document.admins' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
    // Only append_action is set: Envoy refuses a HeaderValueOption that sets both it and the deprecated `append`.
    for (const o of headers) expect(o.append ?? undefined).toBeUndefined();
    // By default the token goes on to the upstream.
    expect(res.ok_response?.headers_to_remove ?? []).not.toContain('authorization');
    expect(recordOf(main, '1001')).toMatchObject({
      method: 'ext_authz',
      route: 'GET /api/documents/{id}',
      sub: 'ada',
      issuer: 'test',
      action: 'read',
      resource_type: 'document',
      resource_id: 'd1',
      decision: 'ALLOW',
      reason: 'RULE_PERMIT',
      rules: ['document.admins'],
    });
  });

  it('a client-sent x-arbiter-subject / x-arbiter-rule is overwritten with what Arbiter decided', async () => {
    const res = await check(envoy, envoyRequest({ path: '/api/documents/d1', token: adminToken, headers: { 'x-arbiter-subject': 'mallory', 'x-arbiter-rule': 'forged.rule' } }));
    expect(rpcCode(res)).toBe(RPC.OK);
    const headers = res.ok_response?.headers ?? [];
    expect(headerOf(headers, 'x-arbiter-subject')).toMatchObject({ header: { value: 'ada' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
    expect(headerOf(headers, 'x-arbiter-rule')).toMatchObject({ header: { value: 'document.admins' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
    expect(JSON.stringify(res)).not.toContain('mallory');
  });

  it('on a public route there is no subject: a client-sent x-arbiter-subject is listed in headers_to_remove', async () => {
    const res = await check(envoy, envoyRequest({ path: '/healthz', headers: { 'x-arbiter-subject': 'admin', 'x-arbiter-rule': 'document.admins' } }));
    expect(rpcCode(res)).toBe(RPC.OK);
    expect(res.http_response).toBe('ok_response');
    expect(res.ok_response?.headers ?? []).toEqual([]);
    expect(res.ok_response?.headers_to_remove).toEqual(expect.arrayContaining(['x-arbiter-subject', 'x-arbiter-rule']));
  });
});

describe('denied by policy', () => {
  it('a viewer DELETEs a document: PERMISSION_DENIED, HTTP Forbidden, a JSON body with the reason', async () => {
    const res = await check(envoy, envoyRequest({ method: 'DELETE', path: '/api/documents/d1', token: viewerToken, id: '2001' }));
    expect(rpcCode(res)).toBe(RPC.PERMISSION_DENIED);
    expect(res.status?.message).toBe('NO_MATCHING_RULE');
    expect(res.http_response).toBe('denied_response');
    expect(res.ok_response ?? undefined).toBeUndefined();
    expect(res.denied_response?.status?.code).toBe('Forbidden');
    expect(headerOf(res.denied_response?.headers, 'content-type')?.header?.value).toBe('application/json');
    expect(headerOf(res.denied_response?.headers, 'www-authenticate')).toBeUndefined();
    expect(bodyOf(res)).toEqual({ decision: 'DENY', reason: 'NO_MATCHING_RULE', request_id: '2001' });
    expect(recordOf(main, '2001')).toMatchObject({ route: 'DELETE /api/documents/{id}', sub: 'vic', action: 'delete', resource_type: 'document', resource_id: 'd1', decision: 'DENY', reason: 'NO_MATCHING_RULE' });
  });

  it('a forbid rule decides too: an admin without MFA may not manage the admin console', async () => {
    const res = await check(envoy, envoyRequest({ method: 'POST', path: '/admin/users', token: adminToken, id: '2002' }));
    expect(rpcCode(res)).toBe(RPC.PERMISSION_DENIED);
    expect(res.denied_response?.status?.code).toBe('Forbidden');
    expect(bodyOf(res).reason).toBe('RULE_FORBID');
    expect(recordOf(main, '2002')).toMatchObject({ route: '* /admin/**', action: 'manage', resource_type: 'admin_console', rules: ['admin_console.console_mfa'] });
  });
});

describe('tokens on protected routes', () => {
  it('no token: UNAUTHENTICATED, HTTP Unauthorized, WWW-Authenticate: Bearer realm="arbiter"', async () => {
    const res = await check(envoy, envoyRequest({ path: '/api/documents/d1', id: '3001' }));
    expect(rpcCode(res)).toBe(RPC.UNAUTHENTICATED);
    expect(res.denied_response?.status?.code).toBe('Unauthorized');
    expect(headerOf(res.denied_response?.headers, 'www-authenticate')?.header?.value).toBe('Bearer realm="arbiter"');
    expect(bodyOf(res)).toEqual({ decision: 'DENY', reason: 'TOKEN_MISSING', request_id: '3001' });
    expect(recordOf(main, '3001')).toMatchObject({ decision: 'DENY', reason: 'TOKEN_MISSING', route: 'GET /api/documents/{id}' });
  });

  it('an authorization header that is not a bearer token is no token', async () => {
    const res = await check(envoy, envoyRequest({ path: '/api/documents/d1', headers: { authorization: 'Basic YWRhOnNlY3JldA==' } }));
    expect(rpcCode(res)).toBe(RPC.UNAUTHENTICATED);
    expect(headerOf(res.denied_response?.headers, 'www-authenticate')?.header?.value).toBe('Bearer realm="arbiter"');
    expect(JSON.stringify(res)).not.toContain('YWRhOnNlY3JldA==');
  });

  it.each([
    ['expired', '3101', () => tokenFor('ada', ['admin'], { now: Date.now() - 2 * 3600_000 }), 'TOKEN_EXPIRED'],
    ['signed by a key not in the JWKS (same kid)', '3102', () => tokenFor('ada', ['admin'], { key: attacker }), 'TOKEN_INVALID_SIGNATURE'],
    ['not a JWT', '3103', () => Promise.resolve('not-a-jwt-but-a-long-opaque-string-0123456789'), 'TOKEN_MALFORMED'],
  ] as const)('a token %s: 401 with error="invalid_token" and the reason; the token is in no response, decision log or log line', async (_name, id, make, reason) => {
    const token = await make();
    const res = await check(envoy, envoyRequest({ path: '/api/documents/d1', token, id }));
    expect(rpcCode(res)).toBe(RPC.UNAUTHENTICATED);
    expect(res.status?.message).toBe(reason);
    expect(res.denied_response?.status?.code).toBe('Unauthorized');
    expect(headerOf(res.denied_response?.headers, 'www-authenticate')?.header?.value).toBe(`Bearer realm="arbiter", error="invalid_token", error_description="${reason}"`);
    expect(bodyOf(res)).toEqual({ decision: 'DENY', reason, request_id: id });
    expect(recordOf(main, id)).toMatchObject({ decision: 'DENY', reason, route: 'GET /api/documents/{id}' });
    expectNoToken(JSON.stringify(res), token);
    expectNoToken(JSON.stringify(main.decisionLog.records), token);
    expectNoToken(JSON.stringify(main.logger.lines), token);
  });

  it('a valid token is never echoed or logged either', async () => {
    const allow = await check(envoy, envoyRequest({ path: '/api/documents/d1', token: adminToken }));
    const deny = await check(envoy, envoyRequest({ method: 'DELETE', path: '/api/documents/d1', token: viewerToken }));
    expect(rpcCode(allow)).toBe(RPC.OK);
    expect(rpcCode(deny)).toBe(RPC.PERMISSION_DENIED);
    for (const t of [adminToken, viewerToken]) {
      expectNoToken(JSON.stringify([allow, deny]), t);
      expectNoToken(JSON.stringify(main.decisionLog.records), t);
      expectNoToken(JSON.stringify(main.logger.lines), t);
    }
  });
});

describe('public routes and requests no route matches', () => {
  it.each([
    ['/healthz', '4001'],
    ['/api/public/anything/deep', '4002'],
    ['/api/public', '4003'],
  ])('GET %s without a token: OK (PUBLIC_ROUTE)', async (path, id) => {
    const res = await check(envoy, envoyRequest({ path, id }));
    expect(rpcCode(res)).toBe(RPC.OK);
    expect(res.http_response).toBe('ok_response');
    expect(recordOf(main, id)).toMatchObject({ decision: 'ALLOW', reason: 'PUBLIC_ROUTE', route: path === '/healthz' ? 'GET /healthz' : 'GET /api/public/**' });
  });

  it('POST /healthz (no route for POST): denied as NO_ROUTE, 403 by default, even with a valid token', async () => {
    for (const token of [undefined, adminToken]) {
      const id = token === undefined ? '4101' : '4102';
      const res = await check(envoy, envoyRequest({ method: 'POST', path: '/healthz', id, ...(token === undefined ? {} : { token }) }));
      expect(rpcCode(res)).toBe(RPC.PERMISSION_DENIED);
      expect(res.denied_response?.status?.code).toBe('Forbidden');
      expect(bodyOf(res)).toEqual({ decision: 'DENY', reason: 'NO_ROUTE', request_id: id });
      const r = recordOf(main, id);
      expect(r).toMatchObject({ decision: 'DENY', reason: 'NO_ROUTE' });
      expect(r.route).toBeUndefined();
    }
  });

  it('with `no_route_status: 404` no route is NotFound', async () => {
    const h = await serve('ext_authz:\n  no_route_status: 404\n');
    const client = envoyClient(h);
    const res = await check(client, envoyRequest({ method: 'POST', path: '/healthz' }));
    expect(rpcCode(res)).toBe(RPC.PERMISSION_DENIED);
    expect(res.denied_response?.status?.code).toBe('NotFound');
    expect(bodyOf(res).reason).toBe('NO_ROUTE');
    // Only "no route" changes: a policy deny is still Forbidden.
    const deny = await check(client, envoyRequest({ method: 'DELETE', path: '/api/documents/d1', token: viewerToken }));
    expect(deny.denied_response?.status?.code).toBe('Forbidden');
  });

  it('no_route_status other than 403 or 404 is a config error', () => {
    expect(configError('server:\n  plaintext: true\next_authz:\n  no_route_status: 200').key).toBe('ext_authz.no_route_status');
  });
});

// ---------------------------------------------------------------------------
// Path normalisation against the shipped routes. Each row: the request target
// as Envoy forwards it, who asks, and what must be decided (for allowed and
// policy-decided requests, the route the decision log names).

type Who = 'admin' | 'viewer' | 'auditor' | 'none';

interface PathRow {
  readonly name: string;
  readonly method?: string;
  readonly path: string;
  readonly who: Who;
  readonly rpc: number;
  /** The HTTP status a denied response carries. */
  readonly http?: string;
  readonly reason: string;
  readonly route?: string;
  readonly resourceId?: string;
}

const DOC = 'GET /api/documents/{id}';
const ADMIN_GET = 'GET /admin/**';
const PUBLIC = 'GET /api/public/**';

const PATH_ROWS: readonly PathRow[] = [
  { name: 'plain (baseline)', path: '/api/documents/d1', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: DOC, resourceId: 'd1' },
  { name: '`//` merged', path: '/api//documents/d1', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: DOC, resourceId: 'd1' },
  { name: 'leading `//` merged', path: '//api/documents/d1', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: DOC, resourceId: 'd1' },
  { name: '`/./` resolved', path: '/api/./documents/d1', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: DOC, resourceId: 'd1' },
  { name: '`x/../` resolved', path: '/api/x/../documents/d1', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: DOC, resourceId: 'd1' },
  { name: 'unreserved escape decoded (%64 = d)', path: '/api/%64ocuments/d1', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: DOC, resourceId: 'd1' },
  { name: 'query split off', path: '/api/documents/d1?x=1&y=2', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: DOC, resourceId: 'd1' },
  { name: 'a `/..` in the query is not part of the path', path: '/api/documents/d1?next=/../../admin', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: DOC, resourceId: 'd1' },
  { name: 'escaped space in the id decoded in resource_id', path: '/api/documents/d%201', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: DOC, resourceId: 'd 1' },
  { name: 'escaped UTF-8 in the id decoded', path: '/api/documents/r%C3%A9sum%C3%A9', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: DOC, resourceId: 'résumé' },
  { name: '%61dmin is the admin route: a viewer is denied', path: '/%61dmin/settings', who: 'viewer', rpc: RPC.PERMISSION_DENIED, http: 'Forbidden', reason: 'NO_MATCHING_RULE', route: ADMIN_GET },
  { name: '%61dmin is the admin route: no token is 401', path: '/%61dmin/settings', who: 'none', rpc: RPC.UNAUTHENTICATED, http: 'Unauthorized', reason: 'TOKEN_MISSING', route: ADMIN_GET },
  { name: '%61dmin is the admin route: an admin is allowed', path: '/%61dmin/settings', who: 'admin', rpc: RPC.OK, reason: 'RULE_PERMIT', route: ADMIN_GET },
  { name: '%41 (upper-case escape of a letter) is not `admin`', path: '/%41dmin/settings', who: 'none', rpc: RPC.PERMISSION_DENIED, http: 'Forbidden', reason: 'NO_ROUTE' },
  { name: '`/admin/../api/public/x` is public', path: '/admin/../api/public/x', who: 'none', rpc: RPC.OK, reason: 'PUBLIC_ROUTE', route: PUBLIC },
  { name: 'encoded dots cannot climb out of the public prefix', path: '/api/public/%2e%2e/%2E%2E/admin/settings', who: 'none', rpc: RPC.UNAUTHENTICATED, http: 'Unauthorized', reason: 'TOKEN_MISSING', route: ADMIN_GET },
  { name: 'mixed `.%2e` is a dot-dot segment too', path: '/api/public/.%2e/.%2E/admin/settings', who: 'none', rpc: RPC.UNAUTHENTICATED, http: 'Unauthorized', reason: 'TOKEN_MISSING', route: ADMIN_GET },
  { name: '`..` cannot climb out of the public prefix', path: '/api/public/../../admin/settings', who: 'viewer', rpc: RPC.PERMISSION_DENIED, http: 'Forbidden', reason: 'NO_MATCHING_RULE', route: ADMIN_GET },
  { name: '`..` never climbs above the root', path: '/../../../admin/settings', who: 'auditor', rpc: RPC.OK, reason: 'RULE_PERMIT', route: ADMIN_GET },
  { name: 'encoded slash refused', path: '/api/public/..%2F..%2Fadmin', who: 'none', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'lower-case encoded slash refused', path: '/api/documents/a%2fb', who: 'admin', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: '%00 refused', path: '/api/documents/%00', who: 'admin', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'raw NUL refused', path: '/api/documents/d1\u0000', who: 'admin', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'encoded backslash refused', path: '/api/documents/a%5Cb', who: 'admin', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'raw backslash refused', path: '/api/public\\..\\..\\admin', who: 'none', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'bad escape refused', path: '/api/documents/%zz', who: 'admin', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'truncated escape refused', path: '/api/documents/d1%4', who: 'admin', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'escaped control character refused', path: '/api/documents/d%0a1', who: 'admin', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'asterisk form refused', method: 'OPTIONS', path: '*', who: 'none', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'absolute form refused', path: 'http://x/y', who: 'none', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'empty path refused', path: '', who: 'none', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH' },
  { name: 'id that is not UTF-8 refused', path: '/api/documents/%FF', who: 'admin', rpc: RPC.INVALID_ARGUMENT, http: 'BadRequest', reason: 'BAD_PATH', route: DOC },
  { name: 'trailing slash: no route', path: '/api/documents/', who: 'admin', rpc: RPC.PERMISSION_DENIED, http: 'Forbidden', reason: 'NO_ROUTE' },
  { name: 'trailing slash after the id: no route', path: '/api/documents/d1/', who: 'admin', rpc: RPC.PERMISSION_DENIED, http: 'Forbidden', reason: 'NO_ROUTE' },
  { name: 'routes are case-sensitive', path: '/API/documents/d1', who: 'admin', rpc: RPC.PERMISSION_DENIED, http: 'Forbidden', reason: 'NO_ROUTE' },
];

describe('path normalisation (shipped routes)', () => {
  const tokens = (): Record<Who, string | undefined> => ({ admin: adminToken, viewer: viewerToken, auditor: auditorToken, none: undefined });

  it.each(PATH_ROWS.map((r, i) => [r.name, r, i] as const))('%s', async (_name, row, i) => {
    const id = `path-${i}`;
    const token = tokens()[row.who];
    const res = await check(envoy, envoyRequest({ method: row.method ?? 'GET', path: row.path, id, ...(token === undefined ? {} : { token }) }));
    expect(rpcCode(res), JSON.stringify(res)).toBe(row.rpc);
    if (row.rpc === RPC.OK) {
      expect(res.http_response).toBe('ok_response');
    } else {
      expect(res.denied_response?.status?.code).toBe(row.http);
      expect(bodyOf(res).reason).toBe(row.reason);
    }
    const record = recordOf(main, id);
    expect(record.reason).toBe(row.reason);
    expect(record.decision).toBe(row.rpc === RPC.OK ? 'ALLOW' : 'DENY');
    expect(record.route).toBe(row.route);
    if (row.resourceId !== undefined) expect(record.resource_id).toBe(row.resourceId);
  });

  // Regression test, fixed (security; was: src/gateway/path.ts, normalisePath, the "Merge slashes, then
  // resolve dot segments" loop): Arbiter merges `//` BEFORE resolving `..`, so
  // a `..` after an empty segment pops the segment before it. Envoy does the
  // opposite (ConnectionManagerUtility::maybeNormalizePath: canonicalPath — RFC
  // 3986 remove_dot_segments, where `..` pops the EMPTY segment — and only then
  // mergeSlashes), as does every RFC 3986 resolver (WHATWG URL:
  // new URL('http://h/admin//../api/public/x').pathname === '/admin/api/public/x').
  // So Envoy routes `/admin//../api/public/x` to the upstream as
  // `/admin/api/public/x` (an admin-console path), while Arbiter reads
  // `/api/public/x` and allows it without a token as PUBLIC_ROUTE.
  it('SECURITY: `/admin//../api/public/x` is `/admin/api/public/x` to Envoy and the upstream, so it must not be public', async () => {
    expect(new URL('http://h/admin//../api/public/x').pathname).toBe('/admin/api/public/x');
    const res = await check(envoy, envoyRequest({ path: '/admin//../api/public/x', id: 'path-bug-1' }));
    expect(rpcCode(res), JSON.stringify(res)).toBe(RPC.UNAUTHENTICATED);
    expect(recordOf(main, 'path-bug-1').route).toBe(ADMIN_GET);
  });

  it('the query reaches policies as context.query, decoded (see the context tests); `?` inside the id is never part of it', async () => {
    const res = await check(envoy, envoyRequest({ path: '/api/documents/d%3F1?x=1', token: adminToken, id: 'path-q' }));
    expect(rpcCode(res)).toBe(RPC.OK);
    expect(recordOf(main, 'path-q').resource_id).toBe('d?1');
  });
});

describe('the authorization header', () => {
  it.each([
    ['Authorization', (t: string) => `Bearer ${t}`],
    ['AUTHORIZATION', (t: string) => `Bearer ${t}`],
    ['authorization', (t: string) => `bearer ${t}`],
    ['authorization', (t: string) => `BEARER  ${t} `],
  ] as const)('%s: %s is accepted', async (name, value) => {
    const res = await check(envoy, envoyRequest({ path: '/api/documents/d1', headers: { [name]: value(adminToken) } }));
    expect(rpcCode(res), JSON.stringify(res)).toBe(RPC.OK);
    expect(headerOf(res.ok_response?.headers, 'x-arbiter-subject')?.header?.value).toBe('ada');
  });
});

describe('encode_raw_headers: header_map instead of headers', () => {
  /** The same request as Envoy sends it with `encode_raw_headers: true`: header_map of raw values, headers empty. */
  function rawHeaders(c: EnvoyCall, extra: { key: string; raw: string }[] = []): object {
    const req = envoyRequest(c) as { attributes: { request: { http: { headers: Record<string, string> } & Record<string, unknown> } } };
    const http = req.attributes.request.http;
    const entries = [...Object.entries(http.headers).map(([key, raw]) => ({ key, raw })), ...extra];
    http['header_map'] = { headers: entries.map((e) => ({ key: e.key, raw_value: Buffer.from(e.raw) })) };
    http.headers = {};
    return req;
  }

  it('reads the token from header_map and decides as with headers', async () => {
    const res = await check(envoy, rawHeaders({ path: '/api/documents/d1', token: adminToken, id: '7001' }));
    expect(rpcCode(res), JSON.stringify(res)).toBe(RPC.OK);
    expect(headerOf(res.ok_response?.headers, 'x-arbiter-subject')?.header?.value).toBe('ada');
    const denied = await check(envoy, rawHeaders({ path: '/api/documents/d1', id: '7002' }));
    expect(rpcCode(denied)).toBe(RPC.UNAUTHENTICATED);
  });

  it('lower-cases names and joins repeated headers with a comma, as the map form does', async () => {
    // Two Authorization headers joined are not one bearer token: no token, 401.
    const res = await check(envoy, rawHeaders({ path: '/api/documents/d1', token: adminToken, id: '7003' }, [{ key: 'Authorization', raw: `Bearer ${adminToken}` }]));
    expect(rpcCode(res)).toBe(RPC.UNAUTHENTICATED);
  });

  it('logs the x-request-id the gateway forwards', async () => {
    await check(envoy, envoyRequest({ path: '/healthz', id: '7004', headers: { 'x-request-id': 'edge-7004' } }));
    expect(main.decisionLog.records.some((r) => r.request_id === 'edge-7004')).toBe(true);
  });
});

describe('upstream headers carry only valid HTTP field values', () => {
  // Regression test, fixed (was: src/server/ext-authz.ts, allowed() → header(upstreamHeaders.subject, sub)):
  // the token's `sub` is copied verbatim into the x-arbiter-subject value that
  // Envoy sets on the upstream request. A `sub` with CR/LF (any issuer that lets
  // users pick their id) yields a header value RFC 9110 §5.5 forbids: header
  // injection towards the upstream if the proxy passes it on, or a 500 for every
  // request of that user where Envoy validates mutations. Expected: no CR, LF or
  // NUL in any header value Arbiter returns (the header removed, or the request
  // refused). Actual: the value is `ada\r\nx-arbiter-admin: true`.
  it('a `sub` with CR/LF never becomes a raw header value', async () => {
    const token = await tokenFor('ada\r\nx-arbiter-admin: true', ['admin']);
    const res = await check(envoy, envoyRequest({ path: '/api/documents/d1', token }));
    for (const o of [...(res.ok_response?.headers ?? []), ...(res.denied_response?.headers ?? [])]) {
      expect(o.header?.value ?? '', JSON.stringify(o)).not.toMatch(/[\r\n\0]/);
    }
  });
});

describe('header limits', () => {
  it('a header block over max_header_bytes is RequestHeaderFieldsTooLarge with INVALID_ARGUMENT, before the token is even read', async () => {
    const h = await serve('ext_authz:\n  max_header_bytes: 2048\n');
    const client = envoyClient(h);
    const small = await check(client, envoyRequest({ path: '/api/documents/d1', token: adminToken, headers: { 'x-small': 'a'.repeat(200) } }));
    expect(rpcCode(small)).toBe(RPC.OK);
    const res = await check(client, envoyRequest({ path: '/api/documents/d1', token: adminToken, id: 'big', headers: { 'x-big': 'a'.repeat(4096) } }));
    expect(rpcCode(res)).toBe(RPC.INVALID_ARGUMENT);
    expect(res.denied_response?.status?.code).toBe('RequestHeaderFieldsTooLarge');
    expect(bodyOf(res)).toEqual({ decision: 'DENY', reason: 'HEADERS_TOO_LARGE', request_id: 'big' });
    expect(recordOf(h, 'big')).toMatchObject({ decision: 'DENY', reason: 'HEADERS_TOO_LARGE' });
  });

  // Regression test, fixed (was: src/server/ext-authz.ts, decide(): `headerBytes += k.length + v.length`):
  // `max_header_bytes` is documented (src/config/server.ts, ExtAuthzOptions) as
  // the largest header block "in bytes", but the count is of UTF-16 code units,
  // so a value of non-ASCII characters is under-counted up to 3×: 1400 × '€' is
  // 4200 bytes on the wire and passes a 2048-byte limit.
  it('the limit counts bytes, not characters: 1400 × "€" (4200 bytes) is over 2048', async () => {
    const h = await serve('ext_authz:\n  max_header_bytes: 2048\n');
    const value = '€'.repeat(1400);
    expect(Buffer.byteLength(value)).toBe(4200);
    const res = await check(envoyClient(h), envoyRequest({ path: '/api/documents/d1', token: adminToken, headers: { 'x-big': value } }));
    expect(res.denied_response?.status?.code, JSON.stringify(res.status)).toBe('RequestHeaderFieldsTooLarge');
  });
});

// ---------------------------------------------------------------------------
// Options: remove_authorization, context_headers, and what a policy can read
// from the request (context.headers, .query, .ip, .principal, .path, .host).

const PROBE_PRINCIPAL = 'spiffe://cluster.local/ns/web/sa/frontend';

const PROBE_POLICY = `# Rules that read the HTTP request, for the ext_authz tests.
resource probe {
  actions tenant, other, office, mesh, query, where

  rule by_tenant:    permit tenant when context.headers["x-tenant"] == "acme"
  rule by_other:     permit other when context.headers["x-other"] == "yes"
  rule by_office:    permit office when context.ip.inCidr("10.0.0.0/8")
  rule by_mesh:      permit mesh when context.principal == "${PROBE_PRINCIPAL}"
  rule by_query:     permit query when context.query.mode == "full view"
  rule by_where:     permit where
                       when context.path == "/probe/where/w1" and context.method == "GET"
                       and context.host == "api.example.test" and context.scheme == "https"
                       and context.route == "GET /probe/where/{id}"
}

routes {
  GET "/probe/tenant"     -> tenant probe
  GET "/probe/other"      -> other probe
  GET "/probe/office"     -> office probe
  GET "/probe/mesh"       -> mesh probe
  GET "/probe/query"      -> query probe
  GET "/probe/where/{id}" -> where probe {id}
}
`;

function probePolicies(): string {
  const dir = mkdtempSync(join(tmpdir(), 'arbiter-ext-authz-policies-'));
  for (const f of readdirSync(POLICIES)) if (f.endsWith('.policy')) copyFileSync(join(POLICIES, f), join(dir, f));
  writeFileSync(join(dir, 'probe.policy'), PROBE_POLICY);
  return dir;
}

describe('options and request context', () => {
  let policies: string;

  it('upstream_headers: a route header can be added and the rule header turned off', async () => {
    const h = await serve('ext_authz:\n  upstream_headers:\n    route: x-arbiter-route\n    rule: false\n');
    const client = envoyClient(h);
    const res = await check(client, envoyRequest({ path: '/api/documents/d1', token: adminToken }));
    expect(rpcCode(res)).toBe(RPC.OK);
    expect(headerOf(res.ok_response?.headers, 'x-arbiter-route')).toMatchObject({ header: { value: 'GET /api/documents/{id}' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
    expect(headerOf(res.ok_response?.headers, 'x-arbiter-subject')?.header?.value).toBe('ada');
    expect(headerOf(res.ok_response?.headers, 'x-arbiter-rule')).toBeUndefined();
    expect(res.ok_response?.headers_to_remove ?? []).not.toContain('x-arbiter-rule');
    const pub = await check(client, envoyRequest({ path: '/healthz' }));
    expect(pub.ok_response?.headers_to_remove).toEqual(expect.arrayContaining(['x-arbiter-subject', 'x-arbiter-route']));
    expect(configError('server:\n  plaintext: true\next_authz:\n  upstream_headers:\n    subject: X-Subject').key).toBe('ext_authz.upstream_headers.subject');
  });
  beforeAll(() => {
    policies = probePolicies();
  });

  it('remove_authorization: true lists authorization in headers_to_remove (allowed requests only)', async () => {
    const h = await serve('ext_authz:\n  remove_authorization: true\n');
    const client = envoyClient(h);
    const res = await check(client, envoyRequest({ path: '/api/documents/d1', token: adminToken }));
    expect(rpcCode(res)).toBe(RPC.OK);
    expect(res.ok_response?.headers_to_remove).toContain('authorization');
    expect(headerOf(res.ok_response?.headers, 'x-arbiter-subject')?.header?.value).toBe('ada');
    const pub = await check(client, envoyRequest({ path: '/healthz', token: adminToken }));
    expect(pub.ok_response?.headers_to_remove).toContain('authorization');
    // The default leaves it.
    const dflt = await check(envoy, envoyRequest({ path: '/api/documents/d1', token: adminToken }));
    expect(dflt.ok_response?.headers_to_remove ?? []).not.toContain('authorization');
  });

  it('only the configured context_headers reach policies: x-tenant does, x-other (sent, not configured) does not', async () => {
    const h = await serve('ext_authz:\n  context_headers: [X-Tenant]\n', { policies });
    const client = envoyClient(h);
    const headers = { 'x-tenant': 'acme', 'x-other': 'yes' };
    const tenant = await check(client, envoyRequest({ path: '/probe/tenant', token: viewerToken, headers, id: 'ctx-1' }));
    expect(rpcCode(tenant), JSON.stringify(tenant)).toBe(RPC.OK);
    expect(recordOf(h, 'ctx-1')).toMatchObject({ decision: 'ALLOW', rules: ['probe.by_tenant'], route: 'GET /probe/tenant' });
    const wrongTenant = await check(client, envoyRequest({ path: '/probe/tenant', token: viewerToken, headers: { 'x-tenant': 'globex' } }));
    expect(rpcCode(wrongTenant)).toBe(RPC.PERMISSION_DENIED);
    const other = await check(client, envoyRequest({ path: '/probe/other', token: viewerToken, headers, id: 'ctx-2' }));
    expect(rpcCode(other)).toBe(RPC.PERMISSION_DENIED);
    expect(recordOf(h, 'ctx-2')).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    // A header name is matched case-insensitively (Envoy lower-cases; a client may not).
    const mixed = await check(client, envoyRequest({ path: '/probe/tenant', token: viewerToken, headers: { 'X-Tenant': 'acme' } }));
    expect(rpcCode(mixed)).toBe(RPC.OK);
  });

  it('the same rule allows once x-other is configured (so the deny above was the header being withheld)', async () => {
    const h = await serve('ext_authz:\n  context_headers: [x-tenant, x-other]\n', { policies });
    const res = await check(envoyClient(h), envoyRequest({ path: '/probe/other', token: viewerToken, headers: { 'x-other': 'yes' } }));
    expect(rpcCode(res), JSON.stringify(res)).toBe(RPC.OK);
  });

  it('context.ip is the source socket address, context.principal the source principal', async () => {
    const h = await serve('', { policies });
    const client = envoyClient(h);
    const office = await check(client, envoyRequest({ path: '/probe/office', token: viewerToken, sourceIp: '10.1.2.3' }));
    expect(rpcCode(office), JSON.stringify(office)).toBe(RPC.OK);
    const outside = await check(client, envoyRequest({ path: '/probe/office', token: viewerToken, sourceIp: '198.51.100.7' }));
    expect(rpcCode(outside)).toBe(RPC.PERMISSION_DENIED);
    // A client cannot claim an address with a header: only the socket address counts.
    const spoofed = await check(client, envoyRequest({ path: '/probe/office', token: viewerToken, sourceIp: '198.51.100.7', headers: { 'x-forwarded-for': '10.1.2.3' } }));
    expect(rpcCode(spoofed)).toBe(RPC.PERMISSION_DENIED);
    const mesh = await check(client, envoyRequest({ path: '/probe/mesh', token: viewerToken, principal: PROBE_PRINCIPAL }));
    expect(rpcCode(mesh), JSON.stringify(mesh)).toBe(RPC.OK);
    const otherPeer = await check(client, envoyRequest({ path: '/probe/mesh', token: viewerToken, principal: 'spiffe://cluster.local/ns/web/sa/intruder' }));
    expect(rpcCode(otherPeer)).toBe(RPC.PERMISSION_DENIED);
    const noPeer = await check(client, envoyRequest({ path: '/probe/mesh', token: viewerToken }));
    expect(rpcCode(noPeer)).toBe(RPC.PERMISSION_DENIED);
  });

  it('context.query holds the decoded query; context.path/method/host/scheme/route the normalised request', async () => {
    const h = await serve('', { policies });
    const client = envoyClient(h);
    const full = await check(client, envoyRequest({ path: '/probe/query?mode=full+view&x=1', token: viewerToken }));
    expect(rpcCode(full), JSON.stringify(full)).toBe(RPC.OK);
    const encoded = await check(client, envoyRequest({ path: '/probe/query?mode=full%20view', token: viewerToken }));
    expect(rpcCode(encoded)).toBe(RPC.OK);
    // The first value of a repeated name wins.
    const repeated = await check(client, envoyRequest({ path: '/probe/query?mode=brief&mode=full+view', token: viewerToken }));
    expect(rpcCode(repeated)).toBe(RPC.PERMISSION_DENIED);
    const none = await check(client, envoyRequest({ path: '/probe/query', token: viewerToken }));
    expect(rpcCode(none)).toBe(RPC.PERMISSION_DENIED);
    const where = await check(client, envoyRequest({ path: '/probe/./x/../where//w1?z=9', token: viewerToken }));
    expect(rpcCode(where), JSON.stringify(where)).toBe(RPC.OK);
  });

  it('`authorization` (or cookie) in context_headers is a config error: credentials never reach policies', () => {
    for (const name of ['authorization', 'Authorization', 'cookie', 'proxy-authorization']) {
      const e = configError(`server:\n  plaintext: true\next_authz:\n  context_headers: [x-tenant, ${name}]`);
      expect(e.key).toBe('ext_authz.context_headers');
      expect(e.message).toMatch(/credentials/);
    }
    expect(configError('server:\n  plaintext: true\next_authz:\n  context_headers: ["x tenant"]').key).toBe('ext_authz.context_headers');
  });
});

// ---------------------------------------------------------------------------

describe('trusted_callers (mTLS)', () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await createTestPki();
  });

  function mtlsYaml(trusted: readonly string[]): string {
    return [
      'server:',
      '  address: 127.0.0.1:0',
      '  shutdown_grace: 1s',
      '  tls:',
      `    cert_file: ${JSON.stringify(pki.server.certFile)}`,
      `    key_file: ${JSON.stringify(pki.server.keyFile)}`,
      `    client_ca_file: ${JSON.stringify(pki.ca.certFile)}`,
      'ext_authz:',
      `  trusted_callers: ${JSON.stringify(trusted)}`,
      '',
    ].join('\n');
  }

  function tlsEnvoy(h: Harness, identity: Issued): Client {
    const creds = grpc.credentials.createSsl(Buffer.from(pki.ca.cert), Buffer.from(identity.key), Buffer.from(identity.cert));
    return envoyClient(h, creds, { 'grpc.use_local_subchannel_pool': 1 });
  }

  it('the listed caller gets answers (and is logged as the caller); an unlisted one gets a gRPC PERMISSION_DENIED', async () => {
    const h = await serve(mtlsYaml([SPIFFE_ENVOY]));
    const allowed = await check(tlsEnvoy(h, pki.spiffeClient), envoyRequest({ path: '/api/documents/d1', token: adminToken, id: 'mtls-1' }));
    expect(rpcCode(allowed)).toBe(RPC.OK);
    expect(recordOf(h, 'mtls-1').caller).toBe(SPIFFE_ENVOY);
    const denied = await check(tlsEnvoy(h, pki.spiffeClient), envoyRequest({ method: 'DELETE', path: '/api/documents/d1', token: viewerToken }));
    expect(rpcCode(denied)).toBe(RPC.PERMISSION_DENIED);
    expect(denied.http_response).toBe('denied_response');

    const before = h.decisionLog.records.length;
    const error = await check(tlsEnvoy(h, pki.dnsClient), envoyRequest({ path: '/api/documents/d1', token: adminToken }), FAIL_DEADLINE_MS).then(
      (r) => {
        throw new Error(`expected a gRPC error, got ${JSON.stringify(r)}`);
      },
      (e: grpc.ServiceError) => e,
    );
    expect(error.code, `${grpc.status[error.code]}: ${error.details}`).toBe(grpc.status.PERMISSION_DENIED);
    expect(error.details).toContain(CLIENT_DNS);
    expect(h.decisionLog.records).toHaveLength(before);
  });

  it('trusted_callers without client_ca_file is a config error', () => {
    const e = configError(
      [
        'server:',
        '  address: 127.0.0.1:0',
        '  tls:',
        `    cert_file: ${JSON.stringify(pki.server.certFile)}`,
        `    key_file: ${JSON.stringify(pki.server.keyFile)}`,
        'ext_authz:',
        `  trusted_callers: [${SPIFFE_ENVOY}]`,
      ].join('\n'),
    );
    expect(e.key).toBe('ext_authz.trusted_callers');
    expect(e.message).toMatch(/client_ca_file/);
    expect(configError(`server:\n  plaintext: true\next_authz:\n  trusted_callers: [${SPIFFE_ENVOY}]`).key).toBe('ext_authz.trusted_callers');
  });
});

// ---------------------------------------------------------------------------

/** Samples of `name` from the Prometheus text exposition, with their labels. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const m = /^[^{]+\{(.*)\} (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of m[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

describe('metrics', () => {
  it('arbiter_decisions_total counts ext_authz decisions by api, decision and reason', async () => {
    const h = await serve();
    const client = envoyClient(h);
    const calls: [EnvoyCall, number][] = [
      [{ path: '/api/documents/d1', token: adminToken }, RPC.OK],
      [{ path: '/api/documents/d2', token: adminToken }, RPC.OK],
      [{ method: 'DELETE', path: '/api/documents/d1', token: viewerToken }, RPC.PERMISSION_DENIED],
      [{ path: '/api/documents/d1' }, RPC.UNAUTHENTICATED],
      [{ method: 'POST', path: '/healthz' }, RPC.PERMISSION_DENIED],
      [{ path: '/api/public/..%2Fadmin' }, RPC.INVALID_ARGUMENT],
      [{ path: '/healthz' }, RPC.OK],
      [{ path: '/api/public/x' }, RPC.OK],
    ];
    for (const [c, code] of calls) expect(rpcCode(await check(client, envoyRequest(c)))).toBe(code);
    const text = await (await fetch(`http://127.0.0.1:${h.server.opsPort}/metrics`)).text();
    const ext = samples(text, 'arbiter_decisions_total').filter((s) => s.labels['api'] === 'ext_authz');
    const count = (decision: string, reason: string): number => ext.filter((s) => s.labels['decision'] === decision && s.labels['reason'] === reason).reduce((a, s) => a + s.value, 0);
    expect(count('ALLOW', 'RULE_PERMIT')).toBe(2);
    expect(ext.find((s) => s.labels['reason'] === 'RULE_PERMIT')?.labels['resource_type']).toBe('document');
    expect(count('DENY', 'NO_MATCHING_RULE')).toBe(1);
    expect(count('DENY', 'TOKEN_MISSING')).toBe(1);
    expect(count('DENY', 'NO_ROUTE')).toBe(1);
    expect(count('DENY', 'BAD_PATH')).toBe(1);
    expect(count('ALLOW', 'PUBLIC_ROUTE')).toBe(2);
    expect(ext.find((s) => s.labels['reason'] === 'NO_ROUTE')?.labels['resource_type']).toBe('(none)');
    expect(ext.reduce((a, s) => a + s.value, 0)).toBe(calls.length);
    // None of these went to the Authorizer API's series.
    expect(samples(text, 'arbiter_decisions_total').filter((s) => s.labels['api'] === 'authorizer').reduce((a, s) => a + s.value, 0)).toBe(0);
    // No label holds a subject or a resource id.
    for (const s of ext) for (const v of Object.values(s.labels)) expect(['ada', 'vic', 'd1', 'd2']).not.toContain(v);
  });
});

describe('concurrency', () => {
  it('64 concurrent checks, mixed allow / deny / 401, are each answered correctly', async () => {
    const kinds = ['allow', 'deny', 'unauthenticated', 'public'] as const;
    const requests = Array.from({ length: 64 }, (_, i) => {
      const kind = kinds[i % kinds.length]!;
      const id = `conc-${i}`;
      const c: EnvoyCall =
        kind === 'allow'
          ? { path: `/api/documents/doc-${i}`, token: adminToken, id }
          : kind === 'deny'
            ? { method: 'DELETE', path: `/api/documents/doc-${i}`, token: viewerToken, id }
            : kind === 'unauthenticated'
              ? { path: `/api/documents/doc-${i}`, id }
              : { path: `/api/public/p${i}`, id };
      return { kind, id, i, c };
    });
    const results = await Promise.all(requests.map((r) => check(envoy, envoyRequest(r.c))));
    for (const [n, r] of requests.entries()) {
      const res = results[n]!;
      const expected = { allow: RPC.OK, deny: RPC.PERMISSION_DENIED, unauthenticated: RPC.UNAUTHENTICATED, public: RPC.OK }[r.kind];
      expect(rpcCode(res), `${r.id} ${JSON.stringify(res)}`).toBe(expected);
      const record = recordOf(main, r.id);
      if (r.kind === 'allow') {
        expect(headerOf(res.ok_response?.headers, 'x-arbiter-subject')?.header?.value).toBe('ada');
        expect(record.resource_id).toBe(`doc-${r.i}`);
      } else if (r.kind === 'deny') {
        expect(bodyOf(res)).toEqual({ decision: 'DENY', reason: 'NO_MATCHING_RULE', request_id: r.id });
        expect(record.resource_id).toBe(`doc-${r.i}`);
      } else if (r.kind === 'unauthenticated') {
        expect(bodyOf(res)).toEqual({ decision: 'DENY', reason: 'TOKEN_MISSING', request_id: r.id });
      } else {
        expect(record.reason).toBe('PUBLIC_ROUTE');
      }
    }
  });
});

// ---------------------------------------------------------------------------
// Wire compatibility: Envoy's own message shapes, with fields Arbiter's trimmed
// protos leave out (upstream field numbers from envoy/service/auth/v3/
// attribute_context.proto and external_auth.proto), encoded and decoded with
// protobufjs, sent as raw bytes.

const UPSTREAM_PROTO = `
syntax = "proto3";

package upstream.envoy;

import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message SocketAddress {
  enum Protocol {
    TCP = 0;
    UDP = 1;
  }
  Protocol protocol = 1;
  string address = 2;
  oneof port_specifier {
    uint32 port_value = 3;
    string named_port = 4;
  }
  string resolver_name = 5;
  bool ipv4_compat = 6;
}

message Address {
  oneof address {
    SocketAddress socket_address = 1;
  }
}

message Metadata {
  map<string, google.protobuf.Struct> filter_metadata = 1;
}

message HeaderValue {
  string key = 1;
  string value = 2;
  bytes raw_value = 3;
}

message HeaderMap {
  repeated HeaderValue headers = 1;
}

message HeaderValueOption {
  enum HeaderAppendAction {
    APPEND_IF_EXISTS_OR_ADD = 0;
    ADD_IF_ABSENT = 1;
    OVERWRITE_IF_EXISTS_OR_ADD = 2;
    OVERWRITE_IF_EXISTS = 3;
  }
  HeaderValue header = 1;
  google.protobuf.BoolValue append = 2;
  HeaderAppendAction append_action = 3;
  bool keep_empty_value = 4;
}

message AttributeContext {
  message Peer {
    // Declared first so it is encoded before the fields Arbiter reads.
    string certificate = 5;
    Address address = 1;
    string service = 2;
    map<string, string> labels = 3;
    string principal = 4;
  }
  message Request {
    google.protobuf.Timestamp time = 1;
    HttpRequest http = 2;
  }
  message HttpRequest {
    // The fields Arbiter does not know come first on the wire.
    HeaderMap header_map = 13;
    bytes raw_body = 12;
    string id = 1;
    string method = 2;
    map<string, string> headers = 3;
    string path = 4;
    string host = 5;
    string scheme = 6;
    string query = 7;
    string fragment = 8;
    int64 size = 9;
    string protocol = 10;
    string body = 11;
  }
  message TLSSession {
    string sni = 1;
  }
  Metadata metadata_context = 11;
  TLSSession tls_session = 12;
  Metadata route_metadata_context = 13;
  Peer source = 1;
  Peer destination = 2;
  Request request = 4;
  map<string, string> context_extensions = 10;
}

message CheckRequest {
  AttributeContext attributes = 1;
}

message Status {
  int32 code = 1;
  string message = 2;
}

enum StatusCode {
  Empty = 0;
  OK = 200;
  BadRequest = 400;
  Unauthorized = 401;
  Forbidden = 403;
  NotFound = 404;
  RequestHeaderFieldsTooLarge = 431;
}

message HttpStatus {
  StatusCode code = 1;
}

message DeniedHttpResponse {
  HttpStatus status = 1;
  repeated HeaderValueOption headers = 2;
  string body = 3;
}

message OkHttpResponse {
  repeated HeaderValueOption headers = 2;
  repeated string headers_to_remove = 5;
  repeated HeaderValueOption response_headers_to_add = 6;
}

message CheckResponse {
  Status status = 1;
  oneof http_response {
    DeniedHttpResponse denied_response = 2;
    OkHttpResponse ok_response = 3;
  }
  google.protobuf.Struct dynamic_metadata = 4;
}
`;

interface UpstreamResponse {
  status?: { code?: number; message?: string };
  http_response?: string;
  ok_response?: { headers?: { header?: { key?: string; value?: string }; append?: unknown; append_action?: string }[]; headers_to_remove?: string[] };
  denied_response?: { status?: { code?: string }; headers?: { header?: { key?: string; value?: string }; append_action?: string }[]; body?: string };
}

describe('wire compatibility with what Envoy sends', () => {
  let upstream: ProtoRoot;
  let CheckRequest: ProtoType;
  let CheckResponse: ProtoType;

  beforeAll(() => {
    const file = join(work, 'upstream_external_auth.proto');
    writeFileSync(file, UPSTREAM_PROTO);
    upstream = new protobuf.Root().loadSync(file, { keepCase: true });
    CheckRequest = upstream.lookupType('upstream.envoy.CheckRequest');
    CheckResponse = upstream.lookupType('upstream.envoy.CheckResponse');
  });

  function upstreamRequest(c: { method: string; path: string; token?: string; id: string }): Uint8Array {
    const headers: Record<string, string> = {
      ':authority': 'api.example.test',
      ':method': c.method,
      ':path': c.path,
      ':scheme': 'https',
      'x-request-id': c.id,
      ...(c.token === undefined ? {} : { authorization: `Bearer ${c.token}` }),
    };
    const metadata = { filter_metadata: { 'envoy.filters.http.jwt_authn': { fields: { verified: { boolValue: true }, sub: { stringValue: 'someone-else' } } } } };
    const message = {
      attributes: {
        metadata_context: metadata,
        tls_session: { sni: 'api.example.test' },
        route_metadata_context: { filter_metadata: { 'envoy.route': { fields: { owner: { stringValue: 'team-docs' } } } } },
        source: {
          certificate: '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n',
          address: { socket_address: { protocol: 0, address: '192.0.2.44', port_value: 40_000, resolver_name: 'r', ipv4_compat: true } },
          service: 'frontend',
          labels: { app: 'frontend' },
          principal: 'spiffe://cluster.local/ns/web/sa/frontend',
        },
        destination: { certificate: 'x', address: { socket_address: { address: '10.0.0.5', port_value: 8443 } }, principal: 'spiffe://cluster.local/ns/edge/sa/gateway' },
        request: {
          time: { seconds: Math.floor(Date.now() / 1000), nanos: 5 },
          http: {
            header_map: { headers: Object.entries(headers).map(([key, value]) => ({ key, value: '', raw_value: Buffer.from(value) })) },
            raw_body: Buffer.from([0x0a, 0x05, 0xff, 0x00, 0x12, 0x80, 0x01]),
            id: c.id,
            method: c.method,
            headers,
            path: c.path,
            host: 'api.example.test',
            scheme: 'https',
            size: 7,
            protocol: 'HTTP/2',
            body: '',
          },
        },
        context_extensions: { virtual_host: 'api' },
      },
    };
    const err = CheckRequest.verify(message);
    expect(err).toBeNull();
    return CheckRequest.encode(CheckRequest.fromObject(message)).finish();
  }

  function rawCheck(client: Client, bytes: Uint8Array): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        '/envoy.service.auth.v3.Authorization/Check',
        (b: Buffer) => b,
        (buf: Buffer) => buf,
        Buffer.from(bytes),
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (err: grpc.ServiceError | null, value?: Buffer) => (err === null && value !== undefined ? resolve(value) : reject(err ?? new Error('no response'))),
      );
    });
  }

  function decode(buf: Buffer): UpstreamResponse {
    return CheckResponse.toObject(CheckResponse.decode(buf), { enums: String, longs: String, defaults: false, oneofs: true }) as UpstreamResponse;
  }

  it('the upstream-shaped request really carries the extra fields (sanity check of the encoding)', () => {
    const bytes = upstreamRequest({ method: 'GET', path: '/api/documents/d1', token: adminToken, id: '77001' });
    const back = CheckRequest.toObject(CheckRequest.decode(bytes), { longs: String, defaults: false }) as { attributes: { tls_session?: { sni?: string }; source?: { certificate?: string }; request?: { http?: { raw_body?: Uint8Array; header_map?: { headers?: unknown[] } } }; metadata_context?: object; route_metadata_context?: object } };
    expect(back.attributes.tls_session?.sni).toBe('api.example.test');
    expect(back.attributes.source?.certificate).toContain('BEGIN CERTIFICATE');
    expect(back.attributes.request?.http?.raw_body?.length).toBe(7);
    expect(back.attributes.request?.http?.header_map?.headers).toHaveLength(6);
    expect(back.attributes.metadata_context).toBeDefined();
    expect(back.attributes.route_metadata_context).toBeDefined();
  });

  it('an allowed request with extra fields: the extras are skipped, the reply decodes field by field as upstream CheckResponse', async () => {
    const bytes = upstreamRequest({ method: 'GET', path: '/api/documents/d1', token: adminToken, id: '77002' });
    const res = decode(await rawCheck(envoy, bytes));
    expect(res.status?.code ?? 0).toBe(0);
    expect(res.http_response).toBe('ok_response');
    expect(res.denied_response).toBeUndefined();
    const headers = res.ok_response?.headers ?? [];
    const subject = headers.find((h) => h.header?.key === 'x-arbiter-subject');
    expect(subject?.header?.value).toBe('ada');
    expect(subject?.append_action).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
    expect(subject?.append).toBeUndefined();
    const rule = headers.find((h) => h.header?.key === 'x-arbiter-rule');
    expect(rule?.header?.value).toBe('document.admins');
    expect(rule?.append_action).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
    expect(res.ok_response?.headers_to_remove ?? []).toEqual([]);
    expect(recordOf(main, '77002')).toMatchObject({ decision: 'ALLOW', sub: 'ada', route: 'GET /api/documents/{id}', resource_id: 'd1' });
  });

  it('a denied request with extra fields: status 7, denied_response Forbidden with the JSON body', async () => {
    const bytes = upstreamRequest({ method: 'DELETE', path: '/api/documents/d1', token: viewerToken, id: '77003' });
    const res = decode(await rawCheck(envoy, bytes));
    expect(res.status?.code).toBe(RPC.PERMISSION_DENIED);
    expect(res.status?.message).toBe('NO_MATCHING_RULE');
    expect(res.http_response).toBe('denied_response');
    expect(res.ok_response).toBeUndefined();
    expect(res.denied_response?.status?.code).toBe('Forbidden');
    expect(res.denied_response?.headers?.find((h) => h.header?.key === 'content-type')?.header?.value).toBe('application/json');
    expect(JSON.parse(res.denied_response?.body ?? '{}')).toEqual({ decision: 'DENY', reason: 'NO_MATCHING_RULE', request_id: '77003' });
  });

  it('no token, extra fields: 16 and Unauthorized with the challenge; a public route with extras: OK with headers_to_remove', async () => {
    const unauth = decode(await rawCheck(envoy, upstreamRequest({ method: 'GET', path: '/api/documents/d1', id: '77004' })));
    expect(unauth.status?.code).toBe(RPC.UNAUTHENTICATED);
    expect(unauth.denied_response?.status?.code).toBe('Unauthorized');
    expect(unauth.denied_response?.headers?.find((h) => h.header?.key === 'www-authenticate')?.header?.value).toBe('Bearer realm="arbiter"');
    const pub = decode(await rawCheck(envoy, upstreamRequest({ method: 'GET', path: '/healthz', id: '77005' })));
    expect(pub.status?.code ?? 0).toBe(0);
    expect(pub.http_response).toBe('ok_response');
    expect(pub.ok_response?.headers_to_remove).toEqual(expect.arrayContaining(['x-arbiter-subject', 'x-arbiter-rule']));
  });

  it("Arbiter's own trimmed proto reads the same known fields from those bytes", () => {
    const root = new protobuf.Root();
    root.resolvePath = (_origin: string, target: string) => (isAbsolute(target) ? target : join(protoDir(), target));
    root.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: true });
    const Trimmed = root.lookupType('envoy.service.auth.v3.CheckRequest');
    const bytes = upstreamRequest({ method: 'GET', path: '/api/documents/d1?x=1', token: adminToken, id: '77006' });
    const req = Trimmed.toObject(Trimmed.decode(bytes), { longs: String, defaults: false, oneofs: true }) as {
      attributes: { source?: { principal?: string; address?: { socket_address?: { address?: string; port_value?: number } } }; request?: { http?: { id?: string; method?: string; path?: string; headers?: Record<string, string> } } };
    };
    expect(req.attributes.request?.http).toMatchObject({ id: '77006', method: 'GET', path: '/api/documents/d1?x=1' });
    expect(req.attributes.request?.http?.headers?.['authorization']).toBe(`Bearer ${adminToken}`);
    expect(req.attributes.source?.address?.socket_address).toMatchObject({ address: '192.0.2.44', port_value: 40_000 });
    expect(req.attributes.source?.principal).toBe('spiffe://cluster.local/ns/web/sa/frontend');
  });
});

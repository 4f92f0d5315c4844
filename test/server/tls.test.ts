/**
 * TLS, mTLS and caller identity, end to end: certificates generated per run
 * (./certs.ts), a real Arbiter server on 127.0.0.1 (./harness.ts) and real
 * grpc-js clients doing real handshakes. No mocks, no sleeps, no timing
 * assertions; calls expected to fail get short deadlines.
 */
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryDecisionLog } from '../../src/audit/decision-log.js';
import { compilePolicySet } from '../../src/compile/index.js';
import { parseConfig } from '../../src/config/config.js';
import { readServeSections } from '../../src/config/server.js';
import { readPolicyDirectory } from '../../src/engine/policy-store.js';
import { ConfigError } from '../../src/errors.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/registry.js';
import { startArbiter } from '../../src/server/run.js';
import { jsonToStruct } from '../../src/server/struct.js';
import { jwksOf, makeKey, sign, writeJson, type TestKey } from '../jwt/fixtures.js';
import { CLIENT_DNS, createTestPki, SPIFFE_ENVOY, type Issued, type TestPki } from './certs.js';
import { call, checkRequest, POLICIES, startHarness, testIssuerYaml, type Harness } from './harness.js';

/** Deadline for calls expected to fail: short, so the suite stays fast. */
const FAIL_DEADLINE_MS = 3_000;

type Client = grpc.Client & Record<string, Function>;
interface CheckResponse {
  decision: string;
  reason: string;
  rules: string[];
  policy_revision: string;
  message?: string;
  request_id: string;
}
interface CheckBatchResponse {
  results: { decisions: { action: string; decision: string; reason: string; rules: string[] }[] }[];
  token_reason?: string;
}

let pki: TestPki;
let signingKey: TestKey;
let jwksFile: string;
/** The shipped policies plus gateway.policy, which reads `context.caller`. */
let gatewayPolicies: string;

const GATEWAY_POLICY = `# Routes only the edge proxy may call.
resource gateway_route {
  actions call
  rule envoy_only: permit call when context.caller == "${SPIFFE_ENVOY}"
}
`;

/** The README's example: alice, an editor in engineering, reads spec-42. */
const SPEC_42 = { type: 'document', id: 'spec-42', attributes: { owner: 'bob', department: 'engineering', classification: 'internal' } };
const ALICE = { sub: 'alice', roles: ['editor'], department: 'engineering' };

beforeAll(async () => {
  pki = await createTestPki();
  signingKey = await makeKey('ES256', 'tls-test-key');
  jwksFile = writeJson(pki.dir, 'jwks.json', jwksOf(signingKey));
  gatewayPolicies = mkdtempSync(join(tmpdir(), 'arbiter-gateway-policies-'));
  for (const f of readdirSync(POLICIES)) if (f.endsWith('.policy')) copyFileSync(join(POLICIES, f), join(gatewayPolicies, f));
  writeFileSync(join(gatewayPolicies, 'gateway.policy'), GATEWAY_POLICY);
});

const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

interface ServerShape {
  /** Set `tls.client_ca_file` to the test CA (mTLS). */
  readonly clientCa?: boolean;
  readonly trusted?: readonly string[];
  readonly policies?: string;
}

function yamlFor(shape: ServerShape): string {
  return [
    'server:',
    '  address: 127.0.0.1:0',
    '  shutdown_grace: 1s',
    '  tls:',
    `    cert_file: ${JSON.stringify(pki.server.certFile)}`,
    `    key_file: ${JSON.stringify(pki.server.keyFile)}`,
    ...(shape.clientCa === true ? [`    client_ca_file: ${JSON.stringify(pki.ca.certFile)}`] : []),
    ...(shape.trusted === undefined ? [] : [`  trusted_subject_callers: ${JSON.stringify(shape.trusted)}`]),
    testIssuerYaml(`jwks_file: ${JSON.stringify(jwksFile)}`, { algorithms: 'ES256' }),
  ].join('\n');
}

async function serve(shape: ServerShape): Promise<Harness> {
  const h = await startHarness({ yaml: yamlFor(shape), ...(shape.policies === undefined ? {} : { policies: shape.policies }) });
  harnesses.push(h);
  return h;
}

/** Channel options: a private subchannel pool, so no test reuses another's connection. */
const CHANNEL = { 'grpc.use_local_subchannel_pool': 1 } as const;

/** A TLS client trusting `root` (the test CA by default), presenting `identity` if given. */
function tlsClient(h: Harness, identity?: Issued, root: string = pki.ca.cert): Client {
  const creds =
    identity === undefined
      ? grpc.credentials.createSsl(Buffer.from(root))
      : grpc.credentials.createSsl(Buffer.from(root), Buffer.from(identity.key), Buffer.from(identity.cert));
  return h.client(creds, CHANNEL);
}

function check(client: Client, request: Parameters<typeof checkRequest>[0], deadlineMs?: number): Promise<CheckResponse> {
  return call<CheckResponse>(client, 'Check', checkRequest(request), deadlineMs);
}

/** A token for alice, editor in engineering. */
function aliceToken(): Promise<string> {
  return sign(signingKey, { claims: { sub: 'alice', roles: ['editor'], department: 'engineering' } });
}

/**
 * Asserts the call fails at the transport (no decision at all): the client
 * sees UNAVAILABLE, the code grpc-js gives a connection whose handshake was
 * refused. Returns the error for further checks.
 */
async function expectNoAnswer(pending: Promise<unknown>): Promise<grpc.ServiceError> {
  let answered: unknown;
  let error: grpc.ServiceError | undefined;
  try {
    answered = await pending;
  } catch (e) {
    error = e as grpc.ServiceError;
  }
  expect(answered, 'a refused connection must not produce a decision').toBeUndefined();
  expect(error).toBeDefined();
  expect(error!.code, `${grpc.status[error!.code]}: ${error!.details}`).toBe(grpc.status.UNAVAILABLE);
  return error!;
}

async function expectStatus(pending: Promise<unknown>, code: grpc.status): Promise<grpc.ServiceError> {
  const error = await pending.then(
    (r) => {
      throw new Error(`expected ${grpc.status[code]}, got an answer: ${JSON.stringify(r)}`);
    },
    (e: grpc.ServiceError) => e,
  );
  expect(error.code, `${grpc.status[error.code]}: ${error.details}`).toBe(code);
  return error;
}

describe('the test certificates', () => {
  it('are real X.509 certificates chaining to their CA, with the SANs the tests rely on', async () => {
    const ca = new X509Certificate(pki.ca.cert);
    const other = new X509Certificate(pki.otherCa.cert);
    expect(ca.ca).toBe(true);
    const server = new X509Certificate(pki.server.cert);
    expect(server.checkIssued(ca) && server.verify(ca.publicKey)).toBe(true);
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkHost('localhost')).toBe('localhost');
    const envoy = new X509Certificate(pki.spiffeClient.cert);
    expect(envoy.verify(ca.publicKey)).toBe(true);
    expect(envoy.subjectAltName).toBe(`URI:${SPIFFE_ENVOY}`);
    const billing = new X509Certificate(pki.dnsClient.cert);
    expect(billing.verify(ca.publicKey)).toBe(true);
    expect(billing.subjectAltName).toBe(`DNS:${CLIENT_DNS}`);
    const foreign = new X509Certificate(pki.foreignClient.cert);
    expect(foreign.verify(ca.publicKey)).toBe(false);
    expect(foreign.verify(other.publicKey)).toBe(true);
    expect(pki.spiffeClient.key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });
});

describe('TLS without client certificates', () => {
  it('answers a client that trusts the CA: a token decision, and DENY TOKEN_MISSING without a token', async () => {
    const h = await serve({});
    const client = tlsClient(h);
    const allowed = await check(client, { token: await aliceToken(), action: 'read', resource: SPEC_42 });
    expect(allowed).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['document.dept_editors'] });
    const missing = await check(client, { token: '', action: 'read', resource: SPEC_42 });
    expect(missing).toMatchObject({ decision: 'DENY', reason: 'TOKEN_MISSING' });
    // No client certificate: the decision log names no caller.
    expect(h.decisionLog.records).toHaveLength(2);
    for (const r of h.decisionLog.records) expect(r.caller).toBeUndefined();
  });

  it('a client presenting a certificate anyway is answered but not identified (no client CA to check it against)', async () => {
    const h = await serve({});
    const client = tlsClient(h, pki.spiffeClient);
    const res = await check(client, { token: await aliceToken(), action: 'read', resource: SPEC_42 });
    expect(res.decision).toBe('ALLOW');
    expect(h.decisionLog.records[0]?.caller).toBeUndefined();
    const refused = await expectStatus(check(client, { subject: ALICE, action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS), grpc.status.PERMISSION_DENIED);
    expect(refused.details).toMatch(/trusted client certificate/);
  });

  it('a client that does not trust the server certificate gets no answer', async () => {
    const h = await serve({});
    await expectNoAnswer(check(tlsClient(h, undefined, pki.otherCa.cert), { token: '', action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS));
    expect(h.decisionLog.records).toHaveLength(0);
  });

  it('a plaintext client against the TLS port gets no answer', async () => {
    const h = await serve({});
    const client = h.client(grpc.credentials.createInsecure(), CHANNEL);
    await expectNoAnswer(check(client, { token: '', action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS));
    expect(h.decisionLog.records).toHaveLength(0);
  });
});

describe('mTLS (client_ca_file set: client certificates required)', () => {
  it('answers clients with a certificate from the CA, and logs who they are', async () => {
    const h = await serve({ clientCa: true });
    const token = await aliceToken();
    const envoy = await check(tlsClient(h, pki.spiffeClient), { token, action: 'read', resource: SPEC_42 });
    expect(envoy).toMatchObject({ decision: 'ALLOW', rules: ['document.dept_editors'] });
    const billing = await check(tlsClient(h, pki.dnsClient), { token: '', action: 'read', resource: SPEC_42 });
    expect(billing).toMatchObject({ decision: 'DENY', reason: 'TOKEN_MISSING' });
    expect(h.decisionLog.records.map((r) => r.caller)).toEqual([SPIFFE_ENVOY, CLIENT_DNS]);
  });

  it('refuses a client without a certificate: no decision', async () => {
    const h = await serve({ clientCa: true });
    await expectNoAnswer(check(tlsClient(h), { token: await aliceToken(), action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS));
    expect(h.decisionLog.records).toHaveLength(0);
  });

  it('refuses a client whose certificate is from another CA, even with a trusted identity in it', async () => {
    const h = await serve({ clientCa: true, trusted: [SPIFFE_ENVOY] });
    await expectNoAnswer(check(tlsClient(h, pki.foreignClient), { subject: ALICE, action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS));
    await expectNoAnswer(check(tlsClient(h, pki.selfSignedClient), { subject: ALICE, action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS));
    expect(h.decisionLog.records).toHaveLength(0);
  });

  it('a refused client does not stop the server answering good ones', async () => {
    const h = await serve({ clientCa: true });
    await expectNoAnswer(check(tlsClient(h), { token: '', action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS));
    const res = await check(tlsClient(h, pki.spiffeClient), { token: '', action: 'read', resource: SPEC_42 });
    expect(res.reason).toBe('TOKEN_MISSING');
  });
});

describe('trusted subject callers', () => {
  it('the listed SPIFFE caller may send subject attributes and gets a real decision', async () => {
    const h = await serve({ clientCa: true, trusted: [SPIFFE_ENVOY] });
    const client = tlsClient(h, pki.spiffeClient);
    const read = await check(client, { subject: ALICE, action: 'read', resource: SPEC_42 });
    expect(read).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['document.dept_editors'] });
    // The subject is really used: another department's editor is denied.
    const other = await check(client, { subject: { ...ALICE, department: 'sales' }, action: 'read', resource: SPEC_42 });
    expect(other).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    // And so is a forbid.
    const suspended = await check(client, { subject: { ...ALICE, suspended: true }, action: 'read', resource: SPEC_42 });
    expect(suspended).toMatchObject({ decision: 'DENY', reason: 'RULE_FORBID', rules: ['document.suspended'] });
    // Tokens still work for the trusted caller.
    const token = await check(client, { token: await aliceToken(), action: 'update', resource: SPEC_42 });
    expect(token).toMatchObject({ decision: 'ALLOW', rules: ['document.dept_editors'] });
    expect(h.decisionLog.records.every((r) => r.caller === SPIFFE_ENVOY)).toBe(true);
  });

  it('the trusted caller may send subject attributes in CheckBatch too', async () => {
    const h = await serve({ clientCa: true, trusted: [SPIFFE_ENVOY] });
    const res = await call<CheckBatchResponse>(tlsClient(h, pki.spiffeClient), 'CheckBatch', {
      subject: jsonToStruct(ALICE),
      items: [{ resource: { type: 'document', id: 'spec-42', attributes: jsonToStruct(SPEC_42.attributes) }, actions: ['read', 'delete'] }],
    });
    expect(res.results[0]?.decisions.map((d) => [d.action, d.decision])).toEqual([
      ['read', 'ALLOW'],
      ['delete', 'DENY'],
    ]);
  });

  it('trusted subject attributes are bounded in CheckBatch as in Check (nesting over 16 levels: INVALID_ARGUMENT naming subject)', async () => {
    const h = await serve({ clientCa: true, trusted: [SPIFFE_ENVOY] });
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 20; i++) deep = { d: deep };
    for (const method of ['Check', 'CheckBatch'] as const) {
      const request =
        method === 'Check'
          ? { subject: jsonToStruct({ ...ALICE, deep }), action: 'read', resource: { type: 'document' } }
          : { subject: jsonToStruct({ ...ALICE, deep }), items: [{ resource: { type: 'document' }, actions: ['read'] }] };
      const err = await call(tlsClient(h, pki.spiffeClient), method, request, FAIL_DEADLINE_MS).catch((e: grpc.ServiceError) => e);
      expect('code' in err ? err.code : undefined, method).toBe(grpc.status.INVALID_ARGUMENT);
      expect((err as grpc.ServiceError).details).toMatch(/^subject/);
    }
  });

  it('a caller not in the list (a DNS SAN) gets PERMISSION_DENIED for subject, but may still send a token', async () => {
    const h = await serve({ clientCa: true, trusted: [SPIFFE_ENVOY] });
    const client = tlsClient(h, pki.dnsClient);
    const refused = await expectStatus(check(client, { subject: ALICE, action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS), grpc.status.PERMISSION_DENIED);
    expect(refused.details).toContain(CLIENT_DNS);
    expect(refused.details).toMatch(/send `token` instead/);
    await expectStatus(
      call(client, 'CheckBatch', { subject: jsonToStruct(ALICE), items: [{ resource: { type: 'document' }, actions: ['read'] }] }, FAIL_DEADLINE_MS),
      grpc.status.PERMISSION_DENIED,
    );
    // No decision was made (or logged) for the refused calls.
    expect(h.decisionLog.records).toHaveLength(0);
    const withToken = await check(client, { token: await aliceToken(), action: 'read', resource: SPEC_42 });
    expect(withToken).toMatchObject({ decision: 'ALLOW', rules: ['document.dept_editors'] });
    expect(h.decisionLog.records.map((r) => r.caller)).toEqual([CLIENT_DNS]);
  });

  it('with the DNS name listed instead, that caller is trusted and the SPIFFE one is not', async () => {
    const h = await serve({ clientCa: true, trusted: [CLIENT_DNS] });
    const billing = await check(tlsClient(h, pki.dnsClient), { subject: ALICE, action: 'read', resource: SPEC_42 });
    expect(billing).toMatchObject({ decision: 'ALLOW', rules: ['document.dept_editors'] });
    const envoy = await expectStatus(check(tlsClient(h, pki.spiffeClient), { subject: ALICE, action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS), grpc.status.PERMISSION_DENIED);
    expect(envoy.details).toContain(SPIFFE_ENVOY);
  });

  it('a SAN that embeds a trusted identity in its text is not that identity', async () => {
    const sneaky = await pki.ca.issue({ name: 'sneaky', commonName: 'sneaky', dns: [`x, URI:${SPIFFE_ENVOY}, DNS:y`], usage: 'client' });
    const h = await serve({ clientCa: true, trusted: [SPIFFE_ENVOY], policies: gatewayPolicies });
    const client = tlsClient(h, sneaky);
    await expectStatus(check(client, { subject: ALICE, action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS), grpc.status.PERMISSION_DENIED);
    const res = await check(client, { token: await aliceToken(), action: 'call', resource: { type: 'gateway_route' } });
    expect(res).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    expect(h.decisionLog.records[0]?.caller).not.toBe(SPIFFE_ENVOY);
  });

  it('a trusted identity is matched exactly (no prefix or case games)', async () => {
    const h = await serve({ clientCa: true, trusted: [`${SPIFFE_ENVOY}-admin`, SPIFFE_ENVOY.toUpperCase(), 'spiffe://cluster.local/ns/edge'] });
    await expectStatus(check(tlsClient(h, pki.spiffeClient), { subject: ALICE, action: 'read', resource: SPEC_42 }, FAIL_DEADLINE_MS), grpc.status.PERMISSION_DENIED);
  });
});

describe('context.caller', () => {
  it('the example policies with gateway.policy compile', async () => {
    const sources = await readPolicyDirectory(gatewayPolicies);
    expect(sources.map((f) => f.path).sort()).toContain('gateway.policy');
    expect(() => compilePolicySet(sources)).not.toThrow();
  });

  it('is the certificate identity: the SPIFFE caller is allowed, a DNS caller is denied', async () => {
    const h = await serve({ clientCa: true, policies: gatewayPolicies });
    const route = { type: 'gateway_route', id: '/api/orders' };
    const envoy = await check(tlsClient(h, pki.spiffeClient), { token: await aliceToken(), action: 'call', resource: route });
    expect(envoy).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['gateway_route.envoy_only'] });
    const billing = await check(tlsClient(h, pki.dnsClient), { token: await aliceToken(), action: 'call', resource: route });
    expect(billing).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
  });

  it('cannot be spoofed by a caller with another certificate writing context.caller itself', async () => {
    const h = await serve({ clientCa: true, policies: gatewayPolicies });
    const route = { type: 'gateway_route', id: '/api/orders' };
    const token = await aliceToken();
    const client = tlsClient(h, pki.dnsClient);
    const spoofed = await check(client, { token, action: 'call', resource: route, context: { caller: SPIFFE_ENVOY, ip: '10.1.2.3' } });
    expect(spoofed).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    // Same through CheckBatch.
    const batch = await call<CheckBatchResponse>(client, 'CheckBatch', {
      token,
      context: jsonToStruct({ caller: SPIFFE_ENVOY }),
      items: [{ resource: { type: 'gateway_route', id: '/api/orders' }, actions: ['call'] }],
    });
    expect(batch.results[0]?.decisions[0]).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    // While the real one is allowed through CheckBatch as well.
    const real = await call<CheckBatchResponse>(tlsClient(h, pki.spiffeClient), 'CheckBatch', {
      token,
      items: [{ resource: { type: 'gateway_route', id: '/api/orders' }, actions: ['call'] }],
    });
    expect(real.results[0]?.decisions[0]).toMatchObject({ decision: 'ALLOW', rules: ['gateway_route.envoy_only'] });
  });

  it('cannot be spoofed over TLS without mTLS: a caller-written context.caller is dropped', async () => {
    const h = await serve({ policies: gatewayPolicies });
    const route = { type: 'gateway_route', id: '/api/orders' };
    const token = await aliceToken();
    for (const client of [tlsClient(h), tlsClient(h, pki.spiffeClient)]) {
      const res = await check(client, { token, action: 'call', resource: route, context: { caller: SPIFFE_ENVOY } });
      expect(res).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
    }
    const batch = await call<CheckBatchResponse>(tlsClient(h), 'CheckBatch', {
      token,
      context: jsonToStruct({ caller: SPIFFE_ENVOY }),
      items: [{ resource: { type: 'gateway_route' }, actions: ['call'] }],
    });
    expect(batch.results[0]?.decisions[0]).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE' });
  });
});

describe('config errors', () => {
  function serveSections(server: string): ReturnType<typeof readServeSections> {
    const text = `policies: ${JSON.stringify(POLICIES)}\n${server}\n`;
    const config = parseConfig(text, join(pki.dir, 'arbiter.yaml'), pki.dir, {});
    return readServeSections(config.root);
  }
  function configError(server: string): ConfigError {
    try {
      serveSections(server);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return e as ConfigError;
    }
    throw new Error('expected a ConfigError');
  }
  const tls = (extra = '') => `  tls:\n    cert_file: server.crt\n    key_file: server.key\n${extra}`;

  it('reads a valid mTLS section, resolving paths against the config file', () => {
    const s = serveSections(`server:\n  address: 127.0.0.1:0\n${tls('    client_ca_file: ca.crt\n')}  trusted_subject_callers: [${SPIFFE_ENVOY}]`);
    expect(s.tls).toEqual({ certFile: pki.server.certFile, keyFile: pki.server.keyFile, clientCaFile: pki.ca.certFile });
    expect(s.trustedSubjectCallers).toEqual([SPIFFE_ENVOY]);
    const plain = serveSections(`server:\n  address: 127.0.0.1:0\n${tls()}`);
    expect(plain.tls?.clientCaFile).toBeUndefined();
  });

  it('neither tls nor plaintext is an error naming server.tls', () => {
    const e = configError('server:\n  address: 127.0.0.1:0');
    expect(e.key).toBe('server.tls');
    expect(e.message).toContain('`server.tls`');
    // No server section at all: the same.
    expect(configError('').key).toBe('server.tls');
    // plaintext: false is not a way out.
    expect(configError('server:\n  plaintext: false').key).toBe('server.tls');
  });

  it('tls and plaintext together is an error', () => {
    const e = configError(`server:\n  plaintext: true\n${tls()}`);
    expect(e.key).toBe('server.plaintext');
    expect(e.message).toMatch(/conflicts with `tls`/);
  });

  it('trusted_subject_callers without client_ca_file is an error, with TLS or plaintext', () => {
    const e = configError(`server:\n${tls()}  trusted_subject_callers: [${SPIFFE_ENVOY}]`);
    expect(e.key).toBe('server.trusted_subject_callers');
    expect(e.message).toMatch(/client_ca_file/);
    expect(configError(`server:\n  plaintext: true\n  trusted_subject_callers: [${SPIFFE_ENVOY}]`).key).toBe('server.trusted_subject_callers');
  });

  it('there is no optional-client-certificate mode: require_client_cert is not a key', () => {
    // grpc-js cannot request a certificate without requiring it; a client CA always means mTLS.
    const e = configError(`server:\n${tls('    require_client_cert: false\n')}`);
    expect(e.key).toBe('server.tls.require_client_cert');
  });

  it('a tls section without cert_file or key_file, or with an unknown key, is an error', () => {
    expect(configError('server:\n  tls:\n    key_file: server.key').key).toBe('server.tls.cert_file');
    expect(configError('server:\n  tls:\n    cert_file: server.crt').key).toBe('server.tls.key_file');
    expect(configError(`server:\n${tls('    ca_file: ca.crt\n')}`).key).toBe('server.tls.ca_file');
  });

  async function startWith(tlsSection: string): Promise<{ error: unknown; logger: ReturnType<typeof createMemoryLogger> }> {
    const text = `policies: ${JSON.stringify(POLICIES)}\nserver:\n  address: 127.0.0.1:0\n  shutdown_grace: 1s\n${tlsSection}\n`;
    const config = parseConfig(text, join(pki.dir, 'arbiter.yaml'), pki.dir, {});
    const serve = readServeSections(config.root);
    const logger = createMemoryLogger();
    try {
      const s = await startArbiter({ config, serve, policies: POLICIES, logger, decisionLog: memoryDecisionLog(), metrics: new Metrics() });
      await s.shutdown();
      return { error: undefined, logger };
    } catch (error) {
      return { error, logger };
    }
  }

  /** Nothing of any private key (PEM or its base64 body) in `text`. */
  function expectNoKeyMaterial(text: string): void {
    expect(text).not.toMatch(/PRIVATE KEY/);
    for (const key of [pki.server.key, pki.ca.key, pki.spiffeClient.key]) {
      const body = key.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
      for (let i = 0; i + 24 <= body.length; i += 24) expect(text).not.toContain(body.slice(i, i + 24));
    }
  }

  it('a cert_file that does not exist: startArbiter rejects, naming the file and no key material', async () => {
    const { error, logger } = await startWith(`  tls:\n    cert_file: missing.crt\n    key_file: server.key`);
    expect(error).toBeInstanceOf(Error);
    const text = `${(error as Error).message}\n${(error as Error).stack ?? ''}\n${JSON.stringify(logger.lines)}`;
    expect(text).toContain('missing.crt');
    expectNoKeyMaterial(text);
  });

  it('a client_ca_file that does not exist: startArbiter rejects', async () => {
    const { error } = await startWith(`  tls:\n    cert_file: server.crt\n    key_file: server.key\n    client_ca_file: nope-ca.crt`);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('nope-ca.crt');
  });

  it('a key that does not match the certificate, or files given the wrong way round: startArbiter rejects without printing key material', async () => {
    for (const section of [
      `  tls:\n    cert_file: server.crt\n    key_file: envoy.key`,
      `  tls:\n    cert_file: server.key\n    key_file: server.crt`,
    ]) {
      const { error, logger } = await startWith(section);
      expect(error, section).toBeInstanceOf(Error);
      expectNoKeyMaterial(`${(error as Error).message}\n${(error as Error).stack ?? ''}\n${JSON.stringify(logger.lines)}`);
    }
  });

  it('the same files that fail above do start when right (control)', async () => {
    const { error } = await startWith(`  tls:\n    cert_file: server.crt\n    key_file: server.key\n    client_ca_file: ca.crt`);
    expect(error).toBeUndefined();
  });
});

afterAll(() => {
  rmSync(pki.dir, { recursive: true, force: true });
  rmSync(gatewayPolicies, { recursive: true, force: true });
});

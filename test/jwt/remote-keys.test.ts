/**
 * Remote and file key sources of the token verifier, end to end: a real HTTP
 * provider on 127.0.0.1 (./jwks-server.ts), real keys and tokens (./fixtures.ts),
 * the real `fetch`, the real file watcher. The unknown-`kid` cooldown runs on
 * an injected monotonic clock the tests advance, so nothing sleeps; whatever
 * happens on a timer (scheduled refresh, file polling) is awaited with
 * `vi.waitFor`.
 */
import { randomUUID } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifierEvents } from '../../src/engine/observe.js';
import type { IssuerOptions, KeySourceOptions } from '../../src/jwt/options.js';
import { MAX_KEY_DOCUMENT_BYTES } from '../../src/jwt/keys.js';
import type { TokenReason } from '../../src/jwt/reasons.js';
import { TokenVerifier, type VerifyResult } from '../../src/jwt/verify.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/registry.js';
import { issuerOptions, jwksOf, makeKey, makeSecret, sign, tempDir, verifierOptions, writeJson, type TestKey } from './fixtures.js';
import { startJwksServer, type Answer, type JwksServer } from './jwks-server.js';

/** The fixtures' default unknown-kid cooldown, in seconds. */
const COOLDOWN_SECONDS = 30;
const WAIT = { timeout: 15_000, interval: 20 } as const;

// Resources of the running test, released in afterEach whatever happened.
let server: JwksServer | undefined;
let verifier: TokenVerifier | undefined;
const dirs: string[] = [];

afterEach(async () => {
  verifier?.close();
  verifier = undefined;
  await server?.close();
  server = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

let k1: TestKey;
let k2: TestKey;
/** Signs tokens whose key no JWKS ever holds. */
let stranger: TestKey;

beforeAll(async () => {
  [k1, k2, stranger] = await Promise.all([makeKey('ES256', 'k1'), makeKey('ES256', 'k2'), makeKey('ES256', 'stranger')]);
});

type Logger = ReturnType<typeof createMemoryLogger>;

interface Harness {
  readonly server: JwksServer;
  readonly verifier: TokenVerifier;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Moves the monotonic clock past the unknown-kid cooldown. */
  passCooldown(): void;
  /** A valid token of the provider's issuer signed by `key` (kid = key.kid unless overridden). */
  token(key: TestKey, options?: { sub?: string; kid?: string }): Promise<string>;
  /** A token signed by a key the provider does not hold, with a random kid. */
  garbageKid(): Promise<string>;
  /** Every token handed out, to check none reaches a log line. */
  readonly tokens: string[];
}

interface SetupOptions {
  readonly source?: 'discovery' | 'jwks_url';
  readonly keys?: TestKey[];
  readonly issuer?: Partial<IssuerOptions>;
  /** Prepares the server before the verifier starts (e.g. to be down from the start). */
  readonly before?: (server: JwksServer) => void | Promise<void>;
}

/** Starts a provider and a verifier with one remote issuer whose `iss` is the provider's base URL. */
async function setup(options: SetupOptions = {}): Promise<Harness> {
  const s = await startJwksServer(jwksOf(...(options.keys ?? [k1])));
  server = s;
  await options.before?.(s);
  const logger = createMemoryLogger();
  const metrics = new Metrics();
  const now = Date.now();
  let mono = 1_000;
  const keys: KeySourceOptions = (options.source ?? 'discovery') === 'discovery' ? { kind: 'discovery', url: `${s.base}/.well-known/openid-configuration` } : { kind: 'jwks_url', url: `${s.base}/jwks` };
  const v = await TokenVerifier.create(verifierOptions([issuerOptions(keys, { issuer: s.base, ...options.issuer })]), {
    clock: () => now,
    monotonic: () => mono,
    events: verifierEvents(logger, metrics),
  });
  verifier = v;
  const tokens: string[] = [];
  const token = async (key: TestKey, o: { sub?: string; kid?: string } = {}): Promise<string> => {
    const t = await sign(key, { now, claims: { iss: s.base, sub: o.sub ?? 'alice' }, ...(o.kid === undefined ? {} : { header: { kid: o.kid } }) });
    tokens.push(t);
    return t;
  };
  return {
    server: s,
    verifier: v,
    logger,
    metrics,
    passCooldown() {
      mono += COOLDOWN_SECONDS * 1000 + 1;
    },
    token,
    garbageKid: () => token(stranger, { kid: `kid-${randomUUID()}` }),
    tokens,
  };
}

/** Sum of arbiter_jwks_refreshes_total over the series matching `filter`. */
async function refreshes(metrics: Metrics, filter: { outcome?: string; trigger?: string } = {}): Promise<number> {
  const { values } = await metrics.jwksRefreshes.get();
  return values
    .filter((v) => (filter.outcome === undefined || v.labels.outcome === filter.outcome) && (filter.trigger === undefined || v.labels.trigger === filter.trigger))
    .reduce((sum, v) => sum + v.value, 0);
}

function warnLines(logger: Logger): Logger['lines'] {
  return logger.lines.filter((l) => l.level === 'warn');
}

function expectVerified(r: VerifyResult, cached = false): void {
  if (!r.ok) throw new Error(`expected the token to verify, got ${r.error.code}: ${r.error.message}`);
  expect(r.cached).toBe(cached);
}

function expectDenied(r: VerifyResult, code: TokenReason): void {
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.error.code).toBe(code);
}

/** No log line carries a token, a token's signature, or anything shaped like a JWT. */
function expectNoTokenLogged(h: Pick<Harness, 'logger' | 'tokens'>): void {
  const text = JSON.stringify(h.logger.lines);
  for (const t of h.tokens) {
    expect(text).not.toContain(t);
    expect(text).not.toContain(t.split('.')[2]);
  }
  expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{8,}/);
}

describe('discovery', () => {
  it('fetches the keys at start-up through the discovery document and its jwks_uri', async () => {
    const h = await setup();
    expect(h.server.requests('discovery')).toBe(1);
    expect(h.server.requests('jwks')).toBe(1);
    expect(h.verifier.issuers).toEqual([{ name: 'test', issuer: h.server.base, keyCount: 1 }]);

    expectVerified(await h.verifier.verify(await h.token(k1)));
    // A held key never waits for the provider.
    expect(h.server.requests('discovery')).toBe(1);
    expect(h.server.requests('jwks')).toBe(1);

    expect(await refreshes(h.metrics, { trigger: 'startup', outcome: 'updated' })).toBe(1);
    expect(await refreshes(h.metrics, { outcome: 'failed' })).toBe(0);
    expect(h.logger.lines).toContainEqual({ level: 'info', msg: 'jwks loaded', fields: { issuer: 'test', trigger: 'startup', keys: 1 } });
    expect(await h.metrics.registry.getSingleMetricAsString('arbiter_jwks_keys')).toContain('arbiter_jwks_keys{issuer="test"} 1');
  });
});

describe('rotation', () => {
  it('fetches a new kid once the cooldown has passed; tokens of a removed key then fail with TOKEN_UNKNOWN_KID', async () => {
    const h = await setup();
    const oldToken = await h.token(k1);
    expectVerified(await h.verifier.verify(oldToken));
    expectVerified(await h.verifier.verify(oldToken), true);

    h.server.setKeys(jwksOf(k2));
    const newToken = await h.token(k2);

    // Within the cooldown that started with the start-up fetch: no refetch.
    expectDenied(await h.verifier.verify(newToken), 'TOKEN_UNKNOWN_KID');
    expect(h.server.requests('jwks')).toBe(1);

    h.passCooldown();
    expectVerified(await h.verifier.verify(newToken));
    expect(h.server.requests('jwks')).toBe(2);
    expect(await refreshes(h.metrics, { trigger: 'unknown-kid', outcome: 'updated' })).toBe(1);
    expect(h.verifier.issuers[0]?.keyCount).toBe(1);

    // The cached subject of the old token was dropped with the rotation, and its key is gone.
    expectDenied(await h.verifier.verify(oldToken), 'TOKEN_UNKNOWN_KID');
    expect(h.server.requests('jwks')).toBe(2);
    // An unknown-kid refetch does not go through discovery again.
    expect(h.server.requests('discovery')).toBe(1);
  });

  it('drops the cached subjects of the rotated issuer (and only of that issuer)', async () => {
    const secret = await makeSecret();
    const s = await startJwksServer(jwksOf(k1));
    server = s;
    const logger = createMemoryLogger();
    const metrics = new Metrics();
    const now = Date.now();
    let mono = 0;
    const remote = issuerOptions({ kind: 'discovery', url: s.discoveryUrl }, { issuer: s.base });
    const other = issuerOptions({ kind: 'secret', secret, origin: 'test' }, { name: 'other', issuer: 'https://other.test' });
    verifier = await TokenVerifier.create(verifierOptions([remote, other]), { clock: () => now, monotonic: () => mono, events: verifierEvents(logger, metrics) });
    const v = verifier;

    const remoteTokens = await Promise.all(['a', 'b', 'c', 'd'].map((sub) => sign(k1, { now, claims: { iss: s.base, sub } })));
    const otherToken = await sign({ secret }, { now, claims: { iss: 'https://other.test', sub: 'bob' } });
    // Interleave the issuers in the cache.
    for (const t of [remoteTokens[0], otherToken, ...remoteTokens.slice(1)]) expectVerified(await v.verify(t));
    for (const t of [...remoteTokens, otherToken]) expectVerified(await v.verify(t), true);

    // Rotation that keeps the old key: old tokens still verify, but afresh.
    s.setKeys(jwksOf(k1, k2));
    mono += COOLDOWN_SECONDS * 1000;
    expectVerified(await v.verify(await sign(k2, { now, claims: { iss: s.base } })));
    expect(s.requests('jwks')).toBe(2);
    expect(v.issuers.find((i) => i.name === 'test')?.keyCount).toBe(2);

    for (const t of remoteTokens) expectVerified(await v.verify(t), false);
    expectVerified(await v.verify(otherToken), true);
  });

  it('refreshes on the schedule (refreshIntervalSeconds), going through discovery again, and picks up a rotation', async () => {
    const h = await setup({ issuer: { refreshIntervalSeconds: 0.2 } });
    await vi.waitFor(() => expect(h.server.requests('jwks')).toBeGreaterThanOrEqual(3), WAIT);
    expect(h.server.requests('discovery')).toBeGreaterThanOrEqual(2);
    // A request reaches the server before its outcome is reported: wait for the report.
    await vi.waitFor(async () => expect(await refreshes(h.metrics, { trigger: 'interval', outcome: 'unchanged' })).toBeGreaterThanOrEqual(2), WAIT);

    // The monotonic clock never moves here, so only the schedule can bring k2 in.
    h.server.setKeys(jwksOf(k2));
    const newToken = await h.token(k2);
    await vi.waitFor(async () => expectVerified(await h.verifier.verify(newToken)), WAIT);
    expect(await refreshes(h.metrics, { trigger: 'interval', outcome: 'updated' })).toBe(1);
    expect(await refreshes(h.metrics, { trigger: 'unknown-kid' })).toBe(0);
    expect(await refreshes(h.metrics, { outcome: 'failed' })).toBe(0);
  });

  // Regression test, fixed (was: src/jwt/keys.ts, RemoteJwksSource.getKey/#refresh): the cooldown starts when a
  // refetch *starts* (#lastAttempt is set in #refresh), and getKey checks the cooldown
  // before joining the in-flight fetch. So while the refetch triggered by the first
  // token with a new kid is in flight, every other token with that same kid is denied
  // TOKEN_UNKNOWN_KID at once instead of waiting for the fetch that brings its key
  // (the "concurrent callers share it" of #refresh never happens for unknown kids).
  it('tokens with a new kid that arrive while its refetch is in flight wait for it and verify', async () => {
    const h = await setup();
    h.server.setKeys(jwksOf(k1, k2));
    h.passCooldown();
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => h.token(k2, { sub: `user-${i}` })));
    const results = await Promise.all(tokens.map((t) => h.verifier.verify(t)));
    expect(h.server.requests('jwks')).toBe(2);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(tokens.map(() => 'ok'));
  });
});

describe('provider down after start-up', () => {
  it('keeps verifying with the held keys while the provider answers 503; the failure is logged at warn and counted', async () => {
    const h = await setup();
    h.server.unavailable('jwks');
    h.server.unavailable('discovery');
    h.passCooldown();

    expectDenied(await h.verifier.verify(await h.garbageKid()), 'TOKEN_UNKNOWN_KID');
    expect(h.server.requests('jwks')).toBe(2);

    // A token never seen before (not from the cache) still verifies with the held key.
    expectVerified(await h.verifier.verify(await h.token(k1, { sub: 'fresh' })));
    expect(h.verifier.issuers[0]?.keyCount).toBe(1);

    expect(await refreshes(h.metrics, { outcome: 'failed' })).toBe(1);
    expect(await h.metrics.registry.getSingleMetricAsString('arbiter_jwks_refreshes_total')).toContain('arbiter_jwks_refreshes_total{issuer="test",trigger="unknown-kid",outcome="failed"} 1');
    const warns = warnLines(h.logger);
    expect(warns).toHaveLength(1);
    expect(warns[0]?.msg).toBe('jwks refresh failed; keeping the keys already held');
    expect(warns[0]?.fields).toMatchObject({ issuer: 'test', trigger: 'unknown-kid', keys: 1 });
    expect(String(warns[0]?.fields.detail)).toMatch(/HTTP 503/);
    expectNoTokenLogged(h);
  });

  it('keeps verifying with the held keys when the provider is gone (connection refused)', async () => {
    const h = await setup();
    await h.server.close();
    h.passCooldown();

    expectDenied(await h.verifier.verify(await h.garbageKid()), 'TOKEN_UNKNOWN_KID');
    expectVerified(await h.verifier.verify(await h.token(k1, { sub: 'fresh' })));

    expect(await refreshes(h.metrics, { trigger: 'unknown-kid', outcome: 'failed' })).toBe(1);
    const warns = warnLines(h.logger);
    expect(warns).toHaveLength(1);
    // Usually ECONNREFUSED; a pooled keep-alive socket whose close is not yet seen may report a reset instead.
    expect(String(warns[0]?.fields.detail)).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/jwks failed: (ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET)$/);
    expectNoTokenLogged(h);
  });

  it('keeps the held keys when a scheduled refresh fails', async () => {
    const h = await setup({ issuer: { refreshIntervalSeconds: 0.2 } });
    h.server.unavailable('discovery');
    h.server.unavailable('jwks');
    await vi.waitFor(async () => expect(await refreshes(h.metrics, { trigger: 'interval', outcome: 'failed' })).toBeGreaterThanOrEqual(1), WAIT);
    expectVerified(await h.verifier.verify(await h.token(k1, { sub: 'fresh' })));
    expect(h.verifier.issuers[0]?.keyCount).toBe(1);
    expect(warnLines(h.logger)[0]?.fields).toMatchObject({ trigger: 'interval', keys: 1 });
    expect(String(warnLines(h.logger)[0]?.fields.detail)).toMatch(/HTTP 503/);
  });
});

describe('provider answering garbage after start-up', () => {
  interface BadCase {
    readonly name: string;
    readonly answer: () => Promise<Answer> | Answer;
    readonly detail: RegExp;
  }
  const cases: BadCase[] = [
    { name: 'invalid JSON', answer: () => ({ type: 'body', body: '{"keys": [ {"kty": "EC", ' }), detail: /did not answer valid JSON/ },
    { name: 'a JSON object that is not a JWKS', answer: () => ({ type: 'json', value: { hello: 'world' } }), detail: /no `keys` list/ },
    { name: 'a JSON array', answer: () => ({ type: 'json', value: [k1.jwk] }), detail: /not a JSON object/ },
    { name: 'a `keys` member that is not a list', answer: () => ({ type: 'json', value: { keys: k1.jwk } }), detail: /no `keys` list/ },
    { name: 'an empty key list', answer: () => ({ type: 'json', value: { keys: [] } }), detail: /JWKS has no keys/ },
    {
      name: 'a JWKS with private key material ("d")',
      answer: async () => ({ type: 'json', value: { keys: [{ ...(await exportJWK(k2.privateKey)), kid: 'k2', alg: 'ES256', use: 'sig' }] } }),
      detail: /private or symmetric key material/,
    },
    {
      name: 'a JWKS with a symmetric key ("k")',
      answer: () => ({ type: 'json', value: { keys: [k1.jwk, { kty: 'oct', kid: 'hmac', k: Buffer.alloc(32, 7).toString('base64url') }] } }),
      detail: /key 1 contains private or symmetric key material/,
    },
    {
      // A valid JWKS padded past the bound: only the size is wrong.
      name: 'an oversized body (> 1 MiB)',
      answer: () => ({ type: 'body', body: JSON.stringify(jwksOf(k1, k2)) + ' '.repeat(MAX_KEY_DOCUMENT_BYTES + 1024) }),
      detail: /answered more than 1048576 bytes/,
    },
  ];

  it.each(cases)('$name: keeps the held keys, counts a failure, logs why', async ({ answer, detail }) => {
    const h = await setup();
    h.server.answer('jwks', await answer());
    h.passCooldown();

    expectDenied(await h.verifier.verify(await h.garbageKid()), 'TOKEN_UNKNOWN_KID');
    expect(h.server.requests('jwks')).toBe(2);

    expectVerified(await h.verifier.verify(await h.token(k1, { sub: 'fresh' })));
    expect(h.verifier.issuers[0]?.keyCount).toBe(1);
    expect(await refreshes(h.metrics, { trigger: 'unknown-kid', outcome: 'failed' })).toBe(1);
    expect(await refreshes(h.metrics, { outcome: 'updated' })).toBe(1); // start-up only
    const warns = warnLines(h.logger);
    expect(warns).toHaveLength(1);
    expect(warns[0]?.msg).toBe('jwks refresh failed; keeping the keys already held');
    expect(String(warns[0]?.fields.detail)).toMatch(detail);
    expectNoTokenLogged(h);
  });

  it('a discovery document naming a different issuer: keeps the held keys and does not fetch its jwks_uri', async () => {
    const h = await setup({ issuer: { refreshIntervalSeconds: 0.2 } });
    h.server.setIssuer('https://evil.example');
    h.server.setKeys(jwksOf(stranger));
    await vi.waitFor(async () => expect(await refreshes(h.metrics, { trigger: 'interval', outcome: 'failed' })).toBeGreaterThanOrEqual(1), WAIT);

    expect(h.server.requests('jwks')).toBe(1);
    expectVerified(await h.verifier.verify(await h.token(k1, { sub: 'fresh' })));
    expect(h.verifier.issuers[0]?.keyCount).toBe(1);
    const warn = warnLines(h.logger)[0];
    expect(warn?.fields).toMatchObject({ issuer: 'test', trigger: 'interval', keys: 1 });
    expect(String(warn?.fields.detail)).toContain('discovery document names issuer "https://evil.example"');
    expectNoTokenLogged(h);
  });

  it('a discovery document whose jwks_uri is plain http to another host: keeps the held keys', async () => {
    const h = await setup({ issuer: { refreshIntervalSeconds: 0.2 } });
    h.server.answer('discovery', { type: 'json', value: { issuer: h.server.base, jwks_uri: 'http://keys.example.com/jwks' } });
    await vi.waitFor(async () => expect(await refreshes(h.metrics, { trigger: 'interval', outcome: 'failed' })).toBeGreaterThanOrEqual(1), WAIT);

    expectVerified(await h.verifier.verify(await h.token(k1, { sub: 'fresh' })));
    expect(String(warnLines(h.logger)[0]?.fields.detail)).toMatch(/jwks_uri must be https/);
  });
});

describe('provider down from the start', () => {
  it('does not fail start-up; denies TOKEN_KEYS_UNAVAILABLE until the provider is back and the cooldown has passed', async () => {
    const h = await setup({
      before: (s) => {
        s.unavailable('discovery');
        s.unavailable('jwks');
      },
    });
    expect(h.verifier.issuers[0]?.keyCount).toBe(0);
    expect(h.server.requests('discovery')).toBe(1);
    expect(h.server.requests('jwks')).toBe(0);
    expect(await refreshes(h.metrics, { trigger: 'startup', outcome: 'failed' })).toBe(1);
    const warn = warnLines(h.logger)[0];
    expect(warn?.msg).toBe('jwks refresh failed; no keys held, tokens of this issuer are denied');
    expect(String(warn?.fields.detail)).toMatch(/HTTP 503/);

    const token = await h.token(k1);
    const denied = await h.verifier.verify(token);
    expectDenied(denied, 'TOKEN_KEYS_UNAVAILABLE');
    expect(denied.ok ? undefined : denied.issuer).toBe('test');

    // Back, but still within the cooldown: no new attempt.
    h.server.restore('discovery');
    h.server.restore('jwks');
    expectDenied(await h.verifier.verify(token), 'TOKEN_KEYS_UNAVAILABLE');
    expect(h.server.requests('discovery')).toBe(1);

    h.passCooldown();
    expectVerified(await h.verifier.verify(token));
    expect(h.server.requests('discovery')).toBe(2);
    expect(h.server.requests('jwks')).toBe(1);
    expect(h.verifier.issuers[0]?.keyCount).toBe(1);
    expect(await refreshes(h.metrics, { trigger: 'retry', outcome: 'updated' })).toBe(1);
    expectNoTokenLogged(h);
  });

  // Regression test, fixed (was: same root cause as the rotation one above, src/jwt/keys.ts RemoteJwksSource.getKey,
  // the `holder.count === 0` branch): when the provider comes back, only the first token
  // after the cooldown waits for the retry; tokens arriving while that retry is in flight
  // are denied TOKEN_KEYS_UNAVAILABLE although the retry is about to load the keys.
  it('tokens arriving while the start-up retry is in flight wait for it and verify', async () => {
    const h = await setup({ before: (s) => s.unavailable('discovery') });
    h.server.restore('discovery');
    h.passCooldown();
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => h.token(k1, { sub: `user-${i}` })));
    const results = await Promise.all(tokens.map((t) => h.verifier.verify(t)));
    expect(h.server.requests('discovery')).toBe(2);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(tokens.map(() => 'ok'));
  });

  it('does not fail start-up when nothing listens at the provider address', async () => {
    const h = await setup({ before: (s) => s.close() });
    expect(h.verifier.issuers[0]?.keyCount).toBe(0);
    expectDenied(await h.verifier.verify(await h.token(k1)), 'TOKEN_KEYS_UNAVAILABLE');
    expect(String(warnLines(h.logger)[0]?.fields.detail)).toMatch(/ECONNREFUSED/);
  });
});

describe('a flood of unknown kids', () => {
  it('causes at most one JWKS fetch per cooldown window, and exactly one more after it', async () => {
    const h = await setup();
    expect(h.server.requests('jwks')).toBe(1);
    h.passCooldown();

    const garbage = await Promise.all(Array.from({ length: 200 }, () => h.garbageKid()));
    const concurrent = await Promise.all(garbage.map((t) => h.verifier.verify(t)));
    const sequential: VerifyResult[] = [];
    for (const t of garbage) sequential.push(await h.verifier.verify(t));

    for (const r of [...concurrent, ...sequential]) expectDenied(r, 'TOKEN_UNKNOWN_KID');
    expect(h.server.requests('jwks')).toBeLessThanOrEqual(2);
    expect(h.server.requests('jwks')).toBe(2); // the cooldown had passed, so the first unknown kid refetched
    expect(h.server.requests('discovery')).toBe(1);

    h.passCooldown();
    expectDenied(await h.verifier.verify(await h.garbageKid()), 'TOKEN_UNKNOWN_KID');
    expect(h.server.requests('jwks')).toBe(3);
    expectDenied(await h.verifier.verify(await h.garbageKid()), 'TOKEN_UNKNOWN_KID');
    expect(h.server.requests('jwks')).toBe(3);

    // The refetches found the same keys.
    expect(await refreshes(h.metrics, { trigger: 'unknown-kid', outcome: 'unchanged' })).toBe(2);
    expect(await h.metrics.registry.getSingleMetricAsString('arbiter_jwt_rejected_total')).toContain('arbiter_jwt_rejected_total{reason="TOKEN_UNKNOWN_KID",issuer="test"} 402');
    // The held key still works.
    expectVerified(await h.verifier.verify(await h.token(k1)));
  });
});

describe('a hanging provider', () => {
  it('start-up resolves after the fetch timeout; the issuer is then denied TOKEN_KEYS_UNAVAILABLE', async () => {
    const h = await setup({
      issuer: { fetchTimeoutSeconds: 0.2 },
      before: (s) => {
        s.hang('discovery');
        s.hang('jwks');
      },
    });
    expect(h.server.requests('discovery')).toBe(1);
    expect(h.verifier.issuers[0]?.keyCount).toBe(0);
    expectDenied(await h.verifier.verify(await h.token(k1)), 'TOKEN_KEYS_UNAVAILABLE');
    expect(await refreshes(h.metrics, { trigger: 'startup', outcome: 'failed' })).toBe(1);
    expect(String(warnLines(h.logger)[0]?.fields.detail)).toMatch(/TimeoutError/);
  });

  it('with keys held, a token is still decided while the refetch hangs, and after it times out', async () => {
    const h = await setup({ issuer: { fetchTimeoutSeconds: 0.2 } });
    h.server.hang('jwks');
    h.passCooldown();

    const pending = h.verifier.verify(await h.garbageKid());
    // The refetch has reached the provider (a counter, so a slow machine cannot miss it).
    await vi.waitFor(() => expect(h.server.requests('jwks')).toBe(2), WAIT);
    // A held key does not wait for the provider.
    expectVerified(await h.verifier.verify(await h.token(k1, { sub: 'during' })));

    expectDenied(await pending, 'TOKEN_UNKNOWN_KID');
    expectVerified(await h.verifier.verify(await h.token(k1, { sub: 'after' })));
    expect(await refreshes(h.metrics, { trigger: 'unknown-kid', outcome: 'failed' })).toBe(1);
    expect(h.verifier.issuers[0]?.keyCount).toBe(1);
    expectNoTokenLogged(h);
  });

  it('a provider that sends headers then stalls in the body is timed out too', async () => {
    const h = await setup({ issuer: { fetchTimeoutSeconds: 0.2 } });
    h.server.answer('jwks', { type: 'hang-body' });
    h.passCooldown();

    expectDenied(await h.verifier.verify(await h.garbageKid()), 'TOKEN_UNKNOWN_KID');
    expectVerified(await h.verifier.verify(await h.token(k1, { sub: 'after' })));
    expect(await refreshes(h.metrics, { trigger: 'unknown-kid', outcome: 'failed' })).toBe(1);
    expect(warnLines(h.logger)).toHaveLength(1);
  });
});

describe('jwks_url', () => {
  it('fetches the JWKS directly at start-up, verifies, and refetches on a new kid', async () => {
    const h = await setup({ source: 'jwks_url' });
    expect(h.server.requests('discovery')).toBe(0);
    expect(h.server.requests('jwks')).toBe(1);
    expect(h.verifier.issuers[0]?.keyCount).toBe(1);
    expectVerified(await h.verifier.verify(await h.token(k1)));
    expect(await refreshes(h.metrics, { trigger: 'startup', outcome: 'updated' })).toBe(1);

    h.server.setKeys(jwksOf(k1, k2));
    h.passCooldown();
    expectVerified(await h.verifier.verify(await h.token(k2)));
    expect(h.server.requests('jwks')).toBe(2);
    expect(h.server.requests('discovery')).toBe(0);
  });

  it('provider down after start-up: keeps the held keys', async () => {
    const h = await setup({ source: 'jwks_url' });
    h.server.unavailable('jwks');
    h.passCooldown();
    expectDenied(await h.verifier.verify(await h.garbageKid()), 'TOKEN_UNKNOWN_KID');
    expectVerified(await h.verifier.verify(await h.token(k1, { sub: 'fresh' })));
    expect(await refreshes(h.metrics, { outcome: 'failed' })).toBe(1);
  });
});

describe('jwks_file', () => {
  async function fileSetup(): Promise<{ path: string; logger: Logger; metrics: Metrics; v: TokenVerifier; token: (key: TestKey, sub?: string) => Promise<string>; tokens: string[] }> {
    const dir = tempDir();
    dirs.push(dir);
    const path = writeJson(dir, 'jwks.json', jwksOf(k1));
    const logger = createMemoryLogger();
    const metrics = new Metrics();
    const now = Date.now();
    verifier = await TokenVerifier.create(verifierOptions([issuerOptions({ kind: 'jwks_file', path })], { filePollSeconds: 0.05 }), {
      clock: () => now,
      monotonic: () => 0,
      events: verifierEvents(logger, metrics),
    });
    const tokens: string[] = [];
    const token = async (key: TestKey, sub = 'alice'): Promise<string> => {
      const t = await sign(key, { now, claims: { sub } });
      tokens.push(t);
      return t;
    };
    return { path, logger, metrics, v: verifier, token, tokens };
  }

  /** Replaces `path` the way editors and ConfigMaps do: write elsewhere, rename over. */
  function replaceFile(path: string, content: string): void {
    const tmp = join(path, '..', `.jwks.json.${randomUUID()}.tmp`);
    writeFileSync(tmp, content);
    renameSync(tmp, path);
  }

  it('picks up a key set renamed over the file; the old key and its cached subjects are gone', async () => {
    const f = await fileSetup();
    const oldToken = await f.token(k1);
    expectVerified(await f.v.verify(oldToken));
    expectVerified(await f.v.verify(oldToken), true);

    replaceFile(f.path, JSON.stringify(jwksOf(k2)));
    const newToken = await f.token(k2);
    await vi.waitFor(async () => expectVerified(await f.v.verify(newToken)), WAIT);

    expectDenied(await f.v.verify(oldToken), 'TOKEN_UNKNOWN_KID');
    expect(await refreshes(f.metrics, { trigger: 'file-change', outcome: 'updated' })).toBe(1);
    expect(f.logger.lines).toContainEqual({ level: 'info', msg: 'jwks loaded', fields: { issuer: 'test', trigger: 'file-change', keys: 1 } });
  });

  it('garbage written into the file keeps the held keys, logs a warn line and counts a failure', async () => {
    const f = await fileSetup();
    expectVerified(await f.v.verify(await f.token(k1)));

    replaceFile(f.path, '{ this is not a JWKS');
    await vi.waitFor(async () => expect(await refreshes(f.metrics, { trigger: 'file-change', outcome: 'failed' })).toBeGreaterThanOrEqual(1), WAIT);

    expectVerified(await f.v.verify(await f.token(k1, 'fresh')));
    expect(f.v.issuers[0]?.keyCount).toBe(1);
    const warn = warnLines(f.logger)[0];
    expect(warn?.msg).toBe('jwks refresh failed; keeping the keys already held');
    expect(warn?.fields).toMatchObject({ issuer: 'test', trigger: 'file-change', keys: 1, detail: 'not valid JSON' });
    expectNoTokenLogged(f);

    // A good key set afterwards is picked up again.
    replaceFile(f.path, JSON.stringify(jwksOf(k1, k2)));
    const newToken = await f.token(k2);
    await vi.waitFor(async () => expectVerified(await f.v.verify(newToken)), WAIT);
  });
});

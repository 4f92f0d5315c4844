/**
 * TokenVerifier end to end, with real keys and real tokens (see fixtures.ts):
 * the rejection matrix (one reason code at a time), every key type, the clock
 * tolerance edges as jose computes them, the subject cache (expiry, key
 * rotation, revocation reloads), the claim mapping, and a property test that
 * no string — random or a mutation of a valid token — makes `verify` throw or
 * passes as a token it is not.
 *
 * Key sources are JWKS files and HMAC secrets only (the HTTP key sources have
 * their own tests). The clock is injected; file reloads are awaited with
 * `vi.waitFor`, never a fixed sleep.
 */
import { createHash, createHmac, generateKeyPairSync, KeyObject, sign as cryptoSign, type webcrypto } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { CompactSign, exportSPKI, SignJWT, UnsecuredJWT, type JWK, type JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { KeyRefreshEvent } from '../../src/jwt/keys.js';
import type { ClaimMapping, IssuerOptions, VerifierOptions } from '../../src/jwt/options.js';
import { TOKEN_REASON_CODES, type TokenReason } from '../../src/jwt/reasons.js';
import type { RevocationReloadEvent } from '../../src/jwt/revocation.js';
import { TokenVerifier, type VerifierRuntime, type VerifyResult } from '../../src/jwt/verify.js';
import { AUDIENCE, DEFAULT_MAPPING, ISSUER, issuerOptions, jwksOf, makeKey, makeSecret, seconds, sign, tempDir, verifierOptions, writeJson, type TestKey } from './fixtures.js';

// ---------------------------------------------------------------------------
// Clock, keys, helpers
// ---------------------------------------------------------------------------

/** The injected wall clock: a whole second, so jose's floor(now) and our ms agree. */
const NOW = Date.UTC(2030, 0, 15, 12, 0, 0);
/** NOW in seconds (token times). */
const T = seconds(NOW);

/** How long a file reload may take on a loaded machine (polled, never slept). */
const WAIT = { timeout: 15_000, interval: 20 };

interface Keys {
  rs: TestKey; // RS256, kid rs-1
  ps: TestKey; // PS256, kid ps-1
  es: TestKey; // ES256, kid es-1
  ed: TestKey; // EdDSA (Ed25519), kid ed-1
  rsImpostor: TestKey; // another RSA key that claims kid rs-1
  rs2: TestKey; // RS256, kid rs-2 (rotation target)
  es2: TestKey; // ES256, kid es-2
  hmac: Uint8Array; // 64 bytes: enough for HS512
  hs256Only: Uint8Array;
  aged: Uint8Array;
  strict: Uint8Array;
  wrongSecret: Uint8Array;
  /** The RSA public key as PEM: the "secret" of the algorithm-confusion attack. */
  rsPem: string;
  /** A 1024-bit RSA key jose refuses to use (node:crypto made and signs with it). */
  weak: { privateKey: KeyObject; jwk: JWK };
}

let K: Keys;
/** Every secret (and secret-like value) in play, in the encodings a leak would take. */
let secretForms: string[] = [];

beforeAll(async () => {
  const [rs, ps, es, ed, rsImpostor, rs2, es2] = await Promise.all([
    makeKey('RS256', 'rs-1'),
    makeKey('PS256', 'ps-1'),
    makeKey('ES256', 'es-1'),
    makeKey('EdDSA', 'ed-1'),
    makeKey('RS256', 'rs-1'),
    makeKey('RS256', 'rs-2'),
    makeKey('ES256', 'es-2'),
  ]);
  const weakPair = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const weakJwk = { ...(weakPair.publicKey.export({ format: 'jwk' }) as JWK), kid: 'weak-1', alg: 'RS256', use: 'sig' };
  K = {
    rs, ps, es, ed, rsImpostor, rs2, es2,
    hmac: await makeSecret(64),
    hs256Only: await makeSecret(32),
    aged: await makeSecret(32),
    strict: await makeSecret(32),
    wrongSecret: await makeSecret(64),
    rsPem: await exportSPKI(rs.publicKey),
    weak: { privateKey: weakPair.privateKey, jwk: weakJwk },
  };
  secretForms = [];
  for (const s of [K.hmac, K.hs256Only, K.aged, K.strict, K.wrongSecret]) {
    const b = Buffer.from(s);
    secretForms.push(b.toString('hex'), b.toString('base64'), b.toString('base64url'), b.toString('latin1'));
  }
  // Every line of the PEM body (the confusion attack's HMAC key).
  for (const line of K.rsPem.split('\n')) if (line.length >= 16 && !line.startsWith('-----')) secretForms.push(line);
});

/** Verifiers opened for one test: closed after it. */
const perTest: TokenVerifier[] = [];
/** Verifiers shared by a describe block: closed when the file ends. */
const perFile: TokenVerifier[] = [];
afterEach(() => {
  for (const v of perTest.splice(0)) v.close();
});
afterAll(() => {
  for (const v of perFile.splice(0)) v.close();
});

async function openVerifier(options: VerifierOptions, runtime: VerifierRuntime = { clock: () => NOW }, scope: 'test' | 'file' = 'test'): Promise<TokenVerifier> {
  const v = await TokenVerifier.create(options, runtime);
  (scope === 'test' ? perTest : perFile).push(v);
  return v;
}

/** base64url of JSON (objects), of UTF-8 text (strings) or of bytes. */
function b64(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64url');
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** The default valid claims at NOW, with overrides (`undefined` removes a claim). */
function claimsAt(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const claims: Record<string, unknown> = { iss: ISSUER, aud: AUDIENCE, sub: 'alice', iat: T, exp: T + 600, ...overrides };
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
  return claims;
}

/** A token from the fixture signer, at NOW. */
function tok(key: TestKey | { secret: Uint8Array; alg?: 'HS256' | 'HS384' | 'HS512' }, claims: Record<string, unknown> = {}, header?: Record<string, unknown>): Promise<string> {
  return sign(key, { claims, now: NOW, ...(header === undefined ? {} : { header }) });
}

/** A token signed by jose over arbitrary payload bytes (a JSON array, a string `exp`, …) and header. */
async function joseSigned(key: TestKey, header: Record<string, unknown>, payload: unknown, crit?: Record<string, boolean>): Promise<string> {
  const bytes = new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return new CompactSign(bytes).setProtectedHeader({ alg: key.alg, kid: key.kid, ...header }).sign(key.privateKey, crit === undefined ? undefined : { crit });
}

/** A real HMAC JWS built without jose, for headers jose will not produce. */
function hmacSigned(secret: Uint8Array, hash: 'sha256' | 'sha384' | 'sha512', header: Record<string, unknown>, payload: unknown): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

/** A real RSASSA-PKCS1-v1_5 JWS built with node:crypto (RS384, or a key jose will not sign with). */
function rsaSigned(privateKey: KeyObject, hash: 'sha256' | 'sha384', header: Record<string, unknown>, payload: unknown): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${cryptoSign(hash, Buffer.from(input), privateKey).toString('base64url')}`;
}

/** An unsigned token (`alg` of any spelling, empty signature). */
function unsigned(alg: string, payload: unknown = claimsAt()): string {
  return `${b64({ alg, typ: 'JWT' })}.${b64(payload)}.`;
}

/** Asserts a rejection with exactly `code`, and that the message leaks neither the token nor a secret. */
function expectRejected(r: VerifyResult, code: TokenReason, token?: unknown): void {
  if (r.ok) throw new Error(`expected ${code}, but the token was accepted`);
  expect(r.error.code).toBe(code);
  expect(TOKEN_REASON_CODES).toContain(r.error.code);
  const message = r.error.message;
  expect(typeof message).toBe('string');
  expect(message.length).toBeGreaterThan(0);
  if (typeof token === 'string' && token.length > 0) {
    expect(message).not.toContain(token);
    for (const part of token.split('.')) if (part.length >= 12) expect(message).not.toContain(part);
  }
  for (const s of secretForms) expect(message).not.toContain(s);
}

function expectAccepted(r: VerifyResult): Extract<VerifyResult, { ok: true }> {
  if (!r.ok) throw new Error(`expected acceptance, got ${r.error.code}: ${r.error.message}`);
  return r;
}

/** Replaces `path` whole, by rename, as editors and ConfigMaps do (never a half-written file). */
let atomicCounter = 0;
function replaceFile(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}-${++atomicCounter}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function secretIssuer(name: string, iss: string, secret: Uint8Array, overrides: Partial<IssuerOptions> = {}): IssuerOptions {
  return issuerOptions({ kind: 'secret', secret, origin: `test:${name}` }, { name, issuer: iss, ...overrides });
}

function fileIssuer(name: string, iss: string, path: string, overrides: Partial<IssuerOptions> = {}): IssuerOptions {
  return issuerOptions({ kind: 'jwks_file', path }, { name, issuer: iss, ...overrides });
}

// ---------------------------------------------------------------------------
// 1. The rejection matrix
// ---------------------------------------------------------------------------

const ISS = {
  jwks: ISSUER,
  hmac: 'https://hmac.test',
  hs256Only: 'https://hs256-only.test',
  rsOnly: 'https://rs-only.test',
  aged: 'https://aged.test',
  strict: 'https://strict.test',
  /** An issuer with public keys whose algorithm list (wrongly) names HS256: the config reader refuses this, the verifier must too. */
  hsListed: 'https://hs-listed.test',
  weak: 'https://weak.test',
} as const;

interface RejectCase {
  readonly name: string;
  readonly code: TokenReason;
  readonly token: () => unknown;
  /**
   * The issuer name the result must carry. verify.ts names the issuer in the result only once it has
   * passed the issuer's algorithm rules, so ALG_CONFUSION and ALG_NOT_ALLOWED rows leave it out.
   */
  readonly issuer?: string;
}

const hdr = (h: Record<string, unknown>) => b64(h);
const validRs = () => tok(K.rs);

const REJECTIONS: RejectCase[] = [
  // TOKEN_MISSING
  { name: 'empty string', code: 'TOKEN_MISSING', token: () => '' },
  { name: 'undefined', code: 'TOKEN_MISSING', token: () => undefined },
  { name: 'null', code: 'TOKEN_MISSING', token: () => null },
  { name: 'a number', code: 'TOKEN_MISSING', token: () => 42 },
  { name: 'an object', code: 'TOKEN_MISSING', token: () => ({ token: 'x' }) },
  { name: 'bytes', code: 'TOKEN_MISSING', token: async () => Buffer.from(await validRs()) },

  // TOKEN_TOO_LARGE (default 16 KiB; the configured bound has its own test)
  { name: '16 KiB + 1 of garbage', code: 'TOKEN_TOO_LARGE', token: () => 'a'.repeat(16 * 1024 + 1) },
  { name: 'a validly signed token over 16 KiB', code: 'TOKEN_TOO_LARGE', token: () => tok(K.rs, { pad: 'x'.repeat(13_000) }) },
  { name: 'exactly 16 KiB is not too large (it is decoded, then malformed)', code: 'TOKEN_MALFORMED', token: () => 'a'.repeat(16 * 1024) },

  // TOKEN_MALFORMED
  { name: 'one part', code: 'TOKEN_MALFORMED', token: () => 'abcdef' },
  { name: 'two parts', code: 'TOKEN_MALFORMED', token: async () => (await validRs()).split('.').slice(0, 2).join('.') },
  { name: 'four parts (a trailing dot)', code: 'TOKEN_MALFORMED', token: async () => `${await validRs()}.` },
  { name: 'JWE-like five parts', code: 'TOKEN_MALFORMED', token: () => `${hdr({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'rs-1' })}.${b64('key')}.${b64('iv')}.${b64(claimsAt())}.${b64('tag')}` },
  { name: 'only dots', code: 'TOKEN_MALFORMED', token: () => '..' },
  { name: 'bad base64url in the header', code: 'TOKEN_MALFORMED', token: async () => `!!${(await validRs()).slice(2)}` },
  { name: 'base64 (not url) alphabet in the payload', code: 'TOKEN_MALFORMED', token: async () => {
    const [h, , s] = (await validRs()).split('.');
    // Six '~' (0x7E) hold an aligned triple, which standard base64 spells "fn5+".
    const p = Buffer.from(JSON.stringify(claimsAt({ x: '~~~~~~' }))).toString('base64').replace(/=+$/, '');
    if (!p.includes('+')) throw new Error('test setup: expected a "+" in the payload');
    return `${h}.${p}.${s}`;
  } },
  { name: 'bad base64url in the payload', code: 'TOKEN_MALFORMED', token: async () => { const [h, , s] = (await validRs()).split('.'); return `${h}.@@@@.${s}`; } },
  { name: 'bad base64url in the signature', code: 'TOKEN_MALFORMED', token: async () => { const [h, p] = (await validRs()).split('.'); return `${h}.${p}.@@@@`; } },
  { name: 'empty payload segment', code: 'TOKEN_MALFORMED', token: async () => { const [h, , s] = (await validRs()).split('.'); return `${h}..${s}`; } },
  { name: 'header is not JSON', code: 'TOKEN_MALFORMED', token: async () => { const [, p, s] = (await validRs()).split('.'); return `${b64('{"alg":"RS256"')}.${p}.${s}`; } },
  { name: 'header is a JSON array', code: 'TOKEN_MALFORMED', token: async () => { const [, p, s] = (await validRs()).split('.'); return `${b64('["RS256"]')}.${p}.${s}`; } },
  { name: 'header has no alg', code: 'TOKEN_MALFORMED', token: async () => { const [, p, s] = (await validRs()).split('.'); return `${hdr({ typ: 'JWT', kid: 'rs-1' })}.${p}.${s}`; } },
  { name: 'header alg is not a string', code: 'TOKEN_MALFORMED', token: async () => { const [, p, s] = (await validRs()).split('.'); return `${hdr({ alg: 256, kid: 'rs-1' })}.${p}.${s}`; } },
  { name: 'payload is not JSON', code: 'TOKEN_MALFORMED', token: () => joseSigned(K.rs, {}, '{"sub":"alice",') },
  { name: 'payload is not UTF-8', code: 'TOKEN_MALFORMED', token: async () => { const [h, , s] = (await validRs()).split('.'); return `${h}.${b64(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))}.${s}`; } },
  { name: 'payload is a signed JSON array', code: 'TOKEN_MALFORMED', token: () => joseSigned(K.rs, {}, [claimsAt()]) },
  { name: 'payload is a signed JSON number', code: 'TOKEN_MALFORMED', token: () => joseSigned(K.rs, {}, '42') },
  { name: 'payload is a signed JSON string', code: 'TOKEN_MALFORMED', token: () => joseSigned(K.rs, {}, '"alice"') },
  { name: 'payload is a signed JSON null', code: 'TOKEN_MALFORMED', token: () => joseSigned(K.rs, {}, 'null') },

  // TOKEN_ALG_NONE
  { name: "jose's UnsecuredJWT", code: 'TOKEN_ALG_NONE', token: () => new UnsecuredJWT(claimsAt() as JWTPayload).encode() },
  { name: 'alg "NONE"', code: 'TOKEN_ALG_NONE', token: () => unsigned('NONE') },
  { name: 'alg "None"', code: 'TOKEN_ALG_NONE', token: () => unsigned('None') },
  { name: 'alg "nOnE"', code: 'TOKEN_ALG_NONE', token: () => unsigned('nOnE') },
  { name: 'alg none carrying a real signature', code: 'TOKEN_ALG_NONE', token: async () => { const [, p, s] = (await validRs()).split('.'); return `${hdr({ alg: 'none', kid: 'rs-1' })}.${p}.${s}`; } },
  { name: 'alg none from an unknown issuer (refused before the issuer is looked at)', code: 'TOKEN_ALG_NONE', token: () => unsigned('none', claimsAt({ iss: 'https://evil.test' })) },

  // TOKEN_ALG_CONFUSION: the RSA public key (PEM) used as an HMAC secret
  { name: 'HS256 keyed with the issuer RSA public key PEM', code: 'TOKEN_ALG_CONFUSION', token: () => new SignJWT(claimsAt() as JWTPayload).setProtectedHeader({ alg: 'HS256', kid: 'rs-1' }).sign(new TextEncoder().encode(K.rsPem)) },
  { name: 'HS512 keyed with the issuer RSA public key PEM', code: 'TOKEN_ALG_CONFUSION', token: () => new SignJWT(claimsAt() as JWTPayload).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(K.rsPem)) },
  { name: 'HS256 keyed with the issuer public JWK JSON', code: 'TOKEN_ALG_CONFUSION', token: () => new SignJWT(claimsAt() as JWTPayload).setProtectedHeader({ alg: 'HS256', kid: 'rs-1' }).sign(new TextEncoder().encode(JSON.stringify(K.rs.jwk))) },
  { name: 'HS256 to an issuer with public keys even if its algorithm list names HS256', code: 'TOKEN_ALG_CONFUSION', token: () => new SignJWT(claimsAt({ iss: ISS.hsListed }) as JWTPayload).setProtectedHeader({ alg: 'HS256', kid: 'rs-1' }).sign(new TextEncoder().encode(K.rsPem)) },

  // TOKEN_ALG_NOT_ALLOWED
  { name: 'PS256 to an issuer allowing only RS256', code: 'TOKEN_ALG_NOT_ALLOWED', token: () => tok(K.ps, { iss: ISS.rsOnly }) },
  { name: 'ES256 to an issuer allowing only RS256', code: 'TOKEN_ALG_NOT_ALLOWED', token: () => tok(K.es, { iss: ISS.rsOnly }) },
  { name: 'HS512 to a secret issuer allowing only HS256', code: 'TOKEN_ALG_NOT_ALLOWED', token: () => tok({ secret: K.hs256Only, alg: 'HS512' }, { iss: ISS.hs256Only }) },
  { name: 'RS384 (supported, not in the default list)', code: 'TOKEN_ALG_NOT_ALLOWED', token: () => rsaSigned(KeyObject.from(K.rs.privateKey as unknown as webcrypto.CryptoKey), 'sha384', { alg: 'RS384', kid: 'rs-1' }, claimsAt()) },
  { name: 'RS256 to a secret issuer', code: 'TOKEN_ALG_NOT_ALLOWED', token: () => tok(K.rs, { iss: ISS.hmac }) },
  { name: 'a lower-case "hs256" is no HMAC algorithm', code: 'TOKEN_ALG_NOT_ALLOWED', token: () => hmacSigned(K.hmac, 'sha256', { alg: 'hs256' }, claimsAt({ iss: ISS.hmac })) },
  { name: 'an alg that is not a name at all', code: 'TOKEN_ALG_NOT_ALLOWED', token: () => hmacSigned(K.hmac, 'sha256', { alg: '<img src=x onerror=alert(1)>' }, claimsAt()) },

  // TOKEN_UNSUPPORTED_CRIT
  { name: "crit ['exp'] with the exp header present", code: 'TOKEN_UNSUPPORTED_CRIT', token: () => joseSigned(K.rs, { crit: ['exp'], exp: T + 600 }, claimsAt(), { exp: true }) },
  { name: 'crit naming an unknown extension', code: 'TOKEN_UNSUPPORTED_CRIT', token: () => joseSigned(K.rs, { crit: ['https://example.com/ext'], 'https://example.com/ext': 1 }, claimsAt(), { 'https://example.com/ext': true }) },
  { name: "crit ['b64'] (an extension jose knows)", code: 'TOKEN_UNSUPPORTED_CRIT', token: () => joseSigned(K.rs, { crit: ['b64'], b64: true }, claimsAt()) },
  { name: 'crit: [] (malformed crit)', code: 'TOKEN_UNSUPPORTED_CRIT', token: () => hmacSigned(K.hmac, 'sha256', { alg: 'HS256', crit: [] }, claimsAt({ iss: ISS.hmac })) },
  { name: 'crit naming an absent header', code: 'TOKEN_UNSUPPORTED_CRIT', token: () => hmacSigned(K.hmac, 'sha256', { alg: 'HS256', crit: ['exp'] }, claimsAt({ iss: ISS.hmac })) },

  // TOKEN_UNKNOWN_ISSUER
  { name: 'an issuer that is not configured', code: 'TOKEN_UNKNOWN_ISSUER', token: () => tok(K.rs, { iss: 'https://evil.test' }) },
  { name: 'no iss', code: 'TOKEN_UNKNOWN_ISSUER', token: () => tok(K.rs, { iss: undefined }) },
  { name: 'iss with a trailing slash (exact match only)', code: 'TOKEN_UNKNOWN_ISSUER', token: () => tok(K.rs, { iss: `${ISSUER}/` }) },
  { name: 'iss that is not a string', code: 'TOKEN_UNKNOWN_ISSUER', token: () => tok(K.rs, { iss: 42 }) },
  { name: 'iss as a list', code: 'TOKEN_UNKNOWN_ISSUER', token: () => tok(K.rs, { iss: [ISSUER] }) },

  // TOKEN_UNKNOWN_KID
  { name: 'kid not in the JWKS file', code: 'TOKEN_UNKNOWN_KID', issuer: 'jwks', token: () => tok(K.rs, {}, { kid: 'nope' }) },
  { name: 'kid of a key of another type', code: 'TOKEN_UNKNOWN_KID', issuer: 'jwks', token: () => tok(K.es, {}, { kid: 'rs-1' }) },
  { name: 'kid of a key the issuer does not hold (another issuer has it)', code: 'TOKEN_UNKNOWN_KID', issuer: 'rs-only', token: () => tok(K.rs2, { iss: ISS.rsOnly }) },

  // TOKEN_INVALID_SIGNATURE
  { name: 'signed by another key with the same kid', code: 'TOKEN_INVALID_SIGNATURE', issuer: 'jwks', token: () => tok(K.rsImpostor) },
  { name: 'tampered payload', code: 'TOKEN_INVALID_SIGNATURE', issuer: 'jwks', token: async () => { const [h, , s] = (await validRs()).split('.'); return `${h}.${b64(claimsAt({ sub: 'mallory', roles: ['admin'] }))}.${s}`; } },
  { name: 'tampered header', code: 'TOKEN_INVALID_SIGNATURE', issuer: 'jwks', token: async () => { const [, p, s] = (await validRs()).split('.'); return `${hdr({ alg: 'RS256', kid: 'rs-1', typ: 'JWT' })}.${p}.${s}`; } },
  { name: 'signature of another token', code: 'TOKEN_INVALID_SIGNATURE', issuer: 'jwks', token: async () => { const [h, p] = (await validRs()).split('.'); const s = (await tok(K.rs, { sub: 'bob' })).split('.')[2]; return `${h}.${p}.${s}`; } },
  { name: 'truncated signature', code: 'TOKEN_INVALID_SIGNATURE', issuer: 'jwks', token: async () => (await validRs()).slice(0, -4) },
  { name: 'empty signature', code: 'TOKEN_INVALID_SIGNATURE', issuer: 'jwks', token: async () => { const [h, p] = (await validRs()).split('.'); return `${h}.${p}.`; } },
  { name: 'ES256 signature of another EC key with the same kid', code: 'TOKEN_INVALID_SIGNATURE', issuer: 'jwks', token: () => tok(K.es2, {}, { kid: 'es-1' }) },
  { name: 'HS256 with the wrong secret', code: 'TOKEN_INVALID_SIGNATURE', issuer: 'hmac', token: () => tok({ secret: K.wrongSecret }, { iss: ISS.hmac }) },

  // TOKEN_EXPIRED / TOKEN_NOT_YET_VALID / TOKEN_ISSUED_IN_FUTURE / TOKEN_TOO_OLD (edges have their own table)
  { name: 'exp an hour ago', code: 'TOKEN_EXPIRED', issuer: 'jwks', token: () => tok(K.rs, { iat: T - 7200, exp: T - 3600 }) },
  { name: 'nbf in an hour', code: 'TOKEN_NOT_YET_VALID', issuer: 'jwks', token: () => tok(K.rs, { nbf: T + 3600 }) },
  { name: 'iat in an hour', code: 'TOKEN_ISSUED_IN_FUTURE', issuer: 'jwks', token: () => tok(K.rs, { iat: T + 3600, exp: T + 7200 }) },
  { name: 'iat in an hour, issuer with a maximum age (jose decides)', code: 'TOKEN_ISSUED_IN_FUTURE', issuer: 'aged', token: () => tok({ secret: K.aged }, { iss: ISS.aged, iat: T + 3600, exp: T + 7200 }) },
  { name: 'iat two hours ago, maximum age one hour', code: 'TOKEN_TOO_OLD', issuer: 'aged', token: () => tok({ secret: K.aged }, { iss: ISS.aged, iat: T - 7200 }) },

  // TOKEN_WRONG_AUDIENCE
  { name: 'another audience', code: 'TOKEN_WRONG_AUDIENCE', issuer: 'jwks', token: () => tok(K.rs, { aud: 'billing' }) },
  { name: 'a list of other audiences', code: 'TOKEN_WRONG_AUDIENCE', issuer: 'jwks', token: () => tok(K.rs, { aud: ['billing', 'ARBITER'] }) },
  { name: 'aud that is not a string', code: 'TOKEN_WRONG_AUDIENCE', issuer: 'jwks', token: () => tok(K.rs, { aud: 7 }) },

  // TOKEN_MISSING_CLAIM
  { name: 'no sub', code: 'TOKEN_MISSING_CLAIM', issuer: 'jwks', token: () => tok(K.rs, { sub: undefined }) },
  { name: 'no exp', code: 'TOKEN_MISSING_CLAIM', issuer: 'jwks', token: () => tok(K.rs, { exp: undefined }) },
  { name: 'no aud', code: 'TOKEN_MISSING_CLAIM', issuer: 'jwks', token: () => tok(K.rs, { aud: undefined }) },
  { name: 'a configured required claim (email) is absent', code: 'TOKEN_MISSING_CLAIM', issuer: 'strict', token: () => tok({ secret: K.strict }, { iss: ISS.strict }) },
  { name: 'no iat for an issuer with a maximum age', code: 'TOKEN_MISSING_CLAIM', issuer: 'aged', token: () => tok({ secret: K.aged }, { iss: ISS.aged, iat: undefined }) },

  // TOKEN_INVALID_CLAIM
  { name: 'exp as a string', code: 'TOKEN_INVALID_CLAIM', issuer: 'jwks', token: () => joseSigned(K.rs, {}, claimsAt({ exp: String(T + 600) })) },
  { name: 'exp null', code: 'TOKEN_INVALID_CLAIM', issuer: 'jwks', token: () => joseSigned(K.rs, {}, claimsAt({ exp: null })) },
  { name: 'nbf as a string', code: 'TOKEN_INVALID_CLAIM', issuer: 'jwks', token: () => joseSigned(K.rs, {}, claimsAt({ nbf: 'yesterday' })) },
  { name: 'iat as a string', code: 'TOKEN_INVALID_CLAIM', issuer: 'jwks', token: () => joseSigned(K.rs, {}, claimsAt({ iat: String(T) })) },
  { name: 'roles is a number', code: 'TOKEN_INVALID_CLAIM', issuer: 'jwks', token: () => tok(K.rs, { roles: 5 }) },
  { name: 'roles is a list with a non-string', code: 'TOKEN_INVALID_CLAIM', issuer: 'jwks', token: () => tok(K.rs, { roles: ['editor', 1] }) },
  { name: 'roles is an object', code: 'TOKEN_INVALID_CLAIM', issuer: 'jwks', token: () => tok(K.rs, { roles: { admin: true } }) },
  { name: 'scope is a number', code: 'TOKEN_INVALID_CLAIM', issuer: 'jwks', token: () => tok(K.rs, { scope: 7 }) },
  { name: 'scp is a list with a non-string', code: 'TOKEN_INVALID_CLAIM', issuer: 'jwks', token: () => tok(K.rs, { scp: ['read', null] }) },
  { name: 'claims nested 17 deep', code: 'TOKEN_INVALID_CLAIM', issuer: 'jwks', token: () => { let deep: unknown = 'x'; for (let i = 0; i < 16; i++) deep = { d: deep }; return tok(K.rs, { deep }); } },

  // TOKEN_REVOKED (the revocation file of this verifier is written in beforeAll below)
  { name: 'jti on the list', code: 'TOKEN_REVOKED', issuer: 'jwks', token: () => tok(K.rs, { jti: 'revoked-jti' }) },
  { name: 'jti on the list, any issuer', code: 'TOKEN_REVOKED', issuer: 'hmac', token: () => tok({ secret: K.hmac }, { iss: ISS.hmac, jti: 'revoked-jti' }) },
  { name: 'sub revoked_before after iat', code: 'TOKEN_REVOKED', issuer: 'jwks', token: () => tok(K.rs, { sub: 'bob', iat: T - 1 }) },
  { name: 'sub listed and token without iat (fails closed)', code: 'TOKEN_REVOKED', issuer: 'jwks', token: () => tok(K.rs, { sub: 'bob', iat: undefined }) },
  { name: 'sub listed for this issuer', code: 'TOKEN_REVOKED', issuer: 'jwks', token: () => tok(K.rs, { sub: 'dave' }) },

  // TOKEN_VERIFICATION_ERROR: a 1024-bit RSA key in the JWKS file, which jose refuses to use
  { name: 'a 1024-bit RSA key in the JWKS (jose refuses it): fails closed', code: 'TOKEN_VERIFICATION_ERROR', issuer: 'weak', token: () => rsaSigned(K.weak.privateKey, 'sha256', { alg: 'RS256', kid: 'weak-1' }, claimsAt({ iss: ISS.weak })) },
];

/** Tokens the same verifier accepts: the other side of the edges above. */
const ACCEPTANCES: { name: string; issuer: string; token: () => Promise<string> | string }[] = [
  { name: 'a plain RS256 token', issuer: 'jwks', token: () => validRs() },
  { name: 'aud list containing the audience', issuer: 'jwks', token: () => tok(K.rs, { aud: ['billing', AUDIENCE] }) },
  { name: 'sub listed, issued exactly at revoked_before', issuer: 'jwks', token: () => tok(K.rs, { sub: 'bob', iat: T }) },
  { name: 'sub listed, issued after revoked_before', issuer: 'jwks', token: () => tok(K.rs, { sub: 'bob', iat: T + 1 }) },
  { name: 'sub revoked only for another issuer (iss-scoped entry)', issuer: 'jwks', token: () => tok(K.rs, { sub: 'carol' }) },
  { name: 'sub revoked for the jwks issuer, token of the hmac issuer', issuer: 'hmac', token: () => tok({ secret: K.hmac }, { iss: ISS.hmac, sub: 'dave' }) },
  { name: 'a jti that is not on the list', issuer: 'jwks', token: () => tok(K.rs, { jti: 'fine-jti' }) },
  { name: 'the configured required claim present', issuer: 'strict', token: () => tok({ secret: K.strict }, { iss: ISS.strict, email: 'a@example.com' }) },
  { name: 'HS256 to the HS256-only issuer', issuer: 'hs256-only', token: () => tok({ secret: K.hs256Only }, { iss: ISS.hs256Only }) },
  { name: 'RS256 to the RS256-only issuer', issuer: 'rs-only', token: () => tok(K.rs, { iss: ISS.rsOnly }) },
  { name: 'RS256 to the hs-listed issuer', issuer: 'hs-listed', token: () => tok(K.rs, { iss: ISS.hsListed }) },
  { name: 'claims nested 16 deep', issuer: 'jwks', token: () => { let deep: unknown = 'x'; for (let i = 0; i < 15; i++) deep = { d: deep }; return tok(K.rs, { deep }); } },
  { name: 'roles and scopes absent', issuer: 'jwks', token: () => tok(K.rs, { roles: undefined }) },
];

describe('rejection matrix', () => {
  let verifier: TokenVerifier;
  const rejected: [TokenReason, string | undefined][] = [];

  beforeAll(async () => {
    const dir = tempDir();
    const revocation = join(dir, 'revoked.yaml');
    writeFileSync(
      revocation,
      [
        'jti: [revoked-jti]',
        'subjects:',
        '  - sub: bob',
        `    revoked_before: ${new Date(NOW).toISOString()}`,
        '  - sub: carol',
        '    iss: https://other-issuer.test',
        '    revoked_before: 2099-01-01T00:00:00Z',
        '  - sub: dave',
        `    iss: ${ISSUER}`,
        '    revoked_before: 2099-01-01T00:00:00Z',
        '',
      ].join('\n'),
    );
    const main = writeJson(dir, 'jwks.json', jwksOf(K.rs, K.ps, K.es, K.ed));
    const rsOnly = writeJson(dir, 'rs-only.json', jwksOf(K.rs));
    const weak = writeJson(dir, 'weak.json', { keys: [K.weak.jwk] });
    verifier = await openVerifier(
      verifierOptions(
        [
          fileIssuer('jwks', ISS.jwks, main),
          secretIssuer('hmac', ISS.hmac, K.hmac),
          secretIssuer('hs256-only', ISS.hs256Only, K.hs256Only, { algorithms: ['HS256'] }),
          fileIssuer('rs-only', ISS.rsOnly, rsOnly, { algorithms: ['RS256'] }),
          secretIssuer('aged', ISS.aged, K.aged, { maxTokenAgeSeconds: 3600 }),
          secretIssuer('strict', ISS.strict, K.strict, { requiredClaims: ['sub', 'exp', 'email'] }),
          fileIssuer('hs-listed', ISS.hsListed, rsOnly, { algorithms: ['RS256', 'HS256'] }),
          fileIssuer('weak', ISS.weak, weak, { algorithms: ['RS256'] }),
        ],
        { revocationFile: revocation },
      ),
      { clock: () => NOW, events: { onRejected: (reason, issuer) => rejected.push([reason, issuer]) } },
      'file',
    );
  });

  it('has a row for every reason code but TOKEN_KEYS_UNAVAILABLE (HTTP key sources are tested elsewhere)', () => {
    const covered = new Set(REJECTIONS.map((r) => r.code));
    expect(TOKEN_REASON_CODES.filter((c) => !covered.has(c))).toEqual(['TOKEN_KEYS_UNAVAILABLE']);
  });

  it.each(REJECTIONS)('$code: $name', async ({ code, token, issuer }) => {
    const input = await token();
    const r = await verifier.verify(input);
    expectRejected(r, code, input);
    if (r.ok) return;
    if (issuer !== undefined) expect(r.issuer).toBe(issuer);
    expect(rejected.at(-1)).toEqual([code, issuer ?? r.issuer]);
    // Rejections are not cached: the same input is rejected the same way again.
    expectRejected(await verifier.verify(input), code, input);
  });

  it.each(ACCEPTANCES)('accepts $name', async ({ token, issuer }) => {
    const r = expectAccepted(await verifier.verify(await token()));
    expect(r.subject.issuer).toBe(issuer);
  });

  it('TOKEN_VERIFICATION_ERROR above is jose refusing the weak key, not something else', async () => {
    const row = REJECTIONS.find((r) => r.code === 'TOKEN_VERIFICATION_ERROR')!;
    const r = await verifier.verify(await row.token());
    expectRejected(r, 'TOKEN_VERIFICATION_ERROR');
    if (!r.ok) expect(String(r.error.cause)).toMatch(/modulusLength to be 2048 bits or larger/);
  });

  it('rejections carry the issuer only once it is known', async () => {
    const unknown = await verifier.verify(await tok(K.rs, { iss: 'https://evil.test' }));
    expect(unknown.ok === false && 'issuer' in unknown).toBe(false);
    const known = await verifier.verify(await tok(K.rs, { aud: 'billing' }));
    expect(known.ok === false && known.issuer).toBe('jwks');
  });
});

describe('TOKEN_TOO_LARGE with a configured maxTokenBytes', () => {
  it('refuses a token one byte over the bound and accepts one exactly at it', async () => {
    const secret = K.hmac;
    const token = await tok({ secret }, { iss: ISS.hmac });
    const rsToken = await tok(K.rs);
    const atBound = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, secret)], { maxTokenBytes: token.length }));
    expectAccepted(await atBound.verify(token));
    const below = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, secret)], { maxTokenBytes: token.length - 1 }));
    expectRejected(await below.verify(token), 'TOKEN_TOO_LARGE', token);
    // A 2048-bit RS256 token is well over 256 bytes.
    const small = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, secret)], { maxTokenBytes: 256 }));
    expect(rsToken.length).toBeGreaterThan(256);
    expectRejected(await small.verify(rsToken), 'TOKEN_TOO_LARGE', rsToken);
  });

  it('a well-formed, signed token over a bound of 512 is refused before anything else', async () => {
    const token = await tok({ secret: K.hmac }, { iss: ISS.hmac, pad: 'y'.repeat(600) });
    const v = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac)], { maxTokenBytes: 512 }));
    expectRejected(await v.verify(token), 'TOKEN_TOO_LARGE', token);
  });
});

// ---------------------------------------------------------------------------
// Registered string claims of the wrong type (sub, jti)
// ---------------------------------------------------------------------------

describe('registered claims of the wrong type', () => {
  let verifier: TokenVerifier;
  beforeAll(async () => {
    const dir = tempDir();
    const revocation = join(dir, 'revoked.yaml');
    writeFileSync(revocation, 'jti: ["42"]\nsubjects:\n  - sub: "42"\n    revoked_before: 2099-01-01T00:00:00Z\n');
    verifier = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac)], { revocationFile: revocation }), { clock: () => NOW }, 'file');
  });

  it('control: the string forms are revoked', async () => {
    expectRejected(await verifier.verify(await tok({ secret: K.hmac }, { iss: ISS.hmac, sub: '42' })), 'TOKEN_REVOKED');
    expectRejected(await verifier.verify(await tok({ secret: K.hmac }, { iss: ISS.hmac, jti: '42' })), 'TOKEN_REVOKED');
  });

  // A `sub` or `jti` that is not a string would be dropped from the subject and could never match a
  // revocation entry (whose values are strings): it must reject the token, not slip past the list.
  it.each([
    { name: 'sub as a number', claims: { sub: 42 } },
    { name: 'sub as a list', claims: { sub: ['alice'] } },
    { name: 'sub null', claims: { sub: null } },
    { name: 'jti as a number', claims: { jti: 42 } },
    { name: 'jti as an object', claims: { jti: { id: '42' } } },
  ])('TOKEN_INVALID_CLAIM: $name', async ({ claims }) => {
    const token = await tok({ secret: K.hmac }, { iss: ISS.hmac, ...claims });
    expectRejected(await verifier.verify(token), 'TOKEN_INVALID_CLAIM', token);
  });
});

// ---------------------------------------------------------------------------
// 2. Every key type verifies
// ---------------------------------------------------------------------------

describe('key types', () => {
  let verifier: TokenVerifier;
  const ISS_NOKID = 'https://two-keys.test';
  let rsA: TestKey;
  let rsB: TestKey;
  let esA: TestKey;
  let esB: TestKey;

  beforeAll(async () => {
    [rsA, rsB, esA, esB] = await Promise.all([makeKey('RS256', 'a'), makeKey('RS256', 'b'), makeKey('ES256', 'ea'), makeKey('ES256', 'eb')]);
    const dir = tempDir();
    verifier = await openVerifier(
      verifierOptions([
        fileIssuer('jwks', ISSUER, writeJson(dir, 'jwks.json', jwksOf(K.rs, K.ps, K.es, K.ed))),
        secretIssuer('hmac', ISS.hmac, K.hmac),
        fileIssuer('two-keys', ISS_NOKID, writeJson(dir, 'two.json', jwksOf(rsA, rsB, esA, esB))),
      ]),
      { clock: () => NOW },
      'file',
    );
  });

  it.each(['rs', 'ps', 'es', 'ed'] as const)('%s: a token signed by the key verifies', async (which) => {
    const key = K[which];
    const token = await tok(key, { sub: `user-${which}` });
    const r = expectAccepted(await verifier.verify(token));
    expect(r.cached).toBe(false);
    expect(r.subject.issuer).toBe('jwks');
    expect(r.subject.sub).toBe(`user-${which}`);
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg).toBe(key.alg);
  });

  it.each(['HS256', 'HS384', 'HS512'] as const)('%s with the secret verifies', async (alg) => {
    const r = expectAccepted(await verifier.verify(await tok({ secret: K.hmac, alg }, { iss: ISS.hmac, sub: alg })));
    expect(r.subject.issuer).toBe('hmac');
    expect(r.subject.sub).toBe(alg);
  });

  it.each(['HS256', 'HS384', 'HS512'] as const)('%s with another secret is TOKEN_INVALID_SIGNATURE', async (alg) => {
    const token = await tok({ secret: K.wrongSecret, alg }, { iss: ISS.hmac });
    expectRejected(await verifier.verify(token), 'TOKEN_INVALID_SIGNATURE', token);
  });

  describe('a JWKS with two keys of a type and a token without kid', () => {
    const noKid = (key: TestKey, claims: Record<string, unknown> = {}) => tok(key, { iss: ISS_NOKID, ...claims }, { kid: undefined });

    it('the token really has no kid', async () => {
      const header = JSON.parse(Buffer.from((await noKid(rsA)).split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
      expect(header).toEqual({ alg: 'RS256' });
    });

    it.each([
      ['first RSA key', () => rsA],
      ['second RSA key', () => rsB],
      ['first EC key', () => esA],
      ['second EC key', () => esB],
    ] as const)('finds the right key: %s', async (_, key) => {
      const r = expectAccepted(await verifier.verify(await noKid(key(), { sub: 'kidless' })));
      expect(r.subject.issuer).toBe('two-keys');
      expect(r.subject.sub).toBe('kidless');
    });

    it.each([
      ['RSA', () => K.rsImpostor],
      ['EC', () => K.es2],
    ] as const)('a token signed by neither %s key is TOKEN_INVALID_SIGNATURE', async (_, key) => {
      const token = await noKid(key());
      expectRejected(await verifier.verify(token), 'TOKEN_INVALID_SIGNATURE', token);
    });

    it('a claim failure found with the second key is reported as such, not as a bad signature', async () => {
      const token = await noKid(rsB, { iat: T - 7200, exp: T - 3600 });
      expectRejected(await verifier.verify(token), 'TOKEN_EXPIRED', token);
      const aud = await noKid(rsB, { aud: 'billing' });
      expectRejected(await verifier.verify(aud), 'TOKEN_WRONG_AUDIENCE', aud);
    });

    it('a kid-less token of a type the JWKS holds once still verifies (single match)', async () => {
      expectAccepted(await verifier.verify(await tok(K.ed, {}, { kid: undefined })));
    });
  });
});

// ---------------------------------------------------------------------------
// 3. Clock tolerance edges (jose: nbf > now + tol, exp <= now - tol, age - tol > max, age < -tol)
// ---------------------------------------------------------------------------

describe('clock tolerance edges', () => {
  let verifier: TokenVerifier;
  const I = { tol30: 'https://tol30.test', tol0: 'https://tol0.test', tol30Aged: 'https://tol30-aged.test', tol0Aged: 'https://tol0-aged.test' } as const;

  beforeAll(async () => {
    verifier = await openVerifier(
      verifierOptions([
        secretIssuer('tol30', I.tol30, K.hmac, { clockToleranceSeconds: 30 }),
        secretIssuer('tol0', I.tol0, K.hmac, { clockToleranceSeconds: 0 }),
        secretIssuer('tol30-aged', I.tol30Aged, K.hmac, { clockToleranceSeconds: 30, maxTokenAgeSeconds: 600 }),
        secretIssuer('tol0-aged', I.tol0Aged, K.hmac, { clockToleranceSeconds: 0, maxTokenAgeSeconds: 600 }),
      ], { cache: { maxEntries: 0, ttlSeconds: 300 } }),
      { clock: () => NOW },
      'file',
    );
  });

  type Edge = [label: string, iss: string, claims: Record<string, unknown>, expected: TokenReason | 'ok'];
  const EDGES: Edge[] = [
    // exp: expired when exp <= now - tolerance
    ['tol 30: exp = now is accepted', I.tol30, { exp: T }, 'ok'],
    ['tol 30: exp = now - 29 is accepted', I.tol30, { iat: T - 60, exp: T - 29 }, 'ok'],
    ['tol 30: exp = now - 30 is expired', I.tol30, { iat: T - 60, exp: T - 30 }, 'TOKEN_EXPIRED'],
    ['tol 30: exp = now - 31 is expired', I.tol30, { iat: T - 60, exp: T - 31 }, 'TOKEN_EXPIRED'],
    ['tol 0: exp = now is expired', I.tol0, { iat: T - 60, exp: T }, 'TOKEN_EXPIRED'],
    ['tol 0: exp = now + 1 is accepted', I.tol0, { exp: T + 1 }, 'ok'],
    // nbf: not yet valid when nbf > now + tolerance
    ['tol 30: nbf = now + 30 is accepted', I.tol30, { nbf: T + 30 }, 'ok'],
    ['tol 30: nbf = now + 31 is not yet valid', I.tol30, { nbf: T + 31 }, 'TOKEN_NOT_YET_VALID'],
    ['tol 0: nbf = now is accepted', I.tol0, { nbf: T }, 'ok'],
    ['tol 0: nbf = now + 1 is not yet valid', I.tol0, { nbf: T + 1 }, 'TOKEN_NOT_YET_VALID'],
    // iat in the future: verify.ts's own check (no maximum age) ...
    ['tol 30: iat = now + 30 is accepted', I.tol30, { iat: T + 30 }, 'ok'],
    ['tol 30: iat = now + 31 is issued in the future', I.tol30, { iat: T + 31 }, 'TOKEN_ISSUED_IN_FUTURE'],
    ['tol 0: iat = now is accepted', I.tol0, { iat: T }, 'ok'],
    ['tol 0: iat = now + 1 is issued in the future', I.tol0, { iat: T + 1 }, 'TOKEN_ISSUED_IN_FUTURE'],
    // ... and jose's, when a maximum age is set (age < -tolerance)
    ['tol 30, max age: iat = now + 30 is accepted', I.tol30Aged, { iat: T + 30 }, 'ok'],
    ['tol 30, max age: iat = now + 31 is issued in the future', I.tol30Aged, { iat: T + 31 }, 'TOKEN_ISSUED_IN_FUTURE'],
    ['tol 0, max age: iat = now + 1 is issued in the future', I.tol0Aged, { iat: T + 1 }, 'TOKEN_ISSUED_IN_FUTURE'],
    // maximum age 600: too old when (now - iat) - tolerance > 600
    ['tol 30, max age 600: iat = now - 630 is accepted', I.tol30Aged, { iat: T - 630 }, 'ok'],
    ['tol 30, max age 600: iat = now - 631 is too old', I.tol30Aged, { iat: T - 631 }, 'TOKEN_TOO_OLD'],
    ['tol 0, max age 600: iat = now - 600 is accepted', I.tol0Aged, { iat: T - 600 }, 'ok'],
    ['tol 0, max age 600: iat = now - 601 is too old', I.tol0Aged, { iat: T - 601 }, 'TOKEN_TOO_OLD'],
  ];

  it.each(EDGES)('%s', async (_, iss, claims, expected) => {
    const token = await tok({ secret: K.hmac }, { iss, ...claims });
    const r = await verifier.verify(token);
    if (expected === 'ok') expectAccepted(r);
    else expectRejected(r, expected, token);
  });

  it('a sub-second clock: jose floors now, verify.ts compares in ms, and both agree', async () => {
    // now = T + 0.999 s. exp = T + 1 with tolerance 0 is still valid (floor(now) = T < T + 1);
    // iat = T + 1 is in the future (T+1 s > T+0.999 s), in both code paths.
    const late = NOW + 999;
    expectAccepted(await verifier.verify(await tok({ secret: K.hmac }, { iss: I.tol0, exp: T + 1 }), late));
    expectRejected(await verifier.verify(await tok({ secret: K.hmac }, { iss: I.tol0, iat: T + 1 }), late), 'TOKEN_ISSUED_IN_FUTURE');
    expectRejected(await verifier.verify(await tok({ secret: K.hmac }, { iss: I.tol0Aged, iat: T + 1 }), late), 'TOKEN_ISSUED_IN_FUTURE');
  });
});

// ---------------------------------------------------------------------------
// 4. The subject cache
// ---------------------------------------------------------------------------

describe('subject cache', () => {
  it('the second verify of a token is served from the cache, with the same subject', async () => {
    const verified: [string, boolean][] = [];
    const v = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac)]), { clock: () => NOW, events: { onVerified: (i, c) => verified.push([i, c]) } });
    const token = await tok({ secret: K.hmac }, { iss: ISS.hmac });
    const first = expectAccepted(await v.verify(token));
    const second = expectAccepted(await v.verify(token));
    expect([first.cached, second.cached]).toEqual([false, true]);
    expect(second.subject).toEqual(first.subject);
    expect(verified).toEqual([['hmac', false], ['hmac', true]]);
  });

  it('is keyed by the token: another token of the same subject is verified', async () => {
    const v = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac)]));
    expectAccepted(await v.verify(await tok({ secret: K.hmac }, { iss: ISS.hmac })));
    expect(expectAccepted(await v.verify(await tok({ secret: K.hmac }, { iss: ISS.hmac, jti: 'other' }))).cached).toBe(false);
  });

  it('never serves a subject at or past exp (exp without tolerance); jose then decides with tolerance', async () => {
    let now = NOW;
    const v = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac, { clockToleranceSeconds: 30 })]), { clock: () => now });
    const token = await tok({ secret: K.hmac }, { iss: ISS.hmac, exp: T + 60 });
    expect(expectAccepted(await v.verify(token)).cached).toBe(false);
    expect(expectAccepted(await v.verify(token)).cached).toBe(true);
    now = (T + 60) * 1000 - 1;
    expect(expectAccepted(await v.verify(token)).cached).toBe(true);
    now = (T + 60) * 1000; // at exp: not from the cache; jose accepts within the 30 s tolerance
    expect(expectAccepted(await v.verify(token)).cached).toBe(false);
    now = (T + 60 + 29) * 1000; // still within tolerance, and never cached again past exp
    expect(expectAccepted(await v.verify(token)).cached).toBe(false);
    now = (T + 60 + 30) * 1000; // exp <= now - 30
    expectRejected(await v.verify(token), 'TOKEN_EXPIRED', token);
  });

  it('with tolerance 0 a cached token is expired exactly at exp', async () => {
    let now = NOW;
    const v = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac, { clockToleranceSeconds: 0 })]), { clock: () => now });
    const token = await tok({ secret: K.hmac }, { iss: ISS.hmac, exp: T + 60 });
    expectAccepted(await v.verify(token));
    now = (T + 60) * 1000 - 1;
    expect(expectAccepted(await v.verify(token)).cached).toBe(true);
    now = (T + 60) * 1000;
    expectRejected(await v.verify(token), 'TOKEN_EXPIRED', token);
  });

  it('keeps a subject no longer than the cache TTL', async () => {
    let now = NOW;
    const v = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac)], { cache: { maxEntries: 100, ttlSeconds: 300 } }), { clock: () => now });
    const token = await tok({ secret: K.hmac }, { iss: ISS.hmac, exp: T + 3600 });
    expectAccepted(await v.verify(token));
    now = NOW + 300_000 - 1;
    expect(expectAccepted(await v.verify(token)).cached).toBe(true);
    now = NOW + 300_000;
    expect(expectAccepted(await v.verify(token)).cached).toBe(false);
    // Re-verified at NOW + 300 s: cached again from there.
    now = NOW + 300_001;
    expect(expectAccepted(await v.verify(token)).cached).toBe(true);
  });

  it('keeps a subject no longer than iat + maximum age (without tolerance)', async () => {
    let now = NOW;
    const v = await openVerifier(verifierOptions([secretIssuer('aged', ISS.aged, K.aged, { maxTokenAgeSeconds: 120, clockToleranceSeconds: 30 })]), { clock: () => now });
    const token = await tok({ secret: K.aged }, { iss: ISS.aged, iat: T - 100, exp: T + 3600 });
    expectAccepted(await v.verify(token));
    now = (T + 20) * 1000 - 1;
    expect(expectAccepted(await v.verify(token)).cached).toBe(true);
    now = (T + 20) * 1000; // iat + 120: out of the cache, still within max age + tolerance for jose
    expect(expectAccepted(await v.verify(token)).cached).toBe(false);
    now = (T + 51) * 1000; // age 151 s - 30 > 120
    expectRejected(await v.verify(token), 'TOKEN_TOO_OLD', token);
  });

  it.each([
    ['maxEntries 0', { maxEntries: 0, ttlSeconds: 300 }],
    ['ttlSeconds 0', { maxEntries: 100, ttlSeconds: 0 }],
  ] as const)('is disabled with %s', async (_, cache) => {
    const v = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac)], { cache }));
    const token = await tok({ secret: K.hmac }, { iss: ISS.hmac });
    for (let i = 0; i < 3; i++) expect(expectAccepted(await v.verify(token)).cached).toBe(false);
  });

  describe('verifyCached (the synchronous hot path)', () => {
    /** verifyCached answers exactly when verify would answer from the cache, with the same subject. */
    async function agree(v: TokenVerifier, token: string): Promise<boolean> {
      const quick = v.verifyCached(token);
      const full = await v.verify(token);
      if (quick === undefined) {
        expect(full.ok && full.cached).toBe(false);
        return false;
      }
      expect(quick).toEqual(full);
      expect(full.ok && full.cached).toBe(true);
      return true;
    }

    it('answers only from the cache, and exactly when verify would: not before the first verify, never at or past exp or the TTL', async () => {
      let now = NOW;
      const v = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac, { clockToleranceSeconds: 30 })], { cache: { maxEntries: 100, ttlSeconds: 300 } }), { clock: () => now });
      const token = await tok({ secret: K.hmac }, { iss: ISS.hmac, exp: T + 200 });
      expect(await agree(v, token)).toBe(false);
      expect(await agree(v, token)).toBe(true);
      now = (T + 200) * 1000 - 1;
      expect(await agree(v, token)).toBe(true);
      now = (T + 200) * 1000;
      expect(await agree(v, token)).toBe(false);
      const long = await tok({ secret: K.hmac }, { iss: ISS.hmac, exp: T + 3600 });
      now = NOW;
      await v.verify(long);
      now = NOW + 300_000 - 1;
      expect(await agree(v, long)).toBe(true);
      now = NOW + 300_000;
      expect(await agree(v, long)).toBe(false);
    });

    it('never answers what verify would refuse, and never throws', async () => {
      const v = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac)]), { clock: () => NOW });
      for (const bad of ['', 'a.b.c', 'x'.repeat(20_000), undefined, null, 42, { token: 'x' }]) expect(v.verifyCached(bad)).toBeUndefined();
      const forged = `${(await tok({ secret: K.hmac }, { iss: ISS.hmac })).slice(0, -2)}AA`;
      expect(await agree(v, forged)).toBe(false);
      expect(v.verifyCached(forged)).toBeUndefined();
    });

    it('answers nothing with the subject cache off', async () => {
      const v = await openVerifier(verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac)], { cache: { maxEntries: 0, ttlSeconds: 300 } }), { clock: () => NOW });
      const token = await tok({ secret: K.hmac }, { iss: ISS.hmac });
      await v.verify(token);
      expect(v.verifyCached(token)).toBeUndefined();
    });
  });

  describe('JWKS file changes', () => {
    async function rotatingSetup(): Promise<{ v: TokenVerifier; path: string; refreshes: KeyRefreshEvent[]; fileChange: (outcome: KeyRefreshEvent['outcome']) => number }> {
      const dir = tempDir();
      const path = writeJson(dir, 'jwks.json', jwksOf(K.rs, K.es));
      const refreshes: KeyRefreshEvent[] = [];
      const v = await openVerifier(
        verifierOptions([fileIssuer('rotating', ISSUER, path), secretIssuer('hmac', ISS.hmac, K.hmac)], { filePollSeconds: 0.05 }),
        { clock: () => NOW, events: { onKeyRefresh: (e) => refreshes.push(e) } },
      );
      const fileChange = (outcome: KeyRefreshEvent['outcome']) => refreshes.filter((e) => e.issuer === 'rotating' && e.trigger === 'file-change' && e.outcome === outcome).length;
      return { v, path, refreshes, fileChange };
    }

    it("a rotation drops that issuer's cached subjects, and only those", async () => {
      const { v, path, fileChange } = await rotatingSetup();
      const a1 = await tok(K.rs, { sub: 'a1' });
      const a2 = await tok(K.es, { sub: 'a2' });
      const a3 = await tok(K.rs, { sub: 'a3' });
      const b1 = await tok({ secret: K.hmac }, { iss: ISS.hmac, sub: 'b1' });
      // Interleave the issuers in the LRU order.
      for (const t of [a1, b1, a2, a3]) expectAccepted(await v.verify(t));
      for (const t of [a1, b1, a2, a3]) expect(expectAccepted(await v.verify(t)).cached).toBe(true);

      replaceFile(path, JSON.stringify(jwksOf(K.rs, K.es, K.rs2))); // a new key: a different key set
      await vi.waitFor(() => expect(fileChange('updated')).toBe(1), WAIT);
      expect(v.issuers.find((i) => i.name === 'rotating')?.keyCount).toBe(3);
      // The synchronous path sees the same: nothing of the rotated issuer, the other issuer's subject.
      for (const t of [a1, a2, a3]) expect(v.verifyCached(t)).toBeUndefined();
      expect(v.verifyCached(b1)).toMatchObject({ ok: true, cached: true });

      for (const t of [a1, a2, a3]) {
        const r = expectAccepted(await v.verify(t));
        expect(r.cached).toBe(false); // re-verified against the new set
      }
      expect(expectAccepted(await v.verify(b1)).cached).toBe(true); // the other issuer's subject stays
      expect(expectAccepted(await v.verify(a1)).cached).toBe(true); // and the re-verified ones are cached again
      expectAccepted(await v.verify(await tok(K.rs2, { sub: 'new-key' })));
    });

    it('a rotation that removes a key makes its cached tokens fail (TOKEN_UNKNOWN_KID)', async () => {
      const { v, path, fileChange } = await rotatingSetup();
      const old = await tok(K.rs);
      expectAccepted(await v.verify(old));
      expect(expectAccepted(await v.verify(old)).cached).toBe(true);
      replaceFile(path, JSON.stringify(jwksOf(K.rs2)));
      await vi.waitFor(() => expect(fileChange('updated')).toBe(1), WAIT);
      expectRejected(await v.verify(old), 'TOKEN_UNKNOWN_KID', old);
      expectAccepted(await v.verify(await tok(K.rs2)));
    });

    it('a rewrite with the same keys (reformatted) is not a rotation: the cache stays', async () => {
      const { v, path, fileChange } = await rotatingSetup();
      const token = await tok(K.rs);
      expectAccepted(await v.verify(token));
      replaceFile(path, JSON.stringify(jwksOf(K.rs, K.es), null, 2));
      await vi.waitFor(() => expect(fileChange('unchanged')).toBe(1), WAIT);
      expect(fileChange('updated')).toBe(0);
      expect(expectAccepted(await v.verify(token)).cached).toBe(true);
    });

    it('a JWKS file that becomes invalid keeps the keys in use', async () => {
      const { v, path, refreshes, fileChange } = await rotatingSetup();
      const token = await tok(K.rs);
      expectAccepted(await v.verify(token));
      replaceFile(path, '{"keys": [');
      await vi.waitFor(() => expect(fileChange('failed')).toBeGreaterThanOrEqual(1), WAIT);
      expect(refreshes.find((e) => e.outcome === 'failed')?.keyCount).toBe(2);
      expect(expectAccepted(await v.verify(token)).cached).toBe(true);
      expectAccepted(await v.verify(await tok(K.es, { sub: 'fresh' })));
      // A JWKS with private key material is refused the same way.
      replaceFile(path, JSON.stringify({ keys: [{ ...K.rs.jwk, d: 'AAAA' }] }));
      await vi.waitFor(() => expect(fileChange('failed')).toBeGreaterThanOrEqual(2), WAIT);
      expectAccepted(await v.verify(await tok(K.rs, { sub: 'still' })));
    });
  });

  describe('revocation file changes', () => {
    async function revocationSetup(initial: string): Promise<{ v: TokenVerifier; path: string; reloads: RevocationReloadEvent[] }> {
      const dir = tempDir();
      const path = join(dir, 'revoked.yaml');
      writeFileSync(path, initial);
      const reloads: RevocationReloadEvent[] = [];
      const v = await openVerifier(
        verifierOptions([secretIssuer('hmac', ISS.hmac, K.hmac), fileIssuer('jwks', ISSUER, writeJson(dir, 'jwks.json', jwksOf(K.rs)))], { revocationFile: path, filePollSeconds: 0.05 }),
        { clock: () => NOW, events: { onRevocationReload: (e) => reloads.push(e) } },
      );
      return { v, path, reloads };
    }

    it('a change clears the cache and the new entries apply', async () => {
      const { v, path, reloads } = await revocationSetup('jti: []\n');
      expect(reloads).toEqual([{ outcome: 'updated', entries: 0 }]);
      const j1 = await tok({ secret: K.hmac }, { iss: ISS.hmac, jti: 'j1' });
      const j2 = await tok({ secret: K.hmac }, { iss: ISS.hmac, jti: 'j2' });
      const bob = await tok(K.rs, { sub: 'bob', iat: T - 10 });
      for (const t of [j1, j2, bob]) expectAccepted(await v.verify(t));
      for (const t of [j1, j2, bob]) expect(expectAccepted(await v.verify(t)).cached).toBe(true);

      replaceFile(path, `jti: [j1]\nsubjects:\n  - sub: bob\n    revoked_before: ${new Date(NOW).toISOString()}\n`);
      await vi.waitFor(() => expect(reloads.at(-1)).toEqual({ outcome: 'updated', entries: 2 }), WAIT);
      expect(v.revocationEntries).toBe(2);

      expectRejected(await v.verify(j1), 'TOKEN_REVOKED', j1);
      expectRejected(await v.verify(bob), 'TOKEN_REVOKED', bob);
      expect(expectAccepted(await v.verify(j2)).cached).toBe(false); // the whole cache was dropped
    });

    it('an invalid file keeps the last good list, and the hook reports the failure', async () => {
      const { v, path, reloads } = await revocationSetup('jti: [j1]\n');
      const j1 = await tok({ secret: K.hmac }, { iss: ISS.hmac, jti: 'j1' });
      const j2 = await tok({ secret: K.hmac }, { iss: ISS.hmac, jti: 'j2' });
      expectRejected(await v.verify(j1), 'TOKEN_REVOKED', j1);
      expectAccepted(await v.verify(j2));

      replaceFile(path, 'jti: [j1, j2\nsubjects: {{{\n');
      await vi.waitFor(() => expect(reloads.some((e) => e.outcome === 'failed')).toBe(true), WAIT);
      const failed = reloads.find((e) => e.outcome === 'failed');
      expect(failed?.entries).toBe(1);
      expect(failed?.detail).toMatch(/not valid YAML/);
      expect(v.revocationEntries).toBe(1);
      expectRejected(await v.verify(j1), 'TOKEN_REVOKED', j1);
      expectAccepted(await v.verify(j2));

      // A structurally wrong (but parseable) list is refused the same way.
      replaceFile(path, 'jti: [j1, j2]\nrevoked: everything\n');
      await vi.waitFor(() => expect(reloads.filter((e) => e.outcome === 'failed').length).toBe(2), WAIT);
      expectAccepted(await v.verify(j2));

      // Fixing the file applies it.
      replaceFile(path, 'jti: [j1, j2]\n');
      await vi.waitFor(() => expect(reloads.at(-1)).toEqual({ outcome: 'updated', entries: 2 }), WAIT);
      expectRejected(await v.verify(j2), 'TOKEN_REVOKED', j2);
    });
  });
});

// ---------------------------------------------------------------------------
// 5. Claim mapping through verify
// ---------------------------------------------------------------------------

describe('claim mapping', () => {
  const MAPPING: ClaimMapping = {
    roles: [['roles'], ['realm_access', 'roles'], ['https://example.com/roles']],
    stripPrefix: 'ROLE_',
    rename: new Map([['ROLE_SUPERUSER', 'admin'], ['Ops', 'OPERATIONS']]),
    lowercase: true,
    scopes: [['scope'], ['scp']],
    attributes: new Map([
      ['email', ['email']],
      ['tenant', ['org', 'tenant']],
      ['dotted', ['a.b']],
      ['groups', ['groups']],
      ['absent', ['nope']],
    ]),
  };
  let verifier: TokenVerifier;
  const ISS_DEFAULT = 'https://default-mapping.test';

  beforeAll(async () => {
    verifier = await openVerifier(
      verifierOptions([
        secretIssuer('mapped', ISS.hmac, K.hmac, { claims: MAPPING }),
        secretIssuer('plain', ISS_DEFAULT, K.hmac, { claims: DEFAULT_MAPPING }),
      ]),
      { clock: () => NOW },
      'file',
    );
  });

  it('maps sub, iss, roles (rename, strip, lowercase, de-duplicated), scopes, named attributes and all claims', async () => {
    const claims = claimsAt({
      iss: ISS.hmac,
      sub: 'alice',
      roles: ['ROLE_ADMIN', 'ROLE_SUPERUSER', 'Viewer', 'Ops'],
      realm_access: { roles: ['ROLE_admin', 'editor'] },
      'https://example.com/roles': 'AUDITOR',
      scope: 'read  write',
      scp: ['write', 'delete'],
      email: 'alice@example.com',
      org: { tenant: 't1' },
      'a.b': 'dotted-value',
      groups: ['g1', 'g2'],
      jti: 'jti-1',
    });
    const token = await tok({ secret: K.hmac }, claims);
    const r = expectAccepted(await verifier.verify(token));
    expect(r.subject.issuer).toBe('mapped');
    expect(r.subject.sub).toBe('alice');
    expect(r.subject.expiresAt).toBe((T + 600) * 1000);
    expect(r.subject.tokenHash).toBe(createHash('sha256').update(token).digest('base64url'));
    expect(r.subject.attributes).toEqual({
      sub: 'alice',
      iss: ISS.hmac,
      // ROLE_ADMIN → admin; ROLE_SUPERUSER renamed → admin (dup); Viewer → viewer; Ops renamed → OPERATIONS (not lower-cased);
      // ROLE_admin → admin (dup); editor; AUDITOR → auditor
      roles: ['admin', 'viewer', 'OPERATIONS', 'editor', 'auditor'],
      scopes: ['read', 'write', 'delete'],
      email: 'alice@example.com',
      tenant: 't1',
      dotted: 'dotted-value',
      groups: ['g1', 'g2'],
      claims,
    });
    expect(Object.hasOwn(r.subject.attributes, 'absent')).toBe(false);
  });

  it.each([
    ['scp as a space-separated string', { scp: 'a b  c' }, ['a', 'b', 'c']],
    ['scope and scp both lists', { scope: ['x'], scp: ['y', 'x'] }, ['x', 'y']],
    ['no scope claims', {}, []],
  ] as const)('scopes: %s', async (_, extra, scopes) => {
    const r = expectAccepted(await verifier.verify(await tok({ secret: K.hmac }, { iss: ISS.hmac, ...extra })));
    expect(r.subject.attributes['scopes']).toEqual(scopes);
    expect(r.subject.attributes['roles']).toEqual([]);
  });

  it('the default mapping leaves roles as they are', async () => {
    const r = expectAccepted(await verifier.verify(await tok({ secret: K.hmac }, { iss: ISS_DEFAULT, roles: ['ROLE_Admin', 'editor'], realm_access: { roles: ['ignored'] } })));
    expect(r.subject.issuer).toBe('plain');
    expect(r.subject.attributes['roles']).toEqual(['ROLE_Admin', 'editor']);
    expect(r.subject.attributes['iss']).toBe(ISS_DEFAULT);
  });

  it('a claim named __proto__ is just a claim', async () => {
    const raw = hmacSigned(K.hmac, 'sha256', { alg: 'HS256' }, `{"iss":"${ISS.hmac}","aud":"${AUDIENCE}","sub":"alice","iat":${T},"exp":${T + 600},"__proto__":{"roles":["admin"]}}`);
    const r = expectAccepted(await verifier.verify(raw));
    expect(r.subject.attributes['roles']).toEqual([]);
    expect(({} as Record<string, unknown>)['roles']).toBeUndefined();
  });

  it('a mapped claim of the wrong shape rejects the token (roles under a nested path)', async () => {
    const token = await tok({ secret: K.hmac }, { iss: ISS.hmac, realm_access: { roles: 'not-a-list-but-a-string-is-fine' } });
    expect(expectAccepted(await verifier.verify(token)).subject.attributes['roles']).toEqual(['not-a-list-but-a-string-is-fine']);
    const bad = await tok({ secret: K.hmac }, { iss: ISS.hmac, realm_access: { roles: [['nested']] } });
    expectRejected(await verifier.verify(bad), 'TOKEN_INVALID_CLAIM', bad);
    const badNamespaced = await tok({ secret: K.hmac }, { iss: ISS.hmac, 'https://example.com/roles': false });
    expectRejected(await verifier.verify(badNamespaced), 'TOKEN_INVALID_CLAIM', badNamespaced);
  });
});

// ---------------------------------------------------------------------------
// Signature segments that are not base64url (bug)
// ---------------------------------------------------------------------------

describe('a signature segment that is not base64url', () => {
  let verifier: TokenVerifier;
  beforeAll(async () => {
    const dir = tempDir();
    verifier = await openVerifier(verifierOptions([fileIssuer('jwks', ISSUER, writeJson(dir, 'jwks.json', jwksOf(K.rs, K.es)))]), { clock: () => NOW }, 'file');
  });

  it('control: a lone "=" (wrong padding) and "+" are TOKEN_MALFORMED', async () => {
    const t = await tok(K.rs);
    expectRejected(await verifier.verify(`${t}=`), 'TOKEN_MALFORMED');
    expectRejected(await verifier.verify(`${t.slice(0, -10)}+${t.slice(-9)}`), 'TOKEN_MALFORMED');
  });

  // jose's base64url decoder accepts '=' padding and skips ASCII whitespace; verify.ts checks the
  // compact serialisation's alphabet first, so a valid token has exactly one accepted spelling (bar
  // the last character's unused bits) and cannot be re-spelt to bypass or pollute the subject cache.
  it.each([
    { name: '"==" padding (RS256, 342 characters)', mutate: (t: string) => `${t}==` },
    { name: 'a space inside the signature', mutate: (t: string) => `${t.slice(0, -40)} ${t.slice(-40)}` },
    { name: 'a newline inside the signature', mutate: (t: string) => `${t.slice(0, -40)}\n${t.slice(-40)}` },
    { name: 'a trailing tab', mutate: (t: string) => `${t}\t` },
  ])('TOKEN_MALFORMED: $name', async ({ mutate }) => {
    const t = await tok(K.rs);
    expectAccepted(await verifier.verify(t));
    expectRejected(await verifier.verify(mutate(t)), 'TOKEN_MALFORMED');
  });
});

// ---------------------------------------------------------------------------
// 6. Property: no input throws, and only real tokens pass
// ---------------------------------------------------------------------------

describe('property: arbitrary and mutated tokens', () => {
  let verifier: TokenVerifier;
  let VALID: string[] = [];
  const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const FLIP_CHARS = [...B64URL, '.', '=', '+', '/', ' ', '\t', '\n', '!', '%', 'é', '\u0000', '\u{1F600}'];

  beforeAll(async () => {
    const dir = tempDir();
    verifier = await openVerifier(
      verifierOptions([
        fileIssuer('jwks', ISSUER, writeJson(dir, 'jwks.json', jwksOf(K.rs, K.ps, K.es, K.ed))),
        secretIssuer('hmac', ISS.hmac, K.hmac),
      ]),
      { clock: () => NOW },
      'file',
    );
    VALID = await Promise.all([
      tok(K.rs),
      tok(K.rs, { sub: 'bob', roles: ['admin'] }),
      tok(K.ps),
      tok(K.es),
      tok(K.ed),
      tok({ secret: K.hmac }, { iss: ISS.hmac }),
      tok({ secret: K.hmac, alg: 'HS512' }, { iss: ISS.hmac, sub: 'bob' }),
    ]);
    for (const t of VALID) expectAccepted(await verifier.verify(t));
  });

  /**
   * Whether `candidate` carries exactly the signed content of a valid token: the same header and
   * payload segments, and a signature segment that decodes to the same bytes. Two kinds of
   * re-spelling decode alike:
   *  - the last base64url character has unused low bits, so a few characters decode the same
   *    (an unavoidable property of base64url, not a forgery);
   *  - `=` padding and ASCII whitespace, which jose's decoder skips; verify.ts refuses them as
   *    TOKEN_MALFORMED (tested below), and the property tolerates them only as the same signature.
   * Anything else accepted would be a forgery, and fails the property.
   */
  function sameSignedContent(candidate: string): boolean {
    const parts = candidate.split('.');
    if (parts.length !== 3) return false;
    const [h, p, s] = parts as [string, string, string];
    const stripped = s.replace(/[\t\n\f\r ]/g, '').replace(/={1,2}$/, '');
    if (!/^[A-Za-z0-9_-]*$/.test(stripped)) return false;
    return VALID.some((v) => {
      const [vh, vp, vs] = v.split('.') as [string, string, string];
      return vh === h && vp === p && stripped.length === vs.length && Buffer.from(stripped, 'base64url').equals(Buffer.from(vs, 'base64url'));
    });
  }

  it('the oracle is sound: re-spellings decode to the same bytes, a changed bit does not', () => {
    // 256-byte RSA signature: 342 characters, the last carrying 2 bits; flipping one of its 4 unused bits is a re-spelling.
    const t = VALID[0]!;
    const s = t.split('.')[2]!;
    expect(s).toHaveLength(342);
    const last = B64URL.indexOf(s.at(-1)!);
    const alias = `${t.slice(0, -1)}${B64URL[last ^ 1]}`;
    expect(alias).not.toBe(t);
    expect(sameSignedContent(alias)).toBe(true);
    expect(sameSignedContent(`${t}==`)).toBe(true);
    expect(sameSignedContent(`${t.slice(0, -20)} ${t.slice(-20)}`)).toBe(true);
    // A significant bit, a dropped character or another alphabet is not.
    expect(sameSignedContent(`${t.slice(0, -1)}${B64URL[last ^ 0b100000]}`)).toBe(false);
    expect(sameSignedContent(t.slice(0, -1))).toBe(false);
    expect(sameSignedContent(`${t.slice(0, -30)}+${t.slice(-29)}`)).toBe(false);
    const other = t.at(-30) === 'A' ? 'B' : 'A';
    expect(sameSignedContent(`${t.slice(0, -30)}${other}${t.slice(-29)}`)).toBe(false);
  });

  it('verify never throws; a result is a known reason code, or acceptance of signed content that is a valid token', async () => {
    const anyToken = fc.constantFrom(...VALID);
    const segments = (t: string) => t.split('.');
    const mutations = fc.oneof(
      // unmodified
      { weight: 2, arbitrary: anyToken },
      // one character replaced anywhere
      { weight: 6, arbitrary: fc.record({ t: anyToken, pos: fc.nat(), ch: fc.constantFrom(...FLIP_CHARS) }).map(({ t, pos, ch }) => { const i = pos % t.length; return t.slice(0, i) + ch + t.slice(i + 1); }) },
      // the last character of the signature replaced (the re-spelling case)
      { weight: 3, arbitrary: fc.record({ t: anyToken, ch: fc.constantFrom(...B64URL) }).map(({ t, ch }) => t.slice(0, -1) + ch) },
      // one character inserted anywhere (whitespace and padding included)
      { weight: 3, arbitrary: fc.record({ t: anyToken, pos: fc.nat(), ch: fc.constantFrom(...FLIP_CHARS, '==') }).map(({ t, pos, ch }) => { const i = pos % (t.length + 1); return t.slice(0, i) + ch + t.slice(i); }) },
      // one segment dropped
      { weight: 2, arbitrary: fc.record({ t: anyToken, i: fc.nat(2) }).map(({ t, i }) => { const s = segments(t); s.splice(i, 1); return s.join('.'); }) },
      // one segment swapped in from another valid token
      { weight: 4, arbitrary: fc.record({ a: anyToken, b: anyToken, i: fc.nat(2) }).map(({ a, b, i }) => { const s = segments(a); s[i] = segments(b)[i]!; return s.join('.'); }) },
      // truncated, or something appended
      { weight: 2, arbitrary: fc.record({ t: anyToken, n: fc.nat() }).map(({ t, n }) => t.slice(0, n % t.length)) },
      { weight: 1, arbitrary: fc.record({ t: anyToken, tail: fc.stringMatching(/^[A-Za-z0-9_.=-]{1,8}$/) }).map(({ t, tail }) => t + tail) },
      // random strings
      { weight: 2, arbitrary: fc.string({ maxLength: 200 }) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 100 }) },
      { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9_\-.]{0,300}$/) },
      { weight: 2, arbitrary: fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map((p) => p.map((x) => x.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')).join('.')) },
      // a valid header and payload with a random signature
      { weight: 2, arbitrary: fc.record({ t: anyToken, sig: fc.stringMatching(/^[A-Za-z0-9_-]{0,400}$/) }).map(({ t, sig }) => `${segments(t).slice(0, 2).join('.')}.${sig}`) },
    );

    await fc.assert(
      fc.asyncProperty(mutations, async (input) => {
        let r: VerifyResult;
        try {
          r = await verifier.verify(input);
        } catch (e) {
          throw new Error(`verify threw for ${JSON.stringify(input)}: ${String(e)}`);
        }
        if (VALID.includes(input)) {
          expectAccepted(r);
          return;
        }
        if (r.ok) {
          // Accepted though not byte-identical: it must be a re-spelling of a valid token's signature.
          expect(sameSignedContent(input), `accepted a token that is not a valid one: ${input}`).toBe(true);
          return;
        }
        expect(TOKEN_REASON_CODES).toContain(r.error.code);
        if (input.length >= 24) expect(r.error.message).not.toContain(input);
      }),
      { numRuns: 300 },
    );
  });

  it('verify never throws on values that are not strings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.anything().filter((x) => typeof x !== 'string'), async (input) => {
        const r = await verifier.verify(input);
        expectRejected(r, 'TOKEN_MISSING');
      }),
      { numRuns: 100 },
    );
  });
});

/**
 * Test fixtures for token verification: real keys generated with jose, real
 * signed tokens, and issuer options built the way the config reader builds
 * them. Nothing here is mocked.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, generateSecret, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import type { ClaimMapping, IssuerOptions, KeySourceOptions, VerifierOptions } from '../../src/jwt/options.js';
import { VERIFIER_DEFAULTS } from '../../src/jwt/options.js';

export type AsymmetricAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';

/** A signing key pair and its public JWK (with `kid`, `alg`, `use`). */
export interface TestKey {
  readonly alg: AsymmetricAlg;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly jwk: JWK;
}

/** Generates a key pair for `alg` (RSA 2048, EC P-256 or Ed25519). */
export async function makeKey(alg: AsymmetricAlg, kid: string): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, jwk };
}

/** A random HMAC secret of `bytes` bytes. */
export async function makeSecret(bytes = 32): Promise<Uint8Array> {
  const key = await generateSecret('HS256', { extractable: true });
  const jwk = await exportJWK(key);
  const raw = Buffer.from(jwk.k ?? '', 'base64url');
  return new Uint8Array(Buffer.concat([raw, raw, raw]).subarray(0, bytes));
}

/** A JWKS document of the public halves of `keys`. */
export function jwksOf(...keys: TestKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => k.jwk) };
}

export const ISSUER = 'https://sso.test/realms/acme';
export const AUDIENCE = 'arbiter';

/** Seconds since the epoch of `ms`. */
export function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

export interface SignOptions {
  readonly header?: Record<string, unknown>;
  /** Claims; `iss`, `aud`, `sub`, `iat`, `exp` default to a valid token at `now`. Set one to `undefined` to leave it out. */
  readonly claims?: Record<string, unknown>;
  readonly now?: number;
}

/** Signs a token with `key` (a test key pair or an HMAC secret). */
export async function sign(key: TestKey | { secret: Uint8Array; alg?: 'HS256' | 'HS384' | 'HS512' }, options: SignOptions = {}): Promise<string> {
  const now = seconds(options.now ?? Date.now());
  const base: Record<string, unknown> = { iss: ISSUER, aud: AUDIENCE, sub: 'alice', iat: now, exp: now + 600 };
  const claims: Record<string, unknown> = { ...base, ...options.claims };
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
  if ('secret' in key) {
    const alg = key.alg ?? 'HS256';
    return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg, ...options.header }).sign(key.secret);
  }
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg: key.alg, kid: key.kid, ...options.header }).sign(key.privateKey);
}

/** The claim mapping used when a test does not care. */
export const DEFAULT_MAPPING: ClaimMapping = {
  roles: [['roles']],
  rename: new Map(),
  lowercase: false,
  scopes: [['scope'], ['scp']],
  attributes: new Map(),
};

/** Issuer options as the config reader would build them, with test-friendly overrides. */
export function issuerOptions(keys: KeySourceOptions, overrides: Partial<IssuerOptions> = {}): IssuerOptions {
  return {
    name: 'test',
    issuer: ISSUER,
    audiences: [AUDIENCE],
    algorithms: keys.kind === 'secret' ? ['HS256', 'HS384', 'HS512'] : ['RS256', 'PS256', 'ES256', 'EdDSA'],
    keys,
    clockToleranceSeconds: VERIFIER_DEFAULTS.clockToleranceSeconds,
    requiredClaims: ['sub', 'exp'],
    claims: DEFAULT_MAPPING,
    refreshIntervalSeconds: 600,
    unknownKidCooldownSeconds: 30,
    fetchTimeoutSeconds: 2,
    allowInsecureHttp: false,
    ...overrides,
  };
}

/** Verifier options around `issuers`. */
export function verifierOptions(issuers: IssuerOptions[], overrides: Partial<VerifierOptions> = {}): VerifierOptions {
  return {
    issuers,
    maxTokenBytes: VERIFIER_DEFAULTS.maxTokenBytes,
    cache: { maxEntries: 1000, ttlSeconds: 300 },
    filePollSeconds: 10,
    ...overrides,
  };
}

/** A fresh temporary directory. */
export function tempDir(prefix = 'arbiter-jwt-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `value` as JSON to `dir/name` and returns the path. */
export function writeJson(dir: string, name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

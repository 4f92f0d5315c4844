/**
 * Token fixtures for `arbiter test`: claims signed into real tokens with an
 * ephemeral key made for the run, verified by a real verifier whose issuers
 * are the config's — same issuer string, audiences and claim mapping, only the
 * keys replaced by the run's key — so a suite tests the claim mapping too.
 */
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import type { IssuerOptions, VerifierOptions } from '../jwt/options.js';
import { VERIFIER_DEFAULTS } from '../jwt/options.js';
import { TokenVerifier } from '../jwt/verify.js';
import type { TokenSigner } from './runner.js';

/** The issuer token fixtures use when no config names one. */
export const TEST_ISSUER = { name: 'test', issuer: 'https://arbiter-test.invalid', audience: 'arbiter-test' } as const;

const KID = 'arbiter-test-run';

/**
 * A signer and the verifier that trusts it.
 *
 * @example
 * const { signer, verifier } = await createTestTokens(config.jwt);
 * const token = await signer.sign({ sub: 'ann', roles: ['admin'] }, undefined, Date.now());
 */
export async function createTestTokens(jwt: VerifierOptions | undefined): Promise<{ signer: TokenSigner; verifier: TokenVerifier }> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: 'ES256', use: 'sig' };
  const keys = { kind: 'jwks', jwks: { keys: [jwk] } } as const;
  const issuers: IssuerOptions[] =
    jwt === undefined || jwt.issuers.length === 0
      ? [
          {
            name: TEST_ISSUER.name,
            issuer: TEST_ISSUER.issuer,
            audiences: [TEST_ISSUER.audience],
            algorithms: ['ES256'],
            keys,
            clockToleranceSeconds: VERIFIER_DEFAULTS.clockToleranceSeconds,
            requiredClaims: ['sub', 'exp'],
            claims: { roles: [['roles']], rename: new Map(), lowercase: false, scopes: [['scope'], ['scp']], attributes: new Map() },
            refreshIntervalSeconds: 600,
            unknownKidCooldownSeconds: 30,
            fetchTimeoutSeconds: 5,
            allowInsecureHttp: false,
          },
        ]
      : jwt.issuers.map((i) => ({ ...i, keys, algorithms: ['ES256'] }));
  const verifier = await TokenVerifier.create({
    issuers,
    maxTokenBytes: jwt?.maxTokenBytes ?? VERIFIER_DEFAULTS.maxTokenBytes,
    cache: { maxEntries: 0, ttlSeconds: 0 },
    filePollSeconds: 3600,
  });
  const byName = new Map(issuers.map((i) => [i.name, i]));
  const signer: TokenSigner = {
    issuers: issuers.map((i) => i.name),
    async sign(claims, issuerName, now) {
      const issuer = issuerName === undefined ? issuers[0] : byName.get(issuerName);
      if (issuer === undefined) throw new Error(`no issuer named ${JSON.stringify(issuerName)} in the config (issuers: ${[...byName.keys()].join(', ')})`);
      const seconds = Math.floor(now / 1000);
      const payload: Record<string, unknown> = { iss: issuer.issuer, aud: issuer.audiences[0], iat: seconds, exp: seconds + 3600, ...claims };
      return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT' }).sign(privateKey);
    },
  };
  return { signer, verifier };
}

/**
 * `arbiter token`: mint a signed token for development and tests, with the
 * dev key set in `dev/` or a private JWK file. Never a production tool: real
 * tokens come from the identity provider.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { parseDuration } from '../../config/reader.js';
import { packageRoot } from '../../paths.js';
import { EXIT, type CliIO } from '../io.js';

export const TOKEN_USAGE = `usage: arbiter token (--dev | --key FILE --iss ISSUER --aud AUDIENCE)
                     [--sub SUB] [--roles R1,R2] [--claim NAME=VALUE ...]
                     [--claims JSON] [--ttl DURATION]

Prints a signed JWT, for development and tests only.

  --dev            sign with the DEV-ONLY key in dev/signing-key.jwk.json, as
                   issuer https://dev.arbiter.invalid for audience arbiter
  --key FILE       a private JWK (with "alg" and "kid") to sign with
  --iss, --aud     issuer and audience (default to the dev ones with --dev)
  --sub SUB        subject (default: alice)
  --roles LIST     comma-separated roles, as the "roles" claim
  --claim N=V      a string claim (repeatable)
  --claims JSON    more claims, as a JSON object
  --ttl DURATION   lifetime, e.g. 15m, 1h (default: 1h)`;

/** The dev issuer and audience of dev/arbiter.yaml. */
export const DEV_ISSUER = 'https://dev.arbiter.invalid';
export const DEV_AUDIENCE = 'arbiter';

export async function runToken(argv: readonly string[], io: CliIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        dev: { type: 'boolean', default: false },
        key: { type: 'string' },
        iss: { type: 'string' },
        aud: { type: 'string' },
        sub: { type: 'string', default: 'alice' },
        roles: { type: 'string' },
        claim: { type: 'string', multiple: true },
        claims: { type: 'string' },
        ttl: { type: 'string', default: '1h' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.stderr.write(`arbiter token: ${(e as Error).message}\n\n${TOKEN_USAGE}\n`);
    return EXIT.USAGE;
  }
  if (values.help) {
    io.stdout.write(`${TOKEN_USAGE}\n`);
    return EXIT.OK;
  }
  const usage = (m: string): number => {
    io.stderr.write(`arbiter token: ${m}\n`);
    return EXIT.USAGE;
  };
  if (values.dev === (values.key !== undefined)) return usage('give exactly one of --dev and --key FILE');
  const keyFile = values.dev ? join(packageRoot(), 'dev', 'signing-key.jwk.json') : values.key!;
  const iss = values.iss ?? (values.dev ? DEV_ISSUER : undefined);
  const aud = values.aud ?? (values.dev ? DEV_AUDIENCE : undefined);
  if (iss === undefined || aud === undefined) return usage('--iss and --aud are required with --key');
  const ttl = parseDuration(values.ttl);
  if (ttl === undefined || ttl <= 0) return usage('--ttl must be a duration such as 15m or 1h');

  const claims: Record<string, unknown> = {};
  if (values.claims !== undefined) {
    let extra: unknown;
    try {
      extra = JSON.parse(values.claims);
    } catch {
      return usage('--claims must be a JSON object');
    }
    if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) return usage('--claims must be a JSON object');
    Object.assign(claims, extra);
  }
  for (const c of values.claim ?? []) {
    const eq = c.indexOf('=');
    if (eq <= 0) return usage(`--claim ${JSON.stringify(c)} must be NAME=VALUE`);
    claims[c.slice(0, eq)] = c.slice(eq + 1);
  }
  if (values.roles !== undefined) claims['roles'] = values.roles.split(',').map((r) => r.trim()).filter((r) => r !== '');

  let jwk: JWK;
  try {
    jwk = JSON.parse(await readFile(keyFile, 'utf8')) as JWK;
  } catch (e) {
    return usage(`cannot read the key ${keyFile}: ${(e as NodeJS.ErrnoException).code ?? 'not a JSON JWK'}`);
  }
  if (typeof jwk.alg !== 'string') return usage(`the key ${keyFile} has no "alg"`);
  let key;
  try {
    key = await importJWK(jwk, jwk.alg);
  } catch (e) {
    return usage(`the key ${keyFile} cannot be used to sign: ${(e as Error).message}`);
  }
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT(claims as JWTPayload)
    .setProtectedHeader({ alg: jwk.alg, typ: 'JWT', ...(jwk.kid === undefined ? {} : { kid: jwk.kid }) })
    .setIssuer(iss)
    .setAudience(aud)
    .setSubject(values.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + Math.ceil(ttl))
    .setJti(crypto.randomUUID())
    .sign(key);
  if (values.dev) io.stderr.write('arbiter token: signed with the DEV-ONLY key in dev/ (never trusted in production)\n');
  io.stdout.write(`${token}\n`);
  return EXIT.OK;
}

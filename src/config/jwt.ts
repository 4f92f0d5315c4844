/**
 * The `jwt` section of the config: trusted issuers, their keys, claim
 * mapping, the subject cache and the revocation list. HMAC secrets are read
 * here, from a file or an environment variable named in the config, and
 * never appear in an error message.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkKeyUrl } from '../jwt/keys.js';
import {
  DEFAULT_ASYMMETRIC_ALGORITHMS,
  DEFAULT_HMAC_ALGORITHMS,
  isHmacAlgorithm,
  SUPPORTED_ALGORITHMS,
  VERIFIER_DEFAULTS,
  type Algorithm,
  type ClaimMapping,
  type ClaimPath,
  type IssuerOptions,
  type KeySourceOptions,
  type VerifierOptions,
} from '../jwt/options.js';
import { RESERVED_SUBJECT_ATTRIBUTES } from '../jwt/claims.js';
import type { Section } from './reader.js';

const KEY_SOURCES = ['jwks_file', 'jwks_url', 'discovery', 'secret_file', 'secret_env'] as const;

/**
 * Reads the `jwt` section.
 *
 * @throws {ConfigError} naming the key that is wrong
 */
export function readJwtSection(s: Section, env: Readonly<Record<string, string | undefined>>): VerifierOptions {
  s.allowOnly(['issuers', 'max_token_bytes', 'cache', 'revocation_file', 'file_poll']);
  const issuers = s.sections('issuers').map((i) => readIssuer(i, env));
  if (issuers.length === 0) throw s.error('issuers', 'must list at least one trusted issuer');
  const names = new Set<string>();
  const isses = new Set<string>();
  for (const [i, issuer] of issuers.entries()) {
    const section = s.sections('issuers')[i];
    if (names.has(issuer.name)) throw section!.error('name', `repeats issuer name \`${issuer.name}\``);
    if (isses.has(issuer.issuer)) throw section!.error('issuer', 'repeats an issuer already configured');
    names.add(issuer.name);
    isses.add(issuer.issuer);
  }
  const cache = s.section('cache');
  cache.allowOnly(['max_entries', 'ttl']);
  const revocationFile = s.filePath('revocation_file');
  return {
    issuers,
    maxTokenBytes: s.integer('max_token_bytes', VERIFIER_DEFAULTS.maxTokenBytes, 256, 1024 * 1024),
    cache: {
      maxEntries: cache.integer('max_entries', VERIFIER_DEFAULTS.cacheMaxEntries, 0, 10_000_000),
      ttlSeconds: cache.duration('ttl', VERIFIER_DEFAULTS.cacheTtlSeconds),
    },
    ...(revocationFile === undefined ? {} : { revocationFile }),
    filePollSeconds: s.duration('file_poll', VERIFIER_DEFAULTS.filePollSeconds),
  };
}

function readIssuer(s: Section, env: Readonly<Record<string, string | undefined>>): IssuerOptions {
  s.allowOnly([
    'name', 'issuer', 'audiences', 'algorithms', ...KEY_SOURCES, 'clock_tolerance', 'max_token_age', 'required_claims',
    'claims', 'refresh_interval', 'unknown_kid_cooldown', 'fetch_timeout', 'allow_insecure_http',
  ]);
  const issuer = s.requiredString('issuer');
  const given = s.string('name');
  if (given !== undefined && !isLabel(given)) throw s.error('name', 'must be at most 64 letters, digits or `._:/-` (it is a metrics label)');
  const name = given ?? defaultName(issuer);
  const audiences = s.stringList('audiences', []);
  if (audiences.length === 0) {
    throw s.error('audiences', "is required: list the `aud` values meant for this service (without an audience check, a token minted for any other application would be accepted)");
  }
  const allowInsecureHttp = s.boolean('allow_insecure_http', false);
  const keys = readKeySource(s, issuer, allowInsecureHttp, env);
  const algorithms = readAlgorithms(s, keys.kind === 'secret');
  return {
    name,
    issuer,
    audiences,
    algorithms,
    keys,
    clockToleranceSeconds: s.duration('clock_tolerance', VERIFIER_DEFAULTS.clockToleranceSeconds),
    ...(s.has('max_token_age') ? { maxTokenAgeSeconds: s.duration('max_token_age', 0) } : {}),
    requiredClaims: s.stringList('required_claims', VERIFIER_DEFAULTS.requiredClaims),
    claims: readClaimMapping(s.section('claims')),
    refreshIntervalSeconds: Math.max(1, s.duration('refresh_interval', VERIFIER_DEFAULTS.refreshIntervalSeconds)),
    unknownKidCooldownSeconds: s.duration('unknown_kid_cooldown', VERIFIER_DEFAULTS.unknownKidCooldownSeconds),
    fetchTimeoutSeconds: Math.max(0.001, s.duration('fetch_timeout', VERIFIER_DEFAULTS.fetchTimeoutSeconds)),
    allowInsecureHttp,
  };
}

function isLabel(s: string): boolean {
  return s.length <= 64 && /^[A-Za-z0-9._:/-]+$/.test(s);
}

/** The issuer itself when it fits a metrics label, else its host and a short hash (Azure AD's are 75 characters). */
function defaultName(issuer: string): string {
  if (isLabel(issuer)) return issuer;
  let host = 'issuer';
  try {
    host = new URL(issuer).host.replace(/[^A-Za-z0-9.-]/g, '').slice(0, 48) || host;
  } catch {
    // Not a URL: the hash alone names it.
  }
  return `${host}-${createHash('sha256').update(issuer).digest('hex').slice(0, 12)}`;
}

function readKeySource(s: Section, issuer: string, allowInsecureHttp: boolean, env: Readonly<Record<string, string | undefined>>): KeySourceOptions {
  const given = KEY_SOURCES.filter((k) => s.has(k));
  if (given.length !== 1) {
    throw s.error(given[1], given.length === 0
      ? `needs one key source: ${KEY_SOURCES.map((k) => `\`${k}\``).join(', ')}`
      : `conflicts with \`${given[0]}\`: an issuer has exactly one key source`);
  }
  const kind = given[0]!;
  switch (kind) {
    case 'jwks_file':
      return { kind, path: s.filePath(kind)! };
    case 'jwks_url': {
      const url = s.requiredString(kind);
      const problem = checkKeyUrl(url, allowInsecureHttp);
      if (problem !== undefined) throw s.error(kind, problem);
      return { kind, url };
    }
    case 'discovery': {
      // `discovery: true` derives the URL from the issuer (OpenID Connect Discovery 1.0 §4).
      const raw = s.raw(kind);
      const url = raw === true ? `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration` : s.string(kind);
      if (url === undefined) throw s.error(kind, 'must be `true` or the discovery document URL');
      const problem = checkKeyUrl(url, allowInsecureHttp);
      if (problem !== undefined) throw s.error(kind, problem);
      return { kind, url };
    }
    case 'secret_file': {
      const path = s.filePath(kind)!;
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (e) {
        throw s.error(kind, `names a file that cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      // A trailing newline from `echo secret > file` is not part of the secret.
      const secret = trimNewline(bytes);
      checkSecret(s, kind, secret);
      return { kind: 'secret', secret, origin: `file ${path}` };
    }
    case 'secret_env': {
      const variable = s.requiredString(kind);
      const value = env[variable];
      if (value === undefined || value === '') throw s.error(kind, `names environment variable \`${variable}\`, which is not set`);
      const secret = new Uint8Array(Buffer.from(value, 'utf8'));
      checkSecret(s, kind, secret);
      return { kind: 'secret', secret, origin: `environment variable ${variable}` };
    }
  }
}

function trimNewline(b: Buffer): Uint8Array {
  let end = b.length;
  while (end > 0 && (b[end - 1] === 0x0a || b[end - 1] === 0x0d)) end--;
  return new Uint8Array(b.subarray(0, end));
}

function checkSecret(s: Section, key: string, secret: Uint8Array): void {
  if (secret.length < VERIFIER_DEFAULTS.minSecretBytes) {
    throw s.error(key, `gives a secret shorter than ${VERIFIER_DEFAULTS.minSecretBytes} bytes (RFC 7518 §3.2 asks for at least the hash size)`);
  }
}

function readAlgorithms(s: Section, hasSecret: boolean): Algorithm[] {
  const fallback = hasSecret ? DEFAULT_HMAC_ALGORITHMS : DEFAULT_ASYMMETRIC_ALGORITHMS;
  const list = s.stringList('algorithms', fallback);
  for (const alg of list) {
    if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(alg)) {
      throw s.error('algorithms', `names \`${alg}\`, which is not supported (one of ${SUPPORTED_ALGORITHMS.join(', ')})`);
    }
    if (isHmacAlgorithm(alg) !== hasSecret) {
      throw s.error('algorithms', hasSecret
        ? `names \`${alg}\`, but this issuer has a secret: only HS256, HS384 and HS512 can be verified with it`
        : `names \`${alg}\`, but HMAC algorithms need \`secret_file\` or \`secret_env\` (with a public key they would allow algorithm confusion)`);
    }
  }
  return list as Algorithm[];
}

/**
 * A claim path: a string is split on dots (`realm_access.roles`), except a
 * URL-like name (`https://example.com/roles`, Auth0's namespaced claims), which
 * is one claim; a list is taken literally, segment by segment, for any other
 * claim name that contains dots.
 */
function readClaimPath(s: Section, key: string | number, v: unknown): ClaimPath {
  // A URL-like name (an Auth0 namespaced claim) is one claim, never a dotted path.
  if (typeof v === 'string' && v.includes('://')) return [v];
  if (typeof v === 'string' && v !== '' && !v.split('.').includes('')) return v.split('.');
  if (Array.isArray(v) && v.length > 0 && v.every((p) => typeof p === 'string' && p !== '')) return v as string[];
  throw s.error(key, 'must be a claim path: `a.b.c`, a namespaced claim `https://example.com/roles`, or a list of literal claim names `["a.b", "c"]`');
}

function readClaimPaths(s: Section, key: string, fallback: readonly ClaimPath[]): ClaimPath[] {
  if (!s.has(key)) return [...fallback];
  const v = s.raw(key);
  const items = Array.isArray(v) && v.some((x) => Array.isArray(x)) ? v : typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined;
  if (items === undefined) throw s.error(key, 'must be a claim path or a list of claim paths');
  return items.map((item) => readClaimPath(s, key, item));
}

function readClaimMapping(s: Section): ClaimMapping {
  s.allowOnly(['roles', 'strip_prefix', 'rename', 'lowercase', 'scopes', 'attributes']);
  const rename = new Map<string, string>();
  for (const [from, to] of s.entries('rename')) {
    if (typeof to !== 'string' || to === '') throw s.section('rename').error(from, 'must be the new role name');
    rename.set(from, to);
  }
  const attributes = new Map<string, ClaimPath>();
  const attrSection = s.section('attributes');
  for (const [name, path] of s.entries('attributes')) {
    if ((RESERVED_SUBJECT_ATTRIBUTES as readonly string[]).includes(name)) throw attrSection.error(name, 'is filled by Arbiter itself; choose another attribute name');
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) throw attrSection.error(name, 'is not a valid attribute name (a letter, then letters, digits and `_`)');
    attributes.set(name, readClaimPath(attrSection, name, path));
  }
  const stripPrefix = s.string('strip_prefix');
  return {
    roles: readClaimPaths(s, 'roles', [['roles']]),
    ...(stripPrefix === undefined ? {} : { stripPrefix }),
    rename,
    lowercase: s.boolean('lowercase', false),
    scopes: readClaimPaths(s, 'scopes', [['scope'], ['scp']]),
    attributes,
  };
}

/**
 * The config file: a full valid `arbiter.yaml` read into VerifierOptions, and
 * every kind of mistake refused with the key's dotted path and `file:line:col`.
 * Real files in temporary directories; nothing mocked.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/config.js';
import { parseDuration } from '../../src/config/reader.js';
import { ConfigError } from '../../src/errors.js';
import type { IssuerOptions, VerifierOptions } from '../../src/jwt/options.js';
import { tempDir } from '../jwt/fixtures.js';

/** YAML from lines (keeps line numbers easy to read off). */
const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

/** The 1-based line of the first line carrying the `#<` marker. */
function markedLine(text: string): number {
  const i = text.split('\n').findIndex((l) => l.includes('#<'));
  if (i < 0) throw new Error('test YAML has no #< marker');
  return i + 1;
}

/** The ConfigError thrown by `fn` (fails the test when none is thrown). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

async function configErrorAsync(p: Promise<unknown>): Promise<ConfigError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ConfigError);
  return e as ConfigError;
}

/** `file:line:col` at the start of a message. */
function position(message: string, file = 'arbiter.yaml'): { line: number; col: number } {
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${escaped}:(\\d+):(\\d+): `).exec(message);
  expect(m, `message should start with ${file}:line:col: — got: ${message}`).not.toBeNull();
  return { line: Number(m![1]), col: Number(m![2]) };
}

const BASE_DIR = '/etc/arbiter';
const parse = (text: string, env: Record<string, string | undefined> = {}, baseDir = BASE_DIR) => parseConfig(text, 'arbiter.yaml', baseDir, env);

/** A strong-enough HMAC secret (40 bytes). */
const GOOD_SECRET = 'ci-secret-0123456789-abcdefghijklmnopqrs';

describe('loadConfig: a full valid config', () => {
  it('parses several issuers (every key source) into the expected VerifierOptions', async () => {
    const dir = tempDir('arbiter-config-');
    mkdirSync(join(dir, 'secrets'));
    const legacySecret = 'legacy-hmac-secret-0123456789abcdefghij'; // 39 bytes
    // `echo secret > file` leaves a newline that is not part of the secret.
    writeFileSync(join(dir, 'secrets', 'legacy.key'), `${legacySecret}\n`);
    const path = join(dir, 'arbiter.yaml');
    writeFileSync(
      path,
      yaml(
        '# Arbiter test config',
        'policies: ./policies',
        'jwt:',
        '  cache:',
        '    max_entries: 500',
        '    ttl: 1m',
        '  revocation_file: revoked.json',
        '  file_poll: 250ms',
        '  issuers:',
        '    - name: keycloak',
        '      issuer: https://sso.test/realms/acme',
        '      audiences: [arbiter]',
        '      jwks_file: keys/keycloak.json',
        '      claims:',
        '        roles: [realm_access.roles, resource_access.arbiter.roles]',
        '        attributes:',
        '          department: department',
        '    - name: auth0',
        '      issuer: https://acme.eu.auth0.com/',
        '      audiences: ["https://api.acme.test", arbiter]',
        '      jwks_url: https://acme.eu.auth0.com/.well-known/jwks.json',
        '      algorithms: [RS256, ES384]',
        '      clock_tolerance: 5m',
        '      max_token_age: 1h',
        '      refresh_interval: 30s',
        '      unknown_kid_cooldown: 250ms',
        '      fetch_timeout: 2s',
        '      claims:',
        '        roles: [["https://example.com/roles"]]',
        '        scopes: [scope, permissions]',
        '        attributes:',
        '          email: ["https://example.com/email"]',
        '    - name: okta',
        '      issuer: https://acme.okta.com/oauth2/default/',
        '      audiences: [api://default]',
        '      discovery: true',
        '      claims:',
        '        roles: groups',
        '        strip_prefix: app_',
        '        lowercase: true',
        '        rename:',
        '          Everyone: member',
        '    - name: legacy',
        '      issuer: https://legacy.acme.test',
        '      audiences: [arbiter, arbiter-legacy]',
        '      secret_file: secrets/legacy.key',
        '      required_claims: [sub, exp, jti]',
        '    - name: ci',
        '      issuer: https://ci.acme.test',
        '      audiences: [arbiter]',
        '      secret_env: ARBITER_CI_SECRET',
        '      algorithms: [HS512]',
        '      clock_tolerance: 0',
      ),
    );
    const config = await loadConfig(path, { ARBITER_CI_SECRET: GOOD_SECRET });

    expect(config.policies).toBe(join(dir, 'policies'));
    const defaults = {
      clockToleranceSeconds: 30,
      requiredClaims: ['sub', 'exp'],
      refreshIntervalSeconds: 600,
      unknownKidCooldownSeconds: 30,
      fetchTimeoutSeconds: 5,
      allowInsecureHttp: false,
    };
    const defaultClaims = { roles: [['roles']], rename: new Map(), lowercase: false, scopes: [['scope'], ['scp']], attributes: new Map() };
    const expected: VerifierOptions = {
      issuers: [
        {
          ...defaults,
          name: 'keycloak',
          issuer: 'https://sso.test/realms/acme',
          audiences: ['arbiter'],
          algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
          keys: { kind: 'jwks_file', path: join(dir, 'keys', 'keycloak.json') },
          claims: {
            ...defaultClaims,
            roles: [['realm_access', 'roles'], ['resource_access', 'arbiter', 'roles']],
            attributes: new Map([['department', ['department']]]),
          },
        },
        {
          ...defaults,
          name: 'auth0',
          issuer: 'https://acme.eu.auth0.com/',
          audiences: ['https://api.acme.test', 'arbiter'],
          algorithms: ['RS256', 'ES384'],
          keys: { kind: 'jwks_url', url: 'https://acme.eu.auth0.com/.well-known/jwks.json' },
          clockToleranceSeconds: 300,
          maxTokenAgeSeconds: 3600,
          refreshIntervalSeconds: 30,
          unknownKidCooldownSeconds: 0.25,
          fetchTimeoutSeconds: 2,
          claims: {
            ...defaultClaims,
            roles: [['https://example.com/roles']],
            scopes: [['scope'], ['permissions']],
            attributes: new Map([['email', ['https://example.com/email']]]),
          },
        },
        {
          ...defaults,
          name: 'okta',
          issuer: 'https://acme.okta.com/oauth2/default/',
          audiences: ['api://default'],
          algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
          // `discovery: true`: the URL is derived from the issuer, without doubling its trailing slash.
          keys: { kind: 'discovery', url: 'https://acme.okta.com/oauth2/default/.well-known/openid-configuration' },
          claims: { ...defaultClaims, roles: [['groups']], stripPrefix: 'app_', lowercase: true, rename: new Map([['Everyone', 'member']]) },
        },
        {
          ...defaults,
          name: 'legacy',
          issuer: 'https://legacy.acme.test',
          audiences: ['arbiter', 'arbiter-legacy'],
          algorithms: ['HS256', 'HS384', 'HS512'],
          keys: { kind: 'secret', secret: new Uint8Array(Buffer.from(legacySecret)), origin: `file ${join(dir, 'secrets', 'legacy.key')}` },
          requiredClaims: ['sub', 'exp', 'jti'],
          claims: defaultClaims,
        },
        {
          ...defaults,
          name: 'ci',
          issuer: 'https://ci.acme.test',
          audiences: ['arbiter'],
          algorithms: ['HS512'],
          keys: { kind: 'secret', secret: new Uint8Array(Buffer.from(GOOD_SECRET)), origin: 'environment variable ARBITER_CI_SECRET' },
          clockToleranceSeconds: 0,
          claims: defaultClaims,
        },
      ],
      maxTokenBytes: 16384,
      cache: { maxEntries: 500, ttlSeconds: 60 },
      revocationFile: join(dir, 'revoked.json'),
      filePollSeconds: 0.25,
    };
    expect(config.jwt).toEqual(expected);
    // The secret file's trailing newline was trimmed, byte for byte.
    const legacy = config.jwt!.issuers[3]!.keys;
    expect(legacy.kind === 'secret' && Buffer.from(legacy.secret).toString('utf8')).toBe(legacySecret);
  });

  it('fills defaults for an issuer that gives only the required keys', () => {
    const config = parse(yaml('jwt:', '  issuers:', '    - issuer: https://sso.test/realms/acme', '      audiences: [arbiter]', '      jwks_file: jwks.json'));
    const expected: IssuerOptions = {
      name: 'https://sso.test/realms/acme', // the name defaults to the issuer
      issuer: 'https://sso.test/realms/acme',
      audiences: ['arbiter'],
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      keys: { kind: 'jwks_file', path: join(BASE_DIR, 'jwks.json') },
      clockToleranceSeconds: 30,
      requiredClaims: ['sub', 'exp'],
      claims: { roles: [['roles']], rename: new Map(), lowercase: false, scopes: [['scope'], ['scp']], attributes: new Map() },
      refreshIntervalSeconds: 600,
      unknownKidCooldownSeconds: 30,
      fetchTimeoutSeconds: 5,
      allowInsecureHttp: false,
    };
    expect(config.jwt).toEqual({ issuers: [expected], maxTokenBytes: 16384, cache: { maxEntries: 10_000, ttlSeconds: 300 }, filePollSeconds: 10 });
    expect(config.policies).toBeUndefined();
  });

  it('defaults a secret issuer to HS256/384/512 and keeps absolute paths as they are', () => {
    const dir = tempDir('arbiter-config-');
    const secretPath = join(dir, 'hmac.key');
    writeFileSync(secretPath, GOOD_SECRET);
    const config = parse(yaml('policies: /srv/policies', 'jwt:', '  issuers:', '    - issuer: https://hs.test', '      audiences: [arbiter]', `      secret_file: ${secretPath}`), {}, '/somewhere/else');
    expect(config.policies).toBe('/srv/policies');
    const issuer = config.jwt!.issuers[0]!;
    expect(issuer.algorithms).toEqual(['HS256', 'HS384', 'HS512']);
    expect(issuer.keys).toEqual({ kind: 'secret', secret: new Uint8Array(Buffer.from(GOOD_SECRET)), origin: `file ${secretPath}` });
  });

  it('reads an empty file as an empty config, and a config without `jwt` has no verifier options', () => {
    expect(parse('').jwt).toBeUndefined();
    expect(parse('# only a comment\n').policies).toBeUndefined();
    const c = parse(yaml('policies: rules', 'log: {level: info}'));
    expect(c.policies).toBe(join(BASE_DIR, 'rules'));
    expect(c.jwt).toBeUndefined();
  });

  it.each([
    ['30s', 30],
    ['5m', 300],
    ['1h', 3600],
    ['250ms', 0.25],
    ['1d', 86_400],
    ['1.5s', 1.5],
    [' 2m ', 120],
    [45, 45],
    [0, 0],
  ] as const)('reads the duration %j as %d seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
    const value = typeof text === 'number' ? String(text) : JSON.stringify(text);
    const c = parse(yaml('jwt:', '  issuers:', '    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', `      clock_tolerance: ${value}`));
    expect(c.jwt!.issuers[0]!.clockToleranceSeconds).toBe(seconds);
  });

  it.each(['5 minutes', '-5s', '10', 'ms', '1w', '1e3s', '', 'PT5M'])('refuses the malformed duration %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('reads max_token_bytes within its bounds', () => {
    const at = (n: number) => parse(yaml('jwt:', '  max_token_bytes: ' + n, '  issuers:', '    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json'));
    expect(at(8192).jwt!.maxTokenBytes).toBe(8192);
    const e = configError(() => at(100));
    expect(e.key).toBe('jwt.max_token_bytes');
    expect(position(e.message).line).toBe(2);
  });

  it('accepts http key URLs to loopback hosts, and to any host with allow_insecure_http', () => {
    const issuer = (...extra: string[]) => parse(yaml('jwt:', '  issuers:', '    - issuer: https://a.test', '      audiences: [x]', ...extra)).jwt!.issuers[0]!;
    expect(issuer('      jwks_url: http://127.0.0.1:8080/jwks').keys).toEqual({ kind: 'jwks_url', url: 'http://127.0.0.1:8080/jwks' });
    expect(issuer('      jwks_url: http://localhost/jwks').keys).toEqual({ kind: 'jwks_url', url: 'http://localhost/jwks' });
    const insecure = issuer('      jwks_url: http://idp.internal/jwks', '      allow_insecure_http: true');
    expect(insecure.keys).toEqual({ kind: 'jwks_url', url: 'http://idp.internal/jwks' });
    expect(insecure.allowInsecureHttp).toBe(true);
    expect(issuer('      discovery: https://idp.test/custom/openid-configuration').keys).toEqual({ kind: 'discovery', url: 'https://idp.test/custom/openid-configuration' });
  });

  it('refuses to read a config file that does not exist', async () => {
    const dir = tempDir('arbiter-config-');
    const e = await configErrorAsync(loadConfig(join(dir, 'missing.yaml'), {}));
    expect(e.message).toContain('cannot read config file');
    expect(e.message).toContain('ENOENT');
  });

  it('locates errors in the file it loaded (message starts with the path given)', async () => {
    const dir = tempDir('arbiter-config-');
    const path = join(dir, 'arbiter.yaml');
    writeFileSync(path, yaml('policies: p', 'jwt:', '  issuers:', '    - issuer: https://a.test', '      audience: arbiter #<', '      jwks_file: k.json'));
    const e = await configErrorAsync(loadConfig(path, {}));
    expect(e.key).toBe('jwt.issuers[0].audience');
    expect(position(e.message, path).line).toBe(5);
  });
});

interface BadCase {
  readonly name: string;
  readonly text: string;
  readonly key: string;
  /** Expected line; by default the line marked `#<`. */
  readonly line?: number;
  readonly contains?: readonly string[];
  readonly env?: Record<string, string>;
}

/** An issuer list with the given issuer lines (each already indented under `- `). */
const issuers = (...lines: string[]): string => yaml('jwt:', '  issuers:', ...lines);

const BAD_CONFIGS: BadCase[] = [
  {
    name: 'unknown top-level key (did you mean)',
    text: yaml('policies: p', 'decision-log: {} #<'),
    key: 'decision-log',
    contains: ['is not a known key', 'did you mean `decision_log`?'],
  },
  {
    name: 'unknown top-level key, nothing close (lists the known keys)',
    text: yaml('policies: p', 'frobnicate: 1 #<'),
    key: 'frobnicate',
    contains: ['is not a known key', '`policies`', '`jwt`'],
  },
  {
    name: 'unknown issuer key `audience`',
    text: issuers('    - issuer: https://a.test', '      audience: arbiter #<', '      jwks_file: k.json'),
    key: 'jwt.issuers[0].audience',
    contains: ['did you mean `audiences`?'],
  },
  {
    name: 'unknown key in the jwt section',
    text: yaml('jwt:', '  issuer: https://a.test #<'),
    key: 'jwt.issuer',
    contains: ['did you mean `issuers`?'],
  },
  {
    name: 'missing audiences (points at the issuer)',
    text: issuers('    - issuer: https://a.test #<', '      jwks_file: k.json'),
    key: 'jwt.issuers[0].audiences',
    contains: ['is required', 'aud'],
  },
  {
    name: 'empty audiences',
    text: issuers('    - issuer: https://a.test', '      audiences: [] #<', '      jwks_file: k.json'),
    key: 'jwt.issuers[0].audiences',
    contains: ['is required'],
  },
  {
    name: 'missing issuer',
    text: issuers('    - audiences: [x] #<', '      jwks_file: k.json'),
    key: 'jwt.issuers[0].issuer',
    contains: ['is required'],
  },
  {
    name: 'no issuers at all',
    text: yaml('jwt: #<', '  max_token_bytes: 4096'),
    key: 'jwt.issuers',
    contains: ['at least one trusted issuer'],
  },
  {
    name: 'no key source',
    text: issuers('    - issuer: https://a.test #<', '      audiences: [x]'),
    key: 'jwt.issuers[0]',
    contains: ['needs one key source', '`jwks_file`', '`secret_env`'],
  },
  {
    name: 'two key sources',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      jwks_url: https://a.test/jwks #<'),
    key: 'jwt.issuers[0].jwks_url',
    contains: ['conflicts with `jwks_file`', 'exactly one key source'],
  },
  {
    name: 'a JWKS and a secret',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      secret_env: S #<', '      discovery: true'),
    env: { S: GOOD_SECRET },
    key: 'jwt.issuers[0].secret_env',
    contains: ['conflicts with `discovery`'],
  },
  {
    name: 'HS256 for a JWKS issuer (algorithm confusion)',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      algorithms: [RS256, HS256] #<'),
    key: 'jwt.issuers[0].algorithms',
    contains: ['`HS256`', 'algorithm confusion'],
  },
  {
    name: 'HS512 for a discovery issuer',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      discovery: true', '      algorithms: #<', '        - HS512'),
    key: 'jwt.issuers[0].algorithms',
    contains: ['`HS512`', 'algorithm confusion'],
  },
  {
    name: 'RS256 for a secret issuer',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      secret_env: S', '      algorithms: [HS256, RS256] #<'),
    env: { S: GOOD_SECRET },
    key: 'jwt.issuers[0].algorithms',
    contains: ['`RS256`', 'only HS256, HS384 and HS512'],
  },
  {
    name: 'unsupported algorithm `none`',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      algorithms: [none] #<'),
    key: 'jwt.issuers[0].algorithms',
    contains: ['`none`', 'not supported'],
  },
  {
    name: 'unsupported algorithm `rs256` (case matters)',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      algorithms: [rs256] #<'),
    key: 'jwt.issuers[0].algorithms',
    contains: ['not supported'],
  },
  {
    name: 'secret_env naming an unset variable',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      secret_env: ARBITER_NO_SUCH_SECRET #<'),
    key: 'jwt.issuers[0].secret_env',
    contains: ['`ARBITER_NO_SUCH_SECRET`', 'not set'],
  },
  {
    name: 'secret_env naming an empty variable',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      secret_env: EMPTY #<'),
    env: { EMPTY: '' },
    key: 'jwt.issuers[0].secret_env',
    contains: ['not set'],
  },
  {
    name: 'secret_file that does not exist',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      secret_file: /nonexistent/arbiter/hmac.key #<'),
    key: 'jwt.issuers[0].secret_file',
    contains: ['cannot be read', 'ENOENT'],
  },
  {
    name: 'http jwks_url to a non-loopback host',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_url: http://idp.example.com/jwks #<'),
    key: 'jwt.issuers[0].jwks_url',
    contains: ['must be https', 'allow_insecure_http'],
  },
  {
    name: 'discovery: true for an http issuer',
    text: issuers('    - issuer: http://idp.example.com/realms/a', '      audiences: [x]', '      discovery: true #<'),
    key: 'jwt.issuers[0].discovery',
    contains: ['must be https'],
  },
  {
    name: 'jwks_url that is not a URL',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_url: idp.example.com/jwks #<'),
    key: 'jwt.issuers[0].jwks_url',
    contains: ['is not a URL'],
  },
  {
    name: 'discovery: false',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      discovery: false #<'),
    key: 'jwt.issuers[0].discovery',
  },
  {
    name: 'duplicate issuer names',
    text: issuers(
      '    - name: idp',
      '      issuer: https://a.test',
      '      audiences: [x]',
      '      jwks_file: a.json',
      '    - name: idp #<',
      '      issuer: https://b.test',
      '      audiences: [x]',
      '      jwks_file: b.json',
    ),
    key: 'jwt.issuers[1].name',
    contains: ['repeats issuer name `idp`'],
  },
  {
    name: 'duplicate issuer strings',
    text: issuers(
      '    - name: one',
      '      issuer: https://a.test',
      '      audiences: [x]',
      '      jwks_file: a.json',
      '    - name: two',
      '      issuer: https://a.test #<',
      '      audiences: [y]',
      '      jwks_file: b.json',
    ),
    key: 'jwt.issuers[1].issuer',
    contains: ['repeats an issuer'],
  },
  {
    name: 'issuer name that cannot be a metrics label',
    text: issuers('    - name: my idp #<', '      issuer: https://a.test', '      audiences: [x]', '      jwks_file: a.json'),
    key: 'jwt.issuers[0].name',
    contains: ['metrics label'],
  },
  {
    name: 'reserved attribute name `roles`',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      claims:', '        attributes:', '          roles: realm_access.roles #<'),
    key: 'jwt.issuers[0].claims.attributes.roles',
    contains: ['is filled by Arbiter itself'],
  },
  {
    name: 'reserved attribute name `sub`',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      claims:', '        attributes:', '          sub: oid #<'),
    key: 'jwt.issuers[0].claims.attributes.sub',
  },
  {
    name: 'attribute name that policies cannot name',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      claims:', '        attributes:', '          first-name: given_name #<'),
    key: 'jwt.issuers[0].claims.attributes.first-name',
    contains: ['not a valid attribute name'],
  },
  {
    name: 'claim path with an empty segment',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      claims:', '        roles: realm_access..roles #<'),
    key: 'jwt.issuers[0].claims.roles',
    contains: ['must be a claim path'],
  },
  {
    name: 'claim path that is a number',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      claims:', '        scopes: 5 #<'),
    key: 'jwt.issuers[0].claims.scopes',
  },
  {
    name: 'unknown claims key',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      claims:', '        role: roles #<'),
    key: 'jwt.issuers[0].claims.role',
    contains: ['did you mean `roles`?'],
  },
  {
    name: 'rename to a non-string',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      claims:', '        rename:', '          ROLE_X: 5 #<'),
    key: 'jwt.issuers[0].claims.rename.ROLE_X',
  },
  {
    name: 'bad duration',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      clock_tolerance: 5 minutes #<'),
    key: 'jwt.issuers[0].clock_tolerance',
    contains: ['must be a duration'],
  },
  {
    name: 'negative duration',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      max_token_age: -1 #<'),
    key: 'jwt.issuers[0].max_token_age',
  },
  {
    name: 'bad cache ttl',
    text: yaml('jwt:', '  cache:', '    ttl: forever #<', '  issuers:', '    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json'),
    key: 'jwt.cache.ttl',
  },
  {
    name: 'allow_insecure_http that is not a boolean',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      allow_insecure_http: yes please #<'),
    key: 'jwt.issuers[0].allow_insecure_http',
    contains: ['must be true or false'],
  },
  {
    name: 'issuers that is not a list',
    text: yaml('jwt:', '  issuers: https://a.test #<'),
    key: 'jwt.issuers',
    contains: ['must be a list'],
  },
  {
    name: 'issuer that is not a mapping',
    text: issuers('    - https://a.test #<'),
    key: 'jwt.issuers[0]',
    contains: ['must be a mapping'],
  },
  {
    name: 'YAML syntax error',
    text: yaml('policies: [a, b', 'jwt: {'),
    key: '',
    line: 2,
  },
  {
    name: 'YAML syntax error: bad indentation',
    text: yaml('policies: p', 'jwt:', '  issuers:', '    - issuer: https://a.test', '     audiences: [x] #<'),
    key: '',
  },
  {
    name: 'duplicate YAML keys (top level)',
    text: yaml('policies: a', 'policies: b #<'),
    key: '',
    contains: ['unique'],
  },
  {
    name: 'duplicate YAML keys (inside an issuer)',
    text: issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '      audiences: [y] #<'),
    key: '',
    contains: ['unique'],
  },
  {
    name: 'a root that is not a mapping',
    text: yaml('- policies #<'),
    key: '',
    contains: ['must be a mapping'],
  },
];

describe('parseConfig: bad configs', () => {
  it.each(BAD_CONFIGS)('$name', ({ text, key, line, contains, env }) => {
    const e = configError(() => parse(text, env ?? {}));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.key).toBe(key);
    const pos = position(e.message);
    expect(pos.line).toBe(line ?? markedLine(text));
    expect(pos.col).toBeGreaterThanOrEqual(1);
    for (const c of contains ?? []) expect(e.message).toContain(c);
  });

  it('names a YAML syntax error by line and column', () => {
    const e = configError(() => parse(yaml('policies: p', 'jwt:', '  issuers: [', '    {issuer: a')));
    expect(e.message).toMatch(/^arbiter\.yaml:\d+:\d+: \S/);
  });

  it('refuses YAML aliases (no billion-laughs expansion)', () => {
    const lol = yaml('a: &a [x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]', 'policies: *c');
    for (const text of [
      yaml('policies: &p ./policies', 'log: *p'),
      lol,
      issuers('    - &idp', '      issuer: https://a.test', '      audiences: [x]', '      jwks_file: k.json', '    - *idp'),
    ]) {
      const e = configError(() => parse(text));
      expect(e.code).toBe('CONFIG_INVALID');
      expect(e.message.startsWith('arbiter.yaml')).toBe(true);
      expect(e.message).toMatch(/alias/i);
    }
  });

  // Regression test, fixed (was): ConfigDocument.root() (src/config/reader.ts) reports a refused alias as
  // `arbiter.yaml: Alias resolution is disabled`, without the line and column
  // every other config error (and ConfigError's contract) has.
  it('points an alias refusal at the line of the alias', () => {
    const text = yaml('policies: &p ./policies', 'log: *p #<');
    const e = configError(() => parse(text));
    expect(position(e.message).line).toBe(markedLine(text));
  });

  it('accepts an http jwks_url to a non-loopback host only with allow_insecure_http', () => {
    const lines = ['    - issuer: https://a.test', '      audiences: [x]', '      jwks_url: http://idp.example.com/jwks'];
    expect(configError(() => parse(issuers(...lines))).key).toBe('jwt.issuers[0].jwks_url');
    expect(parse(issuers(...lines, '      allow_insecure_http: true')).jwt!.issuers[0]!.keys).toEqual({ kind: 'jwks_url', url: 'http://idp.example.com/jwks' });
  });

  it('refuses credentials in a key URL without echoing them', () => {
    const e = configError(() => parse(issuers('    - issuer: https://a.test', '      audiences: [x]', '      jwks_url: https://admin:s3cr3t-pa55@idp.test/jwks')));
    expect(e.key).toBe('jwt.issuers[0].jwks_url');
    expect(e.message).toContain('credentials');
    expect(e.message).not.toContain('s3cr3t-pa55');
  });
});

describe('secrets never appear in config errors', () => {
  const SHORT = 'hunter2-sup3r-s3cret'; // 20 bytes

  it('secret_env too short: names the variable, not its value', () => {
    const text = issuers('    - issuer: https://a.test', '      audiences: [x]', '      secret_env: ARBITER_HMAC #<');
    const e = configError(() => parse(text, { ARBITER_HMAC: SHORT }));
    expect(e.key).toBe('jwt.issuers[0].secret_env');
    expect(position(e.message).line).toBe(markedLine(text));
    expect(e.message).toContain('shorter than 32 bytes');
    expect(e.message).not.toContain(SHORT);
    expect(String(e)).not.toContain(SHORT);
    expect(JSON.stringify(e)).not.toContain(SHORT);
  });

  it('secret_file too short: names the file, not its contents (trailing newline not counted)', () => {
    const dir = tempDir('arbiter-config-');
    const secret = 'Yv3_'.repeat(7) + 'Yv3'; // 31 bytes
    const distinctive = 'Zq8-' + 'k'.repeat(27); // 31 bytes, recognisable
    writeFileSync(join(dir, 'short.key'), `${distinctive}\n`); // 32 bytes with the newline, 31 without
    writeFileSync(join(dir, 'shorter.key'), secret);
    for (const file of ['short.key', 'shorter.key']) {
      const text = issuers('    - issuer: https://a.test', '      audiences: [x]', `      secret_file: ${file} #<`);
      const e = configError(() => parse(text, {}, dir));
      expect(e.key).toBe('jwt.issuers[0].secret_file');
      expect(position(e.message).line).toBe(markedLine(text));
      expect(e.message).toContain('shorter than 32 bytes');
      expect(e.message).not.toContain(distinctive);
      expect(e.message).not.toContain(secret);
    }
  });

  it('a 32-byte secret is enough', () => {
    const secret = 'k'.repeat(32);
    const c = parse(issuers('    - issuer: https://a.test', '      audiences: [x]', '      secret_env: S'), { S: secret });
    expect(c.jwt!.issuers[0]!.keys).toMatchObject({ kind: 'secret', origin: 'environment variable S' });
  });
});

describe('issuer names', () => {
  // Regression test, fixed (was): readIssuer (src/config/jwt.ts) defaults `name` to the issuer and then
  // checks it as a metrics label of at most 64 characters. An Azure AD v2
  // issuer (`https://login.microsoftonline.com/<tenant-guid>/v2.0`, 75
  // characters) without `name` is refused with an error about `name`, a key
  // the file does not contain.
  it('accepts an Azure AD v2 issuer without an explicit name', () => {
    const c = parse(issuers('    - issuer: https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0', '      audiences: [api://arbiter]', '      jwks_file: k.json'));
    expect(c.jwt!.issuers[0]!.issuer).toBe('https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0');
  });

  it('accepts the same issuer with an explicit name', () => {
    const c = parse(issuers('    - name: azure', '      issuer: https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0', '      audiences: [api://arbiter]', '      jwks_file: k.json'));
    expect(c.jwt!.issuers[0]!.name).toBe('azure');
  });
});

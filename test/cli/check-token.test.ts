/**
 * `arbiter check --token`: real keys, real signed tokens, a real config file
 * per identity provider, the shipped policies; run in process through `main`
 * and as the `arbiter` binary. No mocks, no sleeps.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeKey, makeSecret, seconds, sign, tempDir, writeJson, jwksOf, type AsymmetricAlg, type TestKey } from '../jwt/fixtures.js';
import { runCli } from './run-cli.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'arbiter.js');
const POLICIES = join(import.meta.dirname, '..', '..', 'policies');

/** The shipped example (alice, an editor in engineering, reads spec-42) without its subject: the token supplies it. */
const EXAMPLE_PATH = join(POLICIES, 'examples', 'alice-reads-spec.json');
const { subject: EXAMPLE_SUBJECT, ...EXAMPLE_REQUEST } = JSON.parse(readFileSync(EXAMPLE_PATH, 'utf8')) as Record<string, unknown> & {
  subject: { sub: string; roles: string[]; department: string };
};

interface Result {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs the CLI in process. `env` replaces process.env (no stray ARBITER_CONFIG). */
async function cli(argv: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<Result> {
  return runCli(argv, { ...(options.stdin === undefined ? {} : { stdin: options.stdin }), env: options.env ?? {} });
}

/** process.env without ARBITER_CONFIG, so that only what a test says is used. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['ARBITER_CONFIG'];
  return env;
}

/** Runs the real binary; a non-zero exit is a result, not a throw. */
async function bin(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  const env = options.env ?? cleanEnv();
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

/** Neither the token nor any of its parts is printed. */
function expectNoToken(r: Result, token: string): void {
  for (const part of [token, ...token.split('.').slice(1)]) {
    if (part.length < 16) continue;
    expect(r.out).not.toContain(part);
    expect(r.err).not.toContain(part);
  }
}

function decisionOf(r: Result): Record<string, unknown> & { decision: string; reason: string; rules: string[] } {
  expect(r.code, `stderr: ${r.err}`).toBe(0);
  return JSON.parse(r.out) as Record<string, unknown> & { decision: string; reason: string; rules: string[] };
}

interface Provider {
  readonly name: string;
  readonly issuer: string;
  readonly audience: string;
  readonly alg: AsymmetricAlg;
  /** YAML lines of the issuer's `claims:` section. */
  readonly claims: readonly string[];
  /** Claims of a token the example policies ALLOW for the example request. */
  readonly allow: Record<string, unknown>;
  /** Claims of a token they DENY, and how. */
  readonly deny: Record<string, unknown>;
  readonly denied: { reason: string; rules: string[] };
}

const PROVIDERS: Provider[] = [
  {
    name: 'keycloak',
    issuer: 'https://sso.test/realms/acme',
    audience: 'arbiter',
    alg: 'RS256',
    claims: ['roles: [realm_access.roles, resource_access.arbiter.roles]', 'attributes:', '  department: department'],
    allow: {
      sub: 'alice',
      azp: 'arbiter',
      realm_access: { roles: ['offline_access', 'uma_authorization'] },
      resource_access: { arbiter: { roles: ['editor'] }, account: { roles: ['manage-account'] } },
      scope: 'openid profile',
      department: 'engineering',
    },
    // An editor, but of another department.
    deny: { sub: 'alice', realm_access: { roles: ['offline_access'] }, resource_access: { arbiter: { roles: ['editor'] } }, department: 'sales' },
    denied: { reason: 'NO_MATCHING_RULE', rules: [] },
  },
  {
    name: 'auth0',
    issuer: 'https://acme.eu.auth0.com/',
    audience: 'https://api.acme.test',
    alg: 'ES256',
    claims: ['roles: [["https://example.com/roles"]]', 'scopes: [scope, permissions]', 'attributes:', '  department: ["https://example.com/department"]'],
    allow: {
      sub: 'auth0|64f1c0de',
      aud: ['https://api.acme.test', 'https://acme.eu.auth0.com/userinfo'],
      'https://example.com/roles': ['editor'],
      'https://example.com/department': 'engineering',
      permissions: ['read:documents'],
      scope: 'openid',
    },
    // A viewer: no rule lets a viewer read an internal document.
    deny: { sub: 'auth0|64f1c0de', 'https://example.com/roles': ['viewer'], 'https://example.com/department': 'engineering' },
    denied: { reason: 'NO_MATCHING_RULE', rules: [] },
  },
  {
    name: 'azure',
    issuer: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
    audience: 'api://arbiter',
    alg: 'PS256',
    claims: ['rename:', '  Document.Editor: editor', '  Document.Reader: viewer', 'attributes:', '  department: ["extn.department"]', '  object_id: oid', '  tenant: tid'],
    allow: {
      sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
      oid: '00000000-0000-0000-66f3-3332eca7ea81',
      tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      roles: ['Document.Editor'],
      scp: 'Files.Read User.Read',
      'extn.department': 'engineering',
    },
    deny: { sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ', roles: ['Document.Reader'], 'extn.department': 'engineering' },
    denied: { reason: 'NO_MATCHING_RULE', rules: [] },
  },
  {
    name: 'okta',
    issuer: 'https://acme.okta.com/oauth2/default',
    audience: 'api://default',
    alg: 'EdDSA',
    claims: ['roles: groups', 'strip_prefix: app_', 'lowercase: true', 'attributes:', '  department: department', '  suspended: suspended'],
    allow: { sub: '00u1abcd2EFGH3ijk4x7', groups: ['Everyone', 'app_Editor'], scp: ['openid'], department: 'engineering', suspended: false },
    // The same editor, suspended: the `suspended` forbid overrides the permit.
    deny: { sub: '00u1abcd2EFGH3ijk4x7', groups: ['Everyone', 'app_Editor'], department: 'engineering', suspended: true },
    denied: { reason: 'RULE_FORBID', rules: ['document.suspended'] },
  },
];

interface Setup {
  readonly dir: string;
  readonly config: string;
  readonly key: TestKey;
}

/** Writes a JWKS, an arbiter.yaml (`policies:` absolute, `jwks_file:` relative to it) and returns their paths. */
function writeProviderConfig(p: Provider, key: TestKey): Setup {
  const dir = tempDir(`arbiter-check-${p.name}-`);
  writeJson(dir, 'jwks.json', jwksOf(key));
  const config = join(dir, 'arbiter.yaml');
  writeFileSync(
    config,
    [
      `policies: ${POLICIES}`,
      'jwt:',
      '  issuers:',
      `    - name: ${p.name}`,
      `      issuer: ${JSON.stringify(p.issuer)}`,
      `      audiences: [${JSON.stringify(p.audience)}]`,
      '      jwks_file: jwks.json',
      `      algorithms: [${p.alg}]`,
      '      claims:',
      ...p.claims.map((l) => `        ${l}`),
      '',
    ].join('\n'),
  );
  return { dir, config, key };
}

const setups = new Map<string, Setup>();
let requestFile: string;

beforeAll(async () => {
  const shared = tempDir('arbiter-check-request-');
  requestFile = writeJson(shared, 'request.json', EXAMPLE_REQUEST);
  for (const p of PROVIDERS) setups.set(p.name, writeProviderConfig(p, await makeKey(p.alg, `${p.name}-key-1`)));
});

const setup = (name: string): Setup => setups.get(name)!;
const provider = (name: string): Provider => PROVIDERS.find((p) => p.name === name)!;

/** A token for `p`, valid now (or at `now` ms). */
function tokenFor(p: Provider, claims: Record<string, unknown>, now?: number): Promise<string> {
  return sign(setup(p.name).key, { claims: { iss: p.issuer, aud: p.audience, ...claims }, ...(now === undefined ? {} : { now }) });
}

describe('arbiter check --token: provider claim mappings against the shipped policies', () => {
  it('the example request is an ALLOW with its own subject (sanity check of the fixture)', async () => {
    expect(EXAMPLE_SUBJECT).toEqual({ sub: 'alice', roles: ['editor'], department: 'engineering' });
    const d = decisionOf(await cli(['check', '--policies', POLICIES, '--input', EXAMPLE_PATH]));
    expect(d).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['document.dept_editors'] });
  });

  describe.each(PROVIDERS)('$name', (p) => {
    it('ALLOWs a token whose roles and department the policies permit (in process)', async () => {
      const token = await tokenFor(p, p.allow);
      const r = await cli(['check', '--config', setup(p.name).config, '--token', token, '--input', requestFile]);
      const d = decisionOf(r);
      const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')).exp as number;
      expect(d).toMatchObject({
        decision: 'ALLOW',
        reason: 'RULE_PERMIT',
        rules: ['document.dept_editors'],
        subject: { issuer: p.name, sub: p.allow['sub'], expiresAt: exp * 1000, cached: false },
      });
      expect(d['revision']).toMatch(/^[0-9a-f]{16}$/);
      expect(d).not.toHaveProperty('message');
      expectNoToken(r, token);
    });

    it(`DENYs a token whose claims the policies do not permit (${p.denied.reason})`, async () => {
      const token = await tokenFor(p, p.deny);
      const r = await cli(['check', '--config', setup(p.name).config, '--token', token, '--input', requestFile]);
      expect(decisionOf(r)).toMatchObject({ decision: 'DENY', ...p.denied, subject: { issuer: p.name, sub: p.deny['sub'] } });
      expectNoToken(r, token);
    });
  });

  it('the real binary: --policies, --config, --token and --input (ALLOW and DENY)', async () => {
    const p = provider('keycloak');
    const allowToken = await tokenFor(p, p.allow);
    const allowed = await bin(['check', '--policies', 'policies', '--config', setup(p.name).config, '--token', allowToken, '--input', requestFile]);
    expect(decisionOf(allowed)).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['document.dept_editors'], subject: { issuer: 'keycloak', sub: 'alice', cached: false } });
    expectNoToken(allowed, allowToken);

    const denyToken = await tokenFor(p, p.deny);
    const denied = await bin(['check', '--policies', 'policies', '--config', setup(p.name).config, '--token', denyToken, '--input', requestFile]);
    expect(decisionOf(denied)).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE', rules: [] });
    expectNoToken(denied, denyToken);
  });

  it('the real binary: Okta forbid with --token-file and ARBITER_CONFIG', async () => {
    const p = provider('okta');
    const token = await tokenFor(p, p.deny);
    const file = join(setup(p.name).dir, 'token.jwt');
    writeFileSync(file, `${token}\n`);
    const r = await bin(['check', '--policies', POLICIES, '--token-file', file, '--input', requestFile], {
      env: { ...cleanEnv(), ARBITER_CONFIG: setup(p.name).config },
    });
    expect(decisionOf(r)).toMatchObject({ decision: 'DENY', reason: 'RULE_FORBID', rules: ['document.suspended'], subject: { issuer: 'okta' } });
    expectNoToken(r, token);
  });
});

describe('arbiter check --token: tokens that fail verification', () => {
  it('an expired token is a DENY with reason TOKEN_EXPIRED and exit code 0', async () => {
    const p = provider('keycloak');
    const token = await tokenFor(p, p.allow, Date.now() - 2 * 3600_000); // expired 1h50m ago
    const r = await cli(['check', '--config', setup(p.name).config, '--token', token, '--input', requestFile]);
    expect(r.code).toBe(0);
    const d = decisionOf(r);
    expect(d).toMatchObject({ decision: 'DENY', reason: 'TOKEN_EXPIRED', rules: [], message: 'token has expired' });
    expect(d).not.toHaveProperty('subject');
    expectNoToken(r, token);
  });

  it.each([
    {
      name: 'wrong audience',
      reason: 'TOKEN_WRONG_AUDIENCE',
      token: (p: Provider) => tokenFor(p, { ...p.allow, aud: 'some-other-api' }),
    },
    {
      name: 'unknown issuer',
      reason: 'TOKEN_UNKNOWN_ISSUER',
      token: (p: Provider) => tokenFor(p, { ...p.allow, iss: 'https://evil.test/realms/acme' }),
    },
    {
      name: 'HS256 for a JWKS issuer (algorithm confusion)',
      reason: 'TOKEN_ALG_CONFUSION',
      token: async (p: Provider) => sign({ secret: await makeSecret(32) }, { claims: { ...p.allow, iss: p.issuer, aud: p.audience } }),
    },
    {
      name: 'signed by another key with the same kid',
      reason: 'TOKEN_INVALID_SIGNATURE',
      token: async (p: Provider) => sign(await makeKey('RS256', 'keycloak-key-1'), { claims: { ...p.allow, iss: p.issuer, aud: p.audience } }),
    },
    {
      name: 'missing sub',
      reason: 'TOKEN_MISSING_CLAIM',
      token: (p: Provider) => tokenFor(p, { ...p.allow, sub: undefined }),
    },
    {
      name: 'roles of the wrong shape',
      reason: 'TOKEN_INVALID_CLAIM',
      token: (p: Provider) => tokenFor(p, { ...p.allow, realm_access: { roles: 'editor' }, resource_access: { arbiter: { roles: [{ name: 'editor' }] } } }),
    },
    {
      name: 'not a JWT',
      reason: 'TOKEN_MALFORMED',
      token: async () => 'eyJhbGciOiJSUzI1NiJ9.bm90LWpzb24tYXQtYWxsLWJ1dC1sb25n.c2lnbmF0dXJlLXRoYXQtaXMtbm90',
    },
  ])('$name → DENY $reason, exit 0, token not echoed', async ({ reason, token: make }) => {
    const p = provider('keycloak');
    const token = await make(p);
    const r = await cli(['check', '--config', setup(p.name).config, '--token', token, '--input', requestFile]);
    expect(decisionOf(r)).toMatchObject({ decision: 'DENY', reason, rules: [] });
    expectNoToken(r, token);
  });

  it('an HMAC issuer whose secret comes from the environment given to the CLI', async () => {
    const dir = tempDir('arbiter-check-hmac-');
    const secret = Buffer.from(await makeSecret(48)).toString('base64url');
    const config = join(dir, 'arbiter.yaml');
    writeFileSync(
      config,
      ['jwt:', '  issuers:', '    - name: legacy', '      issuer: https://legacy.test', '      audiences: [arbiter]', '      secret_env: ARBITER_TEST_HMAC', '      claims:', '        attributes:', '          department: dept', ''].join('\n'),
    );
    const token = await sign({ secret: new Uint8Array(Buffer.from(secret, 'utf8')), alg: 'HS384' }, { claims: { iss: 'https://legacy.test', aud: 'arbiter', roles: ['editor'], dept: 'engineering' } });
    const r = await cli(['check', '--policies', POLICIES, '--config', config, '--token', token, '--input', requestFile], { env: { ARBITER_TEST_HMAC: secret } });
    expect(decisionOf(r)).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', subject: { issuer: 'legacy', sub: 'alice' } });
    expectNoToken(r, token);
    expect(r.out + r.err).not.toContain(secret);
  });
});

describe('arbiter check --token: --now', () => {
  const T0 = Date.parse('2025-06-02T09:00:00Z'); // long past: the token (exp T0 + 10 min) is expired by the wall clock

  it('checks token times as of --now: valid then, expired by the wall clock', async () => {
    const p = provider('auth0');
    const token = await tokenFor(p, p.allow, T0);
    expect(seconds(T0) + 600).toBeLessThan(seconds(Date.now()));
    const base = ['check', '--config', setup(p.name).config, '--token', token, '--input', requestFile];

    const then = await cli([...base, '--now', '2025-06-02T09:05:00Z']);
    expect(decisionOf(then)).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', subject: { issuer: 'auth0', expiresAt: T0 + 600_000 } });
    expectNoToken(then, token);

    const wallClock = await cli(base);
    expect(decisionOf(wallClock)).toMatchObject({ decision: 'DENY', reason: 'TOKEN_EXPIRED' });

    const later = await cli([...base, '--now', '2025-06-02T09:20:00Z']);
    expect(decisionOf(later)).toMatchObject({ decision: 'DENY', reason: 'TOKEN_EXPIRED' });

    const before = await cli([...base, '--now', '2025-06-02T08:00:00Z']);
    expect(decisionOf(before)).toMatchObject({ decision: 'DENY', reason: 'TOKEN_ISSUED_IN_FUTURE' });
  });

  it('applies the clock tolerance (30s by default) at --now', async () => {
    const p = provider('auth0');
    const token = await tokenFor(p, p.allow, T0);
    const base = ['check', '--config', setup(p.name).config, '--token', token, '--input', requestFile];
    expect(decisionOf(await cli([...base, '--now', '2025-06-02T09:10:20Z'])).decision).toBe('ALLOW'); // 20s past exp
    expect(decisionOf(await cli([...base, '--now', '2025-06-02T09:10:45Z'])).reason).toBe('TOKEN_EXPIRED'); // 45s past exp
  });

  it('the real binary honours --now for token times', async () => {
    const p = provider('azure');
    const token = await tokenFor(p, p.allow, T0);
    const r = await bin(['check', '--policies', 'policies', '--config', setup(p.name).config, '--token', token, '--input', requestFile, '--now', '2025-06-02T09:01:00Z']);
    expect(decisionOf(r)).toMatchObject({ decision: 'ALLOW', subject: { issuer: 'azure' } });
    expectNoToken(r, token);
  });
});

describe('arbiter check --token: --token-file', () => {
  it('reads the token from a file (trailing newline trimmed)', async () => {
    const p = provider('azure');
    const token = await tokenFor(p, p.allow);
    const file = join(setup(p.name).dir, 'allow.jwt');
    writeFileSync(file, `${token}\n`);
    const r = await cli(['check', '--config', setup(p.name).config, '--token-file', file, '--input', requestFile]);
    expect(decisionOf(r)).toMatchObject({ decision: 'ALLOW', subject: { issuer: 'azure', sub: p.allow['sub'] } });
    expectNoToken(r, token);
  });

  it('reads the token from standard input with --token-file - when the request is a file', async () => {
    const p = provider('okta');
    const token = await tokenFor(p, p.allow);
    const r = await cli(['check', '--config', setup(p.name).config, '--token-file', '-', '--input', requestFile], { stdin: `${token}\n` });
    expect(decisionOf(r)).toMatchObject({ decision: 'ALLOW', subject: { issuer: 'okta' } });
    expectNoToken(r, token);
  });

  it('refuses --token-file - when the request also comes from standard input', async () => {
    const p = provider('okta');
    const r = await cli(['check', '--config', setup(p.name).config, '--token-file', '-'], { stdin: 'x' });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
  });

  it('refuses --token together with --token-file', async () => {
    const p = provider('okta');
    const token = await tokenFor(p, p.allow);
    const file = join(setup(p.name).dir, 'both.jwt');
    writeFileSync(file, token);
    const r = await cli(['check', '--config', setup(p.name).config, '--token', token, '--token-file', file, '--input', requestFile]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('not both');
    expectNoToken(r, token);
  });

  it('a token file that does not exist is exit 2, not a crash', async () => {
    const p = provider('okta');
    const r = await cli(['check', '--config', setup(p.name).config, '--token-file', join(setup(p.name).dir, 'nope.jwt'), '--input', requestFile]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('ENOENT');
  });
});

describe('arbiter check --token: usage and config errors', () => {
  it('--token without any config: exit 2 with a clear message (real binary, empty working directory)', async () => {
    const p = provider('keycloak');
    const token = await tokenFor(p, p.allow);
    const cwd = mkdtempSync(join(tmpdir(), 'arbiter-check-noconfig-'));
    const r = await bin(['check', '--policies', POLICIES, '--token', token, '--input', requestFile], { cwd });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('--token needs a config file with a `jwt` section');
    expectNoToken(r, token);
  });

  it('--token with a config that has no jwt section: exit 2 naming the file', async () => {
    const p = provider('keycloak');
    const token = await tokenFor(p, p.allow);
    const dir = tempDir('arbiter-check-nojwt-');
    const config = join(dir, 'arbiter.yaml');
    writeFileSync(config, `policies: ${POLICIES}\n`);
    for (const r of [
      await cli(['check', '--config', config, '--token', token, '--input', requestFile]),
      await cli(['check', '--token', token, '--input', requestFile], { env: { ARBITER_CONFIG: config } }),
    ]) {
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toContain(`--token needs a \`jwt\` section in ${config}`);
      expectNoToken(r, token);
    }
  });

  it('a request with `subject` together with --token: exit 2 naming field `subject`', async () => {
    const p = provider('keycloak');
    const token = await tokenFor(p, p.allow);
    // The shipped example carries its own subject.
    const r = await cli(['check', '--config', setup(p.name).config, '--token', token, '--input', EXAMPLE_PATH]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('invalid request (field subject)');
    expectNoToken(r, token);
    // An empty subject is still a subject.
    const r2 = await cli(['check', '--config', setup(p.name).config, '--token', token], { stdin: JSON.stringify({ ...EXAMPLE_REQUEST, subject: {} }) });
    expect(r2.code).toBe(2);
    expect(r2.err).toContain('field subject');
  });

  it('a bad config: exit 3 with file:line:col of the offending key', async () => {
    const p = provider('keycloak');
    const token = await tokenFor(p, p.allow);
    const dir = tempDir('arbiter-check-badconfig-');
    writeJson(dir, 'jwks.json', jwksOf(setup(p.name).key));
    const config = join(dir, 'arbiter.yaml');
    writeFileSync(
      config,
      [`policies: ${POLICIES}`, 'jwt:', '  issuers:', '    - name: keycloak', `      issuer: ${p.issuer}`, '      audience: [arbiter]', '      jwks_file: jwks.json', ''].join('\n'),
    );
    const r = await cli(['check', '--config', config, '--token', token, '--input', requestFile]);
    expect(r.code).toBe(3);
    expect(r.out).toBe('');
    expect(r.err.startsWith(`arbiter check: ${config}:6:`)).toBe(true);
    expect(r.err).toContain('`jwt.issuers[0].audience` is not a known key; did you mean `audiences`?');
    expectNoToken(r, token);

    // The real binary says the same.
    const b = await bin(['check', '--config', config, '--token', token, '--input', requestFile]);
    expect(b.code).toBe(3);
    expect(b.err).toMatch(new RegExp(`^arbiter check: ${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:\\d+: `));
    expectNoToken(b, token);
  });

  it('a YAML syntax error in the config: exit 3 with line:col', async () => {
    const dir = tempDir('arbiter-check-badyaml-');
    const config = join(dir, 'arbiter.yaml');
    writeFileSync(config, `policies: ${POLICIES}\njwt:\n  issuers: [\n    {issuer: x\n`);
    const r = await cli(['check', '--config', config, '--input', requestFile]);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/^arbiter check: .*arbiter\.yaml:\d+:\d+: /);
  });

  it('a too-short HMAC secret: exit 3, and the secret is not printed', async () => {
    const dir = tempDir('arbiter-check-shortsecret-');
    const config = join(dir, 'arbiter.yaml');
    const short = 'pa55w0rd-n0t-l0ng-en0ugh';
    writeFileSync(join(dir, 'hmac.key'), short);
    writeFileSync(config, ['jwt:', '  issuers:', '    - issuer: https://legacy.test', '      audiences: [arbiter]', '      secret_file: hmac.key', ''].join('\n'));
    const r = await cli(['check', '--policies', POLICIES, '--config', config, '--token', 'x.y.z', '--input', requestFile]);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`${config}:5:`);
    expect(r.err).toContain('shorter than 32 bytes');
    expect(r.err).not.toContain(short);
  });

  it('a JWKS file that does not exist: exit 3', async () => {
    const p = provider('keycloak');
    const token = await tokenFor(p, p.allow);
    const dir = tempDir('arbiter-check-nojwks-');
    const config = join(dir, 'arbiter.yaml');
    writeFileSync(config, ['jwt:', '  issuers:', `    - issuer: ${p.issuer}`, '      audiences: [arbiter]', '      jwks_file: missing.json', ''].join('\n'));
    const r = await cli(['check', '--policies', POLICIES, '--config', config, '--token', token, '--input', requestFile]);
    expect(r.code).toBe(3);
    expect(r.out).toBe('');
    expect(r.err).toContain('ENOENT');
    expectNoToken(r, token);
  });

  it('a config that does not exist: exit 3', async () => {
    const r = await cli(['check', '--policies', POLICIES, '--config', join(tempDir('arbiter-check-'), 'missing.yaml'), '--input', requestFile]);
    expect(r.code).toBe(3);
    expect(r.err).toContain('cannot read config file');
  });
});

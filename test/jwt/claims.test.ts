/**
 * Claim mapping: provider-shaped token payloads (Keycloak, Auth0, Azure AD,
 * Okta, Cognito) → subject attributes, with each mapping read from YAML the way
 * `arbiter.yaml` gives it; then the shapes that must reject a token, and the
 * config side of claim paths.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.js';
import { ConfigError, TokenError } from '../../src/errors.js';
import { formatClaimPath, mapClaims, MAX_CLAIM_DEPTH, readPath, type JsonValue } from '../../src/jwt/claims.js';
import type { ClaimMapping } from '../../src/jwt/options.js';
import { DEFAULT_MAPPING } from './fixtures.js';

/** The claim mapping of an issuer whose `claims:` section is `lines` (indented as under `claims:`). */
function mappingFrom(...lines: string[]): ClaimMapping {
  const text = ['jwt:', '  issuers:', '    - issuer: https://idp.test', '      audiences: [arbiter]', '      jwks_file: jwks.json', ...(lines.length === 0 ? [] : ['      claims:', ...lines.map((l) => `        ${l}`)])].join('\n');
  return parseConfig(`${text}\n`, 'arbiter.yaml', '/etc/arbiter', {}).jwt!.issuers[0]!.claims;
}

/** The TokenError thrown by `fn`. */
function tokenError(fn: () => unknown): TokenError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TokenError);
    return e as TokenError;
  }
  throw new Error('expected a TokenError, but the claims were accepted');
}

interface ProviderCase {
  readonly name: string;
  readonly mapping: readonly string[];
  readonly payload: Record<string, JsonValue>;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  /** Named attributes expected on the subject (besides sub/iss/roles/scopes/claims). */
  readonly attributes?: Record<string, JsonValue>;
}

const PROVIDERS: ProviderCase[] = [
  {
    name: 'Keycloak: realm roles + client roles, scope string',
    mapping: ['roles: [realm_access.roles, resource_access.arbiter-api.roles]', 'attributes:', '  department: department', '  username: preferred_username'],
    payload: {
      iss: 'https://sso.test/realms/acme',
      sub: 'f:9c1b:alice',
      azp: 'arbiter-api',
      realm_access: { roles: ['offline_access', 'uma_authorization', 'editor'] },
      resource_access: { 'arbiter-api': { roles: ['auditor', 'editor'] }, account: { roles: ['manage-account'] } },
      scope: 'openid profile  email',
      preferred_username: 'alice',
      department: 'engineering',
    },
    roles: ['offline_access', 'uma_authorization', 'editor', 'auditor'],
    scopes: ['openid', 'profile', 'email'],
    attributes: { department: 'engineering', username: 'alice' },
  },
  {
    name: 'Auth0: namespaced roles claim as a literal path, permissions + scope',
    mapping: ['roles: [["https://example.com/roles"]]', 'scopes: [scope, permissions]', 'attributes:', '  department: ["https://example.com/department"]', '  email: ["https://example.com/email"]'],
    payload: {
      iss: 'https://acme.eu.auth0.com/',
      sub: 'auth0|64f1c0de',
      aud: ['https://api.acme.test', 'https://acme.eu.auth0.com/userinfo'],
      'https://example.com/roles': ['editor', 'viewer'],
      'https://example.com/department': 'engineering',
      'https://example.com/email': 'alice@example.com',
      // What a dotted path would read instead: must not be used.
      https: { '//example': { com: ['admin'] } },
      permissions: ['read:documents', 'write:documents'],
      scope: 'openid read:documents',
    },
    roles: ['editor', 'viewer'],
    scopes: ['openid', 'read:documents', 'write:documents'],
    attributes: { department: 'engineering', email: 'alice@example.com' },
  },
  {
    name: 'Azure AD: app roles renamed, scp string, oid/tid as named attributes',
    mapping: ['rename:', '  Document.Editor: editor', '  Document.Reader: viewer', 'attributes:', '  object_id: oid', '  tenant: tid'],
    payload: {
      iss: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
      sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
      oid: '00000000-0000-0000-66f3-3332eca7ea81',
      tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      roles: ['Document.Editor', 'Document.Reader', 'Task.Write'],
      scp: 'Files.Read User.Read',
    },
    roles: ['editor', 'viewer', 'Task.Write'],
    scopes: ['Files.Read', 'User.Read'],
    attributes: { object_id: '00000000-0000-0000-66f3-3332eca7ea81', tenant: '72f988bf-86f1-41af-91ab-2d7cd011db47' },
  },
  {
    name: 'Okta: groups as roles, scp as a list',
    mapping: ['roles: groups', 'rename:', '  Everyone: member', 'lowercase: true'],
    payload: {
      iss: 'https://acme.okta.com/oauth2/default',
      sub: '00u1abcd2EFGH3ijk4x7',
      groups: ['Everyone', 'Editor', 'Engineering'],
      scp: ['openid', 'documents.read'],
    },
    roles: ['member', 'editor', 'engineering'],
    scopes: ['openid', 'documents.read'],
  },
  {
    name: 'Cognito: `cognito:groups`, custom attributes',
    mapping: ['roles: cognito:groups', 'attributes:', '  department: custom:department'],
    payload: {
      iss: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI',
      sub: '3f1c2b9e-8d7a-4e6f-9a0b-1c2d3e4f5a6b',
      'cognito:groups': ['editor'],
      'cognito:username': 'alice',
      'custom:department': 'engineering',
      scope: 'aws.cognito.signin.user.admin',
    },
    roles: ['editor'],
    scopes: ['aws.cognito.signin.user.admin'],
    attributes: { department: 'engineering' },
  },
  {
    name: 'Spring-style: strip_prefix + rename + lowercase',
    mapping: ['strip_prefix: ROLE_', 'lowercase: true', 'rename:', '  ROLE_SUPERUSER: admin'],
    payload: { sub: 'svc', roles: ['ROLE_ADMIN', 'ROLE_Editor', 'VIEWER', 'ROLE_SUPERUSER', 'ROLE_'] },
    // ROLE_ADMIN → admin; ROLE_SUPERUSER renamed → admin (deduplicated); `ROLE_` strips to nothing and is dropped.
    roles: ['admin', 'editor', 'viewer'],
    scopes: [],
  },
  {
    name: 'roles deduplicated across several paths, a single string counts as one role',
    mapping: ['roles: [realm_access.roles, resource_access.app.roles, role]'],
    payload: { sub: 'a', realm_access: { roles: ['editor', 'viewer'] }, resource_access: { app: { roles: ['editor'] } }, role: 'viewer' },
    roles: ['editor', 'viewer'],
    scopes: [],
  },
  {
    name: 'no roles claim at all: no roles, no error',
    mapping: ['roles: realm_access.roles'],
    payload: { sub: 'a', roles: ['admin'] },
    roles: [],
    scopes: [],
  },
  {
    name: 'default mapping reads `roles`, `scope` and `scp`, deduplicated',
    mapping: [],
    payload: { sub: 'a', roles: 'admin', scope: 'a b', scp: ['b', 'c'] },
    roles: ['admin'],
    scopes: ['a', 'b', 'c'],
  },
];

describe('mapClaims: provider-shaped payloads', () => {
  it.each(PROVIDERS)('$name', ({ mapping, payload, roles, scopes, attributes }) => {
    const subject = mapClaims(payload, mappingFrom(...mapping));
    expect(subject['sub']).toBe(payload['sub']);
    if (payload['iss'] !== undefined) expect(subject['iss']).toBe(payload['iss']);
    else expect(subject).not.toHaveProperty('iss');
    expect(subject['roles']).toEqual(roles);
    expect(subject['scopes']).toEqual(scopes);
    // Every claim is kept under `subject.claims`.
    expect(subject['claims']).toEqual(payload);
    const named = Object.fromEntries(Object.entries(subject).filter(([k]) => !['sub', 'iss', 'roles', 'scopes', 'claims'].includes(k)));
    expect(named).toEqual(attributes ?? {});
  });

  it('leaves out a named attribute whose claim is absent, and keeps a structured one as is', () => {
    const mapping = mappingFrom('attributes:', '  department: department', '  address: address', '  zip: address.postal_code');
    const subject = mapClaims({ sub: 'a', address: { postal_code: '75001', country: 'FR' } }, mapping);
    expect(subject).not.toHaveProperty('department');
    expect(subject['address']).toEqual({ postal_code: '75001', country: 'FR' });
    expect(subject['zip']).toBe('75001');
  });

  it('does not read through lists or scalars on the way to a claim', () => {
    const mapping = mappingFrom('roles: [realm_access.roles, a.length]');
    expect(mapClaims({ sub: 'x', realm_access: [{ roles: ['admin'] }], a: 'str' }, mapping)['roles']).toEqual([]);
  });
});

describe('mapClaims: claims of the wrong shape reject the token', () => {
  it.each([
    { name: 'roles a list with a number', mapping: [], payload: { sub: 'a', roles: ['editor', 7] }, path: 'roles' },
    { name: 'roles an object', mapping: [], payload: { sub: 'a', roles: { admin: true } }, path: 'roles' },
    { name: 'roles a boolean', mapping: [], payload: { sub: 'a', roles: true }, path: 'roles' },
    { name: 'roles a list of lists', mapping: [], payload: { sub: 'a', roles: [['admin']] }, path: 'roles' },
    { name: 'Keycloak realm roles null', mapping: ['roles: realm_access.roles'], payload: { sub: 'a', realm_access: { roles: null } }, path: 'realm_access.roles' },
    { name: 'Auth0 roles an object', mapping: ['roles: [["https://example.com/roles"]]'], payload: { sub: 'a', 'https://example.com/roles': { 0: 'admin' } }, path: '"https://example.com/roles"' },
    { name: 'scp a number', mapping: [], payload: { sub: 'a', scp: 42 }, path: 'scp' },
    { name: 'scope a list with null', mapping: [], payload: { sub: 'a', scope: ['read', null] }, path: 'scope' },
  ] as { name: string; mapping: string[]; payload: Record<string, JsonValue>; path: string }[])('$name → TOKEN_INVALID_CLAIM naming the claim', ({ mapping, payload, path }) => {
    const e = tokenError(() => mapClaims(payload, mappingFrom(...mapping)));
    expect(e.code).toBe('TOKEN_INVALID_CLAIM');
    expect(e.message).toContain(`\`${path}\``);
  });

  it('does not reject a wrongly shaped claim that the mapping does not read', () => {
    const subject = mapClaims({ sub: 'a', groups: { weird: [1, 2] }, roles: ['editor'] }, DEFAULT_MAPPING);
    expect(subject['roles']).toEqual(['editor']);
  });
});

describe('mapClaims: `__proto__` and other inherited names', () => {
  it('a claim named `__proto__` is just a claim: nothing is polluted', () => {
    const payload = JSON.parse('{"sub":"mallory","roles":["viewer"],"__proto__":{"roles":["admin"],"isAdmin":true,"suspended":false}}') as Record<string, JsonValue>;
    expect(Object.hasOwn(payload, '__proto__')).toBe(true);
    const subject = mapClaims(payload, mappingFrom('attributes:', '  department: department'));
    expect(subject['roles']).toEqual(['viewer']);
    expect(Object.getPrototypeOf(subject)).toBe(Object.prototype);
    expect((subject as Record<string, unknown>)['isAdmin']).toBeUndefined();
    expect(subject).not.toHaveProperty('department');
    expect(({} as Record<string, unknown>)['isAdmin']).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>)['roles']).toBeUndefined();
    // The claim stays a plain own property under `claims`.
    const claims = subject['claims'] as Record<string, JsonValue>;
    expect(Object.getPrototypeOf(claims)).toBe(Object.prototype);
    expect(Object.hasOwn(claims, '__proto__')).toBe(true);
  });

  it('a mapping that names `__proto__` reads the own claim, never Object.prototype', () => {
    const mapping = mappingFrom('roles: [["__proto__", "roles"]]', 'attributes:', '  proto: ["__proto__"]', '  ctor: constructor.name', '  str: toString');
    const own = JSON.parse('{"sub":"a","__proto__":{"roles":["editor"]}}') as Record<string, JsonValue>;
    const fromOwn = mapClaims(own, mapping);
    expect(fromOwn['roles']).toEqual(['editor']);
    expect(fromOwn['proto']).toEqual({ roles: ['editor'] });
    // A payload without such a claim: the inherited `__proto__`, `constructor` and `toString` are not claims.
    const plain = mapClaims({ sub: 'a' }, mapping);
    expect(plain['roles']).toEqual([]);
    expect(plain).not.toHaveProperty('proto');
    expect(plain).not.toHaveProperty('ctor');
    expect(plain).not.toHaveProperty('str');
    expect(readPath({ sub: 'a' }, ['constructor'])).toBeUndefined();
    expect(readPath({ sub: 'a' }, ['hasOwnProperty'])).toBeUndefined();
  });

  // Regression test, fixed (was): readClaimMapping (src/config/jwt.ts) lets `__proto__` through as an
  // attribute name (the name check is /^[A-Za-z_][A-Za-z0-9_]*$/), and
  // mapClaims (src/jwt/claims.ts, `subject[name] = value`) then assigns to
  // `subject.__proto__`, replacing the subject's prototype with a
  // token-controlled object (and dropping the attribute). It should be refused
  // at config time, or stored as an own property.
  it('an attribute named `__proto__` is refused or kept as an own property', () => {
    let mapping: ClaimMapping;
    try {
      mapping = mappingFrom('attributes:', '  __proto__: evil');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return;
    }
    const subject = mapClaims({ sub: 'a', evil: { isAdmin: true } }, mapping);
    expect(Object.getPrototypeOf(subject)).toBe(Object.prototype);
    expect(Object.hasOwn(subject, '__proto__')).toBe(true);
  });
});

describe('mapClaims: nesting depth', () => {
  /** An object nested `levels` deep (1 = `{}`), built without recursion. */
  function nested(levels: number, list = false): JsonValue {
    let v: JsonValue = list ? [] : {};
    for (let i = 1; i < levels; i++) v = list ? [v] : { a: v };
    return v;
  }

  it(`accepts claims nested ${MAX_CLAIM_DEPTH} levels deep (the payload is the first)`, () => {
    expect(MAX_CLAIM_DEPTH).toBe(16);
    expect(() => mapClaims({ sub: 'a', deep: nested(MAX_CLAIM_DEPTH - 1) }, DEFAULT_MAPPING)).not.toThrow();
    expect(() => mapClaims({ sub: 'a', deep: nested(MAX_CLAIM_DEPTH - 1, true) }, DEFAULT_MAPPING)).not.toThrow();
  });

  it.each([
    ['objects', false],
    ['lists', true],
  ] as const)('rejects %s nested deeper than 16 levels with TOKEN_INVALID_CLAIM', (_name, list) => {
    const e = tokenError(() => mapClaims({ sub: 'a', deep: nested(MAX_CLAIM_DEPTH, list) }, DEFAULT_MAPPING));
    expect(e.code).toBe('TOKEN_INVALID_CLAIM');
    expect(e.message).toContain('16');
  });

  it('rejects very deep nesting without exhausting the stack', () => {
    const e = tokenError(() => mapClaims({ sub: 'a', deep: nested(200_000) }, DEFAULT_MAPPING));
    expect(e.code).toBe('TOKEN_INVALID_CLAIM');
  });

  it('checks depth even in claims the mapping does not read', () => {
    const e = tokenError(() => mapClaims({ sub: 'a', roles: ['editor'], unused: { x: nested(MAX_CLAIM_DEPTH) } }, DEFAULT_MAPPING));
    expect(e.code).toBe('TOKEN_INVALID_CLAIM');
  });
});

describe('claim paths in the config', () => {
  it.each([
    { name: 'default', lines: [], roles: [['roles']], scopes: [['scope'], ['scp']] },
    { name: 'a dotted path', lines: ['roles: realm_access.roles'], roles: [['realm_access', 'roles']] },
    { name: 'a list of dotted paths', lines: ['roles: [realm_access.roles, resource_access.arbiter.roles]'], roles: [['realm_access', 'roles'], ['resource_access', 'arbiter', 'roles']] },
    { name: 'a block list of paths', lines: ['roles:', '  - realm_access.roles', '  - groups'], roles: [['realm_access', 'roles'], ['groups']] },
    { name: 'a literal claim name with dots', lines: ['roles: [["https://example.com/roles"]]'], roles: [['https://example.com/roles']] },
    { name: 'a literal path of several segments', lines: ['roles: [["https://example.com/app", "roles"]]'], roles: [['https://example.com/app', 'roles']] },
    { name: 'dotted and literal paths mixed', lines: ['roles: [realm_access.roles, ["https://example.com/roles"]]'], roles: [['realm_access', 'roles'], ['https://example.com/roles']] },
    { name: 'a name with a colon', lines: ['roles: cognito:groups'], roles: [['cognito:groups']] },
    { name: 'scopes from permissions', lines: ['scopes: [scope, permissions]'], scopes: [['scope'], ['permissions']] },
    { name: 'a single scope path', lines: ['scopes: scp'], scopes: [['scp']] },
  ] as { name: string; lines: string[]; roles?: string[][]; scopes?: string[][] }[])('$name', ({ lines, roles, scopes }) => {
    const mapping = mappingFrom(...lines);
    if (roles !== undefined) expect(mapping.roles).toEqual(roles);
    if (scopes !== undefined) expect(mapping.scopes).toEqual(scopes);
  });

  it('reads named attributes as dotted paths or literal name lists', () => {
    const mapping = mappingFrom('attributes:', '  department: org.department', '  email: ["https://example.com/email"]', '  tenant: tid');
    expect(mapping.attributes).toEqual(
      new Map([
        ['department', ['org', 'department']],
        ['email', ['https://example.com/email']],
        ['tenant', ['tid']],
      ]),
    );
  });

  it('reads strip_prefix, rename and lowercase', () => {
    const mapping = mappingFrom('strip_prefix: ROLE_', 'lowercase: true', 'rename:', '  ROLE_SUPERUSER: admin', '  "group:eng": engineer');
    expect(mapping.stripPrefix).toBe('ROLE_');
    expect(mapping.lowercase).toBe(true);
    expect(mapping.rename).toEqual(new Map([['ROLE_SUPERUSER', 'admin'], ['group:eng', 'engineer']]));
  });

  it.each([
    ['roles: ""', 'jwt.issuers[0].claims.roles'],
    ['roles: .roles', 'jwt.issuers[0].claims.roles'],
    ['roles: [[]]', 'jwt.issuers[0].claims.roles'],
    ['roles: [["a", ""]]', 'jwt.issuers[0].claims.roles'],
    ['roles: {realm: roles}', 'jwt.issuers[0].claims.roles'],
    ['scopes: [scope, 3]', 'jwt.issuers[0].claims.scopes'],
  ])('refuses the claim path `%s`', (line, key) => {
    let error: unknown;
    try {
      mappingFrom(line);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).key).toBe(key);
    expect((error as ConfigError).message).toMatch(/^arbiter\.yaml:7:\d+: /);
  });

  it('formats claim paths for messages, quoting segments with dots', () => {
    expect(formatClaimPath(['realm_access', 'roles'])).toBe('realm_access.roles');
    expect(formatClaimPath(['https://example.com/roles'])).toBe('"https://example.com/roles"');
    expect(formatClaimPath(['resource_access', 'arbiter-api', 'roles'])).toBe('resource_access.arbiter-api.roles');
  });
});

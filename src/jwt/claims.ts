/**
 * Verified claims → subject attributes, per the issuer's mapping:
 *
 * - `sub` → `subject.sub`, `iss` → `subject.iss`;
 * - roles from one or more claim paths (Keycloak `realm_access.roles`,
 *   Auth0 `https://example.com/roles`, Azure AD `roles`, Okta `groups`), with
 *   renames, prefix stripping and lower-casing → `subject.roles`;
 * - `scope` (space-separated) and `scp` (string or list) → `subject.scopes`;
 * - every claim under `subject.claims`, and named attributes from claim paths.
 *
 * A claim that the mapping reads but has the wrong shape (roles that are not
 * strings) rejects the token: silently dropping roles could skip a forbid.
 */
import { TokenError } from '../errors.js';
import type { ClaimMapping, ClaimPath } from './options.js';

/** A JSON value, as claims are. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type SubjectAttributes = Record<string, JsonValue>;

/** Attribute names the mapping fills itself; a named attribute may not take them. */
export const RESERVED_SUBJECT_ATTRIBUTES = ['sub', 'iss', 'roles', 'scopes', 'claims'] as const;

/** Deepest nesting of claim objects and lists accepted (as for request attributes). */
export const MAX_CLAIM_DEPTH = 16;

/**
 * Builds `subject` from verified claims.
 *
 * @throws {TokenError} `TOKEN_INVALID_CLAIM` when a mapped claim has the wrong shape or claims nest too deep
 * @example
 * mapClaims({ sub: 'alice', realm_access: { roles: ['editor'] } }, keycloakMapping)
 * // { sub: 'alice', roles: ['editor'], scopes: [], claims: {...} }
 */
export function mapClaims(payload: Readonly<Record<string, unknown>>, mapping: ClaimMapping): SubjectAttributes {
  checkDepth(payload);
  const claims = payload as { [key: string]: JsonValue };
  const subject: SubjectAttributes = {};
  if (typeof claims['sub'] === 'string') subject['sub'] = claims['sub'];
  if (typeof claims['iss'] === 'string') subject['iss'] = claims['iss'];

  const roles = new Set<string>();
  for (const path of mapping.roles) {
    for (const raw of stringsAt(claims, path)) {
      const role = mapRole(raw, mapping);
      if (role !== '') roles.add(role);
    }
  }
  subject['roles'] = [...roles];

  const scopes = new Set<string>();
  for (const path of mapping.scopes) {
    const value = readPath(claims, path);
    if (typeof value === 'string') {
      for (const s of value.split(' ')) if (s !== '') scopes.add(s);
    } else {
      for (const s of stringsAt(claims, path)) scopes.add(s);
    }
  }
  subject['scopes'] = [...scopes];

  for (const [name, path] of mapping.attributes) {
    const value = readPath(claims, path);
    // defineProperty: whatever the name, it is an own property, never a prototype.
    if (value !== undefined) Object.defineProperty(subject, name, { value, enumerable: true, writable: true, configurable: true });
  }
  subject['claims'] = claims;
  return subject;
}

function mapRole(raw: string, mapping: ClaimMapping): string {
  const renamed = mapping.rename.get(raw);
  if (renamed !== undefined) return renamed;
  let role = raw;
  if (mapping.stripPrefix !== undefined && role.startsWith(mapping.stripPrefix)) role = role.slice(mapping.stripPrefix.length);
  return mapping.lowercase ? role.toLowerCase() : role;
}

/** The strings at `path`: absent → none; a string → it; a list of strings → them; anything else rejects the token. */
function stringsAt(claims: { [key: string]: JsonValue }, path: ClaimPath): string[] {
  const value = readPath(claims, path);
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) return value;
  throw new TokenError('TOKEN_INVALID_CLAIM', `claim \`${formatClaimPath(path)}\` must be a string or a list of strings`);
}

/** Follows `path` through own properties only (a claim named `__proto__` is just a name). */
export function readPath(claims: { [key: string]: JsonValue }, path: ClaimPath): JsonValue | undefined {
  let current: JsonValue | undefined = claims;
  for (const key of path) {
    if (current === null || typeof current !== 'object' || Array.isArray(current) || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

/** A claim path as shown to users: dotted, with segments that contain dots quoted. */
export function formatClaimPath(path: ClaimPath): string {
  return path.map((p) => (/^[A-Za-z0-9_-]+$/.test(p) ? p : JSON.stringify(p))).join('.');
}

function checkDepth(root: unknown): void {
  const stack: [unknown, number][] = [[root, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [value, depth] = item;
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_CLAIM_DEPTH) throw new TokenError('TOKEN_INVALID_CLAIM', `claims are nested deeper than ${MAX_CLAIM_DEPTH} levels`);
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
}

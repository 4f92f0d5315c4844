/**
 * Canonical hashing of request parts for the decision cache: equal JSON
 * values hash equal whatever their key order, and different values (a string
 * "1" and a number 1, a missing key and a null) hash differently.
 *
 * The canonical form is built as one string; a short one is the key itself
 * (the `=` after the revision marks it), a longer one is hashed once with
 * SHA-256 (`:`). The two forms cannot collide.
 */
import { hash } from 'node:crypto';

/**
 * Appends `value` to `out` in a canonical, unambiguous form: type tags,
 * lengths before strings, object keys sorted. Values are request attributes,
 * already bounded in depth by request validation.
 */
export function appendCanonical(out: string[], value: unknown): void {
  if (value === null || value === undefined) {
    out.push(value === null ? 'n' : 'u');
  } else if (typeof value === 'string') {
    out.push(`s${value.length}:`, value);
  } else if (typeof value === 'number') {
    out.push(`d${Object.is(value, -0) ? '0' : String(value)};`);
  } else if (typeof value === 'boolean') {
    out.push(value ? 't' : 'f');
  } else if (Array.isArray(value)) {
    out.push(`[${value.length}:`);
    for (const v of value) appendCanonical(out, v);
    out.push(']');
  } else if (typeof value === 'object') {
    const keys = Object.keys(value).sort();
    out.push(`{${keys.length}:`);
    for (const k of keys) {
      out.push(`k${k.length}:`, k);
      appendCanonical(out, (value as Record<string, unknown>)[k]);
    }
    out.push('}');
  } else {
    // Functions, symbols, bigints never come out of JSON or protobuf; keep them apart anyway.
    out.push(`x${typeof value}`);
  }
}

/**
 * A decision cache key: the policy revision, then each part hashed canonically.
 *
 * @example
 * decisionKey('89ebbf499b0c046d', ['t:' + tokenHash, 'read', resource, context])
 */
export function decisionKey(revision: string, parts: readonly unknown[]): string {
  const out: string[] = [];
  for (const p of parts) appendCanonical(out, p);
  const canonical = out.join('');
  // A short canonical form is its own key (exact, and cheaper than hashing); a long one is hashed,
  // so an entry's key never costs more than a few hundred bytes.
  return canonical.length <= MAX_PLAIN_KEY ? `${revision}=${canonical}` : `${revision}:${hash('sha256', canonical, 'base64url')}`;
}

/** Longest canonical form used as a key as it is. */
const MAX_PLAIN_KEY = 256;

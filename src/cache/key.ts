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
 * `value` in a canonical, unambiguous form: type tags, lengths before
 * strings, object keys sorted. Values are request attributes, already bounded
 * in depth by request validation. Built by concatenation (V8 joins the pieces
 * once, when the key is first hashed).
 */
export function canonical(value: unknown): string {
  if (value === null || value === undefined) return value === null ? 'n' : 'u';
  if (typeof value === 'string') return `s${value.length}:${value}`;
  if (typeof value === 'number') return `d${Object.is(value, -0) ? '0' : String(value)};`;
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (Array.isArray(value)) {
    let out = `[${value.length}:`;
    for (const v of value) out += canonical(v);
    return `${out}]`;
  }
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort();
    let out = `{${keys.length}:`;
    for (const k of keys) out += `k${k.length}:${k}${canonical((value as Record<string, unknown>)[k])}`;
    return `${out}}`;
  }
  // Functions, symbols, bigints never come out of JSON or protobuf; keep them apart anyway.
  return `x${typeof value}`;
}

/**
 * A decision cache key: the policy revision, then each part in canonical form.
 *
 * @example
 * decisionKey('89ebbf499b0c046d', ['t:' + tokenHash, 'read', resource, context])
 */
export function decisionKey(revision: string, parts: readonly unknown[]): string {
  let form = '';
  for (const p of parts) form += canonical(p);
  // A short canonical form is its own key (exact, and cheaper than hashing); a long one is hashed,
  // so an entry's key never costs more than a few hundred bytes.
  return form.length <= MAX_PLAIN_KEY ? `${revision}=${form}` : `${revision}:${hash('sha256', form, 'base64url')}`;
}

/** Longest canonical form used as a key as it is. */
const MAX_PLAIN_KEY = 256;

/**
 * Canonical hashing of request parts for the decision cache: equal JSON
 * values hash equal whatever their key order, and different values (a string
 * "1" and a number 1, a missing key and a null) hash differently.
 */
import { createHash, type Hash } from 'node:crypto';

/**
 * Feeds `value` to `hash` in a canonical, unambiguous form: type tags,
 * lengths before strings, object keys sorted. Values are request attributes,
 * already bounded in depth by request validation.
 */
export function updateCanonical(hash: Hash, value: unknown): void {
  if (value === null || value === undefined) {
    hash.update(value === null ? 'n' : 'u');
  } else if (typeof value === 'string') {
    hash.update(`s${value.length}:`).update(value);
  } else if (typeof value === 'number') {
    hash.update(`d${Object.is(value, -0) ? '0' : String(value)};`);
  } else if (typeof value === 'boolean') {
    hash.update(value ? 't' : 'f');
  } else if (Array.isArray(value)) {
    hash.update(`[${value.length}:`);
    for (const v of value) updateCanonical(hash, v);
    hash.update(']');
  } else if (typeof value === 'object') {
    const keys = Object.keys(value).sort();
    hash.update(`{${keys.length}:`);
    for (const k of keys) {
      hash.update(`k${k.length}:`).update(k);
      updateCanonical(hash, (value as Record<string, unknown>)[k]);
    }
    hash.update('}');
  } else {
    // Functions, symbols, bigints never come out of JSON or protobuf; hash them apart anyway.
    hash.update(`x${typeof value}`);
  }
}

/**
 * A decision cache key: the policy revision, then each part hashed canonically.
 *
 * @example
 * decisionKey('89ebbf499b0c046d', ['t:' + tokenHash, 'read', resource, context])
 */
export function decisionKey(revision: string, parts: readonly unknown[]): string {
  const hash = createHash('sha256');
  for (const p of parts) updateCanonical(hash, p);
  return `${revision}:${hash.digest('base64url')}`;
}

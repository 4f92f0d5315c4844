/**
 * Normalisation of the request target a gateway forwards, before it is
 * matched against routes. A mismatch between how the gateway and the
 * authorizer read a path is an authorization bypass, so this follows what
 * Envoy does with `normalize_path` and `merge_slashes` (RFC 3986 §6.2.2), and
 * refuses what could be read two ways:
 *
 * 1. the query is split off at the first `?` (and a `#` fragment dropped);
 * 2. percent-encoded unreserved characters (ALPHA, DIGIT, `-._~`) are decoded
 *    (`%41` → `A`, `%2e` → `.`); other escapes are kept, upper-cased;
 * 3. an encoded `/` or `\` (`%2F`, `%5C`), a NUL (raw or `%00`), a raw `\`, a
 *    control character or a malformed escape is refused;
 * 4. `.` and `..` segments are resolved (`..` never climbs above the root);
 * 5. `//` runs are merged — after 4, as Envoy does, so `/a//../b` is `/a/b`.
 */

export type PathProblem = 'empty' | 'not-origin-form' | 'encoded-slash' | 'nul' | 'backslash' | 'control-character' | 'bad-escape' | 'too-long' | 'too-many-segments';

export type NormalisedPath =
  | { readonly ok: true; readonly path: string; readonly segments: readonly string[]; readonly query: string }
  | { readonly ok: false; readonly problem: PathProblem };

/** Bounds on what is normalised. */
export const PATH_LIMITS = { maxLength: 8192, maxSegments: 128 } as const;

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * Normalises a request target (`/a/./b//c?x=1`) into a path (`/a/b/c`), its
 * segments (`['a', 'b', 'c']`) and its raw query (`x=1`).
 *
 * @example
 * normalisePath('/api/%64ocs/../docs/1?x=1') // { ok: true, path: '/api/docs/1', segments: ['api', 'docs', '1'], query: 'x=1' }
 */
export function normalisePath(target: string): NormalisedPath {
  if (target === '') return { ok: false, problem: 'empty' };
  if (target.length > PATH_LIMITS.maxLength) return { ok: false, problem: 'too-long' };
  // The fragment first: a `?` inside it does not start a query (RFC 3986 §3.5).
  const hash = target.indexOf('#');
  const beforeFragment = hash >= 0 ? target.slice(0, hash) : target;
  let rawPath = beforeFragment;
  let query = '';
  const q = beforeFragment.indexOf('?');
  if (q >= 0) {
    rawPath = beforeFragment.slice(0, q);
    query = beforeFragment.slice(q + 1);
  }
  if (!rawPath.startsWith('/')) return { ok: false, problem: 'not-origin-form' };

  // Percent-decoding of unreserved characters, with the refusals.
  let decoded = '';
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath[i] as string;
    const code = c.charCodeAt(0);
    if (code === 0) return { ok: false, problem: 'nul' };
    if (code < 0x20 || code === 0x7f) return { ok: false, problem: 'control-character' };
    if (c === '\\') return { ok: false, problem: 'backslash' };
    if (c !== '%') {
      decoded += c;
      continue;
    }
    const hex = rawPath.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { ok: false, problem: 'bad-escape' };
    const byte = parseInt(hex, 16);
    if (byte === 0) return { ok: false, problem: 'nul' };
    if (byte === 0x2f) return { ok: false, problem: 'encoded-slash' };
    if (byte === 0x5c) return { ok: false, problem: 'backslash' };
    if (byte < 0x20 || byte === 0x7f) return { ok: false, problem: 'control-character' };
    const ch = String.fromCharCode(byte);
    decoded += byte < 0x80 && UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }

  // Resolve dot segments (RFC 3986 §5.2.4, on segments), then merge slashes: Envoy's order
  // (normalize_path, then merge_slashes). The other order reads `/admin//../x` as `/x`,
  // where Envoy reads `/admin/x`.
  const parts = decoded.split('/').slice(1);
  const resolved: string[] = [];
  for (const [i, part] of parts.entries()) {
    const last = i === parts.length - 1;
    if (part === '.' || part === '..') {
      if (part === '..') resolved.pop();
      if (last) resolved.push('');
      continue;
    }
    resolved.push(part);
  }
  // `//` merged; a trailing `/` stays significant as an empty last segment, except for the root.
  const out = resolved.filter((p, i) => p !== '' || i === resolved.length - 1);
  const segments = out.length === 1 && out[0] === '' ? [] : out;
  if (segments.length > PATH_LIMITS.maxSegments) return { ok: false, problem: 'too-many-segments' };
  return { ok: true, path: `/${segments.join('/')}`, segments, query };
}

/**
 * The value of a captured segment as an id: percent-decoded in full (encoded
 * slashes never get this far). `undefined` when it is not valid UTF-8.
 */
export function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * Query parameters (`a=1&b=2`), decoded; the first value of a repeated name
 * wins. Bounded: at most `max` parameters are read.
 */
export function parseQuery(query: string, max = 64): Record<string, string> {
  const out: Record<string, string> = {};
  if (query === '') return out;
  const params = new URLSearchParams(query);
  let n = 0;
  for (const [k, v] of params) {
    if (++n > max) break;
    if (!Object.hasOwn(out, k)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Request-target normalisation for gateways (src/gateway/path.ts): a table of
 * accepted and refused targets, then properties — idempotence, what an
 * accepted path can never contain, and agreement with WHATWG URL parsing (the
 * RFC 3986 dot-segment algorithm browsers, Chromium's URL library and so
 * Envoy's `normalize_path` implement) — and the helpers decodeSegment and
 * parseQuery.
 *
 * Where WHATWG URL and normalisePath legitimately differ, the reference below
 * applies the same extra step (decoding of unreserved escapes, upper-case hex,
 * merging of `//`); see the comment above `whatwgReference`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSegment, normalisePath, parseQuery, PATH_LIMITS, type PathProblem } from '../../src/gateway/path.js';

// ---------------------------------------------------------------- accepted targets

interface Accepted {
  readonly name: string;
  readonly input: string;
  readonly path: string;
  readonly query?: string;
}

const ACCEPTED: readonly Accepted[] = [
  // The root and plain paths.
  { name: 'the root', input: '/', path: '/' },
  { name: 'one segment', input: '/a', path: '/a' },
  { name: 'several segments, case kept', input: '/API/Docs/1', path: '/API/Docs/1' },
  { name: 'sub-delims and `:@` are kept raw', input: "/a!$&'()*+,;=:@b", path: "/a!$&'()*+,;=:@b" },
  // Merging of `//`.
  { name: '`//` merged', input: '/a//b', path: '/a/b' },
  { name: 'a run of slashes merged', input: '/a////b///c', path: '/a/b/c' },
  { name: 'leading `//` merged (origin-form, not an authority)', input: '//a/b', path: '/a/b' },
  { name: 'only slashes is the root', input: '///', path: '/' },
  { name: 'trailing `//` leaves one trailing slash', input: '/a//', path: '/a/' },
  // Dot segments.
  { name: '`.` removed', input: '/a/./b', path: '/a/b' },
  { name: '`..` removes the segment before it', input: '/a/b/../c', path: '/a/c' },
  { name: 'RFC 3986 §5.2.4 example', input: '/a/b/c/./../../g', path: '/a/g' },
  { name: '`..` at the root stays at the root', input: '/..', path: '/' },
  { name: '`..` above the root is dropped', input: '/../../a', path: '/a' },
  { name: '`..` climbing past the root mid-path', input: '/a/../../b', path: '/b' },
  { name: 'a trailing `.` leaves a trailing slash', input: '/a/.', path: '/a/' },
  { name: 'a trailing `..` leaves a trailing slash', input: '/a/b/..', path: '/a/' },
  { name: 'a trailing `..` back to the root', input: '/a/..', path: '/' },
  { name: 'a lone `.`', input: '/.', path: '/' },
  { name: '`/./` is the root', input: '/./', path: '/' },
  { name: '`./` before a trailing slash', input: '/a/./', path: '/a/' },
  { name: 'dots inside a segment are not dot segments', input: '/a/.../..b/b../.c', path: '/a/.../..b/b../.c' },
  // Percent-decoding of unreserved characters only.
  { name: '`%41` → A', input: '/%41', path: '/A' },
  { name: '`%61` → a (lower-case letter)', input: '/%61bc', path: '/abc' },
  { name: '`%7E` and `%7e` → ~', input: '/%7E%7e', path: '/~~' },
  { name: '`%2D` `%5F` `%30` → - _ 0', input: '/%2D%5F%30', path: '/-_0' },
  { name: '`%2e` inside a segment → .', input: '/a%2eb', path: '/a.b' },
  { name: '`%2e` as a segment is `.`, then resolved', input: '/a/%2e/b', path: '/a/b' },
  { name: '`%2e%2e` is `..`, then resolved', input: '/a/%2e%2e/b', path: '/b' },
  { name: '`%2E%2E` upper-case likewise', input: '/a/%2E%2E/b', path: '/b' },
  { name: '`.%2e` mixed', input: '/a/b/.%2e/c', path: '/a/c' },
  { name: '`%2e.` mixed', input: '/a/b/%2e./c', path: '/a/c' },
  { name: 'a trailing `%2e%2e` leaves a trailing slash', input: '/a/b/%2e%2e', path: '/a/' },
  { name: 'decoded letters form a literal', input: '/api/%64ocs/../docs/1?x=1', path: '/api/docs/1', query: 'x=1' },
  { name: '`%20` is kept as `%20`', input: '/a%20b', path: '/a%20b' },
  { name: 'lower-case hex of a kept escape is upper-cased', input: '/caf%c3%a9', path: '/caf%C3%A9' },
  { name: 'an encoded `?` is kept, upper-cased', input: '/a%3fb', path: '/a%3Fb' },
  { name: 'an encoded `#` is kept', input: '/a%23b', path: '/a%23b' },
  { name: 'an encoded `%` is kept and not decoded twice', input: '/%2541', path: '/%2541' },
  { name: 'an encoded `%` before `2e` is not a dot', input: '/a/%252e%252e/b', path: '/a/%252e%252e/b' },
  { name: 'an encoded `.` next to a kept escape', input: '/%2e%20', path: '/.%20' },
  // Query and fragment.
  { name: 'the query is split off', input: '/a?x=1&y=2', path: '/a', query: 'x=1&y=2' },
  { name: 'at the first `?`', input: '/a?x=1?y=2', path: '/a', query: 'x=1?y=2' },
  { name: 'an empty query', input: '/a?', path: '/a', query: '' },
  { name: 'the query of the root', input: '/?x', path: '/', query: 'x' },
  { name: 'the query is not normalised', input: '/a/%2e%2e?p=/../%2F&q=%00', path: '/', query: 'p=/../%2F&q=%00' },
  { name: 'a fragment is dropped', input: '/a#frag', path: '/a' },
  { name: 'a fragment after the query is dropped', input: '/a?x=1#frag', path: '/a', query: 'x=1' },
  { name: 'what the fragment holds is not checked', input: '/a#/../%2F%00\\', path: '/a' },
  // Trailing slash.
  { name: 'a trailing slash is kept', input: '/a/b/', path: '/a/b/' },
  // Limits (at the bound).
  { name: `a target of exactly ${PATH_LIMITS.maxLength} characters`, input: `/${'a'.repeat(PATH_LIMITS.maxLength - 1)}`, path: `/${'a'.repeat(PATH_LIMITS.maxLength - 1)}` },
  { name: `exactly ${PATH_LIMITS.maxSegments} segments`, input: '/a'.repeat(PATH_LIMITS.maxSegments), path: '/a'.repeat(PATH_LIMITS.maxSegments) },
  { name: 'segments are counted after resolution', input: '/a/..'.repeat(PATH_LIMITS.maxSegments + 10), path: '/' },
];

/** Segments of a normalised path, as documented: without the leading empty one; the root has none. */
const segmentsOf = (path: string): string[] => (path === '/' ? [] : path.slice(1).split('/'));

describe('normalisePath: accepted targets', () => {
  it.each(ACCEPTED)('$name', ({ input, path, query }) => {
    const n = normalisePath(input);
    expect(n).toEqual({ ok: true, path, segments: segmentsOf(path), query: query ?? '' });
  });

  it('keeps a trailing slash as an empty last segment', () => {
    expect(normalisePath('/a/b/')).toMatchObject({ ok: true, segments: ['a', 'b', ''] });
    expect(normalisePath('/a/.')).toMatchObject({ ok: true, segments: ['a', ''] });
  });

  it('gives the root no segments', () => {
    for (const input of ['/', '//', '/.', '/..', '/a/..', '/./', '/%2e%2e/']) {
      expect(normalisePath(input), input).toEqual({ ok: true, path: '/', segments: [], query: '' });
    }
  });
});

// ---------------------------------------------------------------- refused targets

const REFUSED: ReadonlyArray<{ name: string; input: string; problem: PathProblem }> = [
  { name: 'empty', input: '', problem: 'empty' },
  { name: 'asterisk-form', input: '*', problem: 'not-origin-form' },
  { name: 'absolute-form', input: 'http://a/b', problem: 'not-origin-form' },
  { name: 'a relative path', input: 'a/b', problem: 'not-origin-form' },
  { name: 'only a query', input: '?x=1', problem: 'not-origin-form' },
  { name: 'only a fragment', input: '#x', problem: 'not-origin-form' },
  { name: '`%2F`', input: '/a%2Fb', problem: 'encoded-slash' },
  { name: '`%2f`', input: '/a%2fb', problem: 'encoded-slash' },
  { name: '`%2F` that would be resolved away', input: '/a/%2F/..', problem: 'encoded-slash' },
  { name: '`%2e%2e%2f`', input: '/a/%2e%2e%2fb', problem: 'encoded-slash' },
  { name: '`%5C`', input: '/a%5Cb', problem: 'backslash' },
  { name: '`%5c`', input: '/a%5cb', problem: 'backslash' },
  { name: 'a raw backslash', input: '/a\\b', problem: 'backslash' },
  { name: 'a raw backslash as a separator before `..`', input: '/a\\..\\b', problem: 'backslash' },
  { name: 'a raw NUL', input: '/a\u0000b', problem: 'nul' },
  { name: '`%00`', input: '/a%00b', problem: 'nul' },
  { name: 'a raw tab', input: '/a\tb', problem: 'control-character' },
  { name: 'a raw LF', input: '/a\nb', problem: 'control-character' },
  { name: 'a raw CR', input: '/a\rb', problem: 'control-character' },
  { name: 'a raw DEL', input: '/a\u007fb', problem: 'control-character' },
  { name: '`%09`', input: '/a%09b', problem: 'control-character' },
  { name: '`%0a`', input: '/a%0ab', problem: 'control-character' },
  { name: '`%1F`', input: '/a%1Fb', problem: 'control-character' },
  { name: '`%7F`', input: '/a%7Fb', problem: 'control-character' },
  { name: 'a lone `%` at the end', input: '/a%', problem: 'bad-escape' },
  { name: 'a lone `%` mid-path', input: '/%/a', problem: 'bad-escape' },
  { name: '`%4` at the end', input: '/a%4', problem: 'bad-escape' },
  { name: '`%4` before a slash', input: '/a%4/b', problem: 'bad-escape' },
  { name: '`%zz`', input: '/a%zz', problem: 'bad-escape' },
  { name: '`%g0`', input: '/a%g0', problem: 'bad-escape' },
  { name: '`%%41`', input: '/%%41', problem: 'bad-escape' },
  { name: 'a bad escape before the query', input: '/a%?x', problem: 'bad-escape' },
  { name: `more than ${PATH_LIMITS.maxLength} characters`, input: `/${'a'.repeat(PATH_LIMITS.maxLength)}`, problem: 'too-long' },
  { name: 'too long counting the query', input: `/a?${'x'.repeat(PATH_LIMITS.maxLength)}`, problem: 'too-long' },
  { name: `more than ${PATH_LIMITS.maxSegments} segments`, input: '/a'.repeat(PATH_LIMITS.maxSegments + 1), problem: 'too-many-segments' },
  { name: `${PATH_LIMITS.maxSegments} segments and a trailing slash`, input: `${'/a'.repeat(PATH_LIMITS.maxSegments)}/`, problem: 'too-many-segments' },
];

describe('normalisePath: refused targets', () => {
  it.each(REFUSED)('$name', ({ input, problem }) => {
    expect(normalisePath(input)).toEqual({ ok: false, problem });
  });
});

// ---------------------------------------------------------------- a reference: WHATWG URL

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** `%41` → `A` for unreserved characters; other escapes upper-cased. */
function decodeUnreserved(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

const mergeSlashes = (path: string): string => path.replace(/\/{2,}/g, '/');

/** True when a pathname still holds a single- or double-dot segment (`.`, `%2e`, `..`, `.%2E`, ...). */
const hasDotSegment = (pathname: string): boolean => pathname.split('/').some((s) => /^(?:\.|%2e){1,2}$/i.test(s));

/**
 * The path state of the WHATWG URL parser for a special URL (http), on input
 * without `\`, `?` or `#`: segments split on `/`, a single-dot segment (`.`
 * or `%2e`, any case) dropped, a double-dot segment (`..`, `.%2e`, `%2e.`,
 * `%2e%2e`) removing the segment before it (an empty one too), and either one
 * at the end leaving a trailing slash.
 */
function specPathname(path: string): string {
  const parts = path.slice(1).split('/');
  const out: string[] = [];
  for (const [i, seg] of parts.entries()) {
    const last = i === parts.length - 1;
    const dots = seg.replace(/%2e/gi, '.');
    if (dots === '..') {
      out.pop();
      if (last) out.push('');
    } else if (dots === '.') {
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  }
  return `/${out.join('/')}`;
}

/**
 * `new URL(...).pathname`, except where Node's parser is known to be wrong:
 * Node 20 bundles Ada 2.9, which leaves dot segments unresolved in some paths
 * that have a segment starting with `.` (`/a/.a/.` stays `/a/.a/.`, WHATWG
 * says `/a/.a/`; `/x/.a/..` stays as is, WHATWG says `/x/`; ada-url/ada#935).
 * A conforming parser never leaves a dot segment in a pathname, so when Node
 * does, the spec algorithm above is used instead. Where Node has no such
 * leftover, the two must agree (checked below).
 *
 * The path is appended to an origin rather than resolved against a base:
 * `new URL('//a/b', base)` would read `a` as a host, but in an origin-form
 * request target `//a/b` is a path.
 */
function whatwgPathname(path: string): string {
  const viaNode = new URL(`http://h${path}`).pathname;
  return hasDotSegment(viaNode) ? specPathname(path) : viaNode;
}

/**
 * What a gateway that normalises like Envoy (`normalize_path: true`, then
 * `merge_slashes: true`) makes of a path of only unreserved characters and
 * escapes: WHATWG URL parsing resolves dot segments — recognising `%2e` in
 * any case as a dot, as Chromium's URL library in Envoy does — then escapes of
 * unreserved characters are decoded (WHATWG keeps `%41` as is, Envoy decodes
 * it), kept escapes upper-cased (WHATWG keeps the case as written; either way
 * no route literal can contain `%`), and `//` merged (WHATWG keeps empty
 * segments; Envoy merges them after normalising).
 *
 * Decoding after parsing cannot create a dot segment WHATWG did not see:
 * only `.` and `%2e`/`%2E` decode to `.`, and WHATWG treats both as dots.
 */
function whatwgReference(path: string): string {
  return mergeSlashes(decodeUnreserved(whatwgPathname(path)));
}

describe('the WHATWG reference itself', () => {
  const CASES: ReadonlyArray<[string, string]> = [
    ['/a/%2e%2e/b', '/b'],
    ['/a/.%2E/b', '/b'],
    ['/%41%7e', '/A~'],
    ['/a%2eb', '/a.b'],
    ['//a//b', '/a/b'],
    ['/a/..//b', '/b'],
    ['/a/b/..', '/a/'],
    ['/caf%c3%a9', '/caf%C3%A9'],
  ];
  it.each(CASES)('%s → %s', (input, want) => {
    expect(whatwgReference(input)).toBe(want);
  });

  // Node 20's URL parser (Ada 2.9, ada-url/ada#935) leaves these unresolved; the spec algorithm does not.
  const ADA: ReadonlyArray<[string, string]> = [
    ['/a/.a/.', '/a/.a/'],
    ['/x/.a/..', '/x/'],
    ['/a/.x/b/..', '/a/.x/'],
  ];
  it.each(ADA)('%s → %s (where Node 20 is wrong)', (input, want) => {
    expect(specPathname(input)).toBe(want);
    expect(whatwgPathname(input)).toBe(want);
    expect(normalisePath(input)).toMatchObject({ ok: true, path: want });
  });
});

describe('where WHATWG URL and normalisePath differ by design', () => {
  const whatwg = (p: string): string => new URL(`http://h${p}`).pathname;

  it('a backslash: WHATWG reads it as `/` in http URLs; it is refused', () => {
    expect(whatwg('/a\\..\\b')).toBe('/b');
    expect(normalisePath('/a\\..\\b')).toEqual({ ok: false, problem: 'backslash' });
  });

  it('`%2F`, `%5C`, `%00`: WHATWG keeps them inside a segment; they are refused', () => {
    expect(whatwg('/a%2Fb/%5C/%00')).toBe('/a%2Fb/%5C/%00');
    for (const p of ['/a%2Fb', '/%5C', '/%00']) expect(normalisePath(p).ok, p).toBe(false);
  });

  it('tabs and newlines: WHATWG strips them from the input; they are refused', () => {
    expect(whatwg('/a\tdmin')).toBe('/admin');
    expect(normalisePath('/a\tdmin')).toEqual({ ok: false, problem: 'control-character' });
  });

  it('characters WHATWG percent-encodes (space, `"`, `<`, non-ASCII) are kept raw: no literal can hold them, and an id decodes the same', () => {
    expect(whatwg('/a b/é')).toBe('/a%20b/%C3%A9');
    expect(normalisePath('/a b/é')).toMatchObject({ ok: true, path: '/a b/é' });
    expect(decodeSegment('a b')).toBe(decodeSegment('a%20b'));
    expect(decodeSegment('é')).toBe(decodeSegment('%C3%A9'));
  });

  it('a leading `//`: resolved against a base, WHATWG reads a host; as a request target it is a path', () => {
    expect(new URL('//admin/x', 'http://h').pathname).toBe('/x');
    expect(normalisePath('//admin/x')).toMatchObject({ ok: true, path: '/admin/x' });
  });
});

// ---------------------------------------------------------------- properties

/** Segments, weighted toward what makes normalisation interesting. */
const SEGMENTS = [
  'a', 'b', 'docs', 'A', '1', 'x.y', '~', '-', '_', '...', '.a', 'a.',
  '.', '..', '%2e', '%2E', '%2e%2e', '%2E%2e', '.%2e', '%2e.', '.%2E',
  '%41', '%61', '%7e', '%7E', '%2D', '%5f', '%30', 'a%2eb', 'a%2e', '%2ea',
  '%20', '%c3%a9', '%25', '%252e', '%3F', '%23',
  '',
] as const;

const segment = fc.constantFrom(...SEGMENTS);
/** A path from segments joined by one or more slashes; no `?`, `#`, `\`, control characters or refused escapes. */
const pathWithSlashRuns = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 3 }), segment), { minLength: 0, maxLength: 10 })
  .map((parts) => parts.map(([slashes, seg]) => `${'/'.repeat(slashes)}${seg}`).join('') || '/');
/** The same without any `//` (no empty segment but perhaps a trailing one). */
const pathWithoutSlashRuns = fc
  .tuple(fc.array(segment.filter((s) => s !== ''), { minLength: 0, maxLength: 10 }), fc.boolean())
  .map(([segs, trailing]) => `/${segs.join('/')}${trailing && segs.length > 0 ? '/' : ''}`);

/** Any target: characters and escapes that are refused, or have a meaning, mixed with plain ones. */
const TOKENS = [
  '/', '/', '/', '//', '.', '..', '/./', '/../', 'a', 'b', 'Z', '0', '~', '-', '_', ' ', "'", '@', ':', ';', '+', '!', 'é', '{', '}',
  '%', '%2', '%2e', '%2E', '%41', '%61', '%7e', '%2f', '%2F', '%5c', '%5C', '%00', '%0a', '%7f', '%20', '%c3', '%a9', '%25', '%zz', '%3f', '%23',
  '?', '#', '\\', '\u0000', '\t', '\u007f',
] as const;
const anyTarget = fc.tuple(fc.constantFrom('/', '', '//', '*'), fc.array(fc.constantFrom(...TOKENS), { maxLength: 24 })).map(([head, toks]) => head + toks.join(''));

const accepted = (input: string): { path: string; segments: readonly string[]; query: string } | undefined => {
  const n = normalisePath(input);
  return n.ok ? n : undefined;
};

describe('the spec algorithm against Node\'s URL parser', () => {
  it('agrees wherever Node leaves no dot segment', () => {
    fc.assert(
      fc.property(pathWithSlashRuns, (input) => {
        const viaNode = new URL(`http://h${input}`).pathname;
        if (!hasDotSegment(viaNode)) expect(specPathname(input)).toBe(viaNode);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('normalisePath: properties', () => {
  it('is idempotent: normalising a normalised path changes nothing', () => {
    fc.assert(
      fc.property(fc.oneof(anyTarget, pathWithSlashRuns), (input) => {
        const first = accepted(input);
        if (first === undefined) return;
        const again = normalisePath(first.path);
        expect(again).toEqual({ ok: true, path: first.path, segments: first.segments, query: '' });
      }),
      { numRuns: 2000 },
    );
  });

  it('never yields `//`, a dot segment, `%2F`, `%00`, a backslash, `?`, `#` or an escaped unreserved character', () => {
    fc.assert(
      fc.property(fc.oneof(anyTarget, pathWithSlashRuns), (input) => {
        const n = accepted(input);
        if (n === undefined) return;
        expect(n.path.startsWith('/')).toBe(true);
        expect(n.path).not.toContain('//');
        expect(n.path).not.toMatch(/%2F|%5C|%00/i);
        expect(n.path).not.toMatch(/[\\?#\u0000-\u001f\u007f]/);
        for (const m of n.path.matchAll(/%([0-9A-Fa-f]{2})/g)) {
          const hex = m[1] as string;
          expect(hex, `escape in ${n.path}`).toBe(hex.toUpperCase());
          expect(UNRESERVED.test(String.fromCharCode(parseInt(hex, 16))), `escape %${hex} in ${n.path}`).toBe(false);
        }
        expect(n.segments).toEqual(segmentsOf(n.path));
        for (const [i, s] of n.segments.entries()) {
          expect(s === '.' || s === '..', `dot segment in ${n.path}`).toBe(false);
          // Only the last segment may be empty (a trailing slash).
          if (s === '') expect(i).toBe(n.segments.length - 1);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with WHATWG URL parsing (plus decoding of unreserved escapes) on paths without `//`', () => {
    fc.assert(
      fc.property(pathWithoutSlashRuns, (input) => {
        const n = normalisePath(input);
        expect(n.ok).toBe(true);
        if (n.ok) expect(n.path).toBe(whatwgReference(input));
      }),
      { numRuns: 3000 },
    );
  });

  // Regression test, fixed (security): path.ts used to merge `//` before resolving
  // dot segments. Envoy does it the other way round
  // (ConnectionManagerUtility::maybeNormalizePath: canonicalPath, then
  // mergeSlashes "after path normalization"), as does RFC 3986 §5.2.4 / WHATWG,
  // where `..` after `//` removes the empty segment. So `/admin//../x` is `/x`
  // here but `/admin/x` for Envoy and WHATWG. A target is either refused or
  // read as the gateway reads it; never read differently.
  it('agrees with WHATWG URL parsing and Envoy (normalise, then merge `//`) on paths with `//`', () => {
    fc.assert(
      fc.property(pathWithSlashRuns, (input) => {
        const n = normalisePath(input);
        if (n.ok) expect(n.path).toBe(whatwgReference(input));
      }),
      { numRuns: 3000, examples: [['/a//..'], ['/admin//../api/public/x']] },
    );
  });
});

describe('normalisePath: where it must read a path as Envoy does', () => {
  // The same bug, as concrete requests against the routes in policies/gateway.policy:
  // Arbiter would match `GET /api/public/**` (public, no token needed) while a
  // gateway normalising like Envoy (or an upstream resolving dot segments per
  // RFC 3986) serves `/admin/api/public/x`, under `GET /admin/**`.
  const CASES: ReadonlyArray<[string, string]> = [
    ['/admin//../api/public/x', '/admin/api/public/x'],
    ['/a//..', '/a/'],
    ['/a/b//../c', '/a/b/c'],
    ['/a//%2e%2e/b', '/a/b'],
    ['/a//./../b', '/a/b'],
  ];
  it.each(CASES)('%s is refused or read as %s ', (input, envoy) => {
    const n = normalisePath(input);
    if (n.ok) expect(n.path).toBe(envoy);
  });

  // Cases where merging first makes no difference; these hold today.
  const SAME: ReadonlyArray<[string, string]> = [
    ['/a/..//b', '/b'],
    ['//../a', '/a'],
    ['/a//b/../c', '/a/c'],
    ['/a/b/..//', '/a/'],
  ];
  it.each(SAME)('%s is read as %s', (input, envoy) => {
    expect(normalisePath(input)).toMatchObject({ ok: true, path: envoy });
    expect(whatwgReference(input)).toBe(envoy);
  });
});

describe('normalisePath: the query, as WHATWG URL splits it', () => {
  const query = fc.array(fc.constantFrom('a', '=', '&', '1', '%20', '+', '/', '.', '?'), { maxLength: 8 }).map((a) => a.join(''));
  const fragment = fc.array(fc.constantFrom('a', '/', '.', '=', '&', '#'), { maxLength: 6 }).map((a) => a.join(''));

  it('splits the query at the first `?` and drops a fragment that follows it', () => {
    fc.assert(
      fc.property(pathWithoutSlashRuns, fc.option(query), fc.option(fragment), (path, q, f) => {
        const input = `${path}${q === null ? '' : `?${q}`}${f === null ? '' : `#${f}`}`;
        const n = normalisePath(input);
        expect(n.ok).toBe(true);
        if (n.ok) expect(n.query).toBe(new URL(`http://h${input}`).search.replace(/^\?/, ''));
      }),
      { numRuns: 1000 },
    );
  });

  // Regression test, fixed (was: minor): the target is split at the first `?` before the fragment is
  // cut (src/gateway/path.ts, `const q = target.indexOf('?')`), so a `?` inside
  // a fragment starts a query: `/a#x?admin=1` gives query `admin=1` (WHATWG
  // and RFC 3986: no query; the fragment is `x?admin=1`). The query reaches
  // policies as `context.query`, so a client can set parameters the upstream
  // never sees. Envoy strips fragments by default, which limits the impact.
  it('does not read a query out of a fragment', () => {
    const n = normalisePath('/a#x?admin=1');
    expect(n).toEqual({ ok: true, path: '/a', segments: ['a'], query: '' });
  });
});

// ---------------------------------------------------------------- decodeSegment

describe('decodeSegment', () => {
  const CASES: ReadonlyArray<[string, string | undefined]> = [
    ['d1', 'd1'],
    ['a%20b', 'a b'],
    ['caf%C3%A9', 'café'],
    ['a+b', 'a+b'],
    ['%2541', '%41'],
    ['%3F%23%26', '?#&'],
    ['%E9', undefined],
    ['%C3', undefined],
    ['%ED%A0%80', undefined],
    ['%', undefined],
    ['', ''],
  ];
  it.each(CASES)('%j → %j', (input, want) => {
    expect(decodeSegment(input)).toBe(want);
  });

  it('decodes what normalisePath captured to the value the gateway meant', () => {
    const n = normalisePath('/api/documents/caf%c3%a9%20%2Ax');
    if (!n.ok) throw new Error('expected the path to be accepted');
    expect(decodeSegment(n.segments[2] as string)).toBe('café *x');
  });
});

// ---------------------------------------------------------------- parseQuery

describe('parseQuery', () => {
  const CASES: ReadonlyArray<{ name: string; query: string; max?: number; want: Record<string, string> }> = [
    { name: 'empty', query: '', want: {} },
    { name: 'two parameters', query: 'a=1&b=2', want: { a: '1', b: '2' } },
    { name: 'the first value of a repeated name wins', query: 'a=1&a=2&a=3', want: { a: '1' } },
    { name: 'values are decoded, `+` as a space', query: 'q=a+b%20c&r=%C3%A9', want: { q: 'a b c', r: 'é' } },
    { name: 'names are decoded', query: 'a%5Bb%5D=1', want: { 'a[b]': '1' } },
    { name: 'a name without a value', query: 'flag&x=', want: { flag: '', x: '' } },
    { name: 'empty pieces are skipped', query: '&&a=1&', want: { a: '1' } },
    { name: 'a value with `=`', query: 'a=b=c', want: { a: 'b=c' } },
    { name: 'at most `max` parameters are read', query: 'a=1&b=2&c=3', max: 2, want: { a: '1', b: '2' } },
    { name: 'repeats count toward the bound', query: 'a=1&a=2&b=3', max: 2, want: { a: '1' } },
  ];
  it.each(CASES)('$name', ({ query, max, want }) => {
    const got = max === undefined ? parseQuery(query) : parseQuery(query, max);
    expect(got).toEqual(want);
  });

  it('reads 64 parameters by default', () => {
    const query = Array.from({ length: 100 }, (_, i) => `k${i}=${i}`).join('&');
    const got = parseQuery(query);
    expect(Object.keys(got)).toHaveLength(64);
    expect(got['k63']).toBe('63');
    expect(Object.hasOwn(got, 'k64')).toBe(false);
  });

  it('keeps `__proto__` and `constructor` as own properties, without touching any prototype', () => {
    const got = parseQuery('__proto__=x&constructor=y&__proto__=z&toString=t');
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.hasOwn(got, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(got, '__proto__')?.value).toBe('x');
    expect(Object.keys(got)).toEqual(['__proto__', 'constructor', 'toString']);
    expect(got['constructor']).toBe('y');
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
    expect(JSON.parse(JSON.stringify(got))).toEqual(got);
  });

  it('keeps `__proto__` an own property when it is encoded', () => {
    const got = parseQuery('%5F%5Fproto%5F%5F=1');
    expect(Object.hasOwn(got, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
  });
});

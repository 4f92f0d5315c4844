/**
 * HTTP routes: policy sets with `routes { ... }` blocks compiled with
 * compilePolicySet and matched with matchRoute. A table of the documented
 * precedence (specificity segment by segment — literal, then `{capture}` or
 * `*`, then `**` — then an exact method over `*`), then a property: matchRoute
 * picks what a naive reference (below) picks by scoring every route against
 * the path, on random route sets. Compile errors for routes are golden files
 * in testdata/compile-errors (route-*), run by compile.test.ts; the last block
 * here checks they cover every route error code.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicySet, type PolicySource } from '../../src/compile/index.js';
import { HTTP_METHODS, MAX_ROUTE_SEGMENTS } from '../../src/compile/routes.js';
import type { RouteNode } from '../../src/compile/tree.js';
import { CompileError } from '../../src/errors.js';
import { matchRoute } from '../../src/eval/route.js';
import { normalisePath } from '../../src/gateway/path.js';

const RESOURCES = 'resource document {\n  actions read, update, delete\n}\nresource admin_console {\n  actions view, manage\n}\n';

/** The route trie of a set: the resources above and one `routes` block per text given. */
function routesOf(...blocks: string[]): RouteNode {
  const sources: PolicySource[] = [{ path: 'resources.policy', text: RESOURCES }, ...blocks.map((b, i) => ({ path: `routes-${i}.policy`, text: `routes {\n${b}\n}\n` }))];
  return compilePolicySet(sources).tree.routes;
}

/** Diagnostics (`CODE message | help`) of a set that must not compile. */
function errorsOf(block: string): string[] {
  try {
    compilePolicySet([{ path: 'p.policy', text: `${RESOURCES}routes {\n${block}\n}\n` }]);
  } catch (e) {
    if (e instanceof CompileError) return e.diagnostics.map((d) => `${d.code} ${d.message}${d.help === undefined ? '' : ` | ${d.help}`}`);
    throw e;
  }
  throw new Error('expected a CompileError, but the set compiled');
}

/** Segments of a normalised path (`/` has none; a trailing slash is an empty last segment). */
const segmentsOf = (path: string): string[] => (path === '/' ? [] : path.slice(1).split('/'));

/** `GET /a/{x}` and its captures, or `none`. */
function matched(root: RouteNode, method: string, path: string): string {
  const m = matchRoute(root, method, segmentsOf(path));
  return m === undefined ? 'none' : `${m.route.id}${m.captures.length > 0 ? ` [${m.captures.join(', ')}]` : ''}`;
}

// ---------------------------------------------------------------- precedence

interface MatchCase {
  readonly name: string;
  readonly routes: string;
  /** `METHOD path` → what matches (`none` for no route). */
  readonly requests: ReadonlyArray<readonly [string, string, string]>;
}

const MATCHES: readonly MatchCase[] = [
  {
    name: 'a literal beats a capture',
    routes: 'GET "/api/docs/new" -> public\nGET "/api/docs/{id}" -> read document {id}',
    requests: [
      ['GET', '/api/docs/new', 'GET /api/docs/new'],
      ['GET', '/api/docs/d1', 'GET /api/docs/{id} [d1]'],
      ['GET', '/api/docs/New', 'GET /api/docs/{id} [New]'],
    ],
  },
  {
    name: 'a capture beats `**`',
    routes: 'GET "/api/{x}" -> public\nGET "/api/**" -> view admin_console',
    requests: [
      ['GET', '/api/a', 'GET /api/{x} [a]'],
      ['GET', '/api/a/b', 'GET /api/**'],
      ['GET', '/api', 'GET /api/**'],
      ['GET', '/api/', 'GET /api/**'],
    ],
  },
  {
    name: 'at the first differing segment: `/a/b/**` beats `/a/{x}/c` for `/a/b/c`',
    routes: 'GET "/a/{x}/c" -> public\nGET "/a/b/**" -> view admin_console',
    requests: [
      ['GET', '/a/b/c', 'GET /a/b/**'],
      ['GET', '/a/z/c', 'GET /a/{x}/c [z]'],
      ['GET', '/a/b', 'GET /a/b/**'],
      ['GET', '/a/z/d', 'none'],
    ],
  },
  {
    name: 'at the first differing segment: `/a/{x}/**` beats `/*/b/c`',
    routes: 'GET "/*/b/c" -> public\nGET "/a/{x}/**" -> view admin_console',
    requests: [
      ['GET', '/a/b/c', 'GET /a/{x}/** [b]'],
      ['GET', '/z/b/c', 'GET /*/b/c [z]'],
    ],
  },
  {
    name: 'a more specific path without the method falls back to a less specific one with it',
    routes: 'GET "/api/docs/{id}" -> read document {id}\n* "/api/**" -> manage admin_console',
    requests: [
      ['POST', '/api/docs/1', '* /api/**'],
      ['GET', '/api/docs/1', 'GET /api/docs/{id} [1]'],
      ['DELETE', '/api/docs', '* /api/**'],
    ],
  },
  {
    name: 'backtracking from a literal to a capture, dropping captures of the dead end',
    routes: 'GET "/a/b/{x}/d" -> public\nPOST "/a/{y}/c/d" -> public\nPUT "/a/{z}/**" -> public',
    requests: [
      ['POST', '/a/b/c/d', 'POST /a/{y}/c/d [b]'],
      ['GET', '/a/b/c/d', 'GET /a/b/{x}/d [c]'],
      ['PUT', '/a/b/c/d', 'PUT /a/{z}/** [b]'],
      ['DELETE', '/a/b/c/d', 'none'],
    ],
  },
  {
    name: 'an exact method beats `*` at the same path',
    routes: '* "/x/{id}" -> manage admin_console\nGET "/x/{id}" -> view admin_console',
    requests: [
      ['GET', '/x/1', 'GET /x/{id} [1]'],
      ['DELETE', '/x/1', '* /x/{id} [1]'],
      ['HEAD', '/x/1', '* /x/{id} [1]'],
    ],
  },
  {
    name: 'specificity comes before the method',
    routes: '* "/a/b" -> manage admin_console\nGET "/a/{x}" -> view admin_console',
    requests: [
      ['GET', '/a/b', '* /a/b'],
      ['GET', '/a/c', 'GET /a/{x} [c]'],
    ],
  },
  {
    name: '`**` matches zero or more segments',
    routes: 'GET "/admin/**" -> view admin_console',
    requests: [
      ['GET', '/admin', 'GET /admin/**'],
      ['GET', '/admin/', 'GET /admin/**'],
      ['GET', '/admin/x', 'GET /admin/**'],
      ['GET', '/admin/x/y/z/', 'GET /admin/**'],
      ['GET', '/adminx', 'none'],
      ['GET', '/', 'none'],
      ['GET', '/x/admin', 'none'],
    ],
  },
  {
    name: 'an exact route beats `**` matching zero segments',
    routes: 'GET "/admin" -> public\nGET "/admin/**" -> view admin_console',
    requests: [
      ['GET', '/admin', 'GET /admin'],
      ['GET', '/admin/', 'GET /admin/**'],
    ],
  },
  {
    name: 'captures come in order, `*` included',
    routes: 'GET "/o/{org}/r/*/f/{file}" -> read document {file}',
    requests: [
      ['GET', '/o/acme/r/web/f/x.ts', 'GET /o/{org}/r/*/f/{file} [acme, web, x.ts]'],
      ['GET', '/o/acme/r/web/f', 'none'],
    ],
  },
  {
    name: '`*` matches exactly one segment',
    routes: 'GET "/files/*" -> public',
    requests: [
      ['GET', '/files/a', 'GET /files/* [a]'],
      ['GET', '/files', 'none'],
      ['GET', '/files/a/b', 'none'],
      ['GET', '/files/', 'none'],
    ],
  },
  {
    name: 'a trailing slash (an empty last segment) is not matched by `{id}`',
    routes: 'GET "/api/documents/{id}" -> read document {id}',
    requests: [
      ['GET', '/api/documents/', 'none'],
      ['GET', '/api/documents', 'none'],
      ['GET', '/api/documents/d1/', 'none'],
    ],
  },
  {
    name: 'a trailing slash falls to `**`',
    routes: 'GET "/api/documents/{id}" -> read document {id}\nGET "/api/**" -> public',
    requests: [['GET', '/api/documents/', 'GET /api/**']],
  },
  {
    name: 'a literal does not match a trailing slash',
    routes: 'GET "/a" -> public',
    requests: [
      ['GET', '/a', 'GET /a'],
      ['GET', '/a/', 'none'],
    ],
  },
  {
    name: 'the root pattern `/`',
    routes: 'GET "/" -> public\nGET "/**" -> view admin_console',
    requests: [
      ['GET', '/', 'GET /'],
      ['GET', '/a', 'GET /**'],
      ['POST', '/', 'none'],
    ],
  },
  {
    name: 'only the root pattern',
    routes: '* "/" -> public',
    requests: [
      ['GET', '/', '* /'],
      ['GET', '/a', 'none'],
    ],
  },
  {
    name: 'a captured segment is returned as normalised (escapes kept)',
    routes: 'GET "/d/{id}" -> read document {id}',
    requests: [
      ['GET', '/d/a%20b', 'GET /d/{id} [a%20b]'],
      ['GET', '/D/a', 'none'],
    ],
  },
  {
    name: 'no routes at all',
    routes: '',
    requests: [
      ['GET', '/', 'none'],
      ['GET', '/a', 'none'],
    ],
  },
];

describe('matchRoute: precedence', () => {
  it.each(MATCHES)('$name', ({ routes, requests }) => {
    const root = routesOf(routes);
    for (const [method, path, want] of requests) {
      expect(matched(root, method, path), `${method} ${path}`).toBe(want);
    }
  });

  it('keeps the capture names and target of the matched route', () => {
    const root = routesOf('GET "/o/{org}/*/{id}" -> read document {id}');
    const m = matchRoute(root, 'GET', ['o', 'acme', 'x', 'd1']);
    expect(m?.route).toMatchObject({ method: 'GET', pattern: '/o/{org}/*/{id}', captures: ['org', null, 'id'], target: { kind: 'resource', action: 'read', resourceType: 'document', idCapture: 'id' } });
    expect(m?.captures).toEqual(['acme', 'x', 'd1']);
    expect(m?.route.location).toMatchObject({ source: 'routes-0.policy', start: { line: 2, column: 1 } });
  });

  it('routes can come from several files', () => {
    const root = routesOf('GET "/a/{x}" -> public', 'GET "/a/b" -> view admin_console\nPOST "/a/{x}" -> manage admin_console');
    expect(matched(root, 'GET', '/a/b')).toBe('GET /a/b');
    expect(matched(root, 'GET', '/a/c')).toBe('GET /a/{x} [c]');
    expect(matched(root, 'POST', '/a/b')).toBe('POST /a/{x} [b]');
  });

  it(`accepts every method it names (${HTTP_METHODS.join(', ')}) and \`*\``, () => {
    const root = routesOf([...HTTP_METHODS, '*'].map((m) => `${m} "/m" -> public`).join('\n'));
    for (const m of HTTP_METHODS) expect(matched(root, m, '/m')).toBe(`${m} /m`);
    expect(matched(root, 'PROPFIND', '/m')).toBe('* /m');
  });

  it(`accepts ${MAX_ROUTE_SEGMENTS} segments and no more`, () => {
    const path = '/s'.repeat(MAX_ROUTE_SEGMENTS);
    expect(matched(routesOf(`GET "${path}" -> public`), 'GET', path)).toBe(`GET ${path}`);
    expect(errorsOf(`GET "${path}/s" -> public`)).toEqual([`COMPILE_BAD_ROUTE a route pattern has at most ${MAX_ROUTE_SEGMENTS} segments`]);
  });

  it('accepts every character a literal may hold', () => {
    const seg = "aZ09-._~!$&'()+,;=:@";
    expect(matched(routesOf(`GET "/${seg}" -> public`), 'GET', `/${seg}`)).toBe(`GET /${seg}`);
  });
});

// ---------------------------------------------------------------- the shipped gateway policy

describe('matchRoute: policies/gateway.policy, after normalisePath', () => {
  const dir = join(import.meta.dirname, '..', '..', 'policies');
  const sources = readdirSync(dir)
    .filter((f) => f.endsWith('.policy'))
    .map((f) => ({ path: f, text: readFileSync(join(dir, f), 'utf8') }));
  const root = compilePolicySet(sources).tree.routes;
  const route = (method: string, target: string): string => {
    const n = normalisePath(target);
    if (!n.ok) return `refused: ${n.problem}`;
    const m = matchRoute(root, method, n.segments);
    return m === undefined ? 'none' : `${m.route.id}${m.captures.length > 0 ? ` [${m.captures.join(', ')}]` : ''}`;
  };

  const CASES: ReadonlyArray<readonly [string, string, string]> = [
    ['GET', '/healthz', 'GET /healthz'],
    ['POST', '/healthz', 'none'],
    ['GET', '/api/public/x/y', 'GET /api/public/**'],
    ['GET', '/api/public', 'GET /api/public/**'],
    ['GET', '/api/documents/d1', 'GET /api/documents/{id} [d1]'],
    ['PUT', '/api/documents/d1', 'PUT /api/documents/{id} [d1]'],
    ['POST', '/api/documents/d1', 'none'],
    ['GET', '/api/documents/', 'none'],
    ['POST', '/api/orders/o1/refund', 'POST /api/orders/{id}/refund [o1]'],
    ['GET', '/admin', 'GET /admin/**'],
    ['DELETE', '/admin/users/1', '* /admin/**'],
    // Normalisation before matching: no way out of a public prefix.
    ['GET', '/api/public/../documents/d1', 'GET /api/documents/{id} [d1]'],
    ['GET', '/api/public/%2e%2e/documents/d1', 'GET /api/documents/{id} [d1]'],
    ['GET', '/api/public/.%2E/.%2e/admin', 'GET /admin/**'],
    ['GET', '/api/public%2F..%2Fdocuments/d1', 'refused: encoded-slash'],
    ['GET', '/api/public\\..\\documents/d1', 'refused: backslash'],
    ['GET', '/api//documents///d1', 'GET /api/documents/{id} [d1]'],
    ['GET', '/api/%64ocuments/d1?x=1#f', 'GET /api/documents/{id} [d1]'],
    ['GET', '/%68ealthz', 'GET /healthz'],
    ['GET', '/healthz/', 'none'],
    ['GET', '/healthz/.', 'none'],
  ];
  it.each(CASES)('%s %s → %s', (method, target, want) => {
    expect(route(method, target)).toBe(want);
  });
});

// ---------------------------------------------------------------- compile errors (not golden)

describe('routes: compile errors in detail', () => {
  it('reports a pattern with an error and leaves it out', () => {
    expect(errorsOf('GET "/a/" -> public\nGET "/a" -> public')).toEqual([
      'COMPILE_BAD_ROUTE a route pattern must not end with `/` | remove the trailing `/` (a request path with a trailing `/` is matched by `/**` patterns only)',
    ]);
  });

  it('treats `{x}` and `*` as the same shape', () => {
    expect(errorsOf('GET "/a/{x}" -> public\nGET "/a/*" -> public')).toEqual(['COMPILE_AMBIGUOUS_ROUTE route `GET /a/*` matches the same requests as `GET /a/{x}` at p.policy:8:1 | remove one, or make one more specific']);
  });

  it('accepts the same shape with different methods, `*` included', () => {
    const root = routesOf('GET "/a/{x}" -> public\nPOST "/a/{y}" -> public\n* "/a/*" -> public');
    expect(matched(root, 'POST', '/a/1')).toBe('POST /a/{y} [1]');
    expect(matched(root, 'PUT', '/a/1')).toBe('* /a/* [1]');
  });

  it('treats `/a/**` and `/a` as different shapes', () => {
    expect(matched(routesOf('GET "/a/**" -> public\nGET "/a" -> view admin_console'), 'GET', '/a')).toBe('GET /a');
  });

  const BAD: ReadonlyArray<readonly [string, string]> = [
    ['GET "" -> public', 'COMPILE_BAD_ROUTE a route pattern must start with `/`'],
    ['GET "//" -> public', 'COMPILE_BAD_ROUTE a route pattern must not end with `/`'],
    ['GET "/a{b}" -> public', 'COMPILE_BAD_ROUTE `a{b}` is not a valid path segment'],
    ['GET "/{b}c" -> public', 'COMPILE_BAD_ROUTE `{b}c` is not a capture'],
    ['GET "/{}" -> public', 'COMPILE_BAD_ROUTE `{}` is not a capture'],
    ['GET "/{1a}" -> public', 'COMPILE_BAD_ROUTE `{1a}` is not a capture'],
    ['GET "/a*" -> public', 'COMPILE_BAD_ROUTE `a*` is not a valid path segment'],
    ['GET "/***" -> public', 'COMPILE_BAD_ROUTE `***` is not a valid path segment'],
    ['GET "/a b" -> public', 'COMPILE_BAD_ROUTE `a b` is not a valid path segment'],
    ['GET "/a?b" -> public', 'COMPILE_BAD_ROUTE `a?b` is not a valid path segment'],
    ['GET "/a#b" -> public', 'COMPILE_BAD_ROUTE `a#b` is not a valid path segment'],
    ['GET "/a\\\\b" -> public', 'COMPILE_BAD_ROUTE `a\\b` is not a valid path segment'],
    ['GET "/{x}/*/{x}" -> public', 'COMPILE_BAD_ROUTE capture `{x}` appears twice'],
  ];
  it.each(BAD)('%s', (route, want) => {
    const got = errorsOf(route);
    expect(got).toHaveLength(1);
    expect(got[0]?.startsWith(want), got[0]).toBe(true);
  });

  it('allows two `*` wildcards (they are not named)', () => {
    expect(matched(routesOf('GET "/*/*" -> public'), 'GET', '/a/b')).toBe('GET /*/* [a, b]');
  });

  it('rejects an id taken from a `*`', () => {
    expect(errorsOf('GET "/d/*" -> read document {id}')).toEqual(['COMPILE_UNKNOWN_CAPTURE the pattern has no capture `{id}` | capture the id with a `{name}` segment']);
  });

  it('reports an unknown type without a near name', () => {
    expect(errorsOf('GET "/x" -> read zzzzzz')).toEqual(['COMPILE_UNKNOWN_RESOURCE_TYPE unknown resource type `zzzzzz` | declare it with `resource NAME { ... }`']);
  });

  it('lists declared actions when no action is near', () => {
    expect(errorsOf('GET "/x" -> frobnicate document')).toEqual(['COMPILE_UNDECLARED_ACTION resource type `document` does not declare action `frobnicate` | declared actions: read, update, delete']);
  });

  it('reports every bad route, not just the first', () => {
    expect(errorsOf('FETCH "/a" -> public\nGET "a" -> public\nGET "/b" -> raed document').map((e) => e.split(' ')[0])).toEqual(['COMPILE_BAD_ROUTE', 'COMPILE_BAD_ROUTE', 'COMPILE_UNDECLARED_ACTION']);
  });
});

// ---------------------------------------------------------------- property: against a naive reference

type RefSegment = { kind: 'literal'; value: string } | { kind: 'param' } | { kind: 'rest' };
interface RefRoute {
  readonly method: string;
  readonly pattern: string;
  readonly segments: readonly RefSegment[];
}

function parsePattern(pattern: string): RefSegment[] {
  if (pattern === '/') return [];
  return pattern
    .slice(1)
    .split('/')
    .map((s): RefSegment => (s === '**' ? { kind: 'rest' } : s === '*' || s.startsWith('{') ? { kind: 'param' } : { kind: 'literal', value: s }));
}

/** The values of the one-segment wildcards if `route` matches `path`, else undefined. A one-segment wildcard never matches an empty segment. */
function refMatch(route: RefRoute, path: readonly string[]): string[] | undefined {
  const captures: string[] = [];
  for (const [i, seg] of route.segments.entries()) {
    if (seg.kind === 'rest') return captures; // `**` is last; it takes what is left, perhaps nothing.
    const p = path[i];
    if (p === undefined) return undefined;
    if (seg.kind === 'literal' && seg.value !== p) return undefined;
    if (seg.kind === 'param') {
      if (p === '') return undefined;
      captures.push(p);
    }
  }
  return route.segments.length === path.length ? captures : undefined;
}

/**
 * The documented order as a sort key: segment by segment, literal (0) before
 * a one-segment wildcard (1) before the end of a pattern (2) before `**` (3);
 * the end and `**` meet only where the path ends, where an exact pattern
 * beats `**` matching nothing.
 */
function specificity(route: RefRoute): number[] {
  const key = route.segments.map((s) => (s.kind === 'literal' ? 0 : s.kind === 'param' ? 1 : 3));
  return route.segments.at(-1)?.kind === 'rest' ? key : [...key, 2];
}

function compareRoutes(a: RefRoute, b: RefRoute, method: string): number {
  const ka = specificity(a);
  const kb = specificity(b);
  for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
    const d = (ka[i] as number) - (kb[i] as number);
    if (d !== 0) return d;
  }
  // Two patterns matching the same path differ before either key ends, unless they have the same shape.
  if (ka.length !== kb.length) throw new Error(`reference: ${a.pattern} and ${b.pattern} compare equal`);
  return (a.method === method ? 0 : 1) - (b.method === method ? 0 : 1);
}

/** Scores every route and returns the best: `METHOD pattern [captures]`, or `none`. */
function reference(routes: readonly RefRoute[], method: string, path: readonly string[]): string {
  let best: { route: RefRoute; captures: string[] } | undefined;
  for (const route of routes) {
    if (route.method !== method && route.method !== '*') continue;
    const captures = refMatch(route, path);
    if (captures === undefined) continue;
    if (best === undefined || compareRoutes(route, best.route, method) < 0) best = { route, captures };
  }
  if (best === undefined) return 'none';
  return `${best.route.method} ${best.route.pattern}${best.captures.length > 0 ? ` [${best.captures.join(', ')}]` : ''}`;
}

/** Two routes are ambiguous when they have the same method and the same pattern with wildcards unnamed. */
const shapeOf = (r: { method: string; pattern: string }): string => `${r.method} ${r.pattern.replace(/\{\w+\}/g, '*')}`;

const LITERALS = ['a', 'b', 'c'] as const;
const METHODS = ['GET', 'POST', '*'] as const;

const patternArb = fc
  .tuple(fc.array(fc.constantFrom<string>(...LITERALS, '{}', '*'), { maxLength: 4 }), fc.boolean())
  .map(([segs, rest]) => {
    let n = 0;
    const named = segs.map((s) => (s === '{}' ? `{p${n++}}` : s));
    if (rest) named.push('**');
    return named.length === 0 ? '/' : `/${named.join('/')}`;
  });
const routeArb = fc.record({ method: fc.constantFrom(...METHODS), pattern: patternArb });
/** Normalised paths: segments from the literals and one more, perhaps a trailing slash. */
const pathArb = fc
  .tuple(fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 5 }), fc.boolean())
  .map(([segs, trailing]) => (trailing ? [...segs, ''] : segs));
const requestMethodArb = fc.constantFrom('GET', 'POST', 'PUT');

function compileRoutes(routes: ReadonlyArray<{ method: string; pattern: string }>): RouteNode {
  return routesOf(routes.map((r) => `${r.method} "${r.pattern}" -> public`).join('\n'));
}

describe('matchRoute: property against a naive reference', () => {
  it('picks the route the documented order picks, on random route sets without ambiguity', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(routeArb, { maxLength: 12, selector: shapeOf }),
        fc.array(fc.tuple(requestMethodArb, pathArb), { minLength: 1, maxLength: 10 }),
        (routes, requests) => {
          const root = compileRoutes(routes);
          const refs: RefRoute[] = routes.map((r) => ({ ...r, segments: parsePattern(r.pattern) }));
          for (const [method, path] of requests) {
            const m = matchRoute(root, method, path);
            const got = m === undefined ? 'none' : `${m.route.id}${m.captures.length > 0 ? ` [${m.captures.join(', ')}]` : ''}`;
            expect(got, `${method} /${path.join('/')}`).toBe(reference(refs, method, path));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reports two routes of the same shape and method as ambiguous, and only those', () => {
    fc.assert(
      fc.property(fc.array(routeArb, { minLength: 1, maxLength: 8 }), (routes) => {
        const shapes = routes.map(shapeOf);
        const duplicates = shapes.filter((s, i) => shapes.indexOf(s) !== i).length;
        let codes: string[] = [];
        try {
          compileRoutes(routes);
        } catch (e) {
          if (!(e instanceof CompileError)) throw e;
          codes = e.diagnostics.map((d) => d.code);
        }
        expect(codes).toEqual(Array.from({ length: duplicates }, () => 'COMPILE_AMBIGUOUS_ROUTE'));
      }),
      { numRuns: 300 },
    );
  });

  it('the reference itself follows the examples in the table', () => {
    const refs = ['GET /a/{x}/c', 'GET /a/b/**'].map((s) => {
      const [method, pattern] = s.split(' ') as [string, string];
      return { method, pattern, segments: parsePattern(pattern) };
    });
    expect(reference(refs, 'GET', ['a', 'b', 'c'])).toBe('GET /a/b/**');
    const fallback = ['GET /api/docs/{id}', '* /api/**'].map((s) => {
      const [method, pattern] = s.split(' ') as [string, string];
      return { method, pattern, segments: parsePattern(pattern) };
    });
    expect(reference(fallback, 'POST', ['api', 'docs', '1'])).toBe('* /api/**');
  });
});

// ---------------------------------------------------------------- golden cases cover the route errors

describe('routes: golden compile errors', () => {
  const dir = join(import.meta.dirname, 'testdata', 'compile-errors');
  const cases = readdirSync(dir).filter((f) => f.startsWith('route-') && !f.endsWith('.golden'));

  it('exist for every route error code, each with a golden file', () => {
    const goldens = cases.map((c) => readFileSync(join(dir, `${c.replace(/\.policy$/, '')}.golden`), 'utf8'));
    for (const code of ['COMPILE_BAD_ROUTE', 'COMPILE_AMBIGUOUS_ROUTE', 'COMPILE_UNKNOWN_CAPTURE', 'COMPILE_UNDECLARED_ACTION', 'COMPILE_UNKNOWN_RESOURCE_TYPE']) {
      expect(goldens.some((g) => g.includes(`(${code})`)), code).toBe(true);
    }
    expect(cases.filter((c) => statSync(join(dir, c)).isDirectory())).toContain('route-ambiguous-across-files');
  });
});

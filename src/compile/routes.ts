/**
 * The routes stage: HTTP routes declared in `routes { ... }` blocks, checked
 * and built into a segment trie for gateways (Envoy ext_authz).
 *
 * Pattern syntax: a path starting with `/`, segments separated by `/`; a
 * segment is a literal (RFC 3986 path characters, no `%`), `{name}` (one
 * segment, captured), `*` (one segment) or, as the last segment only, `**`
 * (zero or more segments). Precedence is by specificity, segment by segment —
 * a literal beats a one-segment wildcard beats `**` — then the method (an exact
 * method beats `*`). Two routes with the same shape and method could never be
 * told apart: that is an error, as is a trailing `/`.
 */
import { formatLocation, type Diagnostic } from '../errors.js';
import type { RouteDecl } from '../lang/ast.js';
import { didYouMean } from './suggest.js';
import type { CompiledRoute, RouteNode } from './tree.js';

/** Methods a route may name (or `*`). */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'] as const;
/** Most segments in a pattern. */
export const MAX_ROUTE_SEGMENTS = 64;

const LITERAL_SEGMENT = /^[A-Za-z0-9\-._~!$&'()+,;=:@]+$/;
const CAPTURE = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** An empty route trie. */
export function emptyRouteNode(): RouteNode {
  return { literal: new Map(), param: undefined, rest: new Map(), routes: new Map() };
}

/** What the routes stage needs from the declarations. */
export interface RouteScope {
  readonly actionsOf: (type: string) => readonly string[] | undefined;
  readonly types: () => Iterable<string>;
  readonly report: (d: Diagnostic) => void;
}

/**
 * Checks `decls` and inserts them into `root`. Errors are reported, not thrown;
 * a route with an error is left out (the set then fails to compile anyway).
 */
export function addRoutes(root: RouteNode, decls: readonly RouteDecl[], scope: RouteScope): void {
  for (const decl of decls) {
    const route = checkRoute(decl, scope);
    if (route === undefined) continue;
    insert(root, route, decl, scope);
  }
}

type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string | null } | { kind: 'rest' };

function checkRoute(decl: RouteDecl, scope: RouteScope): (CompiledRoute & { segments: Segment[] }) | undefined {
  const fail = (message: string, help?: string, location = decl.pattern.loc): undefined => {
    scope.report(help === undefined ? { code: 'COMPILE_BAD_ROUTE', message, location } : { code: 'COMPILE_BAD_ROUTE', message, location, help });
    return undefined;
  };
  const method = decl.method.name;
  if (method !== '*' && !(HTTP_METHODS as readonly string[]).includes(method)) {
    return fail(`\`${method}\` is not an HTTP method`, `use one of ${HTTP_METHODS.join(', ')}, or \`*\` for any`, decl.method.loc);
  }
  const pattern = decl.pattern.value;
  if (!pattern.startsWith('/')) return fail('a route pattern must start with `/`');
  if (pattern.length > 1 && pattern.endsWith('/')) return fail('a route pattern must not end with `/`', 'remove the trailing `/` (a request path with a trailing `/` is matched by `/**` patterns only)');
  const raw = pattern === '/' ? [] : pattern.slice(1).split('/');
  if (raw.length > MAX_ROUTE_SEGMENTS) return fail(`a route pattern has at most ${MAX_ROUTE_SEGMENTS} segments`);
  const segments: Segment[] = [];
  const captures: (string | null)[] = [];
  for (const [i, seg] of raw.entries()) {
    if (seg === '') return fail('empty segment (`//`) in a route pattern');
    if (seg === '**') {
      if (i !== raw.length - 1) return fail('`**` may only be the last segment of a route pattern');
      segments.push({ kind: 'rest' });
    } else if (seg === '*') {
      segments.push({ kind: 'param', name: null });
      captures.push(null);
    } else if (seg.startsWith('{')) {
      const m = CAPTURE.exec(seg);
      if (m === null) return fail(`\`${seg}\` is not a capture`, 'a capture is a whole segment `{name}`, name made of letters, digits and `_`');
      const name = m[1] as string;
      if (captures.includes(name)) return fail(`capture \`{${name}}\` appears twice`);
      segments.push({ kind: 'param', name });
      captures.push(name);
    } else if (seg === '.' || seg === '..') {
      return fail(`\`${seg}\` segments are resolved away before matching, so this route could never match`);
    } else if (!LITERAL_SEGMENT.test(seg)) {
      return fail(`\`${seg}\` is not a valid path segment`, 'literal segments use letters, digits and - . _ ~ ! $ & \' ( ) + , ; = : @ (no `%`, `*` or braces inside a segment)');
    } else {
      segments.push({ kind: 'literal', value: seg });
    }
  }
  const t = decl.target;
  let target: CompiledRoute['target'];
  if (t.kind === 'public') {
    target = { kind: 'public' };
  } else {
    const actions = scope.actionsOf(t.type.name);
    if (actions === undefined) {
      scope.report({ code: 'COMPILE_UNKNOWN_RESOURCE_TYPE', message: `unknown resource type \`${t.type.name}\``, location: t.type.loc, help: didYouMean(t.type.name, scope.types()) ?? 'declare it with `resource NAME { ... }`' });
      return undefined;
    }
    if (!actions.includes(t.action.name)) {
      scope.report({
        code: 'COMPILE_UNDECLARED_ACTION',
        message: `resource type \`${t.type.name}\` does not declare action \`${t.action.name}\``,
        location: t.action.loc,
        help: didYouMean(t.action.name, actions) ?? `declared actions: ${actions.join(', ') || 'none'}`,
      });
      return undefined;
    }
    if (t.id !== null && !captures.includes(t.id.name)) {
      scope.report({
        code: 'COMPILE_UNKNOWN_CAPTURE',
        message: `the pattern has no capture \`{${t.id.name}}\``,
        location: t.id.loc,
        help: didYouMean(t.id.name, captures.filter((c): c is string => c !== null), (s) => `{${s}}`) ?? 'capture the id with a `{name}` segment',
      });
      return undefined;
    }
    target = { kind: 'resource', action: t.action.name, resourceType: t.type.name, idCapture: t.id?.name ?? null };
  }
  return { id: `${method} ${pattern}`, method, pattern, target, captures, location: decl.loc, segments };
}

function insert(root: RouteNode, route: CompiledRoute & { segments: Segment[] }, decl: RouteDecl, scope: RouteScope): void {
  let node = root;
  let table = node.routes;
  for (const seg of route.segments) {
    if (seg.kind === 'rest') {
      table = node.rest;
      break;
    }
    let next: RouteNode | undefined;
    if (seg.kind === 'literal') {
      next = node.literal.get(seg.value);
      if (next === undefined) {
        next = emptyRouteNode();
        node.literal.set(seg.value, next);
      }
    } else {
      next = node.param ??= emptyRouteNode();
    }
    node = next;
    table = node.routes;
  }
  const prior = table.get(route.method);
  if (prior !== undefined) {
    scope.report({
      code: 'COMPILE_AMBIGUOUS_ROUTE',
      message: `route \`${route.id}\` matches the same requests as \`${prior.id}\` at ${formatLocation(prior.location)}`,
      location: decl.loc,
      help: 'remove one, or make one more specific',
    });
    return;
  }
  const { segments: _segments, ...compiled } = route;
  table.set(route.method, compiled);
}

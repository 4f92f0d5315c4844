/**
 * Route lookup over the compiled route trie: the most specific route for a
 * method and a normalised path, segment by segment (a literal beats a
 * one-segment wildcard beats `**`), then by method (exact beats `*`).
 */
import type { CompiledRoute, RouteNode } from '../compile/tree.js';

/** A matched route and the values of its one-segment wildcards, in order. */
export interface RouteMatch {
  readonly route: CompiledRoute;
  readonly captures: readonly string[];
}

/**
 * Finds the route for `method` and `segments` (a normalised path split on `/`,
 * without the leading empty segment).
 *
 * @example
 * matchRoute(tree.routes, 'GET', ['api', 'documents', 'd1']) // { route: GET /api/documents/{id}, captures: ['d1'] }
 */
export function matchRoute(root: RouteNode, method: string, segments: readonly string[]): RouteMatch | undefined {
  const captures: string[] = [];
  const route = search(root, method, segments, 0, captures);
  return route === undefined ? undefined : { route, captures };
}

function pick(table: ReadonlyMap<string, CompiledRoute>, method: string): CompiledRoute | undefined {
  return table.get(method) ?? table.get('*');
}

// Depth is bounded by the number of segments (the caller bounds the path) and
// each level tries at most three children.
function search(node: RouteNode, method: string, segments: readonly string[], i: number, captures: string[]): CompiledRoute | undefined {
  if (i === segments.length) {
    const exact = pick(node.routes, method);
    if (exact !== undefined) return exact;
  } else {
    const seg = segments[i] as string;
    const literal = node.literal.get(seg);
    if (literal !== undefined) {
      const r = search(literal, method, segments, i + 1, captures);
      if (r !== undefined) return r;
    }
    if (node.param !== undefined && seg !== '') {
      captures.push(seg);
      const r = search(node.param, method, segments, i + 1, captures);
      if (r !== undefined) return r;
      captures.pop();
    }
  }
  // `**` matches what is left, including nothing.
  return pick(node.rest, method);
}

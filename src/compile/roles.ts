/**
 * Role tests at decision time: the subject's roles expanded through the
 * hierarchy, and derived roles, each computed at most once per request.
 */
import type { EvalContext, RoleGraph } from './tree.js';

/** The subject's roles plus every role they inherit, memoised on the context. */
export function subjectRoles(ctx: EvalContext): ReadonlySet<string> {
  if (ctx.roles !== undefined) return ctx.roles;
  const out = new Set<string>();
  const held = Object.hasOwn(ctx.subject, 'roles') ? ctx.subject['roles'] : undefined;
  if (Array.isArray(held)) {
    // Every role counts: dropping some could skip a forbid keyed on them. Request
    // validation bounds the size of the list.
    for (const r of held as readonly unknown[]) {
      if (typeof r !== 'string') continue;
      const implied = ctx.roleGraph.implied.get(r);
      if (implied === undefined) out.add(r);
      else for (const x of implied) out.add(x);
    }
  }
  ctx.roles = out;
  return out;
}

/**
 * Whether a derived role holds for this request: its condition holds. Memoised; the compiler rejects
 * cycles between derived roles, and the memo is primed with `false` so that
 * even a cycle could not recurse.
 */
export function derivedRoleHolds(ctx: EvalContext, name: string): boolean {
  let memo = ctx.derived;
  if (memo === undefined) {
    memo = new Map();
    ctx.derived = memo;
  } else {
    const seen = memo.get(name);
    if (seen !== undefined) return seen;
  }
  const def = ctx.derivedRoles.get(name);
  if (def === undefined) {
    memo.set(name, false);
    return false;
  }
  memo.set(name, false);
  const holds = def.condition(ctx);
  memo.set(name, holds);
  return holds;
}

/** Builds the role graph from hierarchy chains (`admin > editor > viewer`): each role implies itself and all below it. */
export function buildRoleGraph(edges: ReadonlyMap<string, ReadonlySet<string>>): RoleGraph {
  const implied = new Map<string, string[]>();
  const visit = (role: string, acc: Set<string>): void => {
    if (acc.has(role)) return;
    acc.add(role);
    for (const below of edges.get(role) ?? []) visit(below, acc);
  };
  for (const role of edges.keys()) {
    const acc = new Set<string>();
    visit(role, acc);
    implied.set(role, [...acc]);
  }
  return { implied };
}

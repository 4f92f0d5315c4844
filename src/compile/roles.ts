/**
 * Role tests at decision time: the subject's roles expanded through the
 * hierarchy, and derived roles, each computed at most once per request.
 */
import type { EvalContext, RoleGraph } from './tree.js';

/** Role lists up to this long are tested by a scan; longer ones are expanded into a set once per request. */
export const SHORT_ROLE_LIST = 8;
const NO_ROLES: readonly unknown[] = Object.freeze([]);

/** The subject's `roles` list as given (empty when it is not a list), memoised on the context. */
export function heldRoles(ctx: EvalContext): readonly unknown[] {
  let held = ctx.held;
  if (held === undefined) {
    const v = Object.hasOwn(ctx.subject, 'roles') ? ctx.subject['roles'] : undefined;
    held = Array.isArray(v) ? (v as readonly unknown[]) : NO_ROLES;
    ctx.held = held;
  }
  return held;
}

/** The subject's roles plus every role they inherit, memoised on the context. */
export function subjectRoles(ctx: EvalContext): ReadonlySet<string> {
  if (ctx.roles !== undefined) return ctx.roles;
  const out = new Set<string>();
  // Every role counts: dropping some could skip a forbid keyed on them. Request
  // validation bounds the size of the list.
  for (const r of heldRoles(ctx)) {
    if (typeof r !== 'string') continue;
    const implied = ctx.roleGraph.implied.get(r);
    if (implied === undefined) out.add(r);
    else for (const x of implied) out.add(x);
  }
  ctx.roles = out;
  return out;
}

/**
 * Whether the subject holds `role`, directly or through the hierarchy: the
 * same answer as `subjectRoles(ctx).has(role)`, without building the set for
 * a short role list.
 */
export function hasRole(ctx: EvalContext, role: string): boolean {
  if (ctx.roles !== undefined) return ctx.roles.has(role);
  const held = heldRoles(ctx);
  if (held.length > SHORT_ROLE_LIST) return subjectRoles(ctx).has(role);
  const by = ctx.roleGraph.impliedBy.get(role);
  for (let i = 0; i < held.length; i++) {
    const r = held[i];
    if (typeof r === 'string' && (r === role || (by !== undefined && by.has(r)))) return true;
  }
  return false;
}

/**
 * Whether a derived role holds for this request: its condition holds. Memoised; the compiler rejects
 * cycles between derived roles, and the memo is primed with `false` so that
 * even a cycle could not recurse.
 */
export function derivedRoleHolds(ctx: EvalContext, name: string): boolean {
  const def = ctx.derivedRoles.get(name);
  if (def === undefined) return false;
  const slot = def.slot;
  if (slot < 31) {
    const bit = 1 << slot;
    if ((ctx.derivedDone & bit) !== 0) return (ctx.derivedTrue & bit) !== 0;
    ctx.derivedDone |= bit;
    const holds = def.condition(ctx);
    if (holds) ctx.derivedTrue |= bit;
    return holds;
  }
  let memo = ctx.derived;
  if (memo === undefined) {
    memo = new Map();
    ctx.derived = memo;
  } else {
    const seen = memo.get(name);
    if (seen !== undefined) return seen;
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
  const impliedBy = new Map<string, Set<string>>();
  for (const [role, below] of implied) {
    for (const x of below) {
      if (x === role) continue;
      let by = impliedBy.get(x);
      if (by === undefined) {
        by = new Set();
        impliedBy.set(x, by);
      }
      by.add(role);
    }
  }
  return { implied, impliedBy };
}

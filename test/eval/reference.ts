/**
 * A naive reference evaluator: the oracle for the property tests.
 *
 * It walks the parsed syntax tree of every rule for every request, with no
 * index, no closures, no memos and no compile-time rewriting. It is meant to
 * be obviously correct rather than fast: every language rule below is written
 * once, in the most direct form, straight from the documented semantics.
 *
 * It trusts its input to be a policy set that compiles (the property tests
 * only feed it such sets); it does no semantic checking of its own.
 *
 * Only leaf helpers (value conversions, glob and CIDR matching) come from
 * src/compile/ops.ts; paths, boolean logic, comparison dispatch, membership,
 * roles, derived roles and rule combining are reimplemented here.
 */
import {
  dayOfWeek,
  equals,
  globMatch,
  order,
  parseCidr,
  parseTimeOfDay,
  parseUtcOffset,
  sizeOf,
  timeOfDay,
  toTimestamp,
} from '../../src/compile/ops.js';
import type { CallExpr, DeriveDecl, Expr, PathExpr, ResourceDecl } from '../../src/lang/ast.js';
import { parsePolicy } from '../../src/lang/parse.js';
import type { Request } from '../../src/eval/evaluate.js';

/** The decision fields the compiled evaluator must reproduce. */
export interface ReferenceDecision {
  readonly decision: 'ALLOW' | 'DENY';
  readonly reason: 'RULE_PERMIT' | 'RULE_FORBID' | 'NO_MATCHING_RULE' | 'UNKNOWN_RESOURCE_TYPE' | 'UNDECLARED_ACTION';
  readonly rules: readonly string[];
}

/** A policy set as the reference sees it: parsed files, in policy order. */
export interface ReferencePolicySet {
  /** Role hierarchy edges: role → roles directly below it. */
  readonly below: ReadonlyMap<string, readonly string[]>;
  readonly derives: readonly DeriveDecl[];
  readonly resources: readonly ResourceDecl[];
}

/**
 * Parses a policy set for the reference evaluator. Files are taken in path
 * order, which is what "policy order" means for rule precedence.
 *
 * @param sources the policy files (paths and texts), in any order
 */
export function loadReference(sources: ReadonlyArray<{ readonly path: string; readonly text: string }>): ReferencePolicySet {
  const sorted = [...sources].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const below = new Map<string, string[]>();
  const derives: DeriveDecl[] = [];
  const resources: ResourceDecl[] = [];
  for (const s of sorted) {
    for (const decl of parsePolicy(s.text, s.path).decls) {
      if (decl.kind === 'derive') derives.push(decl);
      else if (decl.kind === 'resource') resources.push(decl);
      else if (decl.kind === 'roles') {
        // `a > b > c`: each role sits directly above the next one in its chain.
        for (const chain of decl.chains) {
          chain.forEach((hi, i) => {
            const lo = chain[i + 1];
            if (lo !== undefined) below.set(hi.name, [...(below.get(hi.name) ?? []), lo.name]);
          });
        }
      }
    }
  }
  return { below, derives, resources };
}

/** Everything a condition can see while one request is decided. */
interface Env {
  readonly set: ReferencePolicySet;
  readonly request: Request;
  readonly type: string;
  readonly now: number;
}

/**
 * Decides a request by scanning every rule of the policy set.
 *
 * @param set a policy set from {@link loadReference}
 * @param request the request, as the compiled evaluator receives it
 * @param now the decision time in milliseconds since the epoch
 */
export function referenceDecide(set: ReferencePolicySet, request: Request, now: number): ReferenceDecision {
  const resource = set.resources.find((r) => r.name.name === request.resource.type);
  if (resource === undefined) return { decision: 'DENY', reason: 'UNKNOWN_RESOURCE_TYPE', rules: [] };
  if (!resource.actions.some((a) => a.name === request.action)) return { decision: 'DENY', reason: 'UNDECLARED_ACTION', rules: [] };
  const env: Env = { set, request, type: resource.name.name, now };
  // Rules of one resource block are already in source order, and resource
  // types are unique, so "first in policy order" is "first in this block".
  const applying = resource.rules.filter(
    (r) =>
      (r.actions === '*' || r.actions.some((a) => a.name === request.action)) &&
      conditionHolds(r.when, r.unless, env),
  );
  const idOf = (r: (typeof applying)[number]): string =>
    r.name !== null ? `${resource.name.name}.${r.name.name}` : `${r.loc.source}:${r.loc.start.line}`;
  const forbid = applying.find((r) => r.effect === 'forbid');
  if (forbid !== undefined) return { decision: 'DENY', reason: 'RULE_FORBID', rules: [idOf(forbid)] };
  const permit = applying.find((r) => r.effect === 'permit');
  if (permit !== undefined) return { decision: 'ALLOW', reason: 'RULE_PERMIT', rules: [idOf(permit)] };
  return { decision: 'DENY', reason: 'NO_MATCHING_RULE', rules: [] };
}

/** `when` AND NOT `unless`; a missing part is left out, so no condition at all always holds. */
function conditionHolds(when: Expr | null, unless: Expr | null, env: Env): boolean {
  return (when === null || holds(when, env)) && (unless === null || !holds(unless, env));
}

/** Whether an expression, in condition position, holds. Two-valued: anything odd is false. */
function holds(e: Expr, env: Env): boolean {
  switch (e.kind) {
    case 'and':
      return e.args.every((a) => holds(a, env));
    case 'or':
      return e.args.some((a) => holds(a, env));
    case 'not':
      return !holds(e.arg, env);
    case 'cmp':
      return compare(e.op, e.left, e.right, env);
    case 'in':
      return isMember(value(e.left, env), value(e.right, env));
    case 'has':
      return isMember(value(e.right, env), value(e.left, env));
    default:
      // A bare value (attribute, boolean literal, method result) holds iff it is exactly `true`.
      return value(e, env) === true;
  }
}

/** The value of an expression; `undefined` for anything missing. Tests used as values are booleans. */
function value(e: Expr, env: Env): unknown {
  switch (e.kind) {
    case 'lit':
      return e.value;
    case 'list':
      return e.items.map((i) => value(i, env));
    case 'path':
      return readPath(e, env);
    case 'call':
      return e.target === null ? callFunction(e, env) : callMethod(e, e.target, env);
    default:
      return holds(e, env);
  }
}

/** A string literal argument (the compiler guarantees its presence and type). */
function stringArg(e: CallExpr, i: number): string {
  const a = e.args[i];
  if (a === undefined || a.kind !== 'lit' || typeof a.value !== 'string') throw new Error(`reference: ${e.name.name} needs a string literal`);
  return a.value;
}

function callFunction(e: CallExpr, env: Env): unknown {
  switch (e.name.name) {
    case 'exists': {
      const arg = e.args[0];
      if (arg === undefined || arg.kind !== 'path') throw new Error('reference: exists needs a path');
      return readPath(arg, env) !== undefined;
    }
    case 'timestamp':
      return toTimestamp(stringArg(e, 0));
    case 'time':
      return parseTimeOfDay(stringArg(e, 0));
    default:
      throw new Error(`reference: unknown function ${e.name.name}`);
  }
}

function callMethod(e: CallExpr, targetExpr: Expr, env: Env): unknown {
  const name = e.name.name;
  if (name === 'role') return hasRole(stringArg(e, 0), env);
  const target = value(targetExpr, env);
  const offset = (): number => (e.args.length === 0 ? 0 : (parseUtcOffset(stringArg(e, 0)) ?? 0));
  switch (name) {
    case 'startsWith':
    case 'endsWith': {
      const arg = value(e.args[0] as Expr, env);
      if (typeof target !== 'string' || typeof arg !== 'string') return false;
      return name === 'startsWith' ? target.startsWith(arg) : target.endsWith(arg);
    }
    case 'matches':
      return typeof target === 'string' && globMatch(stringArg(e, 0), target);
    case 'inCidr':
      return parseCidr(stringArg(e, 0))?.contains(target) === true;
    case 'size':
      return sizeOf(target);
    case 'containsAny':
    case 'containsAll': {
      const wanted = value(e.args[0] as Expr, env);
      if (!Array.isArray(target) || !Array.isArray(wanted)) return false;
      const items: readonly unknown[] = wanted;
      return name === 'containsAny' ? items.some((w) => isMember(w, target)) : items.every((w) => isMember(w, target));
    }
    case 'timeOfDay':
      return timeOfDay(target, offset());
    case 'dayOfWeek':
      return dayOfWeek(target, offset());
    default:
      throw new Error(`reference: unknown method ${name}`);
  }
}

/** `timestamp("...")`: the one syntactic form whose comparisons convert the other side. */
function isTimestampLiteral(e: Expr): boolean {
  return e.kind === 'call' && e.target === null && e.name.name === 'timestamp';
}

function compare(op: '==' | '!=' | '<' | '<=' | '>' | '>=', leftExpr: Expr, rightExpr: Expr, env: Env): boolean {
  let left = value(leftExpr, env);
  let right = value(rightExpr, env);
  // Against a timestamp literal, the other side is an RFC 3339 string or epoch seconds.
  const tsLeft = isTimestampLiteral(leftExpr);
  const tsRight = isTimestampLiteral(rightExpr);
  if (tsLeft && !tsRight) right = toTimestamp(right);
  if (tsRight && !tsLeft) left = toTimestamp(left);
  if (op === '==') return equals(left, right);
  if (op === '!=') return !equals(left, right);
  return order(op, left, right);
}

function isScalar(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

/** `x in list`: the list is an array and the scalar `x` is `===` one of its elements. */
function isMember(x: unknown, list: unknown): boolean {
  return Array.isArray(list) && isScalar(x) && (list as readonly unknown[]).some((el) => el === x);
}

/** One step of a path: an own property of a non-array object; JSON null is missing. */
function step(obj: unknown, key: string): unknown {
  if (obj === null || obj === undefined || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  if (!Object.hasOwn(obj, key)) return undefined;
  const v: unknown = (obj as Record<string, unknown>)[key];
  return v === null ? undefined : v;
}

function walk(root: unknown, segments: readonly string[]): unknown {
  let v: unknown = root;
  for (const s of segments) v = step(v, s);
  return v;
}

function readPath(p: PathExpr, env: Env): unknown {
  const segs = p.segments.map((s) => s.name);
  const { request } = env;
  switch (p.root.name) {
    case 'action':
      return request.action;
    case 'subject':
      return walk(request.subject, segs);
    case 'resource': {
      // `resource.type` and `resource.id` are the request's type and id (strings), so any
      // segment after them reads through a string: missing. Everything else is an attribute.
      const [first, ...rest] = segs;
      if (first === 'type') return walk(request.resource.type, rest);
      if (first === 'id') return walk(request.resource.id === '' ? undefined : request.resource.id, rest);
      return walk(request.resource.attributes, segs);
    }
    case 'context': {
      const v = walk(request.context, segs);
      // The request time defaults to the decision clock, in epoch seconds.
      if (v === undefined && segs.length === 1 && segs[0] === 'time') return env.now / 1000;
      return v;
    }
    default:
      throw new Error(`reference: unknown root ${p.root.name}`);
  }
}

/** Whether `held` is `role` or inherits it through the hierarchy (depth-first; the hierarchy is acyclic). */
function implies(held: string, role: string, below: ReadonlyMap<string, readonly string[]>): boolean {
  if (held === role) return true;
  return (below.get(held) ?? []).some((b) => implies(b, role, below));
}

/** `subject.role("r")`: a derived role for this type, else a held role (or one above it in the hierarchy). */
function hasRole(role: string, env: Env): boolean {
  const derived = env.set.derives.find((d) => d.name.name === role && (d.types === '*' || d.types.some((t) => t.name === env.type)));
  if (derived !== undefined) return conditionHolds(derived.when, derived.unless, env);
  const held = walk(env.request.subject, ['roles']);
  if (!Array.isArray(held)) return false;
  return (held as readonly unknown[]).some((r) => typeof r === 'string' && implies(r, role, env.set.below));
}

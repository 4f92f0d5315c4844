/**
 * Rule indexing, the last compile stage, behind one small interface:
 * {@link buildIndex} builds a node tree from rules and the tests they share,
 * {@link lookupCandidates} returns the rules worth testing for a request, and
 * {@link allCandidates} is the unindexed path the evaluator can be forced
 * onto (tests check that both agree).
 *
 * A switch node drops a rule only when one of the rule's top-level conjuncts
 * is false for the request (its `==` constant differs from the value read,
 * or the subject lacks its role), so the rule could not apply. Candidates are
 * then tested with their full condition: the index never changes a decision,
 * it only skips work.
 */
import type { IndexKey } from './expr.js';
import type { Scalar } from './ops.js';
import { derivedRoleHolds, heldRoles, SHORT_ROLE_LIST, subjectRoles } from './roles.js';
import type { CompiledRule, EvalContext, IndexNode, LeafNode } from './tree.js';

/** A rule with the indexable tests among its top-level conjuncts. */
export interface IndexEntry {
  readonly rule: CompiledRule;
  readonly keys: readonly IndexKey[];
}

/** At or below this many rules a node is a plain list: a switch would cost more than it saves. */
export const LEAF_SIZE = 4;
/** A test must be shared by at least this many rules to earn a switch. */
const MIN_SHARED = 4;
const MAX_DEPTH = 8;

/**
 * Builds the index for one (resource type, action, effect).
 *
 * @param entries rules in policy order, each with its indexable tests
 */
export function buildIndex(entries: readonly IndexEntry[]): IndexNode {
  return build(entries, 0, new Set());
}

function leaf(entries: readonly IndexEntry[]): LeafNode {
  return { kind: 'leaf', rules: entries.map((e) => e.rule).sort((a, b) => a.order - b.order) };
}

function discriminator(k: IndexKey): string {
  return k.kind === 'eq' ? `eq:${k.path}` : 'role';
}

function build(entries: readonly IndexEntry[], depth: number, used: ReadonlySet<string>): IndexNode {
  if (entries.length <= LEAF_SIZE || depth >= MAX_DEPTH) return leaf(entries);
  // Score each shared test by the rules it keys minus half its largest
  // bucket: `subject.tenant == "tN"` over 1,000 tenants scores ~1,000, one
  // role shared by 1,000 rules ~500 (it still skips them all for subjects
  // without the role). Ties go to the first test seen, in policy order.
  const shapes = new Map<string, Map<Scalar, number>>();
  for (const e of entries) {
    const seen = new Set<string>();
    for (const k of e.keys) {
      const d = discriminator(k);
      if (used.has(d) || seen.has(d)) continue;
      seen.add(d);
      let sizes = shapes.get(d);
      if (sizes === undefined) {
        sizes = new Map();
        shapes.set(d, sizes);
      }
      const value = k.kind === 'eq' ? k.value : k.role;
      sizes.set(value, (sizes.get(value) ?? 0) + 1);
    }
  }
  let best: string | undefined;
  let bestScore = 0;
  for (const [d, sizes] of shapes) {
    let count = 0;
    let largest = 0;
    for (const n of sizes.values()) {
      count += n;
      if (n > largest) largest = n;
    }
    const score = count - largest / 2;
    if (count >= MIN_SHARED && score > bestScore) {
      best = d;
      bestScore = score;
    }
  }
  if (best === undefined) return leaf(entries);
  const nextUsed = new Set(used).add(best);
  const rest: IndexEntry[] = [];
  const groups = new Map<Scalar, IndexEntry[]>();
  let sample: Extract<IndexKey, { kind: 'eq' }> | undefined;
  const derivedKeys = new Set<string>();
  for (const e of entries) {
    const i = e.keys.findIndex((k) => discriminator(k) === best);
    const k = e.keys[i];
    if (k === undefined) {
      rest.push(e);
      continue;
    }
    const remaining = e.keys.filter((_, j) => j !== i);
    const bucketKey = k.kind === 'eq' ? k.value : k.role;
    if (k.kind === 'eq') sample = k;
    else if (k.derived) derivedKeys.add(k.role);
    const g = groups.get(bucketKey);
    if (g === undefined) groups.set(bucketKey, [{ rule: e.rule, keys: remaining }]);
    else g.push({ rule: e.rule, keys: remaining });
  }
  const restNode = build(rest, depth + 1, nextUsed);
  if (sample !== undefined) {
    const buckets = new Map<Scalar, IndexNode>();
    for (const [value, group] of groups) buckets.set(value, build(group, depth + 1, nextUsed));
    const m = bucketsMin(buckets.values());
    const r = nodeMin(restNode);
    return { kind: 'eq', min: Math.min(m, r), restFirst: r < m, path: sample.path, read: sample.read, buckets, rest: restNode };
  }
  const buckets = new Map<string, IndexNode>();
  for (const [role, group] of groups) buckets.set(role as string, build(group, depth + 1, nextUsed));
  const m = bucketsMin(buckets.values());
  const r = nodeMin(restNode);
  return { kind: 'role', min: Math.min(m, r), restFirst: r < m, buckets, derivedKeys: [...derivedKeys], rest: restNode };
}

/** The lowest `order` of any rule under `node` (`Infinity` when none): a leaf's rules are sorted. */
function nodeMin(node: IndexNode): number {
  return node.kind === 'leaf' ? (node.rules[0]?.order ?? Infinity) : node.min;
}

function bucketsMin(nodes: Iterable<IndexNode>): number {
  let m = Infinity;
  for (const n of nodes) m = Math.min(m, nodeMin(n));
  return m;
}

/**
 * Appends to `out` every rule of `node` that could apply to this request.
 * Each rule is appended at most once.
 */
export function lookupCandidates(node: IndexNode, ctx: EvalContext, out: CompiledRule[]): void {
  switch (node.kind) {
    case 'leaf':
      for (const r of node.rules) out.push(r);
      return;
    case 'eq': {
      // A Map lookup is `==`: same type and value (a missing value, object or list finds nothing).
      const b = node.buckets.get(node.read(ctx) as Scalar);
      if (b !== undefined) lookupCandidates(b, ctx, out);
      lookupCandidates(node.rest, ctx, out);
      return;
    }
    case 'role': {
      const roles = subjectRoles(ctx);
      const derived = node.derivedKeys;
      if (roles.size <= node.buckets.size) {
        for (const r of roles) {
          if (derived.length > 0 && derived.includes(r)) continue;
          const b = node.buckets.get(r);
          if (b !== undefined) lookupCandidates(b, ctx, out);
        }
      } else {
        for (const [r, b] of node.buckets) {
          if (roles.has(r) && !(derived.length > 0 && derived.includes(r))) lookupCandidates(b, ctx, out);
        }
      }
      for (const d of derived) {
        if (derivedRoleHolds(ctx, d)) {
          const b = node.buckets.get(d);
          if (b !== undefined) lookupCandidates(b, ctx, out);
        }
      }
      lookupCandidates(node.rest, ctx, out);
      return;
    }
  }
}

/**
 * The rule under `node` that applies to this request and comes first in
 * policy order, or `best` when none comes before it: what testing every
 * candidate of {@link lookupCandidates} would pick, without collecting them.
 * Leaves are sorted, so a leaf stops at its first applying rule or at the
 * first rule not before `best`.
 */
export function bestApplying(node: IndexNode, ctx: EvalContext, best: CompiledRule | undefined): CompiledRule | undefined {
  switch (node.kind) {
    case 'leaf': {
      const rules = node.rules;
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i] as CompiledRule;
        if (best !== undefined && r.order >= best.order) return best;
        if (r.condition === null || r.condition(ctx)) return r;
      }
      return best;
    }
    case 'eq': {
      if (best !== undefined && node.min >= best.order) return best;
      if (node.restFirst) best = bestApplying(node.rest, ctx, best);
      if (best === undefined || node.min < best.order) {
        const b = node.buckets.get(node.read(ctx) as Scalar);
        if (b !== undefined) best = bestApplying(b, ctx, best);
      }
      return node.restFirst ? best : bestApplying(node.rest, ctx, best);
    }
    case 'role': {
      if (best !== undefined && node.min >= best.order) return best;
      if (node.restFirst) {
        best = bestApplying(node.rest, ctx, best);
        if (best !== undefined && best.order <= node.min) return best;
      }
      const derived = node.derivedKeys;
      const held = heldRoles(ctx);
      if (ctx.roles === undefined && held.length <= SHORT_ROLE_LIST) {
        // A bucket may be reached twice (two held roles implying the same one): harmless here.
        const implied = ctx.roleGraph.implied;
        for (let i = 0; i < held.length; i++) {
          const r = held[i];
          if (typeof r !== 'string') continue;
          const all = implied.get(r);
          if (all === undefined) {
            if (derived.length > 0 && derived.includes(r)) continue;
            const b = node.buckets.get(r);
            if (b !== undefined) best = bestApplying(b, ctx, best);
          } else {
            for (let j = 0; j < all.length; j++) {
              const x = all[j] as string;
              if (derived.length > 0 && derived.includes(x)) continue;
              const b = node.buckets.get(x);
              if (b !== undefined) best = bestApplying(b, ctx, best);
            }
          }
        }
      } else {
        const roles = subjectRoles(ctx);
        if (roles.size <= node.buckets.size) {
          for (const r of roles) {
            if (derived.length > 0 && derived.includes(r)) continue;
            const b = node.buckets.get(r);
            if (b !== undefined) best = bestApplying(b, ctx, best);
          }
        } else {
          for (const [r, b] of node.buckets) {
            if (roles.has(r) && !(derived.length > 0 && derived.includes(r))) best = bestApplying(b, ctx, best);
          }
        }
      }
      for (let i = 0; i < derived.length; i++) {
        const d = derived[i] as string;
        if (derivedRoleHolds(ctx, d)) {
          const b = node.buckets.get(d);
          if (b !== undefined) best = bestApplying(b, ctx, best);
        }
      }
      return node.restFirst ? best : bestApplying(node.rest, ctx, best);
    }
  }
}

/** Every rule under `node`, in policy order: what an unindexed engine would scan. */
export function allCandidates(node: IndexNode): CompiledRule[] {
  const out: CompiledRule[] = [];
  const walk = (n: IndexNode): void => {
    if (n.kind === 'leaf') {
      out.push(...n.rules);
      return;
    }
    for (const b of n.buckets.values()) walk(b);
    walk(n.rest);
  };
  walk(node);
  return out.sort((a, b) => a.order - b.order);
}

/**
 * The compiled form of a policy set: an immutable decision structure that the
 * evaluator walks. It holds closures and hash maps, never syntax nodes, so a
 * decision does no parsing and no AST walking.
 */
import type { SourceLocation } from '../errors.js';

/** JSON-like attribute values as they arrive in a request. */
export type AttrValue = string | number | boolean | null | readonly AttrValue[] | { readonly [key: string]: AttrValue };
export type Attributes = { readonly [key: string]: AttrValue };

/**
 * Everything a condition may read during one decision, plus per-request
 * memos (the subject's expanded roles and derived-role results).
 */
export interface EvalContext {
  readonly subject: Attributes;
  /**
   * The resource and action fields are set again when one context serves
   * several decisions for one subject (a batch: evaluateActions), with the
   * derived-role memo cleared; the subject's roles are kept.
   */
  resourceType: string;
  resourceId: string;
  resource: Attributes;
  action: string;
  readonly context: Attributes;
  /** The decision time in milliseconds since the epoch (`context.time` when absent). */
  readonly now: number;
  /** The subject's roles with every inherited role added; filled on first use (only for long role lists and explain mode). */
  roles: ReadonlySet<string> | undefined;
  /** The subject's `roles` list as given (empty when it is not a list); filled on first use. */
  held: readonly unknown[] | undefined;
  /** Derived-role memo for slots below 31: bit `slot` set in `derivedDone` once computed, in `derivedTrue` when it holds. */
  derivedDone: number;
  derivedTrue: number;
  /** Derived-role results for slots from 31 on; filled on first use. */
  derived: Map<string, boolean> | undefined;
  /** The policy set's role graph and derived roles for this resource type. */
  readonly roleGraph: RoleGraph;
  derivedRoles: ReadonlyMap<string, DerivedRole>;
}

/**
 * A compiled condition. Two-valued: a test (`==`, `<`, `in`, `startsWith`…)
 * that reads a missing attribute or a value of the wrong type does not hold;
 * `!=` is exactly `not ==`, so it does hold there (see README, "Missing
 * attributes", for why and how to write permits and forbids with it).
 */
export type Condition = (ctx: EvalContext) => boolean;
/** A compiled value read: `undefined` when missing (or JSON null). */
export type ValueReader = (ctx: EvalContext) => unknown;

export type Effect = 'permit' | 'forbid';

/** One rule after compilation. */
export interface CompiledRule {
  /** `type.name` for a named rule, `file:line` for an unnamed one. */
  readonly id: string;
  readonly effect: Effect;
  readonly resourceType: string;
  readonly actions: readonly string[];
  /** Position in the whole policy set (files sorted by path, then source order): ties between deciding rules go to the lowest. */
  readonly order: number;
  readonly location: SourceLocation;
  /** `null` when the rule has no condition. */
  readonly condition: Condition | null;
}

/** A derived role's definition for one resource type. */
export interface DerivedRole {
  readonly name: string;
  /** Position among its resource type's derived roles: the index of its per-request memo bit. */
  readonly slot: number;
  readonly condition: Condition;
  readonly location: SourceLocation;
}

/** The role hierarchy: for each role, itself and every role it inherits. */
export interface RoleGraph {
  readonly implied: ReadonlyMap<string, readonly string[]>;
  /** The converse: for each role, every role that implies it (a role that implies only itself is left out). */
  readonly impliedBy: ReadonlyMap<string, ReadonlySet<string>>;
}

/**
 * A rule-index node. Leaves list rules to test; switch nodes narrow the
 * candidates by a test many rules share, without changing the result: a node
 * only drops rules whose condition cannot hold for the request.
 */
export type IndexNode = LeafNode | EqualityNode | RoleNode;

export interface LeafNode {
  readonly kind: 'leaf';
  readonly rules: readonly CompiledRule[];
}

/** `path == constant` shared by many rules: a hash lookup on the value at `path`. */
export interface EqualityNode {
  readonly kind: 'eq';
  /** The lowest `order` of any rule under the node. */
  readonly min: number;
  /** Whether `rest` holds a rule before every bucket's: the search visits it first. */
  readonly restFirst: boolean;
  readonly path: string;
  readonly read: ValueReader;
  /** Buckets per constant; a Map keeps 1 and "1" apart, as `==` does. */
  readonly buckets: ReadonlyMap<string | number | boolean, IndexNode>;
  /** Rules without this test. */
  readonly rest: IndexNode;
}

/** `subject.role("r")` shared by many rules: visit only the buckets of roles the subject holds. */
export interface RoleNode {
  readonly kind: 'role';
  readonly min: number;
  readonly restFirst: boolean;
  readonly buckets: ReadonlyMap<string, IndexNode>;
  /** Bucket keys that are derived roles, tested per request. */
  readonly derivedKeys: readonly string[];
  readonly rest: IndexNode;
}

/** The rules of one (resource type, action). */
export interface ActionTree {
  readonly action: string;
  readonly forbids: IndexNode;
  readonly permits: IndexNode;
  /** Every rule, unindexed, in order: the `all` path the evaluator can be forced onto. */
  readonly allForbids: readonly CompiledRule[];
  readonly allPermits: readonly CompiledRule[];
}

export interface ResourceTree {
  readonly type: string;
  readonly actions: ReadonlyMap<string, ActionTree>;
  readonly derivedRoles: ReadonlyMap<string, DerivedRole>;
  /**
   * Whether a rule or derived role of this type reads the decision clock
   * (`context.time` when the caller gives none): such decisions change with
   * time alone, so a decision cache must not keep them.
   */
  readonly readsClock: boolean;
}

/** A compiled policy set. */
export interface DecisionTree {
  /** Content hash of the loaded set. */
  readonly revision: string;
  readonly resources: ReadonlyMap<string, ResourceTree>;
  readonly roleGraph: RoleGraph;
  /** Every rule in order, for coverage and tooling. */
  readonly rules: readonly CompiledRule[];
  /** HTTP routes for gateways, as a segment trie; empty when no policy declares routes. */
  readonly routes: RouteNode;
}

/** Where a route leads: public (no token needed), or an action on a resource type. */
export type RouteTarget =
  | { readonly kind: 'public' }
  | { readonly kind: 'resource'; readonly action: string; readonly resourceType: string; readonly idCapture: string | null };

/** A compiled route. */
export interface CompiledRoute {
  /** `GET /api/documents/{id}`: the id shown in decisions, logs and metrics-free places. */
  readonly id: string;
  /** Upper-case method, or `*` for any. */
  readonly method: string;
  readonly pattern: string;
  readonly target: RouteTarget;
  /** Names of the single-segment wildcards in order (`null` for `*`), matching the captured values. */
  readonly captures: readonly (string | null)[];
  readonly location: SourceLocation;
}

/**
 * A node of the route trie, one per path segment. Lookup tries the literal
 * child first, then the single-segment wildcard, then `**`: the most specific
 * route wins, segment by segment.
 */
export interface RouteNode {
  readonly literal: Map<string, RouteNode>;
  param: RouteNode | undefined;
  /** Routes ending in `**` here, by method. */
  readonly rest: Map<string, CompiledRoute>;
  /** Routes ending exactly here, by method. */
  readonly routes: Map<string, CompiledRoute>;
}

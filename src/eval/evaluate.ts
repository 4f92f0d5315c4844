/**
 * The evaluator: (decision tree, request, clock) → decision. It sees only the
 * compiled tree; it never parses and never walks syntax.
 *
 * Combining: forbid overrides permit (deny-overrides, as in Cedar and XACML)
 * and the default is DENY. Any failure ends in DENY.
 */
import { bestApplying, lookupCandidates } from '../compile/rule-index.js';
import type { ActionTree, Attributes, CompiledRule, DecisionTree, EvalContext, IndexNode, ResourceTree } from '../compile/index.js';

/** Why a decision came out the way it did: stable codes callers can match on. */
export const REASONS = {
  /** A permit rule applied and no forbid did. */
  RULE_PERMIT: 'RULE_PERMIT',
  /** A forbid rule applied. */
  RULE_FORBID: 'RULE_FORBID',
  /** No permit applied: the default decision. */
  NO_MATCHING_RULE: 'NO_MATCHING_RULE',
  /** No policy declares the resource type. */
  UNKNOWN_RESOURCE_TYPE: 'UNKNOWN_RESOURCE_TYPE',
  /** The resource type does not declare the action. */
  UNDECLARED_ACTION: 'UNDECLARED_ACTION',
  /** The evaluator itself failed; fail closed. */
  EVALUATION_ERROR: 'EVALUATION_ERROR',
} as const;
export type Reason = (typeof REASONS)[keyof typeof REASONS];

export type Effect = 'ALLOW' | 'DENY';
/** What every path that does not end in a permit returns. */
export const DEFAULT_EFFECT: Effect = 'DENY';

/** The question: may `subject` do `action` on `resource`, in `context`? */
export interface Request {
  readonly subject: Attributes;
  readonly action: string;
  readonly resource: {
    readonly type: string;
    readonly id?: string;
    readonly attributes?: Attributes;
  };
  readonly context?: Attributes;
}

/** One rule's result in an explain trace. */
export interface RuleTrace {
  readonly rule: string;
  readonly effect: 'permit' | 'forbid';
  /** Whether the rule's condition held, so that it applied. */
  readonly applied: boolean;
  readonly location: string;
}

/** What explain mode adds to a decision. */
export interface Trace {
  /** `forbid` (a forbid applied), `permit`, `no-permit` (default deny), or why no rules were looked at. */
  readonly decidedBy: 'forbid' | 'permit' | 'no-permit' | 'unknown-resource-type' | 'undeclared-action' | 'error';
  /** Every rule the index selected for this request, with its result. */
  readonly evaluated: readonly RuleTrace[];
  /** Rules that matched: forbids that applied and permits that applied. */
  readonly matched: readonly string[];
  /** Rules declared for this resource type and action. */
  readonly rulesForAction: number;
}

export interface Decision {
  readonly decision: Effect;
  readonly reason: Reason;
  /** The deciding rule (the first in policy order among those that decided); all of them in explain mode. */
  readonly rules: readonly string[];
  readonly revision: string;
  readonly trace?: Trace;
}

export interface EvaluateOptions {
  /** The decision time, milliseconds since the epoch (the clock is passed in: the evaluator reads none). */
  readonly now: number;
  /** Return a trace of every rule evaluated. */
  readonly explain?: boolean;
  /** `false` forces the unindexed path that tests every rule (OPA's `all`): for tests and debugging. */
  readonly useIndex?: boolean;
}

const EMPTY: Attributes = Object.freeze({});

/**
 * The decisions a tree can give without explain: one per rule (the rule's
 * effect, reason and id) and one per early reason. They depend on nothing but
 * the tree, so they are made once per tree, frozen, and shared by every
 * evaluation: deciding allocates no result (a batch of thousands of decisions
 * would otherwise make thousands of identical objects).
 */
interface Verdicts {
  /** By rule order. */
  readonly byRule: Decision[];
  readonly noMatch: Decision;
  readonly unknownType: Decision;
  readonly undeclaredAction: Decision;
}

const verdictsByTree = new WeakMap<DecisionTree, Verdicts>();

function verdictsOf(tree: DecisionTree): Verdicts {
  let v = verdictsByTree.get(tree);
  if (v === undefined) {
    const fixed = (decision: Effect, reason: Reason, rules: readonly string[]): Decision => Object.freeze({ decision, reason, rules: Object.freeze(rules), revision: tree.revision });
    const byRule: Decision[] = [];
    for (const r of tree.rules) byRule[r.order] = r.effect === 'forbid' ? fixed('DENY', REASONS.RULE_FORBID, [r.id]) : fixed('ALLOW', REASONS.RULE_PERMIT, [r.id]);
    v = {
      byRule,
      noMatch: fixed(DEFAULT_EFFECT, REASONS.NO_MATCHING_RULE, []),
      unknownType: fixed('DENY', REASONS.UNKNOWN_RESOURCE_TYPE, []),
      undeclaredAction: fixed('DENY', REASONS.UNDECLARED_ACTION, []),
    };
    verdictsByTree.set(tree, v);
  }
  return v;
}

/** The shared decision of a rule that decided. */
function ruleVerdict(tree: DecisionTree, verdicts: Verdicts, rule: CompiledRule): Decision {
  // Every rule of the tree has one; the fallback only guards a rule from elsewhere.
  return verdicts.byRule[rule.order] ?? { decision: rule.effect === 'forbid' ? 'DENY' : 'ALLOW', reason: rule.effect === 'forbid' ? REASONS.RULE_FORBID : REASONS.RULE_PERMIT, rules: [rule.id], revision: tree.revision };
}

/**
 * Decides one request.
 *
 * Never throws: a failure inside evaluation is a DENY with reason `EVALUATION_ERROR`.
 *
 * @example
 * const d = evaluate(tree, { subject: { sub: 'alice', roles: ['editor'] }, action: 'read',
 *   resource: { type: 'document', id: 'd1', attributes: { owner: 'alice' } } }, { now: Date.now() });
 * d.decision // 'ALLOW'
 */
export function evaluate(tree: DecisionTree, request: Request, options: EvaluateOptions): Decision {
  try {
    return decide(tree, request, options);
  } catch {
    const deny: Decision = { decision: 'DENY', reason: REASONS.EVALUATION_ERROR, rules: [], revision: tree.revision };
    return options.explain === true ? { ...deny, trace: { decidedBy: 'error', evaluated: [], matched: [], rulesForAction: 0 } } : deny;
  }
}

function decide(tree: DecisionTree, request: Request, options: EvaluateOptions): Decision {
  const explain = options.explain === true;
  const resourceTree = tree.resources.get(request.resource.type);
  if (resourceTree === undefined) {
    return early(tree, REASONS.UNKNOWN_RESOURCE_TYPE, explain ? 'unknown-resource-type' : undefined);
  }
  const actionTree = resourceTree.actions.get(request.action);
  if (actionTree === undefined) {
    return early(tree, REASONS.UNDECLARED_ACTION, explain ? 'undeclared-action' : undefined);
  }
  const ctx = contextFor(tree, resourceTree, request, request.action, options.now);
  const useIndex = options.useIndex !== false;
  if (explain) {
    const forbids = candidates(actionTree.forbids, actionTree.allForbids, ctx, useIndex);
    return explained(tree, ctx, forbids, candidates(actionTree.permits, actionTree.allPermits, ctx, useIndex), actionTree.allForbids.length + actionTree.allPermits.length);
  }
  return decideAction(tree, verdictsOf(tree), actionTree, ctx, useIndex);
}

function contextFor(tree: DecisionTree, resourceTree: ResourceTree, request: Omit<Request, 'action'>, action: string, now: number): EvalContext {
  return {
    subject: request.subject,
    resourceType: request.resource.type,
    resourceId: request.resource.id ?? '',
    resource: request.resource.attributes ?? EMPTY,
    action,
    context: request.context ?? EMPTY,
    now,
    roles: undefined,
    held: undefined,
    derivedDone: 0,
    derivedTrue: 0,
    derived: undefined,
    roleGraph: tree.roleGraph,
    derivedRoles: resourceTree.derivedRoles,
  };
}

/** Forbids first (deny-overrides), then permits, then the default. */
function decideAction(tree: DecisionTree, verdicts: Verdicts, actionTree: ActionTree, ctx: EvalContext, useIndex: boolean): Decision {
  let best = useIndex ? bestApplying(actionTree.forbids, ctx, undefined) : firstApplying(actionTree.allForbids, ctx);
  if (best !== undefined) return ruleVerdict(tree, verdicts, best);
  best = useIndex ? bestApplying(actionTree.permits, ctx, undefined) : firstApplying(actionTree.allPermits, ctx);
  if (best !== undefined) return ruleVerdict(tree, verdicts, best);
  return verdicts.noMatch;
}

/**
 * What {@link evaluateActions} may keep between calls for one subject: its
 * evaluation context, so that a batch sets up the subject (its roles worked
 * out once) for all its items. Opaque; start with `{}`.
 */
export interface BatchScratch {
  ctx?: EvalContext;
}

/**
 * Decides each of `actions` on one resource for one subject, appending one
 * decision per action to `out`, in order: the same decisions as one
 * {@link evaluate} per action, sharing the evaluation context across the
 * actions, and across calls through `scratch` while the subject, context,
 * clock and tree stay the same (the resource fields are set again and the
 * derived-role memo cleared for every action; the subject's roles are kept).
 * For batches. Never throws: an action whose evaluation fails is a DENY with
 * reason `EVALUATION_ERROR`.
 *
 * @example
 * const out: Decision[] = [];
 * const scratch = {};
 * for (const item of items) evaluateActions(tree, { subject, resource: item.resource }, item.actions, now, out, scratch);
 */
export function evaluateActions(tree: DecisionTree, request: Omit<Request, 'action'>, actions: readonly string[], now: number, out: Decision[], scratch: BatchScratch = {}): void {
  const verdicts = verdictsOf(tree);
  const resourceTree = tree.resources.get(request.resource.type);
  const context = request.context ?? EMPTY;
  let ctx = scratch.ctx;
  if (ctx !== undefined && (ctx.subject !== request.subject || ctx.context !== context || ctx.now !== now || ctx.roleGraph !== tree.roleGraph)) ctx = undefined;
  for (const action of actions) {
    const actionTree = resourceTree?.actions.get(action);
    if (resourceTree === undefined || actionTree === undefined) {
      out.push(resourceTree === undefined ? verdicts.unknownType : verdicts.undeclaredAction);
      continue;
    }
    if (ctx === undefined) {
      ctx = contextFor(tree, resourceTree, { ...request, context }, action, now);
      scratch.ctx = ctx;
    } else {
      // Derived roles may read the resource and the action: their memo starts again. Roles held do not depend on them.
      ctx.resourceType = request.resource.type;
      ctx.resourceId = request.resource.id ?? '';
      ctx.resource = request.resource.attributes ?? EMPTY;
      ctx.action = action;
      ctx.derivedRoles = resourceTree.derivedRoles;
      ctx.derivedDone = 0;
      ctx.derivedTrue = 0;
      ctx.derived = undefined;
    }
    try {
      out.push(decideAction(tree, verdicts, actionTree, ctx, true));
    } catch {
      out.push({ decision: 'DENY', reason: REASONS.EVALUATION_ERROR, rules: [], revision: tree.revision });
    }
  }
}

/** The rule that applies and comes first in policy order (candidates from several index buckets are not sorted). */
function firstApplying(rules: readonly CompiledRule[], ctx: EvalContext): CompiledRule | undefined {
  let best: CompiledRule | undefined;
  for (const r of rules) {
    if ((best === undefined || r.order < best.order) && (r.condition === null || r.condition(ctx))) best = r;
  }
  return best;
}

function candidates(node: IndexNode, all: readonly CompiledRule[], ctx: EvalContext, useIndex: boolean): readonly CompiledRule[] {
  if (!useIndex) return all;
  const out: CompiledRule[] = [];
  lookupCandidates(node, ctx, out);
  return out;
}

function early(tree: DecisionTree, reason: typeof REASONS.UNKNOWN_RESOURCE_TYPE | typeof REASONS.UNDECLARED_ACTION, decidedBy: Trace['decidedBy'] | undefined): Decision {
  const verdicts = verdictsOf(tree);
  const d = reason === REASONS.UNKNOWN_RESOURCE_TYPE ? verdicts.unknownType : verdicts.undeclaredAction;
  return decidedBy === undefined ? d : { ...d, trace: { decidedBy, evaluated: [], matched: [], rulesForAction: 0 } };
}

function explained(tree: DecisionTree, ctx: EvalContext, forbids: readonly CompiledRule[], permits: readonly CompiledRule[], rulesForAction: number): Decision {
  const evaluated: RuleTrace[] = [];
  const appliedForbids: CompiledRule[] = [];
  const appliedPermits: CompiledRule[] = [];
  const byOrder = (a: CompiledRule, b: CompiledRule): number => a.order - b.order;
  for (const [rules, applying] of [[forbids, appliedForbids], [permits, appliedPermits]] as const) {
    for (const r of [...rules].sort(byOrder)) {
      const applied = r.condition === null || r.condition(ctx);
      if (applied) applying.push(r);
      evaluated.push({ rule: r.id, effect: r.effect, applied, location: `${r.location.source}:${r.location.start.line}:${r.location.start.column}` });
    }
  }
  const matched = [...appliedForbids, ...appliedPermits].map((r) => r.id);
  if (appliedForbids.length > 0) {
    return { decision: 'DENY', reason: REASONS.RULE_FORBID, rules: appliedForbids.map((r) => r.id), revision: tree.revision, trace: { decidedBy: 'forbid', evaluated, matched, rulesForAction } };
  }
  if (appliedPermits.length > 0) {
    return { decision: 'ALLOW', reason: REASONS.RULE_PERMIT, rules: appliedPermits.map((r) => r.id), revision: tree.revision, trace: { decidedBy: 'permit', evaluated, matched, rulesForAction } };
  }
  return { decision: DEFAULT_EFFECT, reason: REASONS.NO_MATCHING_RULE, rules: [], revision: tree.revision, trace: { decidedBy: 'no-permit', evaluated, matched, rulesForAction } };
}


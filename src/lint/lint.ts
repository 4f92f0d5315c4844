/**
 * `arbiter lint`: warnings about policies that compile but are probably not
 * what their author meant. Each finding has a stable code, a location and,
 * where one is obvious, a fix. Lint never changes a decision; it reads the
 * syntax trees of a policy set that compiles.
 *
 * | code | severity | finding |
 * |---|---|---|
 * | `LINT_NEVER_APPLIES` | warning | a condition that can never hold (`x == "a" and x == "b"`) |
 * | `LINT_PERMIT_OVERRIDDEN` | warning | a permit that an unconditional forbid always overrides |
 * | `LINT_SHADOWED_RULE` | warning | a rule that a broader rule of the same effect makes redundant |
 * | `LINT_ACTION_NEVER_PERMITTED` | warning | a declared action no permit grants |
 * | `LINT_UNUSED_DERIVED_ROLE` | warning | a derived role no rule or derived role tests |
 * | `LINT_NEGATION_IN_PERMIT` | info | `!=`, `not` or `unless` in a permit or derived role: it grants when the attribute is missing |
 */
import type { SourceLocation } from '../errors.js';
import type { Expr, PolicyFile, ResourceDecl, RuleDecl } from '../lang/ast.js';

export type LintSeverity = 'warning' | 'info';

export interface LintFinding {
  readonly code: string;
  readonly severity: LintSeverity;
  readonly message: string;
  readonly location: SourceLocation;
  readonly help?: string;
}

/**
 * Lints parsed policy files (of a set that compiles). Findings are sorted by
 * file and position.
 *
 * @example
 * const findings = lintPolicies(files.map((f) => parsePolicy(f.text, f.path)));
 */
export function lintPolicies(files: readonly PolicyFile[]): LintFinding[] {
  const out: LintFinding[] = [];
  const resources: ResourceDecl[] = [];
  const derived: { name: string; loc: SourceLocation }[] = [];
  const roleTests = new Set<string>();
  for (const file of files) {
    for (const decl of file.decls) {
      if (decl.kind === 'resource') resources.push(decl);
      if (decl.kind === 'derive') {
        derived.push({ name: decl.name.name, loc: decl.name.loc });
        for (const e of [decl.when, decl.unless]) if (e !== null) collectRoleTests(e, roleTests);
        if (decl.unless !== null || (decl.when !== null && hasNegation(decl.when))) {
          out.push({
            code: 'LINT_NEGATION_IN_PERMIT',
            severity: 'info',
            message: `derived role \`${decl.name.name}\` uses \`!=\`, \`not\` or \`unless\`: it holds when the attribute tested is missing, for every permit that tests it`,
            location: decl.loc,
            help: 'test for what grants the role (`x == true`), so that a missing attribute does not',
          });
        }
      }
    }
  }
  for (const r of resources) {
    for (const rule of r.rules) for (const e of [rule.when, rule.unless]) if (e !== null) collectRoleTests(e, roleTests);
  }

  for (const resource of resources) lintResource(resource, out);

  for (const d of derived) {
    if (!roleTests.has(d.name)) {
      out.push({ code: 'LINT_UNUSED_DERIVED_ROLE', severity: 'warning', message: `derived role \`${d.name}\` is never tested`, location: d.loc, help: `test it with \`subject.role("${d.name}")\`, or remove it` });
    }
  }
  return out.sort(
    (a, b) =>
      (a.location.source < b.location.source ? -1 : a.location.source > b.location.source ? 1 : 0) || a.location.start.offset - b.location.start.offset || (a.code < b.code ? -1 : 1),
  );
}

/** A rule as decisions name it: `type.name`, or `file:line` for an unnamed rule. */
function ruleName(rule: RuleDecl, type: string): string {
  return rule.name === null ? `${rule.loc.source}:${rule.loc.start.line}` : `${type}.${rule.name.name}`;
}

function actionsOf(rule: RuleDecl, declared: readonly string[]): Set<string> {
  return new Set(rule.actions === '*' ? declared : rule.actions.map((a) => a.name));
}

function lintResource(resource: ResourceDecl, out: LintFinding[]): void {
  const declared = resource.actions.map((a) => a.name);
  const conjunctsOf = new Map<RuleDecl, Set<string>>();
  for (const rule of resource.rules) conjunctsOf.set(rule, conjunctKeys(rule));

  for (const rule of resource.rules) {
    // A condition that can never hold.
    const contradiction = findContradiction(rule);
    if (contradiction !== undefined) {
      out.push({ code: 'LINT_NEVER_APPLIES', severity: 'warning', message: `rule \`${ruleName(rule, resource.name.name)}\` can never apply: ${contradiction}`, location: rule.loc });
    }
    if (rule.effect === 'permit') {
      // A permit that an unconditional forbid always overrides, for every one of its actions.
      const actions = actionsOf(rule, declared);
      const overriding = resource.rules.filter((f) => f.effect === 'forbid' && f.when === null && f.unless === null);
      const by = [...actions].map((a) => overriding.find((f) => actionsOf(f, declared).has(a)));
      if (actions.size > 0 && by.every((f) => f !== undefined)) {
        const names = [...new Set(by.map((f) => `\`${ruleName(f!, resource.name.name)}\``))].join(', ');
        out.push({ code: 'LINT_PERMIT_OVERRIDDEN', severity: 'warning', message: `permit \`${ruleName(rule, resource.name.name)}\` never decides: an unconditional forbid denies all its actions`, location: rule.loc, help: `see ${names}` });
      }
      if (usesNegation(rule)) {
        out.push({
          code: 'LINT_NEGATION_IN_PERMIT',
          severity: 'info',
          message: `permit \`${ruleName(rule, resource.name.name)}\` uses \`!=\`, \`not\` or \`unless\`: it grants when the attribute tested is missing`,
          location: rule.loc,
          help: 'in a permit, test for what grants access (`x == true`), so that a missing attribute denies',
        });
      }
    }
  }

  // A rule made redundant by a broader one of the same effect: same or more actions, and a subset of its conjuncts.
  for (const narrow of resource.rules) {
    const narrowKeys = conjunctsOf.get(narrow)!;
    const narrowActions = actionsOf(narrow, declared);
    for (const broad of resource.rules) {
      if (broad === narrow || broad.effect !== narrow.effect) continue;
      const broadKeys = conjunctsOf.get(broad)!;
      const broadActions = actionsOf(broad, declared);
      const moreActions = [...narrowActions].every((a) => broadActions.has(a));
      const fewerTests = [...broadKeys].every((k) => narrowKeys.has(k));
      const identical = broadKeys.size === narrowKeys.size && broadActions.size === narrowActions.size;
      // Of two identical rules, report the later one only.
      if (moreActions && fewerTests && !(identical && broad.loc.start.offset > narrow.loc.start.offset)) {
        out.push({
          code: 'LINT_SHADOWED_RULE',
          severity: 'warning',
          message: `rule \`${ruleName(narrow, resource.name.name)}\` is redundant: \`${ruleName(broad, resource.name.name)}\` ${narrow.effect}s everything it does`,
          location: narrow.loc,
          help: 'remove it, or narrow the broader rule',
        });
        break;
      }
    }
  }

  // A declared action that no permit grants.
  const permitted = new Set<string>();
  for (const rule of resource.rules) if (rule.effect === 'permit') for (const a of actionsOf(rule, declared)) permitted.add(a);
  for (const a of resource.actions) {
    if (!permitted.has(a.name)) {
      out.push({ code: 'LINT_ACTION_NEVER_PERMITTED', severity: 'warning', message: `action \`${a.name}\` of \`${resource.name.name}\` is never permitted`, location: a.loc, help: 'add a permit rule for it, or remove it from `actions`' });
    }
  }
}

/** Keys of a rule's top-level conjuncts (`unless X` counts as `not X`), location-free. */
function conjunctKeys(rule: RuleDecl): Set<string> {
  const keys = new Set<string>();
  const add = (e: Expr, negate: boolean): void => {
    if (!negate && e.kind === 'and') {
      for (const a of e.args) add(a, false);
      return;
    }
    keys.add(`${negate ? '!' : ''}${exprKey(e)}`);
  };
  if (rule.when !== null) add(rule.when, false);
  if (rule.unless !== null) add(rule.unless, true);
  return keys;
}

/** A canonical, location-free key of an expression. */
function exprKey(e: Expr): string {
  return JSON.stringify(e, (k, v: unknown) => (k === 'loc' ? undefined : v));
}

/** `path == literal` pairs among the top-level conjuncts that contradict each other. */
function findContradiction(rule: RuleDecl): string | undefined {
  if (rule.when === null) return undefined;
  const parts = rule.when.kind === 'and' ? rule.when.args : [rule.when];
  const equals = new Map<string, { value: string | number | boolean; shown: string }>();
  for (const p of parts) {
    if (p.kind !== 'cmp' || p.op !== '==') continue;
    const [path, lit] = p.left.kind === 'path' && p.right.kind === 'lit' ? [p.left, p.right] : p.right.kind === 'path' && p.left.kind === 'lit' ? [p.right, p.left] : [undefined, undefined];
    if (path === undefined || lit === undefined) continue;
    const shown = [path.root.name, ...path.segments.map((s) => s.name)].join('.');
    // Keyed by the segments themselves: `claims["a.b"]` and `claims.a.b` are different attributes.
    const key = JSON.stringify([path.root.name, ...path.segments.map((s) => s.name)]);
    const prior = equals.get(key);
    if (prior !== undefined && prior.value !== lit.value) return `\`${shown}\` cannot equal both ${JSON.stringify(prior.value)} and ${JSON.stringify(lit.value)}`;
    equals.set(key, { value: lit.value, shown });
  }
  return undefined;
}

function usesNegation(rule: RuleDecl): boolean {
  return rule.unless !== null || (rule.when !== null && hasNegation(rule.when));
}

function hasNegation(e: Expr): boolean {
  let found = false;
  const visit = (e: Expr): void => {
    if (found) return;
    switch (e.kind) {
      case 'not':
        found = true;
        return;
      case 'cmp':
        if (e.op === '!=') found = true;
        else {
          visit(e.left);
          visit(e.right);
        }
        return;
      case 'and':
      case 'or':
        e.args.forEach(visit);
        return;
      default:
        return;
    }
  };
  visit(e);
  return found;
}

/** Names of roles tested anywhere in `e` with `subject.role("name")`. */
function collectRoleTests(e: Expr, out: Set<string>): void {
  const stack: Expr[] = [e];
  for (let x = stack.pop(); x !== undefined; x = stack.pop()) {
    switch (x.kind) {
      case 'and':
      case 'or':
        stack.push(...x.args);
        break;
      case 'not':
        stack.push(x.arg);
        break;
      case 'cmp':
      case 'in':
      case 'has':
        stack.push(x.left, x.right);
        break;
      case 'call':
        if (x.name.name === 'role') for (const a of x.args) if (a.kind === 'lit' && typeof a.value === 'string') out.add(a.value);
        if (x.target !== null) stack.push(x.target);
        stack.push(...x.args);
        break;
      case 'list':
        stack.push(...x.items);
        break;
      default:
        break;
    }
  }
}

/**
 * The policy compiler: policy files → {@link DecisionTree}.
 *
 * Compilation is an ordered table of named stages (as in OPA's compiler),
 * each timed. Every stage collects diagnostics instead of throwing at the
 * first; after a stage with errors the compiler stops and throws one
 * {@link CompileError} holding all of them, sorted by position. A policy set
 * with any error is rejected whole.
 *
 * A policy set may come with a schema (`schema.yaml`, see schema.ts): then
 * every condition is type-checked against it as it is compiled.
 */
import { createHash } from 'node:crypto';
import { CompileError, formatLocation, type Diagnostic, type SourceLocation } from '../errors.js';
import type { DeriveDecl, Expr, PolicyFile, ResourceDecl, RuleDecl } from '../lang/ast.js';
import { formatFrame } from '../lang/frame.js';
import { ParseError, parsePolicy } from '../lang/parse.js';
import { compileCondition, conjoin, type ExprScope, type IndexKey } from './expr.js';
import { buildIndex, type IndexEntry } from './rule-index.js';
import { addRoutes, emptyRouteNode } from './routes.js';
import { buildRoleGraph } from './roles.js';
import { checkSchemaResourceTypes, parseSchema, type Schema, type SchemaSource } from './schema.js';
import { didYouMean } from './suggest.js';
import type { ActionTree, CompiledRule, Condition, DecisionTree, DerivedRole, ResourceTree, RoleGraph, RouteNode } from './tree.js';

export type * from './tree.js';

/** One policy file: its path relative to the policy root, and its text. */
export interface PolicySource {
  readonly path: string;
  readonly text: string;
}

/** Options for {@link compilePolicySet}. */
export interface CompileOptions {
  /** A monotonic clock in milliseconds, to time each stage (omit to skip timing). */
  readonly clock?: () => number;
  /**
   * The policy set's schema file (`schema.yaml`), when it has one: every
   * condition is then type-checked against it, and it is part of the
   * revision. Without one, attributes are unchecked.
   */
  readonly schema?: SchemaSource;
}

/** How long each stage took, in milliseconds, in stage order. */
export type StageTimings = ReadonlyArray<{ readonly stage: string; readonly ms: number }>;

/** The compiled set plus what the compiler measured. */
export interface CompiledPolicySet {
  readonly tree: DecisionTree;
  readonly timings: StageTimings;
  /** The parsed schema, when the set has one (for request validation). */
  readonly schema?: Schema;
}

interface ResourceInfo {
  readonly decl: ResourceDecl;
  readonly actions: readonly string[];
}

/** State passed from stage to stage. */
interface State {
  readonly sources: readonly PolicySource[];
  readonly schemaSource: SchemaSource | undefined;
  readonly diagnostics: Diagnostic[];
  /** Resource types with a condition that reads the decision clock. */
  readonly clockTypes: Set<string>;
  files: PolicyFile[];
  /** Set by the parse stage when the set has a schema and it parses. */
  schema: Schema | undefined;
  staticRoles: Set<string>;
  roleEdges: Map<string, Set<string>>;
  roleGraph: RoleGraph;
  resources: Map<string, ResourceInfo>;
  /** Derived-role declarations by resource type, then name. */
  derivedDecls: Map<string, Map<string, DeriveDecl>>;
  allDerived: Set<string>;
  derived: Map<string, Map<string, DerivedRole>>;
  /** Role references made by each (type, derived role), for cycle detection. */
  derivedRefs: Map<string, Array<{ role: string; loc: SourceLocation }>>;
  rules: Array<{ rule: CompiledRule; keys: IndexKey[] }>;
  routes: RouteNode;
  tree: DecisionTree | undefined;
}

interface Stage {
  readonly name: string;
  run(state: State): void;
  /**
   * Let the next stage run even when this one found errors, so that they are
   * reported together (the next stage must not depend on what failed here).
   */
  readonly continueOnError?: boolean;
}

/** The compiler's stages, in order. */
export const STAGES: readonly Stage[] = [
  { name: 'parse', run: parseAll },
  { name: 'declarations', run: collectDeclarations },
  // Rules need only the derived roles' names (collected with the declarations),
  // so errors in derived roles and in rules are reported together.
  { name: 'derived-roles', run: compileDerivedRoles, continueOnError: true },
  { name: 'rules', run: compileRules },
  { name: 'routes', run: compileRoutes },
  { name: 'index', run: buildTree },
];

/**
 * Compiles a policy set.
 *
 * @throws {CompileError} with every diagnostic found, when the set has any error
 * @example
 * const { tree } = compilePolicySet([{ path: 'doc.policy', text: 'resource doc { actions read  permit read }' }]);
 * const typed = compilePolicySet(sources, { schema: { path: 'schema.yaml', text: schemaText } });
 */
export function compilePolicySet(sources: readonly PolicySource[], options: CompileOptions = {}): CompiledPolicySet {
  const ordered = [...sources].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const state: State = {
    sources: ordered,
    schemaSource: options.schema,
    diagnostics: [],
    clockTypes: new Set(),
    files: [],
    schema: undefined,
    staticRoles: new Set(),
    roleEdges: new Map(),
    roleGraph: { implied: new Map(), impliedBy: new Map() },
    resources: new Map(),
    derivedDecls: new Map(),
    allDerived: new Set(),
    derived: new Map(),
    derivedRefs: new Map(),
    rules: [],
    routes: emptyRouteNode(),
    tree: undefined,
  };
  const timings: Array<{ stage: string; ms: number }> = [];
  for (const stage of STAGES) {
    const start = options.clock?.();
    stage.run(state);
    if (start !== undefined && options.clock !== undefined) timings.push({ stage: stage.name, ms: options.clock() - start });
    if (state.diagnostics.length > 0 && stage.continueOnError !== true) {
      throw new CompileError(withFrames(state.diagnostics, options.schema === undefined ? ordered : [...ordered, options.schema]));
    }
  }
  if (state.tree === undefined) throw new Error('compiler produced no tree');
  return state.schema === undefined ? { tree: state.tree, timings } : { tree: state.tree, timings, schema: state.schema };
}

/**
 * The revision of a policy set: a content hash over its files' paths and
 * texts, the schema file's included.
 */
export function policyRevision(sources: readonly PolicySource[], schema?: SchemaSource): string {
  const h = createHash('sha256');
  const ordered = [...sources].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // The schema goes last: a set without one hashes as it always has.
  if (schema !== undefined) ordered.push(schema);
  for (const s of ordered) {
    h.update(s.path);
    h.update('\0');
    h.update(s.text);
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

function withFrames(diagnostics: readonly Diagnostic[], sources: readonly PolicySource[]): Diagnostic[] {
  const texts = new Map(sources.map((s) => [s.path, s.text]));
  return diagnostics.map((d) => {
    if (d.frame !== undefined) return d;
    const text = texts.get(d.location.source);
    return text === undefined ? d : { ...d, frame: formatFrame(text, d.location) };
  });
}

// ---------------------------------------------------------------- stages

function parseAll(state: State): void {
  const seen = new Set<string>();
  for (const s of state.sources) {
    if (seen.has(s.path)) {
      const pos = { offset: 0, line: 1, column: 1 };
      state.diagnostics.push({ code: 'COMPILE_DUPLICATE_FILE', message: `policy file \`${s.path}\` is given twice`, location: { source: s.path, start: pos, end: pos } });
      continue;
    }
    seen.add(s.path);
    try {
      state.files.push(parsePolicy(s.text, s.path));
    } catch (e) {
      if (e instanceof ParseError) state.diagnostics.push(e.diagnostic);
      else throw e;
    }
  }
  if (state.schemaSource !== undefined) state.schema = parseSchema(state.schemaSource, (d) => void state.diagnostics.push(d));
}

function collectDeclarations(state: State): void {
  const report = (d: Diagnostic): void => void state.diagnostics.push(d);
  const derives: DeriveDecl[] = [];
  for (const file of state.files) {
    for (const decl of file.decls) {
      if (decl.kind === 'roles') {
        for (const chain of decl.chains) {
          for (const [i, r] of chain.entries()) {
            state.staticRoles.add(r.name);
            if (!state.roleEdges.has(r.name)) state.roleEdges.set(r.name, new Set());
            const below = chain[i + 1];
            if (below !== undefined) {
              if (below.name === r.name) report({ code: 'COMPILE_ROLE_CYCLE', message: `role \`${r.name}\` cannot inherit itself`, location: below.loc });
              state.roleEdges.get(r.name)?.add(below.name);
            }
          }
        }
      } else if (decl.kind === 'derive') {
        derives.push(decl);
      } else if (decl.kind === 'resource') {
        collectResource(state, decl, report);
      }
      // `routes` blocks are read by the routes stage, once every resource type is known.
    }
  }
  findRoleCycles(state, report);
  // The closure is only safe to build over a bounded, acyclic hierarchy.
  if (state.diagnostics.length > 0) return;
  state.roleGraph = buildRoleGraph(state.roleEdges);
  for (const d of derives) collectDerive(state, d, report);
}

function collectResource(state: State, decl: ResourceDecl, report: (d: Diagnostic) => void): void {
  const type = decl.name.name;
  const prior = state.resources.get(type);
  if (prior !== undefined) {
    report({
      code: 'COMPILE_DUPLICATE_RESOURCE',
      message: `resource type \`${type}\` is declared twice`,
      location: decl.name.loc,
      help: `first declared at ${formatLocation(prior.decl.name.loc)}; keep all its rules in one block`,
    });
    return;
  }
  if (decl.actionClauses.length === 0) {
    report({ code: 'COMPILE_MISSING_ACTIONS', message: `resource type \`${type}\` declares no actions`, location: decl.name.loc, help: 'add a line such as `actions read, update, delete`' });
  }
  for (const extra of decl.actionClauses.slice(1)) {
    report({ code: 'COMPILE_DUPLICATE_ACTIONS', message: `resource type \`${type}\` has more than one \`actions\` clause`, location: extra, help: 'list every action in one clause' });
  }
  const seen = new Set<string>();
  for (const a of decl.actions) {
    if (seen.has(a.name)) report({ code: 'COMPILE_DUPLICATE_ACTION', message: `action \`${a.name}\` is declared twice`, location: a.loc });
    seen.add(a.name);
  }
  state.resources.set(type, { decl, actions: [...seen] });
}

/** Deepest role hierarchy (and derived-role dependency chain): keeps role expansion cheap and the checks' recursion shallow. */
export const MAX_ROLE_DEPTH = 32;

function findRoleCycles(state: State, report: (d: Diagnostic) => void): void {
  const done = new Set<string>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  let tooDeep = false;
  const visit = (role: string): void => {
    if (done.has(role) || tooDeep) return;
    if (stack.length >= MAX_ROLE_DEPTH) {
      tooDeep = true;
      const loc = locateRole(state, role);
      if (loc !== undefined) report({ code: 'COMPILE_ROLE_HIERARCHY_TOO_DEEP', message: `role hierarchy is deeper than ${MAX_ROLE_DEPTH} levels`, location: loc });
      return;
    }
    if (onStack.has(role)) {
      const cycle = [...stack.slice(stack.indexOf(role)), role];
      const loc = locateRole(state, role);
      if (loc !== undefined) report({ code: 'COMPILE_ROLE_CYCLE', message: `role hierarchy has a cycle: ${cycle.join(' > ')}`, location: loc });
      return;
    }
    onStack.add(role);
    stack.push(role);
    for (const below of state.roleEdges.get(role) ?? []) if (below !== role) visit(below);
    stack.pop();
    onStack.delete(role);
    done.add(role);
  };
  for (const role of state.roleEdges.keys()) visit(role);
}

function locateRole(state: State, role: string): SourceLocation | undefined {
  for (const f of state.files) for (const d of f.decls) if (d.kind === 'roles') for (const c of d.chains) for (const r of c) if (r.name === role) return r.loc;
  return undefined;
}

function collectDerive(state: State, decl: DeriveDecl, report: (d: Diagnostic) => void): void {
  const name = decl.name.name;
  if (state.staticRoles.has(name)) {
    report({ code: 'COMPILE_ROLE_CLASH', message: `\`${name}\` is both a role in the hierarchy and a derived role`, location: decl.name.loc, help: 'give the derived role its own name' });
    return;
  }
  state.allDerived.add(name);
  const types = decl.types === '*' ? [...state.resources.keys()] : [...new Set(decl.types.map((t) => t.name))];
  if (decl.types !== '*') {
    const listed = new Set<string>();
    for (const t of decl.types) {
      if (listed.has(t.name)) report({ code: 'COMPILE_DUPLICATE_TYPE', message: `resource type \`${t.name}\` is listed twice`, location: t.loc });
      listed.add(t.name);
      if (!state.resources.has(t.name)) {
        report({ code: 'COMPILE_UNKNOWN_RESOURCE_TYPE', message: `unknown resource type \`${t.name}\``, location: t.loc, help: didYouMean(t.name, state.resources.keys()) ?? 'declare it with `resource NAME { ... }`' });
      }
    }
  }
  for (const t of types) {
    let byName = state.derivedDecls.get(t);
    if (byName === undefined) {
      byName = new Map();
      state.derivedDecls.set(t, byName);
    }
    const prior = byName.get(name);
    if (prior !== undefined) {
      report({ code: 'COMPILE_DUPLICATE_DERIVED_ROLE', message: `derived role \`${name}\` is defined twice for resource type \`${t}\``, location: decl.name.loc, help: `first defined at ${formatLocation(prior.name.loc)}` });
      continue;
    }
    byName.set(name, decl);
  }
}

function conditionOf(when: Expr | null, unless: Expr | null, loc: SourceLocation): Expr | null {
  if (unless === null) return when;
  const negated: Expr = { kind: 'not', arg: unless, loc: unless.loc };
  if (when === null) return negated;
  return { kind: 'and', args: [when, negated], loc };
}

const derivedNames = new WeakMap<State, Map<string, ReadonlySet<string>>>();

function scopeFor(state: State, type: string, onRole?: (role: string, loc: SourceLocation) => void): ExprScope {
  // One set per type, shared by every scope: building it per rule would be quadratic.
  let byType = derivedNames.get(state);
  if (byType === undefined) {
    byType = new Map();
    derivedNames.set(state, byType);
  }
  let derived = byType.get(type);
  if (derived === undefined) {
    derived = new Set(state.derivedDecls.get(type)?.keys() ?? []);
    byType.set(type, derived);
  }
  const base = {
    resourceType: type,
    staticRoles: state.staticRoles,
    derivedRoles: derived,
    allDerivedRoles: state.allDerived,
    onClock: () => void state.clockTypes.add(type),
    report: (d: Diagnostic) => void state.diagnostics.push(d),
    ...(state.schema === undefined ? {} : { schema: state.schema }),
  };
  return onRole === undefined ? base : { ...base, onRole };
}

function compileDerivedRoles(state: State): void {
  for (const [type, byName] of state.derivedDecls) {
    const out = new Map<string, DerivedRole>();
    for (const [name, decl] of byName) {
      const refs: Array<{ role: string; loc: SourceLocation }> = [];
      state.derivedRefs.set(`${type}\0${name}`, refs);
      const expr = conditionOf(decl.when, decl.unless, decl.loc);
      if (expr === null) continue; // the grammar requires a condition
      const c = compileCondition(expr, scopeFor(state, type, (role, loc) => refs.push({ role, loc })));
      if (c !== null) out.set(name, { name, slot: out.size, condition: c.condition, location: decl.loc });
    }
    state.derived.set(type, out);
  }
  // Cycles between derived roles (owner needs delegate needs owner) are errors.
  for (const [type, byName] of state.derivedDecls) {
    const visiting = new Set<string>();
    const done = new Set<string>();
    let stop = false;
    const visit = (name: string, path: string[]): void => {
      if (done.has(name) || stop) return;
      if (path.length >= MAX_ROLE_DEPTH) {
        stop = true;
        const decl = byName.get(name);
        if (decl !== undefined) {
          state.diagnostics.push({ code: 'COMPILE_DERIVED_ROLE_TOO_DEEP', message: `derived roles depend on each other more than ${MAX_ROLE_DEPTH} levels deep`, location: decl.name.loc });
        }
        return;
      }
      if (visiting.has(name)) {
        const decl = byName.get(path[0] ?? name);
        if (decl !== undefined) {
          state.diagnostics.push({
            code: 'COMPILE_DERIVED_ROLE_CYCLE',
            message: `derived roles depend on each other for resource type \`${type}\`: ${[...path, name].join(' → ')}`,
            location: decl.name.loc,
          });
        }
        return;
      }
      visiting.add(name);
      for (const ref of state.derivedRefs.get(`${type}\0${name}`) ?? []) {
        if (byName.has(ref.role)) visit(ref.role, [...path, name]);
      }
      visiting.delete(name);
      done.add(name);
    };
    for (const name of byName.keys()) visit(name, []);
  }
}

/** Top-level conjuncts of a condition, so each can serve as an index key. */
function conjuncts(expr: Expr): Expr[] {
  if (expr.kind === 'and') return expr.args.flatMap(conjuncts);
  return [expr];
}

function compileRules(state: State): void {
  // The schema and the policies must agree on the resource types. (A type the
  // schema lacks is unchecked, so its rules are still compiled without noise.)
  if (state.schema !== undefined) {
    const declared = [...state.resources.values()].map((r) => ({ type: r.decl.name.name, location: r.decl.name.loc }));
    checkSchemaResourceTypes(state.schema, declared, (d) => void state.diagnostics.push(d));
  }
  let order = 0;
  const unnamedIds = new Set<string>();
  for (const file of state.files) {
    for (const decl of file.decls) {
      if (decl.kind !== 'resource') continue;
      const info = state.resources.get(decl.name.name);
      if (info === undefined || info.decl !== decl) continue; // a duplicate block, already reported
      const names = new Map<string, RuleDecl>();
      for (const rule of decl.rules) {
        const compiled = compileRule(state, info, rule, order++, names, unnamedIds);
        if (compiled !== null) state.rules.push(compiled);
      }
    }
  }
}

function compileRule(state: State, info: ResourceInfo, rule: RuleDecl, order: number, names: Map<string, RuleDecl>, unnamedIds: Set<string>): { rule: CompiledRule; keys: IndexKey[] } | null {
  const type = info.decl.name.name;
  const report = (d: Diagnostic): void => void state.diagnostics.push(d);
  let ok = true;
  if (rule.name !== null) {
    const prior = names.get(rule.name.name);
    if (prior !== undefined && prior.name !== null) {
      report({ code: 'COMPILE_DUPLICATE_RULE', message: `rule \`${rule.name.name}\` is defined twice in resource type \`${type}\``, location: rule.name.loc, help: `first defined at ${formatLocation(prior.name.loc)}` });
      ok = false;
    } else {
      names.set(rule.name.name, rule);
    }
  }
  let actions: string[];
  if (rule.actions === '*') {
    actions = [...info.actions];
  } else {
    actions = [];
    for (const a of rule.actions) {
      if (!info.actions.includes(a.name)) {
        report({
          code: 'COMPILE_UNDECLARED_ACTION',
          message: `action \`${a.name}\` is not declared for resource type \`${type}\``,
          location: a.loc,
          help: didYouMean(a.name, info.actions) ?? `declared actions: ${info.actions.join(', ') || 'none'}`,
        });
        ok = false;
      } else if (!actions.includes(a.name)) {
        actions.push(a.name);
      }
    }
  }
  const expr = conditionOf(rule.when, rule.unless, rule.loc);
  const parts: Condition[] = [];
  const keys: IndexKey[] = [];
  if (expr !== null) {
    const scope = scopeFor(state, type);
    for (const part of conjuncts(expr)) {
      const c = compileCondition(part, scope);
      if (c === null) {
        ok = false;
        continue;
      }
      parts.push(c.condition);
      if (c.key !== undefined) keys.push(c.key);
    }
  }
  if (!ok) return null;
  let id: string;
  if (rule.name !== null) {
    id = `${type}.${rule.name.name}`;
  } else {
    // `file:line`, or `file:line:col` for a second unnamed rule on one line.
    id = `${rule.loc.source}:${rule.loc.start.line}`;
    if (unnamedIds.has(id)) id = `${id}:${rule.loc.start.column}`;
    unnamedIds.add(id);
  }
  return {
    rule: {
      id,
      effect: rule.effect,
      resourceType: type,
      actions,
      order,
      location: rule.loc,
      condition: parts.length === 0 ? null : conjoin(parts),
    },
    keys,
  };
}

function compileRoutes(state: State): void {
  const decls = state.files.flatMap((f) => f.decls.flatMap((d) => (d.kind === 'routes' ? d.routes : [])));
  addRoutes(state.routes, decls, {
    actionsOf: (type) => state.resources.get(type)?.actions,
    types: () => state.resources.keys(),
    report: (d) => void state.diagnostics.push(d),
  });
}

function buildTree(state: State): void {
  const resources = new Map<string, ResourceTree>();
  for (const [type, info] of state.resources) {
    const actions = new Map<string, ActionTree>();
    for (const action of info.actions) {
      const forbids: IndexEntry[] = [];
      const permits: IndexEntry[] = [];
      for (const e of state.rules) {
        if (e.rule.resourceType !== type || !e.rule.actions.includes(action)) continue;
        (e.rule.effect === 'forbid' ? forbids : permits).push(e);
      }
      actions.set(action, {
        action,
        forbids: buildIndex(forbids),
        permits: buildIndex(permits),
        allForbids: forbids.map((e) => e.rule),
        allPermits: permits.map((e) => e.rule),
      });
    }
    resources.set(type, { type, actions, derivedRoles: state.derived.get(type) ?? new Map(), readsClock: state.clockTypes.has(type) });
  }
  state.tree = {
    revision: policyRevision(state.sources, state.schemaSource),
    resources,
    roleGraph: state.roleGraph,
    rules: state.rules.map((e) => e.rule),
    routes: state.routes,
  };
}

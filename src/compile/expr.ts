/**
 * Expressions → closures. Each syntax node is checked (roots, roles, literal
 * types, method arity and arguments) and turned into a closure over the
 * evaluation context, once, at compile time. No policy text ever becomes
 * code: there is no eval and no `new Function` anywhere in Arbiter.
 */
import type { Diagnostic, SourceLocation } from '../errors.js';
import { ATTRIBUTE_ROOTS, type CallExpr, type CompareExpr, type Expr, type PathExpr } from '../lang/ast.js';
import {
  dayOfWeek,
  equals,
  globMatch,
  member,
  memberOfSet,
  order,
  parseCidr,
  parseTimeOfDay,
  parseUtcOffset,
  sizeOf,
  timeOfDay,
  toTimestamp,
  type Scalar,
} from './ops.js';
import { derivedRoleHolds, subjectRoles } from './roles.js';
import { didYouMean } from './suggest.js';
import type { Condition, EvalContext, ValueReader } from './tree.js';

/** What the compiler knows of a value's type before any request arrives. */
export type StaticType = 'string' | 'number' | 'bool' | 'list' | 'timestamp' | 'time' | 'dynamic';

interface CompiledValue {
  readonly type: StaticType;
  readonly read: ValueReader;
  /** Set when the value is a scalar literal. */
  readonly literal?: Scalar;
  /** Canonical path (`subject.tenant`) when the value is an attribute path. */
  readonly path?: string;
  /** Set when the value is itself a test (a method such as `startsWith`). */
  readonly condition?: Condition;
  /** Set when the value is a literal list of scalars of one type. */
  readonly set?: { readonly values: ReadonlySet<Scalar>; readonly type: 'string' | 'number' | 'boolean' };
}

/** A test a rule-index node can switch on. */
export type IndexKey =
  | { readonly kind: 'eq'; readonly path: string; readonly read: ValueReader; readonly value: Scalar }
  | { readonly kind: 'role'; readonly role: string; readonly derived: boolean };

/** A compiled condition and, when it is a single indexable test, its key. */
export interface CompiledCondition {
  readonly condition: Condition;
  readonly key?: IndexKey;
}

/** What an expression may refer to. */
export interface ExprScope {
  /** The resource type the condition is evaluated for. */
  readonly resourceType: string;
  readonly staticRoles: ReadonlySet<string>;
  /** Derived roles defined for this resource type. */
  readonly derivedRoles: ReadonlySet<string>;
  /** Derived roles defined for some type (to tell "not for this type" from "unknown"). */
  readonly allDerivedRoles: ReadonlySet<string>;
  /** Called for every role test, so the compiler can find derived-role cycles. */
  readonly onRole?: (role: string, loc: SourceLocation) => void;
  /** Called when a condition reads the decision clock (`context.time` without a caller-given time). */
  readonly onClock?: () => void;
  report(d: Diagnostic): void;
}

const FUNCTIONS = ['exists', 'timestamp', 'time'] as const;
const METHODS = ['role', 'startsWith', 'endsWith', 'matches', 'inCidr', 'size', 'containsAny', 'containsAll', 'timeOfDay', 'dayOfWeek'] as const;
const MAX_LITERAL_LENGTH = 4096;

const typeWord: Record<StaticType, string> = {
  string: 'a string',
  number: 'a number',
  bool: 'a boolean',
  list: 'a list',
  timestamp: 'a timestamp',
  time: 'a time of day',
  dynamic: 'an attribute',
};

/** Thrown inside this module to abandon a subtree after reporting; never escapes. */
class Abandon {}

/** Canonical text of a path: `subject.claims["https://x/roles"]`. */
export function pathKey(root: string, segments: readonly string[]): string {
  let out = root;
  for (const s of segments) out += /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
  return out;
}

/**
 * Compiles a boolean expression. Returns `null` when it has errors (reported
 * through `scope.report`).
 */
export function compileCondition(expr: Expr, scope: ExprScope): CompiledCondition | null {
  try {
    return new ExprCompiler(scope).bool(expr);
  } catch (e) {
    if (e instanceof Abandon) return null;
    throw e;
  }
}

/** Conjunction of compiled conditions, short-circuiting. */
export function conjoin(parts: readonly Condition[]): Condition {
  if (parts.length === 1) return parts[0] as Condition;
  if (parts.length === 2) {
    const [a, b] = parts as [Condition, Condition];
    return (ctx) => a(ctx) && b(ctx);
  }
  if (parts.length === 3) {
    const [a, b, c] = parts as [Condition, Condition, Condition];
    return (ctx) => a(ctx) && b(ctx) && c(ctx);
  }
  return (ctx) => {
    for (const p of parts) if (!p(ctx)) return false;
    return true;
  };
}

/** Disjunction of compiled conditions, short-circuiting. */
export function disjoin(parts: readonly Condition[]): Condition {
  if (parts.length === 1) return parts[0] as Condition;
  if (parts.length === 2) {
    const [a, b] = parts as [Condition, Condition];
    return (ctx) => a(ctx) || b(ctx);
  }
  return (ctx) => {
    for (const p of parts) if (p(ctx)) return true;
    return false;
  };
}

/** Reads an own property of a plain object; `undefined` for anything else or JSON null. */
function step(obj: unknown, key: string): unknown {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || !Object.hasOwn(obj, key)) return undefined;
  const v = (obj as Record<string, unknown>)[key];
  return v === null ? undefined : v;
}

function readerFor(root: 'subject' | 'resource' | 'context', segments: readonly string[]): ValueReader {
  const pick =
    root === 'subject'
      ? (ctx: EvalContext): unknown => ctx.subject
      : root === 'resource'
        ? (ctx: EvalContext): unknown => ctx.resource
        : (ctx: EvalContext): unknown => ctx.context;
  if (segments.length === 1) {
    const [a] = segments as [string];
    return (ctx) => step(pick(ctx), a);
  }
  if (segments.length === 2) {
    const [a, b] = segments as [string, string];
    return (ctx) => step(step(pick(ctx), a), b);
  }
  return (ctx) => {
    let v: unknown = pick(ctx);
    for (const s of segments) {
      v = step(v, s);
      if (v === undefined) return undefined;
    }
    return v;
  };
}

class ExprCompiler {
  constructor(private readonly scope: ExprScope) {}

  private fail(code: string, message: string, location: SourceLocation, help?: string): never {
    this.scope.report(help === undefined ? { code, message, location } : { code, message, location, help });
    throw new Abandon();
  }

  bool(expr: Expr): CompiledCondition {
    switch (expr.kind) {
      case 'and':
      case 'or': {
        // Compile every operand so that all errors are reported, not just the first.
        const parts: Condition[] = [];
        let failed = false;
        for (const a of expr.args) {
          try {
            parts.push(this.bool(a).condition);
          } catch (e) {
            if (!(e instanceof Abandon)) throw e;
            failed = true;
          }
        }
        if (failed) throw new Abandon();
        return { condition: expr.kind === 'and' ? conjoin(parts) : disjoin(parts) };
      }
      case 'not': {
        const inner = this.bool(expr.arg).condition;
        return { condition: (ctx) => !inner(ctx) };
      }
      case 'cmp':
        return this.compare(expr);
      case 'in': {
        const left = this.value(expr.left);
        const right = this.value(expr.right);
        return { condition: this.membership(left, right, expr.left.loc, expr.right.loc, 'in') };
      }
      case 'has': {
        const list = this.value(expr.left);
        const item = this.value(expr.right);
        return { condition: this.membership(item, list, expr.right.loc, expr.left.loc, expr.word) };
      }
      case 'call':
        if (expr.target !== null && expr.name.name === 'role') return this.roleTest(expr);
        return { condition: this.asCondition(this.call(expr), expr.loc) };
      case 'path':
      case 'lit':
      case 'list':
        return { condition: this.asCondition(this.value(expr), expr.loc) };
    }
  }

  /** A value in a condition position: a boolean literal or attribute. */
  private asCondition(v: CompiledValue, loc: SourceLocation): Condition {
    if (v.condition !== undefined) return v.condition;
    if (v.type === 'bool' && v.literal !== undefined) {
      const t = v.literal === true;
      return () => t;
    }
    if (v.type === 'dynamic' || v.type === 'bool') {
      const read = v.read;
      return (ctx) => read(ctx) === true;
    }
    return this.fail('COMPILE_NOT_A_CONDITION', `expected a condition but found ${typeWord[v.type]}`, loc, 'compare it with `==`, `in` or a method such as `startsWith`');
  }

  private compare(expr: CompareExpr): CompiledCondition {
    const left = this.value(expr.left);
    const right = this.value(expr.right);
    const { op } = expr;
    for (const side of [left, right]) {
      if (side.type === 'list') {
        this.fail('COMPILE_BAD_OPERAND', `\`${op}\` cannot compare lists`, side === left ? expr.left.loc : expr.right.loc, 'use `in`, `has`, `containsAny` or `containsAll`');
      }
    }
    if (left.type !== 'dynamic' && right.type !== 'dynamic' && left.type !== right.type) {
      this.fail('COMPILE_TYPE_MISMATCH', `cannot compare ${typeWord[left.type]} with ${typeWord[right.type]}`, expr.loc, 'both sides of a comparison must have the same type');
    }
    const typed = left.type !== 'dynamic' ? left.type : right.type;
    if (typed === 'time' && (left.type === 'dynamic' || right.type === 'dynamic')) {
      this.fail('COMPILE_TYPE_MISMATCH', 'a time of day can only be compared with another time of day', expr.loc, 'use `context.time.timeOfDay() >= time("09:00")`');
    }
    const ordering = op !== '==' && op !== '!=';
    if (ordering && (typed === 'string' || typed === 'bool')) {
      this.fail('COMPILE_BAD_OPERAND', `\`${op}\` orders numbers, timestamps and times of day, not ${typed === 'string' ? 'strings' : 'booleans'}`, expr.loc);
    }
    // Timestamps: coerce the attribute side (an RFC 3339 string or epoch seconds) to milliseconds.
    let readL = left.read;
    let readR = right.read;
    if (typed === 'timestamp') {
      if (left.type === 'dynamic') {
        const r = left.read;
        readL = (ctx) => toTimestamp(r(ctx));
      }
      if (right.type === 'dynamic') {
        const r = right.read;
        readR = (ctx) => toTimestamp(r(ctx));
      }
    }
    if (op === '==' || op === '!=') {
      const negate = op === '!=';
      // Index key: attribute == literal.
      let key: IndexKey | undefined;
      if (!negate && typed !== 'timestamp') {
        if (left.path !== undefined && right.literal !== undefined) key = { kind: 'eq', path: left.path, read: left.read, value: right.literal };
        else if (right.path !== undefined && left.literal !== undefined) key = { kind: 'eq', path: right.path, read: right.read, value: left.literal };
      }
      let condition: Condition;
      const lit = right.literal ?? left.literal;
      if (lit !== undefined && (left.literal === undefined) !== (right.literal === undefined)) {
        // attribute == literal: the literal is a finite scalar, so `===` is `==`.
        const read = left.literal === undefined ? readL : readR;
        condition = negate ? (ctx) => read(ctx) !== lit : (ctx) => read(ctx) === lit;
      } else {
        condition = negate ? (ctx) => !equals(readL(ctx), readR(ctx)) : (ctx) => equals(readL(ctx), readR(ctx));
      }
      return key === undefined ? { condition } : { condition, key };
    }
    const o = op;
    return { condition: (ctx) => order(o, readL(ctx), readR(ctx)) };
  }

  private membership(item: CompiledValue, list: CompiledValue, itemLoc: SourceLocation, listLoc: SourceLocation, word: string): Condition {
    if (list.type !== 'list' && list.type !== 'dynamic') {
      this.fail('COMPILE_BAD_OPERAND', `\`${word}\` needs a list but found ${typeWord[list.type]}`, listLoc);
    }
    if (item.type === 'list') {
      this.fail('COMPILE_BAD_OPERAND', `\`${word}\` tests one value, not a list`, itemLoc, 'use `containsAny` or `containsAll`');
    }
    if (item.type === 'time' || item.type === 'timestamp') {
      this.fail('COMPILE_BAD_OPERAND', `\`${word}\` cannot test ${typeWord[item.type]}`, itemLoc);
    }
    if (list.set !== undefined) {
      const { values, type } = list.set;
      const itemType = item.type === 'bool' ? 'boolean' : item.type;
      if (item.type !== 'dynamic' && values.size > 0 && itemType !== type) {
        this.fail('COMPILE_TYPE_MISMATCH', `cannot look for ${typeWord[item.type]} in a list of ${type}s`, itemLoc);
      }
      const read = item.read;
      return (ctx) => memberOfSet(read(ctx), values);
    }
    const readItem = item.read;
    const readList = list.read;
    return (ctx) => member(readItem(ctx), readList(ctx));
  }

  private roleTest(expr: CallExpr): CompiledCondition {
    const target = expr.target;
    if (target === null || target.kind !== 'path' || target.root.name !== 'subject' || target.segments.length > 0) {
      this.fail('COMPILE_BAD_METHOD', '`role` is a test on the subject: write `subject.role("editor")`', expr.name.loc);
    }
    const role = this.stringLiteralArg(expr, 'a role name');
    const scope = this.scope;
    scope.onRole?.(role, expr.loc);
    if (scope.derivedRoles.has(role)) {
      return { condition: (ctx) => derivedRoleHolds(ctx, role), key: { kind: 'role', role, derived: true } };
    }
    if (scope.staticRoles.has(role)) {
      return { condition: (ctx) => subjectRoles(ctx).has(role), key: { kind: 'role', role, derived: false } };
    }
    const argLoc = expr.args[0]?.loc ?? expr.loc;
    if (scope.allDerivedRoles.has(role)) {
      this.fail('COMPILE_DERIVED_ROLE_SCOPE', `derived role \`${role}\` is not defined for resource type \`${scope.resourceType}\``, argLoc, `add \`${scope.resourceType}\` to the types after \`derive ${role} for\``);
    }
    return this.fail('COMPILE_UNKNOWN_ROLE', `unknown role \`${role}\``, argLoc, didYouMean(role, [...scope.staticRoles, ...scope.derivedRoles]) ?? 'declare it in a `roles { ... }` block or with `derive`');
  }

  private stringLiteralArg(expr: CallExpr, what: string): string {
    const arg = expr.args[0];
    if (expr.args.length !== 1 || arg === undefined || arg.kind !== 'lit' || typeof arg.value !== 'string') {
      this.fail('COMPILE_BAD_ARGUMENTS', `\`${expr.name.name}\` takes one argument: ${what} as a string literal`, expr.args[0]?.loc ?? expr.loc);
    }
    if (arg.value.length > MAX_LITERAL_LENGTH) this.fail('COMPILE_BAD_LITERAL', `string literal longer than ${MAX_LITERAL_LENGTH} characters`, arg.loc);
    return arg.value;
  }

  private optionalOffsetArg(expr: CallExpr): number {
    if (expr.args.length === 0) return 0;
    const s = this.stringLiteralArg(expr, 'a UTC offset such as "+02:00"');
    const off = parseUtcOffset(s);
    if (off === undefined) this.fail('COMPILE_BAD_LITERAL', `\`${s}\` is not a UTC offset`, expr.args[0]?.loc ?? expr.loc, 'write it as "+02:00" or "-05:30"');
    return off;
  }

  value(expr: Expr): CompiledValue {
    switch (expr.kind) {
      case 'lit': {
        const v = expr.value;
        if (typeof v === 'number' && !Number.isFinite(v)) this.fail('COMPILE_BAD_LITERAL', 'number literal out of range', expr.loc);
        if (typeof v === 'string' && v.length > MAX_LITERAL_LENGTH) this.fail('COMPILE_BAD_LITERAL', `string literal longer than ${MAX_LITERAL_LENGTH} characters`, expr.loc);
        const type: StaticType = typeof v === 'string' ? 'string' : typeof v === 'number' ? 'number' : 'bool';
        return { type, read: () => v, literal: v };
      }
      case 'list':
        return this.list(expr.items, expr.loc);
      case 'path':
        return this.path(expr);
      case 'call':
        if (expr.target !== null && expr.name.name === 'role') return this.boolValue(this.roleTest(expr).condition);
        return this.call(expr);
      default:
        // A condition used as a value (`(a == b) == true`).
        return this.boolValue(this.bool(expr).condition);
    }
  }

  private list(items: readonly Expr[], loc: SourceLocation): CompiledValue {
    const values = items.map((i) => this.value(i));
    const allLiteral = values.every((v) => v.literal !== undefined);
    if (allLiteral) {
      const types = new Set(values.map((v) => typeof v.literal));
      if (types.size > 1) this.fail('COMPILE_TYPE_MISMATCH', 'list literal mixes types', loc, 'every item of a list literal must have the same type');
      const set = new Set(values.map((v) => v.literal as Scalar));
      const type = (types.values().next().value ?? 'string') as 'string' | 'number' | 'boolean';
      const arr = [...values.map((v) => v.literal as Scalar)];
      return { type: 'list', read: () => arr, set: { values: set, type } };
    }
    for (const [i, v] of values.entries()) {
      if (v.type === 'list') this.fail('COMPILE_BAD_OPERAND', 'lists cannot be nested', items[i]?.loc ?? loc);
    }
    const readers = values.map((v) => v.read);
    return { type: 'list', read: (ctx) => readers.map((r) => r(ctx)) };
  }

  private path(expr: PathExpr): CompiledValue {
    const root = expr.root.name;
    const segs = expr.segments.map((s) => s.name);
    if (!(ATTRIBUTE_ROOTS as readonly string[]).includes(root)) {
      this.fail('COMPILE_UNKNOWN_ROOT', `unknown attribute root \`${root}\``, expr.root.loc, didYouMean(root, ATTRIBUTE_ROOTS) ?? 'attributes start with `subject`, `resource`, `action` or `context`');
    }
    const key = pathKey(root, segs);
    if (root === 'action') {
      if (segs.length > 0) this.fail('COMPILE_NOT_A_VALUE', '`action` is the action name and has no attributes', expr.segments[0]?.loc ?? expr.loc, 'compare it directly: `action == "read"`');
      return { type: 'dynamic', read: (ctx) => ctx.action, path: key };
    }
    if (segs.length === 0) {
      this.fail('COMPILE_NOT_A_VALUE', `\`${root}\` is not a value; read one of its attributes, such as \`${root === 'subject' ? 'subject.sub' : root === 'resource' ? 'resource.id' : 'context.time'}\``, expr.loc);
    }
    if (root === 'resource' && segs.length > 1 && (segs[0] === 'type' || segs[0] === 'id')) {
      // `resource.type` and `resource.id` are strings: nothing can be read through them.
      return { type: 'dynamic', read: () => undefined, path: key };
    }
    if (root === 'resource' && segs.length === 1 && (segs[0] === 'type' || segs[0] === 'id')) {
      return segs[0] === 'type'
        ? { type: 'dynamic', read: (ctx) => ctx.resourceType, path: key }
        : { type: 'dynamic', read: (ctx) => (ctx.resourceId === '' ? undefined : ctx.resourceId), path: key };
    }
    if (root === 'context' && segs.length === 1 && segs[0] === 'time') {
      // The request time: the caller's `context.time`, else the decision clock (epoch seconds).
      const read = readerFor('context', segs);
      this.scope.onClock?.();
      return { type: 'dynamic', read: (ctx) => read(ctx) ?? ctx.now / 1000, path: key };
    }
    return { type: 'dynamic', read: readerFor(root as 'subject' | 'resource' | 'context', segs), path: key };
  }

  private call(expr: CallExpr): CompiledValue {
    const name = expr.name.name;
    if (expr.target === null) return this.func(expr);
    if (!(METHODS as readonly string[]).includes(name)) {
      this.fail('COMPILE_UNKNOWN_METHOD', `unknown method \`${name}\``, expr.name.loc, didYouMean(name, METHODS) ?? `methods are ${METHODS.map((m) => `\`${m}\``).join(', ')}`);
    }
    const target = this.value(expr.target);
    const read = target.read;
    const expectTarget = (...types: StaticType[]): void => {
      if (target.type !== 'dynamic' && !types.includes(target.type)) {
        this.fail('COMPILE_BAD_OPERAND', `\`${name}\` cannot be called on ${typeWord[target.type]}`, expr.name.loc);
      }
    };
    const arity = (n: number, m = n): void => {
      if (expr.args.length < n || expr.args.length > m) {
        this.fail('COMPILE_BAD_ARGUMENTS', `\`${name}\` takes ${n === m ? n : `${n} to ${m}`} argument${m === 1 ? '' : 's'}, not ${expr.args.length}`, expr.loc);
      }
    };
    switch (name) {
      case 'startsWith':
      case 'endsWith': {
        expectTarget('string');
        arity(1);
        const arg = this.value(expr.args[0] as Expr);
        if (arg.type !== 'string' && arg.type !== 'dynamic') this.fail('COMPILE_BAD_ARGUMENTS', `\`${name}\` takes a string`, (expr.args[0] as Expr).loc);
        const readArg = arg.read;
        const starts = name === 'startsWith';
        return this.boolValue((ctx) => {
          const s = read(ctx);
          const p = readArg(ctx);
          if (typeof s !== 'string' || typeof p !== 'string') return false;
          return starts ? s.startsWith(p) : s.endsWith(p);
        });
      }
      case 'matches': {
        expectTarget('string');
        const pattern = this.stringLiteralArg(expr, 'a glob pattern (`*` and `?`)');
        return this.boolValue((ctx) => {
          const s = read(ctx);
          return typeof s === 'string' && globMatch(pattern, s);
        });
      }
      case 'inCidr': {
        expectTarget('string');
        const text = this.stringLiteralArg(expr, 'a CIDR block such as "10.0.0.0/8"');
        const cidr = parseCidr(text);
        if (cidr === undefined) this.fail('COMPILE_BAD_LITERAL', `\`${text}\` is not a CIDR block`, expr.args[0]?.loc ?? expr.loc, 'write it as "10.0.0.0/8" or "2001:db8::/32"');
        return this.boolValue((ctx) => cidr.contains(read(ctx)));
      }
      case 'size': {
        expectTarget('list', 'string');
        arity(0);
        return { type: 'number', read: (ctx) => sizeOf(read(ctx)) };
      }
      case 'containsAny':
      case 'containsAll': {
        expectTarget('list');
        arity(1);
        const arg = this.value(expr.args[0] as Expr);
        if (arg.type !== 'list' && arg.type !== 'dynamic') this.fail('COMPILE_BAD_ARGUMENTS', `\`${name}\` takes a list`, (expr.args[0] as Expr).loc);
        const readArg = arg.read;
        const any = name === 'containsAny';
        return this.boolValue((ctx) => {
          const list = read(ctx);
          const wanted = readArg(ctx);
          if (!Array.isArray(list) || !Array.isArray(wanted)) return false;
          const items = wanted as readonly unknown[];
          return any ? items.some((w) => member(w, list)) : items.every((w) => member(w, list));
        });
      }
      case 'timeOfDay': {
        expectTarget('timestamp');
        arity(0, 1);
        const offset = this.optionalOffsetArg(expr);
        return { type: 'time', read: (ctx) => timeOfDay(read(ctx), offset) };
      }
      case 'dayOfWeek': {
        expectTarget('timestamp');
        arity(0, 1);
        const offset = this.optionalOffsetArg(expr);
        return { type: 'string', read: (ctx) => dayOfWeek(read(ctx), offset) };
      }
      default:
        // `role` is handled by roleTest before reaching here.
        return this.fail('COMPILE_BAD_METHOD', '`role` is a test on the subject: write `subject.role("editor")`', expr.name.loc);
    }
  }

  private func(expr: CallExpr): CompiledValue {
    const name = expr.name.name;
    switch (name) {
      case 'exists': {
        const arg = expr.args[0];
        if (expr.args.length !== 1 || arg === undefined || arg.kind !== 'path') {
          return this.fail('COMPILE_BAD_ARGUMENTS', '`exists` takes one attribute path, such as `exists(resource.owner)`', expr.loc);
        }
        const read = this.path(arg).read;
        return this.boolValue((ctx) => read(ctx) !== undefined);
      }
      case 'timestamp': {
        const text = this.stringLiteralArg(expr, 'an RFC 3339 timestamp such as "2026-01-31T09:00:00Z"');
        const ms = toTimestamp(text);
        if (ms === undefined) this.fail('COMPILE_BAD_LITERAL', `\`${text}\` is not an RFC 3339 timestamp with a zone`, expr.args[0]?.loc ?? expr.loc, 'write it as "2026-01-31T09:00:00Z"');
        return { type: 'timestamp', read: () => ms, literal: ms };
      }
      case 'time': {
        const text = this.stringLiteralArg(expr, 'a time of day such as "09:00"');
        const s = parseTimeOfDay(text);
        if (s === undefined) this.fail('COMPILE_BAD_LITERAL', `\`${text}\` is not a time of day`, expr.args[0]?.loc ?? expr.loc, 'write it as "09:00" or "17:30:00"');
        return { type: 'time', read: () => s, literal: s };
      }
      default:
        return this.fail('COMPILE_UNKNOWN_FUNCTION', `unknown function \`${name}\``, expr.name.loc, didYouMean(name, FUNCTIONS) ?? `functions are ${FUNCTIONS.map((f) => `\`${f}\``).join(', ')}; methods are called on a value (\`resource.name.startsWith("a")\`)`);
    }
  }

  /** A boolean-valued method result, usable both as a condition and as a value. */
  private boolValue(c: Condition): CompiledValue {
    return { type: 'bool', read: c, condition: c };
  }
}

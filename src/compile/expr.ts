/**
 * Expressions → closures. Each syntax node is checked (roots, roles, literal
 * types, method arity and arguments) and turned into a closure over the
 * evaluation context, once, at compile time. No policy text ever becomes
 * code: there is no eval and no `new Function` anywhere in Arbiter.
 *
 * With a schema (schema.ts), attribute paths are checked too: an attribute
 * the schema does not declare is an error, and a path read carries its
 * declared type (`declared`), which every check below consults. The declared
 * type is used for checking only: the closures are built from exactly what
 * they are built from without a schema, so a schema never changes what a
 * policy means.
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
  type Cidr,
  timeOfDay,
  toTimestamp,
  type Scalar,
} from './ops.js';
import { derivedRoleHolds, hasRole } from './roles.js';
import { formatSchemaType, type EnumType, type Schema, type SchemaType } from './schema.js';
import { didYouMean } from './suggest.js';
import type { Condition, EvalContext, ValueReader } from './tree.js';

/** What the compiler knows of a value's type before any request arrives. */
export type StaticType = 'string' | 'number' | 'bool' | 'list' | 'timestamp' | 'time' | 'dynamic';

/** A value's type as the checks see it: its static type, else the one the schema declares (an object is a `record`). */
type CheckedType = StaticType | 'record';

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
  /** For an attribute path, with a schema: the type the schema declares for it (for checks only, never for reading). */
  readonly declared?: SchemaType;
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
  /**
   * The policy set's schema. With one, attribute paths are checked against it
   * and get their declared types; without one, every attribute is `dynamic`.
   */
  readonly schema?: Schema;
  report(d: Diagnostic): void;
}

const FUNCTIONS = ['exists', 'timestamp', 'time'] as const;
const METHODS = ['role', 'startsWith', 'endsWith', 'matches', 'inCidr', 'size', 'containsAny', 'containsAll', 'timeOfDay', 'dayOfWeek'] as const;
const MAX_LITERAL_LENGTH = 4096;

const typeWord: Record<CheckedType, string> = {
  string: 'a string',
  number: 'a number',
  bool: 'a boolean',
  list: 'a list',
  timestamp: 'a timestamp',
  time: 'a time of day',
  dynamic: 'an attribute',
  record: 'a record',
};

/** The type the checks use: the static type, else the declared one, else `dynamic`. */
function checkedType(v: CompiledValue): CheckedType {
  if (v.type !== 'dynamic' || v.declared === undefined) return v.type;
  return checkedOf(v.declared);
}

function checkedOf(t: SchemaType): CheckedType {
  switch (t.kind) {
    case 'string':
    case 'enum':
    case 'ip':
      return 'string';
    case 'number':
      return 'number';
    case 'bool':
      return 'bool';
    case 'timestamp':
      return 'timestamp';
    case 'set':
      return 'list';
    case 'record':
    case 'object':
      return 'record';
  }
}

/** A declared type in words: `a string`, `a set of numbers`, `an IP address`. */
function declaredWord(t: SchemaType): string {
  return t.kind === 'set' ? `a set of ${t.of}s` : t.kind === 'ip' ? 'an IP address' : typeWord[checkedOf(t)];
}

/** `a string`, or for a declared attribute `` `resource.owner` (a string) ``. */
function describe(v: CompiledValue): string {
  if (v.declared === undefined || v.path === undefined) return typeWord[checkedType(v)];
  return `\`${v.path}\` (${declaredWord(v.declared)})`;
}

function enumOf(v: CompiledValue): EnumType | undefined {
  return v.declared?.kind === 'enum' ? v.declared : undefined;
}

function listValues(values: readonly string[]): string {
  return values.map((x) => `\`${x}\``).join(', ');
}

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
  if (parts.length === 2) return and2(parts[0] as Condition, parts[1] as Condition);
  if (parts.length === 3) return and3(parts[0] as Condition, parts[1] as Condition, parts[2] as Condition);
  return andN([...parts]);
}

/** Disjunction of compiled conditions, short-circuiting. */
export function disjoin(parts: readonly Condition[]): Condition {
  if (parts.length === 1) return parts[0] as Condition;
  if (parts.length === 2) return or2(parts[0] as Condition, parts[1] as Condition);
  return orN([...parts]);
}

/** Reads an own property of a plain object; `undefined` for anything else or JSON null. */
function step(obj: unknown, key: string): unknown {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || !Object.hasOwn(obj, key)) return undefined;
  const v = (obj as Record<string, unknown>)[key];
  return v === null ? undefined : v;
}

function readerFor(root: 'subject' | 'resource' | 'context', segments: readonly string[]): ValueReader {
  const pick = root === 'subject' ? pickSubject : root === 'resource' ? pickResource : pickContext;
  if (segments.length === 1) return path1(pick, segments[0] as string);
  if (segments.length === 2) return path2(pick, segments[0] as string, segments[1] as string);
  return pathN(pick, [...segments]);
}

// ------------------------------------------------------------ runtime closures
//
// Every closure that outlives compilation (conditions and value readers) is
// made by one of the module-level factories below, from the runtime values it
// needs and nothing else. V8 gives each function invocation one context
// holding every variable any of its inner closures captures, so a condition
// built inside an ExprCompiler method would keep `this` (and through it the
// scope, the compile state and every rule's syntax tree) alive for as long as
// the compiled tree lives. Nothing below may take `this`, a scope, a syntax
// node, a diagnostic or a location.

/** Conjunction of two or three conditions; `andN` for more. */
function and2(a: Condition, b: Condition): Condition {
  return (ctx) => a(ctx) && b(ctx);
}

function and3(a: Condition, b: Condition, c: Condition): Condition {
  return (ctx) => a(ctx) && b(ctx) && c(ctx);
}

function andN(parts: readonly Condition[]): Condition {
  return (ctx) => {
    for (const p of parts) if (!p(ctx)) return false;
    return true;
  };
}

function or2(a: Condition, b: Condition): Condition {
  return (ctx) => a(ctx) || b(ctx);
}

function orN(parts: readonly Condition[]): Condition {
  return (ctx) => {
    for (const p of parts) if (p(ctx)) return true;
    return false;
  };
}

function not(inner: Condition): Condition {
  return (ctx) => !inner(ctx);
}

const alwaysTrue: Condition = () => true;
const alwaysFalse: Condition = () => false;

/** A bool attribute (or dynamic value) used as a condition: holds only for `true`. */
function isTrue(read: ValueReader): Condition {
  return (ctx) => read(ctx) === true;
}

function eqLiteral(read: ValueReader, lit: Scalar): Condition {
  return (ctx) => read(ctx) === lit;
}

function neLiteral(read: ValueReader, lit: Scalar): Condition {
  return (ctx) => read(ctx) !== lit;
}

function eqValues(readL: ValueReader, readR: ValueReader): Condition {
  return (ctx) => equals(readL(ctx), readR(ctx));
}

function neValues(readL: ValueReader, readR: ValueReader): Condition {
  return (ctx) => !equals(readL(ctx), readR(ctx));
}

function ordered(op: '<' | '<=' | '>' | '>=', readL: ValueReader, readR: ValueReader): Condition {
  return (ctx) => order(op, readL(ctx), readR(ctx));
}

function inSet(read: ValueReader, values: ReadonlySet<Scalar>): Condition {
  return (ctx) => memberOfSet(read(ctx), values);
}

function inList(readItem: ValueReader, readList: ValueReader): Condition {
  return (ctx) => member(readItem(ctx), readList(ctx));
}

function hasDerivedRole(role: string): Condition {
  return (ctx) => derivedRoleHolds(ctx, role);
}

function hasStaticRole(role: string): Condition {
  return (ctx) => hasRole(ctx, role);
}

function startsWith(read: ValueReader, readArg: ValueReader): Condition {
  return (ctx) => {
    const s = read(ctx);
    const p = readArg(ctx);
    if (typeof s !== 'string' || typeof p !== 'string') return false;
    return s.startsWith(p);
  };
}

function endsWith(read: ValueReader, readArg: ValueReader): Condition {
  return (ctx) => {
    const s = read(ctx);
    const p = readArg(ctx);
    if (typeof s !== 'string' || typeof p !== 'string') return false;
    return s.endsWith(p);
  };
}

function globMatches(read: ValueReader, pattern: string): Condition {
  return (ctx) => {
    const s = read(ctx);
    return typeof s === 'string' && globMatch(pattern, s);
  };
}

function inCidr(read: ValueReader, cidr: Cidr): Condition {
  return (ctx) => cidr.contains(read(ctx));
}

function containsAny(read: ValueReader, readArg: ValueReader): Condition {
  return (ctx) => {
    const list = read(ctx);
    const wanted = readArg(ctx);
    if (!Array.isArray(list) || !Array.isArray(wanted)) return false;
    return (wanted as readonly unknown[]).some((w) => member(w, list));
  };
}

function containsAll(read: ValueReader, readArg: ValueReader): Condition {
  return (ctx) => {
    const list = read(ctx);
    const wanted = readArg(ctx);
    if (!Array.isArray(list) || !Array.isArray(wanted)) return false;
    return (wanted as readonly unknown[]).every((w) => member(w, list));
  };
}

function exists(read: ValueReader): Condition {
  return (ctx) => read(ctx) !== undefined;
}

/** A reader of a compile-time constant (a literal, a literal list, a parsed timestamp or time). */
function constant(v: unknown): ValueReader {
  return () => v;
}

function listOf(readers: readonly ValueReader[]): ValueReader {
  return (ctx) => readers.map((r) => r(ctx));
}

const readAction: ValueReader = (ctx) => ctx.action;
const readResourceType: ValueReader = (ctx) => ctx.resourceType;
const readResourceId: ValueReader = (ctx) => (ctx.resourceId === '' ? undefined : ctx.resourceId);
const readNothing: ValueReader = () => undefined;

/** `context.time`: the caller's, else the decision clock (epoch seconds). */
function requestTime(read: ValueReader): ValueReader {
  return (ctx) => read(ctx) ?? ctx.now / 1000;
}

/** An attribute read as a timestamp (an RFC 3339 string or epoch seconds, to milliseconds). */
function asTimestamp(read: ValueReader): ValueReader {
  return (ctx) => toTimestamp(read(ctx));
}

function sizeReader(read: ValueReader): ValueReader {
  return (ctx) => sizeOf(read(ctx));
}

function timeOfDayReader(read: ValueReader, offset: number): ValueReader {
  return (ctx) => timeOfDay(read(ctx), offset);
}

function dayOfWeekReader(read: ValueReader, offset: number): ValueReader {
  return (ctx) => dayOfWeek(read(ctx), offset);
}

const pickSubject = (ctx: EvalContext): unknown => ctx.subject;
const pickResource = (ctx: EvalContext): unknown => ctx.resource;
const pickContext = (ctx: EvalContext): unknown => ctx.context;

function path1(pick: ValueReader, a: string): ValueReader {
  return (ctx) => step(pick(ctx), a);
}

function path2(pick: ValueReader, a: string, b: string): ValueReader {
  return (ctx) => step(step(pick(ctx), a), b);
}

function pathN(pick: ValueReader, segments: readonly string[]): ValueReader {
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
        return { condition: not(this.bool(expr.arg).condition) };
      }
      case 'cmp':
        return this.compare(expr);
      case 'in': {
        const [left, right] = this.both(() => this.value(expr.left), () => this.value(expr.right));
        return { condition: this.membership(left, right, expr.left.loc, expr.right, 'in') };
      }
      case 'has': {
        const [list, item] = this.both(() => this.value(expr.left), () => this.value(expr.right));
        return { condition: this.membership(item, list, expr.right.loc, expr.left, expr.word) };
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
    if (v.type === 'bool' && v.literal !== undefined) return v.literal === true ? alwaysTrue : alwaysFalse;
    const t = checkedType(v);
    if (t === 'dynamic' || t === 'bool') return isTrue(v.read);
    return this.fail('COMPILE_NOT_A_CONDITION', `expected a condition but found ${describe(v)}`, loc, 'compare it with `==`, `in` or a method such as `startsWith`');
  }

  /** Compiles two operands, reporting the errors of both before giving up. */
  private both<A, B>(first: () => A, second: () => B): [A, B] {
    let a: A | undefined;
    let b: B | undefined;
    let failed = false;
    try {
      a = first();
    } catch (e) {
      if (!(e instanceof Abandon)) throw e;
      failed = true;
    }
    try {
      b = second();
    } catch (e) {
      if (!(e instanceof Abandon)) throw e;
      failed = true;
    }
    if (failed) throw new Abandon();
    return [a as A, b as B];
  }

  /** Reports without abandoning (when several errors are found at one node). */
  private note(code: string, message: string, location: SourceLocation, help?: string): void {
    this.scope.report(help === undefined ? { code, message, location } : { code, message, location, help });
  }

  private compare(expr: CompareExpr): CompiledCondition {
    const [left, right] = this.both(() => this.value(expr.left), () => this.value(expr.right));
    const { op } = expr;
    const lt = checkedType(left);
    const rt = checkedType(right);
    for (const side of [left, right]) {
      const t = checkedType(side);
      if (t === 'list') {
        this.fail('COMPILE_BAD_OPERAND', `\`${op}\` cannot compare lists`, side === left ? expr.left.loc : expr.right.loc, 'use `in`, `has`, `containsAny` or `containsAll`');
      }
      if (t === 'record') {
        this.fail('COMPILE_BAD_OPERAND', `\`${op}\` cannot compare records`, side === left ? expr.left.loc : expr.right.loc, 'compare one of its attributes');
      }
    }
    if (lt !== 'dynamic' && rt !== 'dynamic' && lt !== rt) {
      const timestampText = (lt === 'timestamp' && right.literal !== undefined && rt === 'string') || (rt === 'timestamp' && left.literal !== undefined && lt === 'string');
      this.fail(
        'COMPILE_TYPE_MISMATCH',
        `cannot compare ${describe(left)} with ${describe(right)}`,
        expr.loc,
        timestampText ? 'write the literal as a timestamp: `timestamp("2026-01-01T00:00:00Z")`' : 'both sides of a comparison must have the same type',
      );
    }
    // `typed` is what the closure is built from (static types only); `checked` adds the schema's.
    const typed = left.type !== 'dynamic' ? left.type : right.type;
    const checked = lt !== 'dynamic' ? lt : rt;
    if (typed === 'time' && (left.type === 'dynamic' || right.type === 'dynamic')) {
      this.fail('COMPILE_TYPE_MISMATCH', 'a time of day can only be compared with another time of day', expr.loc, 'use `context.time.timeOfDay() >= time("09:00")`');
    }
    const ordering = op !== '==' && op !== '!=';
    if (ordering && (checked === 'string' || checked === 'bool')) {
      this.fail('COMPILE_BAD_OPERAND', `\`${op}\` orders numbers, timestamps and times of day, not ${checked === 'string' ? 'strings' : 'booleans'}`, expr.loc);
    }
    if (!ordering) this.checkEnumEquality(left, right, expr);
    // Timestamps: coerce the attribute side (an RFC 3339 string or epoch seconds) to milliseconds.
    let readL = left.read;
    let readR = right.read;
    if (typed === 'timestamp') {
      if (left.type === 'dynamic') readL = asTimestamp(left.read);
      if (right.type === 'dynamic') readR = asTimestamp(right.read);
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
        condition = negate ? neLiteral(read, lit) : eqLiteral(read, lit);
      } else {
        condition = negate ? neValues(readL, readR) : eqValues(readL, readR);
      }
      return key === undefined ? { condition } : { condition, key };
    }
    return { condition: ordered(op, readL, readR) };
  }

  /**
   * Enum checks for `==` and `!=`: an enum attribute compared with a literal
   * outside its values, or with an enum attribute it shares no value with, can
   * never be equal (so `==` never holds, and `!=` always does).
   */
  private checkEnumEquality(left: CompiledValue, right: CompiledValue, expr: CompareExpr): void {
    const le = enumOf(left);
    const re = enumOf(right);
    let failed = false;
    if (le !== undefined && typeof right.literal === 'string') failed = this.checkEnumLiteral(left, le, right.literal, expr.right.loc) || failed;
    if (re !== undefined && typeof left.literal === 'string') failed = this.checkEnumLiteral(right, re, left.literal, expr.left.loc) || failed;
    if (le !== undefined && re !== undefined && !le.values.some((v) => re.values.includes(v))) {
      this.note(
        'COMPILE_NEVER_TRUE',
        `\`${left.path ?? 'left'}\` and \`${right.path ?? 'right'}\` can never be equal: their values have nothing in common`,
        expr.loc,
        `\`${left.path ?? 'left'}\` is one of ${listValues(le.values)}; \`${right.path ?? 'right'}\` is one of ${listValues(re.values)}`,
      );
      failed = true;
    }
    if (failed) throw new Abandon();
  }

  /** Reports a literal outside an enum attribute's values; true when it did. */
  private checkEnumLiteral(attr: CompiledValue, type: EnumType, literal: string, loc: SourceLocation): boolean {
    if (type.values.includes(literal)) return false;
    const near = didYouMean(literal, type.values);
    const name = attr.path ?? 'the attribute';
    const values = `\`${name}\` is one of ${listValues(type.values)}`;
    this.note('COMPILE_NEVER_TRUE', `\`${name}\` can never be ${JSON.stringify(literal)}`, loc, near === undefined ? values : `${near} (${values})`);
    return true;
  }

  private membership(item: CompiledValue, list: CompiledValue, itemLoc: SourceLocation, listExpr: Expr, word: string): Condition {
    const listLoc = listExpr.loc;
    const lt = checkedType(list);
    const it = checkedType(item);
    if (lt !== 'list' && lt !== 'dynamic') {
      this.fail('COMPILE_BAD_OPERAND', `\`${word}\` needs a list but found ${describe(list)}`, listLoc);
    }
    if (it === 'list') {
      this.fail('COMPILE_BAD_OPERAND', `\`${word}\` tests one value, not a list`, itemLoc, 'use `containsAny` or `containsAll`');
    }
    if (it === 'time' || it === 'timestamp' || it === 'record') {
      this.fail('COMPILE_BAD_OPERAND', `\`${word}\` cannot test ${describe(item)}`, itemLoc);
    }
    const declaredSet = list.declared?.kind === 'set' ? list.declared : undefined;
    if (declaredSet !== undefined && it !== 'dynamic' && it !== declaredSet.of) {
      this.fail('COMPILE_TYPE_MISMATCH', `cannot look for ${describe(item)} in ${describe(list)}`, itemLoc);
    }
    if (list.set !== undefined) {
      const { values, type } = list.set;
      const itemType = it === 'bool' ? 'boolean' : it;
      if (it !== 'dynamic' && values.size > 0 && itemType !== type) {
        this.fail('COMPILE_TYPE_MISMATCH', `cannot look for ${describe(item)} in a list of ${type}s`, itemLoc);
      }
      const en = enumOf(item);
      if (en !== undefined && listExpr.kind === 'list') {
        let failed = false;
        for (const i of listExpr.items) {
          if (i.kind === 'lit' && typeof i.value === 'string') failed = this.checkEnumLiteral(item, en, i.value, i.loc) || failed;
        }
        if (failed) throw new Abandon();
      }
      return inSet(item.read, values);
    }
    return inList(item.read, list.read);
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
      return { condition: hasDerivedRole(role), key: { kind: 'role', role, derived: true } };
    }
    if (scope.staticRoles.has(role)) {
      return { condition: hasStaticRole(role), key: { kind: 'role', role, derived: false } };
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
        return { type, read: constant(v), literal: v };
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
    const values: CompiledValue[] = [];
    let failed = false;
    for (const i of items) {
      try {
        values.push(this.value(i));
      } catch (e) {
        if (!(e instanceof Abandon)) throw e;
        failed = true;
      }
    }
    if (failed) throw new Abandon();
    const allLiteral = values.every((v) => v.literal !== undefined);
    if (allLiteral) {
      const types = new Set(values.map((v) => typeof v.literal));
      if (types.size > 1) this.fail('COMPILE_TYPE_MISMATCH', 'list literal mixes types', loc, 'every item of a list literal must have the same type');
      const set = new Set(values.map((v) => v.literal as Scalar));
      const type = (types.values().next().value ?? 'string') as 'string' | 'number' | 'boolean';
      const arr = [...values.map((v) => v.literal as Scalar)];
      return { type: 'list', read: constant(arr), set: { values: set, type } };
    }
    for (const [i, v] of values.entries()) {
      if (checkedType(v) === 'list') this.fail('COMPILE_BAD_OPERAND', 'lists cannot be nested', items[i]?.loc ?? loc);
    }
    return { type: 'list', read: listOf(values.map((v) => v.read)) };
  }

  private path(expr: PathExpr): CompiledValue {
    const root = expr.root.name;
    const segs = expr.segments.map((s) => s.name);
    if (!(ATTRIBUTE_ROOTS as readonly string[]).includes(root)) {
      this.fail('COMPILE_UNKNOWN_ROOT', `unknown attribute root \`${root}\``, expr.root.loc, didYouMean(root, ATTRIBUTE_ROOTS) ?? 'attributes start with `subject`, `resource`, `action` or `context`');
    }
    const key = pathKey(root, segs);
    // With a schema, the names the language defines are strings.
    const str: { declared?: SchemaType } = this.scope.schema === undefined ? {} : { declared: { kind: 'string' } };
    if (root === 'action') {
      if (segs.length > 0) this.fail('COMPILE_NOT_A_VALUE', '`action` is the action name and has no attributes', expr.segments[0]?.loc ?? expr.loc, 'compare it directly: `action == "read"`');
      return { type: 'dynamic', read: readAction, path: key, ...str };
    }
    if (segs.length === 0) {
      this.fail('COMPILE_NOT_A_VALUE', `\`${root}\` is not a value; read one of its attributes, such as \`${root === 'subject' ? 'subject.sub' : root === 'resource' ? 'resource.id' : 'context.time'}\``, expr.loc);
    }
    if (root === 'resource' && segs.length > 1 && (segs[0] === 'type' || segs[0] === 'id')) {
      // `resource.type` and `resource.id` are strings: nothing can be read through them.
      if (this.scope.schema !== undefined) {
        this.fail('COMPILE_UNKNOWN_ATTRIBUTE', `\`resource.${segs[0]}\` is a string and has no attribute \`${segs[1] ?? ''}\``, expr.segments[1]?.loc ?? expr.loc);
      }
      return { type: 'dynamic', read: readNothing, path: key };
    }
    if (root === 'resource' && segs.length === 1 && (segs[0] === 'type' || segs[0] === 'id')) {
      return segs[0] === 'type'
        ? { type: 'dynamic', read: readResourceType, path: key, ...str }
        : { type: 'dynamic', read: readResourceId, path: key, ...str };
    }
    const declared = this.declaredType(expr, root as 'subject' | 'resource' | 'context', segs);
    const typed = declared === undefined ? {} : { declared };
    if (root === 'context' && segs.length === 1 && segs[0] === 'time') {
      // The request time: the caller's `context.time`, else the decision clock (epoch seconds).
      this.scope.onClock?.();
      return { type: 'dynamic', read: requestTime(readerFor('context', segs)), path: key, ...typed };
    }
    return { type: 'dynamic', read: readerFor(root as 'subject' | 'resource' | 'context', segs), path: key, ...typed };
  }

  /**
   * The type the schema declares for a path, or `undefined` when the path is
   * not checked (no schema, a section the schema leaves out, or a member of a
   * `record`). An attribute the schema does not declare is an error.
   */
  private declaredType(expr: PathExpr, root: 'subject' | 'resource' | 'context', segs: readonly string[]): SchemaType | undefined {
    const schema = this.scope.schema;
    if (schema === undefined) return undefined;
    let t: SchemaType | undefined;
    let from = 0;
    if (root === 'context' && segs[0] === 'time') {
      // The language defines `context.time`: the request time, whatever the schema says.
      t = { kind: 'timestamp' };
      from = 1;
    } else {
      t = root === 'subject' ? schema.subject : root === 'context' ? schema.context : schema.resources?.get(this.scope.resourceType)?.attributes;
    }
    if (t === undefined) return undefined;
    const type = this.scope.resourceType;
    for (let i = from; i < segs.length; i++) {
      const seg = segs[i] as string;
      const loc = expr.segments[i]?.loc ?? expr.loc;
      if (t.kind === 'record') return undefined;
      if (t.kind !== 'object') {
        this.fail('COMPILE_UNKNOWN_ATTRIBUTE', `\`${pathKey(root, segs.slice(0, i))}\` is ${declaredWord(t)} and has no attribute \`${seg}\``, loc);
      }
      const attr: { readonly type: SchemaType } | undefined = t.attributes.get(seg);
      if (attr === undefined) {
        const full = pathKey(root, segs.slice(0, i + 1));
        const near = didYouMean(seg, t.attributes.keys(), (s) => pathKey(root, [...segs.slice(0, i), s]));
        const section = root === 'resource' ? `resources.${type}` : root;
        const under = [section, ...segs.slice(0, i)].join('.');
        let help = near ?? `declare it under \`${under}\` in ${schema.source}`;
        if (near === undefined && root === 'resource' && i === 0) {
          const others = [...(schema.resources ?? [])].filter(([name, r]) => name !== type && r.attributes.attributes.has(seg)).map(([name]) => `\`${name}\``);
          if (others.length > 0) help = `\`${seg}\` is declared for resource type ${others.join(', ')}, not \`${type}\``;
        }
        this.fail('COMPILE_UNKNOWN_ATTRIBUTE', `unknown attribute \`${full}\`${root === 'resource' ? ` for resource type \`${type}\`` : ''}`, loc, help);
      }
      t = attr.type;
    }
    return t;
  }

  private call(expr: CallExpr): CompiledValue {
    const name = expr.name.name;
    if (expr.target === null) return this.func(expr);
    if (!(METHODS as readonly string[]).includes(name)) {
      this.fail('COMPILE_UNKNOWN_METHOD', `unknown method \`${name}\``, expr.name.loc, didYouMean(name, METHODS) ?? `methods are ${METHODS.map((m) => `\`${m}\``).join(', ')}`);
    }
    let target: CompiledValue;
    try {
      target = this.value(expr.target);
    } catch (e) {
      // Report the arguments' errors too before giving up.
      if (e instanceof Abandon) {
        for (const a of expr.args) {
          try {
            this.value(a);
          } catch (inner) {
            if (!(inner instanceof Abandon)) throw inner;
          }
        }
      }
      throw e;
    }
    const read = target.read;
    const targetType = checkedType(target);
    const expectTarget = (...types: StaticType[]): void => {
      if (targetType !== 'dynamic' && !(types as CheckedType[]).includes(targetType)) {
        this.fail('COMPILE_BAD_OPERAND', `\`${name}\` cannot be called on ${describe(target)}`, expr.name.loc);
      }
    };
    /** ", not `x` (a number)" for a declared argument of the wrong type. */
    const notThis = (arg: CompiledValue): string => (arg.declared === undefined ? '' : `, not ${describe(arg)}`);
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
        const argType = checkedType(arg);
        if (argType !== 'string' && argType !== 'dynamic') this.fail('COMPILE_BAD_ARGUMENTS', `\`${name}\` takes a string${notThis(arg)}`, (expr.args[0] as Expr).loc);
        return this.boolValue(name === 'startsWith' ? startsWith(read, arg.read) : endsWith(read, arg.read));
      }
      case 'matches': {
        expectTarget('string');
        const pattern = this.stringLiteralArg(expr, 'a glob pattern (`*` and `?`)');
        return this.boolValue(globMatches(read, pattern));
      }
      case 'inCidr': {
        expectTarget('string');
        if (target.declared !== undefined && target.declared.kind !== 'ip') {
          this.fail('COMPILE_BAD_OPERAND', `\`inCidr\` needs an IP address, but \`${target.path ?? 'its target'}\` is declared \`${formatSchemaType(target.declared)}\``, expr.name.loc, 'declare the attribute `ip` in the schema');
        }
        const text = this.stringLiteralArg(expr, 'a CIDR block such as "10.0.0.0/8"');
        const cidr = parseCidr(text);
        if (cidr === undefined) this.fail('COMPILE_BAD_LITERAL', `\`${text}\` is not a CIDR block`, expr.args[0]?.loc ?? expr.loc, 'write it as "10.0.0.0/8" or "2001:db8::/32"');
        return this.boolValue(inCidr(read, cidr));
      }
      case 'size': {
        expectTarget('list', 'string');
        arity(0);
        return { type: 'number', read: sizeReader(read) };
      }
      case 'containsAny':
      case 'containsAll': {
        expectTarget('list');
        arity(1);
        const arg = this.value(expr.args[0] as Expr);
        const argType = checkedType(arg);
        if (argType !== 'list' && argType !== 'dynamic') this.fail('COMPILE_BAD_ARGUMENTS', `\`${name}\` takes a list${notThis(arg)}`, (expr.args[0] as Expr).loc);
        // Element types, where both are known: a declared set and a literal list or another declared set.
        const of = target.declared?.kind === 'set' ? target.declared.of : undefined;
        const wanted = arg.set !== undefined && arg.set.values.size > 0 ? arg.set.type : arg.declared?.kind === 'set' ? arg.declared.of : undefined;
        if (of !== undefined && wanted !== undefined && of !== wanted) {
          this.fail('COMPILE_TYPE_MISMATCH', `cannot look for ${wanted}s in ${describe(target)}`, (expr.args[0] as Expr).loc);
        }
        return this.boolValue(name === 'containsAny' ? containsAny(read, arg.read) : containsAll(read, arg.read));
      }
      case 'timeOfDay': {
        expectTarget('timestamp');
        arity(0, 1);
        const offset = this.optionalOffsetArg(expr);
        return { type: 'time', read: timeOfDayReader(read, offset) };
      }
      case 'dayOfWeek': {
        expectTarget('timestamp');
        arity(0, 1);
        const offset = this.optionalOffsetArg(expr);
        return { type: 'string', read: dayOfWeekReader(read, offset) };
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
        return this.boolValue(exists(this.path(arg).read));
      }
      case 'timestamp': {
        const text = this.stringLiteralArg(expr, 'an RFC 3339 timestamp such as "2026-01-31T09:00:00Z"');
        const ms = toTimestamp(text);
        if (ms === undefined) this.fail('COMPILE_BAD_LITERAL', `\`${text}\` is not an RFC 3339 timestamp with a zone`, expr.args[0]?.loc ?? expr.loc, 'write it as "2026-01-31T09:00:00Z"');
        return { type: 'timestamp', read: constant(ms), literal: ms };
      }
      case 'time': {
        const text = this.stringLiteralArg(expr, 'a time of day such as "09:00"');
        const s = parseTimeOfDay(text);
        if (s === undefined) this.fail('COMPILE_BAD_LITERAL', `\`${text}\` is not a time of day`, expr.args[0]?.loc ?? expr.loc, 'write it as "09:00" or "17:30:00"');
        return { type: 'time', read: constant(s), literal: s };
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

/**
 * Formatting: policy text → the one canonical layout (`arbiter fmt`). The
 * text is parsed to the syntax tree and printed back; comments, which the
 * grammar treats as whitespace, are collected separately by a scanner that
 * follows the grammar's string rules (a `#` or `//` inside a string is not a
 * comment) and put back by position. Nothing but layout changes: the printed
 * text parses to a tree with the same meaning, and every comment is kept.
 *
 * The layout, derived from the hand-formatted files in policies/:
 *
 * - Items keep their source order. Two-space indentation; one item per line:
 *   a role chain (`admin > editor > viewer`), an `actions` clause, a rule, a
 *   route. Commas between chains and routes and every `;` are dropped.
 * - Blank lines between items (and between comments) are kept, at most one;
 *   none after `{`, before `}`, at the top or at the end of the file. The
 *   file ends with exactly one newline. An empty block prints as `roles {}`.
 * - A rule prints `rule NAME: permit a, b when COND unless COND` on one line
 *   when that fits in {@link MAX_LINE_WIDTH} columns. In a run of rules not
 *   separated by a blank line, `rule NAME:` labels are padded to the longest
 *   one, so that the effects line up. Unnamed rules take no part, nor do
 *   labels over 30 columns (which would push every other rule right).
 * - A rule that does not fit puts `when` and `unless` on lines of their own,
 *   indented two columns past the effect (`permit`/`forbid`). A condition
 *   still too long is broken before its top-level `and` (or `or`) operators,
 *   filling each line as far as it goes; an operand is never broken inside.
 *   A `derive` declaration breaks the same way, with its continuation lines
 *   indented two columns.
 * - Routes are aligned in columns across their block: method, pattern, `->`,
 *   target (`GET    "/api/documents/{id}" -> read document {id}`).
 * - Expressions carry the fewest parentheses that keep their meaning
 *   (`or` < `and` < `not` < comparisons < values): `(a or b) and c` keeps
 *   its parentheses, `a or (b and c)` and `((a))` lose them; chains of the
 *   same operator are flattened (`(a and b) and c` prints `a and b and c`).
 * - Strings are re-quoted with the grammar's escapes: `\"`, `\\`, `\n`, `\r`,
 *   `\t`, and `\uXXXX` (lower-case hex) for other control characters,
 *   U+2028/2029, U+FEFF and lone surrogates; everything else is written as
 *   itself (`\/` becomes `/`). An attribute segment that is a plain
 *   identifier prints as `.name`, any other as `["…"]`.
 * - Numbers print in JavaScript's canonical form (the shortest digits that
 *   read back as the same double), written out without an exponent: `1.50` →
 *   `1.5`, `007` → `7`, `1e21` stays `1000000000000000000000`; `-0` stays
 *   `-0`; a literal beyond a double (`Infinity`) is printed as written.
 *
 * Comments:
 *
 * - A comment on a line of its own stays on a line of its own, before the
 *   item (declaration, rule, role chain, route, `}`) that follows it, at that
 *   item's indentation.
 * - A comment at the end of a line stays at the end of the line of the item
 *   it follows (one space before it; columns are not aligned). A second one
 *   in the same place moves to a line of its own below it.
 * - Inside a rule or `derive`, a comment between the head and the condition,
 *   between `when` and `unless`, or between two top-level operands of a
 *   condition stays where it is: the rule is then printed broken, the
 *   end-of-line comment ends the line of the part it follows and the
 *   own-line comment gets a line of its own at the continuation indent.
 * - A comment that cannot stay where it was because its place is printed
 *   inside one line (within an operand, say inside a list spread over lines,
 *   between a rule's name and its effect, or between roles of a chain) moves
 *   onto a line of its own just before the item that contains it.
 *
 * No comment is ever dropped; {@link formatPolicy} checks that before it
 * returns.
 */
import { ArbiterError } from '../errors.js';
import type { Decl, DeriveDecl, Expr, Ident, PolicyFile, ResourceDecl, RolesDecl, RouteDecl, RoutesDecl, RuleDecl } from './ast.js';
import { parsePolicy } from './parse.js';

/** Width (in UTF-16 code units) that a rule or `derive` must fit in to stay on one line. */
export const MAX_LINE_WIDTH = 100;

const INDENT = '  ';

/** Longest `rule NAME:` label that others are padded to; a longer one is written as is and takes no part. */
const MAX_ALIGNED_LABEL = 30;

/** A comment in policy text. */
export interface Comment {
  /** Offset of the `#` or `//`. */
  readonly start: number;
  /** Offset just past the comment (its newline, or the end of the text). */
  readonly end: number;
  /** The comment as written, marker included, without trailing whitespace. */
  readonly text: string;
  /** Nothing but whitespace precedes it on its line. */
  readonly ownLine: boolean;
}

/**
 * Finds the comments of policy text, in order. Strings follow the grammar's
 * rules (they end at an unescaped `"` or at the end of the line), so a `#` or
 * `//` inside a string literal is not a comment. Meant for text that parses;
 * on other text the result is a best effort.
 *
 * @example
 * scanComments('permit read # all\n').map((c) => c.text) // ['# all']
 */
export function scanComments(text: string): Comment[] {
  const out: Comment[] = [];
  let codeOnLine = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) {
      codeOnLine = false;
    } else if (c === 0x20 || c === 0x09 || c === 0x0d) {
      continue;
    } else if (c === 0x22 /* " */) {
      codeOnLine = true;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */ && text.charCodeAt(i + 1) !== 0x0a) i++;
        else if (d === 0x22) break;
        else if (d === 0x0a) {
          i--; // the newline ends the line too
          break;
        }
      }
    } else if (c === 0x23 /* # */ || (c === 0x2f /* / */ && text.charCodeAt(i + 1) === 0x2f)) {
      let j = i;
      while (j < text.length && text.charCodeAt(j) !== 0x0a) j++;
      out.push({ start: i, end: j, text: text.slice(i, j).trimEnd(), ownLine: !codeOnLine });
      i = j - 1;
    } else {
      codeOnLine = true;
    }
  }
  return out;
}

/**
 * Formats one policy file in the canonical layout described at the top of
 * this module, keeping every comment. Formatting is idempotent: formatting
 * the result again returns it unchanged.
 *
 * @param text the file's contents
 * @param source the file name shown in errors
 * @throws {ParseError} when the text does not parse (as {@link parsePolicy})
 * @throws {ArbiterError} with code `FORMAT_INTERNAL` if the formatter would lose a comment or print text that does not parse (a bug)
 * @example
 * formatPolicy('resource doc{actions read;permit read when ((subject.a or subject.b))}', 'doc.policy')
 * // 'resource doc {\n  actions read\n  permit read when subject.a or subject.b\n}\n'
 */
export function formatPolicy(text: string, source: string): string {
  const file = parsePolicy(text, source);
  const comments = scanComments(text);
  const printer = new Printer(text, comments);
  const out = printer.file(file);
  if (printer.emitted !== comments.length) {
    throw new ArbiterError('FORMAT_INTERNAL', `formatting \`${source}\` would keep ${printer.emitted} of ${comments.length} comments`);
  }
  try {
    parsePolicy(out, source);
  } catch (e) {
    throw new ArbiterError('FORMAT_INTERNAL', `formatting \`${source}\` printed text that does not parse`, { cause: e });
  }
  if (scanComments(out).length !== comments.length) {
    throw new ArbiterError('FORMAT_INTERNAL', `formatting \`${source}\` changed the number of comments`);
  }
  return out;
}

// ---------------------------------------------------------------- literals

/**
 * A string literal with the grammar's escapes (see the module comment).
 *
 * @example
 * quoteString('say "hi"\n') // '"say \\"hi\\"\\n"'
 */
export function quoteString(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    switch (c) {
      case 0x22:
        out += '\\"';
        continue;
      case 0x5c:
        out += '\\\\';
        continue;
      case 0x0a:
        out += '\\n';
        continue;
      case 0x0d:
        out += '\\r';
        continue;
      case 0x09:
        out += '\\t';
        continue;
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += value.slice(i, i + 2);
        i++;
        continue;
      }
    }
    const escape = c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029 || c === 0xfeff || (c >= 0xd800 && c <= 0xdfff);
    out += escape ? `\\u${c.toString(16).padStart(4, '0')}` : value.charAt(i);
  }
  return `${out}"`;
}

/** The grammar's number syntax. */
const NUMBER_SYNTAX = /^-?[0-9]+(\.[0-9]+)?$/;
/** An attribute segment that can be written after a `.`. */
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A number in canonical form (see the module comment); `written` is the literal as in the source. */
function printNumber(value: number, written: string): string {
  if (Object.is(value, -0)) return '-0';
  const text = withoutExponent(String(value));
  return NUMBER_SYNTAX.test(text) && Number(text) === value ? text : written;
}

/** `1e+23` → `100000000000000000000000`, `1.5e-7` → `0.00000015`: the same digits, written out. */
function withoutExponent(text: string): string {
  const e = text.indexOf('e');
  if (e < 0) return text;
  const sign = text.startsWith('-') ? '-' : '';
  const mantissa = text.slice(sign.length, e);
  const dot = mantissa.indexOf('.');
  const digits = mantissa.replace('.', '');
  const point = (dot < 0 ? mantissa.length : dot) + Number(text.slice(e + 1));
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

// ---------------------------------------------------------------- expressions

/** Binding strength: an operand weaker than its context needs parentheses. */
function precedence(e: Expr): number {
  switch (e.kind) {
    case 'or':
      return 1;
    case 'and':
      return 2;
    case 'not':
      return 3;
    case 'cmp':
    case 'in':
    case 'has':
      return 4;
    default:
      return 5;
  }
}

/** Operands of a condition's top-level `and` or `or`, nested chains of the same operator flattened. */
function operands(e: Expr): { op: 'and' | 'or' | null; parts: Expr[] } {
  if (e.kind !== 'and' && e.kind !== 'or') return { op: null, parts: [e] };
  const parts: Expr[] = [];
  const stack: Expr[] = [...e.args].reverse();
  while (stack.length > 0) {
    const next = stack.pop() as Expr;
    if (next.kind === e.kind) for (let i = next.args.length - 1; i >= 0; i--) stack.push(next.args[i] as Expr);
    else parts.push(next);
  }
  return { op: e.kind, parts };
}

// ---------------------------------------------------------------- the printer

interface Segment {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

interface Clause {
  readonly keyword: 'when' | 'unless';
  readonly op: 'and' | 'or' | null;
  readonly parts: readonly Segment[];
}

/** Where a rule's parts are in the source. */
interface RuleSpan {
  readonly rule: RuleDecl;
  readonly start: number;
  readonly headEnd: number;
  readonly end: number;
}

interface ActionsSpan {
  readonly names: readonly Ident[];
  readonly start: number;
  readonly end: number;
}

class Printer {
  readonly #text: string;
  readonly #comments: readonly Comment[];
  readonly #lines: string[] = [];
  /** Comments written so far; must end equal to the number found. */
  emitted = 0;

  constructor(text: string, comments: readonly Comment[]) {
    this.#text = text;
    this.#comments = comments;
  }

  file(file: PolicyFile): string {
    let prevEnd = 0;
    let first = true;
    for (const d of file.decls) {
      this.#gap(prevEnd, d.loc.start.offset, '', first ? 'none' : 'item', 'item');
      prevEnd = this.#decl(d);
      first = false;
    }
    this.#gap(prevEnd, this.#text.length, '', first ? 'none' : 'item', 'end');
    return this.#lines.length === 0 ? '' : `${this.#lines.join('\n')}\n`;
  }

  // ------------------------------------------------------------ output

  #line(s: string): void {
    this.#lines.push(s);
  }

  #comment(indent: string, c: Comment): void {
    this.#lines.push(indent + c.text);
    this.emitted++;
  }

  #trail(c: Comment): void {
    const last = this.#lines.length - 1;
    this.#lines[last] = `${this.#lines[last] ?? ''} ${c.text}`;
    this.emitted++;
  }

  #blank(): void {
    if (this.#lines.length > 0 && this.#lines[this.#lines.length - 1] !== '') this.#lines.push('');
  }

  // ------------------------------------------------------------ source positions

  /** Comments that start in [from, to), in order. */
  #between(from: number, to: number): Comment[] {
    let lo = 0;
    let hi = this.#comments.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#comments[mid] as Comment).start < from) lo = mid + 1;
      else hi = mid;
    }
    const out: Comment[] = [];
    for (let i = lo; i < this.#comments.length; i++) {
      const c = this.#comments[i] as Comment;
      if (c.start >= to) break;
      out.push(c);
    }
    return out;
  }

  /** Whether [from, to) holds an empty line (comments do not count as empty). */
  #blankBetween(from: number, to: number): boolean {
    let pos = from;
    for (const c of [...this.#between(from, to), undefined]) {
      const end = c === undefined ? to : c.start;
      let sawNewline = false;
      let empty = true;
      for (let i = pos; i < end; i++) {
        const ch = this.#text.charCodeAt(i);
        if (ch === 0x0a) {
          if (sawNewline && empty) return true;
          sawNewline = true;
          empty = true;
        } else if (ch !== 0x20 && ch !== 0x09 && ch !== 0x0d) {
          empty = false;
        }
      }
      if (c !== undefined) pos = c.end;
    }
    return false;
  }

  /** The offset after whitespace and comments from `i`. */
  #skipTrivia(i: number): number {
    const t = this.#text;
    while (i < t.length) {
      const c = t.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) i++;
      else if (c === 0x23 || (c === 0x2f && t.charCodeAt(i + 1) === 0x2f)) {
        while (i < t.length && t.charCodeAt(i) !== 0x0a) i++;
      } else break;
    }
    return i;
  }

  /** The offset of `ch`, the next token after `i`. */
  #token(i: number, ch: string): number {
    const at = this.#skipTrivia(i);
    if (this.#text.charAt(at) !== ch) throw new ArbiterError('FORMAT_INTERNAL', `expected '${ch}' at offset ${at}`);
    return at;
  }

  // ------------------------------------------------------------ comments between items

  /**
   * Writes the comments between two items of a block (or of the file):
   * the first one, when it ends the line of the previous item, stays there;
   * the others get lines of their own. Blank lines are kept, at most one,
   * but never right after `{` (or at the top of the file) or before `}`.
   */
  #gap(from: number, to: number, indent: string, prev: 'none' | 'open' | 'item', next: 'item' | 'end'): void {
    let pos = from;
    let started = prev === 'item';
    this.#between(from, to).forEach((c, k) => {
      if (k === 0 && prev !== 'none' && !c.ownLine) {
        this.#trail(c);
      } else {
        if (started && this.#blankBetween(pos, c.start)) this.#blank();
        this.#comment(indent, c);
        started = true;
      }
      pos = c.end;
    });
    if (next === 'item' && started && this.#blankBetween(pos, to)) this.#blank();
  }

  /** Moves the comments inside [from, to), a span printed within one line, onto lines before it. */
  #hoist(from: number, to: number, indent: string): void {
    for (const c of this.#between(from, to)) this.#comment(indent, c);
  }

  // ------------------------------------------------------------ declarations

  /** Prints a declaration; returns the offset just past its last token. */
  #decl(d: Decl): number {
    switch (d.kind) {
      case 'roles':
        return this.#roles(d);
      case 'derive':
        return this.#derive(d);
      case 'resource':
        return this.#resource(d);
      case 'routes':
        return this.#routes(d);
    }
  }

  /**
   * Prints `header {`, the items and `}`. `items` are in source order; each
   * `emit` prints its item and returns the offset just past it.
   */
  #block(d: { loc: { start: { offset: number }; end: { offset: number } } }, header: string, open: number, items: ReadonlyArray<{ start: number; emit: () => number }>): number {
    const close = d.loc.end.offset - 1;
    if (this.#text.charAt(close) !== '}') throw new ArbiterError('FORMAT_INTERNAL', `expected '}' at offset ${close}`);
    this.#hoist(d.loc.start.offset, open + 1, '');
    if (items.length === 0 && this.#between(open + 1, close).length === 0) {
      this.#line(`${header} {}`);
      return close + 1;
    }
    this.#line(`${header} {`);
    let prevEnd = open + 1;
    let prev: 'open' | 'item' = 'open';
    for (const item of items) {
      this.#gap(prevEnd, item.start, INDENT, prev, 'item');
      prevEnd = item.emit();
      prev = 'item';
    }
    this.#gap(prevEnd, close, INDENT, prev, 'end');
    this.#line('}');
    return close + 1;
  }

  #roles(d: RolesDecl): number {
    const open = this.#token(d.loc.start.offset + 'roles'.length, '{');
    const items = d.chains.map((chain) => {
      const start = (chain[0] as Ident).loc.start.offset;
      const end = (chain[chain.length - 1] as Ident).loc.end.offset;
      return {
        start,
        emit: (): number => {
          this.#hoist(start, end, INDENT);
          this.#line(INDENT + chain.map((r) => r.name).join(' > '));
          return end;
        },
      };
    });
    return this.#block(d, 'roles', open, items);
  }

  #routes(d: RoutesDecl): number {
    const open = this.#token(d.loc.start.offset + 'routes'.length, '{');
    const methodWidth = widest(d.routes.map((r) => r.method.name.length));
    const patternWidth = widest(d.routes.map((r) => quoteString(r.pattern.value).length));
    const items = d.routes.map((r) => ({
      start: r.loc.start.offset,
      emit: (): number => {
        this.#hoist(r.loc.start.offset, r.loc.end.offset, INDENT);
        this.#line(`${INDENT}${r.method.name.padEnd(methodWidth)} ${quoteString(r.pattern.value).padEnd(patternWidth)} -> ${routeTarget(r)}`);
        return r.loc.end.offset;
      },
    }));
    return this.#block(d, 'routes', open, items);
  }

  #derive(d: DeriveDecl): number {
    let typesEnd: number;
    if (d.types === '*') {
      const forAt = this.#skipTrivia(d.name.loc.end.offset);
      typesEnd = this.#token(forAt + 'for'.length, '*') + 1;
    } else {
      typesEnd = (d.types[d.types.length - 1] as Ident).loc.end.offset;
    }
    const types = d.types === '*' ? '*' : d.types.map((t) => t.name).join(', ');
    return this.#statement('', `derive ${d.name.name} for ${types}`, d.loc.start.offset, typesEnd, d.when, d.unless, INDENT);
  }

  #resource(d: ResourceDecl): number {
    const open = this.#token(d.name.loc.end.offset, '{');
    const clauses: ActionsSpan[] = d.actionClauses.map((loc) => {
      const names = d.actions.filter((a) => a.loc.start.offset >= loc.start.offset && a.loc.start.offset < loc.end.offset);
      const last = names[names.length - 1];
      return { names, start: loc.start.offset, end: last === undefined ? loc.end.offset : last.loc.end.offset };
    });
    const rules = d.rules.map((r) => this.#ruleSpan(r));
    const all: Array<ActionsSpan | RuleSpan> = [...clauses, ...rules].sort((a, b) => a.start - b.start);
    // Runs of items without a blank line between them share the width of their `rule NAME:` labels.
    const labelWidth = new Map<RuleSpan, number>();
    let run: RuleSpan[] = [];
    const closeRun = (): void => {
      const width = widest(run.map((s) => label(s.rule).length).filter((w) => w <= MAX_ALIGNED_LABEL));
      for (const s of run) labelWidth.set(s, width);
      run = [];
    };
    all.forEach((item, i) => {
      const prev = all[i - 1];
      if (prev !== undefined && this.#blankBetween(prev.end, item.start)) closeRun();
      if ('rule' in item) run.push(item);
    });
    closeRun();
    const items = all.map((item) => ({
      start: item.start,
      emit: (): number => ('rule' in item ? this.#rule(item, labelWidth.get(item) ?? 0) : this.#actions(item)),
    }));
    return this.#block(d, `resource ${d.name.name}`, open, items);
  }

  #actions(a: ActionsSpan): number {
    this.#hoist(a.start, a.end, INDENT);
    this.#line(`${INDENT}actions ${a.names.map((n) => n.name).join(', ')}`);
    return a.end;
  }

  #ruleSpan(r: RuleDecl): RuleSpan {
    const start = r.loc.start.offset;
    const effectAt = r.name === null ? start : this.#skipTrivia(this.#token(r.name.loc.end.offset, ':') + 1);
    const headEnd = r.actions === '*' ? this.#token(effectAt + r.effect.length, '*') + 1 : (r.actions[r.actions.length - 1] as Ident).loc.end.offset;
    const end = r.unless?.loc.end.offset ?? r.when?.loc.end.offset ?? headEnd;
    return { rule: r, start, headEnd, end };
  }

  #rule(s: RuleSpan, labelWidth: number): number {
    const r = s.rule;
    const prefix = r.name === null ? '' : `${label(r).padEnd(labelWidth)} `;
    const actions = r.actions === '*' ? '*' : r.actions.map((a) => a.name).join(', ');
    const cont = ' '.repeat(INDENT.length + prefix.length + 2);
    return this.#statement(INDENT, `${prefix}${r.effect} ${actions}`, s.start, s.headEnd, r.when, r.unless, cont);
  }

  /**
   * Prints a rule or `derive`: the head, then `when` and `unless`. On one
   * line when it fits and no comment sits between its parts; otherwise broken
   * as the module comment says. Returns the offset just past its last token.
   */
  #statement(indent: string, head: string, start: number, headEnd: number, when: Expr | null, unless: Expr | null, cont: string): number {
    const clauses: Clause[] = [];
    for (const [keyword, e] of [['when', when], ['unless', unless]] as const) {
      if (e === null) continue;
      const { op, parts } = operands(e);
      const min = op === 'and' ? 2 : op === 'or' ? 1 : 0;
      clauses.push({ keyword, op, parts: parts.map((p) => ({ text: this.#expr(p, min), start: p.loc.start.offset, end: p.loc.end.offset })) });
    }
    this.#hoist(start, headEnd, indent);
    for (const c of clauses) for (const p of c.parts) this.#hoist(p.start, p.end, indent);

    let prevEnd = headEnd;
    let commented = false;
    for (const c of clauses) {
      for (const p of c.parts) {
        if (this.#between(prevEnd, p.start).length > 0) commented = true;
        prevEnd = p.end;
      }
    }
    const end = prevEnd;
    const oneLine = indent + head + clauses.map((c) => ` ${c.keyword} ${c.parts.map((p) => p.text).join(` ${c.op ?? ''} `)}`).join('');
    if (!commented && oneLine.length <= MAX_LINE_WIDTH) {
      this.#line(oneLine);
      return end;
    }
    let line = indent + head;
    prevEnd = headEnd;
    for (const c of clauses) {
      c.parts.forEach((p, i) => {
        const between = this.#between(prevEnd, p.start);
        const piece = `${i === 0 ? c.keyword : (c.op ?? '')} ${p.text}`;
        if (i === 0 || between.length > 0 || line.length + 1 + piece.length > MAX_LINE_WIDTH) {
          const [first, ...rest] = between;
          if (first !== undefined && !first.ownLine) {
            line += ` ${first.text}`;
            this.emitted++;
          } else if (first !== undefined) {
            rest.unshift(first);
          }
          this.#line(line);
          for (const k of rest) this.#comment(cont, k);
          line = cont + piece;
        } else {
          line += ` ${piece}`;
        }
        prevEnd = p.end;
      });
    }
    this.#line(line);
    return end;
  }

  // ------------------------------------------------------------ expressions

  /** `e` printed, in parentheses when it binds weaker than `min`. */
  #expr(e: Expr, min: number): string {
    const s = this.#bare(e);
    return precedence(e) < min ? `(${s})` : s;
  }

  #bare(e: Expr): string {
    switch (e.kind) {
      case 'or':
        return e.args.map((a) => this.#expr(a, 1)).join(' or ');
      case 'and':
        return e.args.map((a) => this.#expr(a, 2)).join(' and ');
      case 'not':
        return `not ${this.#expr(e.arg, 3)}`;
      case 'cmp':
        return `${this.#expr(e.left, 5)} ${e.op} ${this.#expr(e.right, 5)}`;
      case 'in':
        return `${this.#expr(e.left, 5)} in ${this.#expr(e.right, 5)}`;
      case 'has':
        return `${this.#expr(e.left, 5)} ${e.word} ${this.#expr(e.right, 5)}`;
      case 'call': {
        const args = e.args.map((a) => this.#expr(a, 0)).join(', ');
        return e.target === null ? `${e.name.name}(${args})` : `${this.#expr(e.target, 5)}.${e.name.name}(${args})`;
      }
      case 'path':
        return e.root.name + e.segments.map((s) => (FIELD_NAME.test(s.name) ? `.${s.name}` : `[${quoteString(s.name)}]`)).join('');
      case 'lit':
        if (typeof e.value === 'string') return quoteString(e.value);
        if (typeof e.value === 'number') return printNumber(e.value, this.#text.slice(e.loc.start.offset, e.loc.end.offset));
        return String(e.value);
      case 'list':
        return `[${e.items.map((a) => this.#expr(a, 0)).join(', ')}]`;
    }
  }
}

/** The largest of `widths`, 0 for none (no spread: a block may hold more items than a call has arguments). */
function widest(widths: readonly number[]): number {
  return widths.reduce((a, b) => Math.max(a, b), 0);
}

function label(r: RuleDecl): string {
  return r.name === null ? '' : `rule ${r.name.name}:`;
}

function routeTarget(r: RouteDecl): string {
  const t = r.target;
  if (t.kind === 'public') return 'public';
  return `${t.action.name} ${t.type.name}${t.id === null ? '' : ` {${t.id.name}}`}`;
}

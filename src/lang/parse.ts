/**
 * Parsing: policy text → syntax tree, wrapping the parser that Peggy
 * generates from grammar.peggy. Errors become {@link ParseError}s with a
 * location, what was expected, what was found and a caret frame.
 */
import { ArbiterError, type Diagnostic, type SourceLocation } from '../errors.js';
import type { Expr, PolicyFile } from './ast.js';
import { formatFrame } from './frame.js';
import { parse as peggyParse, SyntaxError as PeggySyntaxError, type Expectation } from './generated/parser.js';

/**
 * Deepest nesting of parentheses, brackets and calls a policy may use. Real
 * policies stay under ten; the bound keeps a hostile file from exhausting the
 * parser's stack.
 */
export const MAX_NESTING_DEPTH = 64;

/** A policy file that is not a program. `diagnostic` says where and why. */
export class ParseError extends ArbiterError {
  readonly diagnostic: Diagnostic;

  constructor(diagnostic: Diagnostic) {
    super(diagnostic.code, diagnostic.message);
    this.diagnostic = diagnostic;
  }
}

/**
 * Parses one policy file.
 *
 * @param text the file's contents
 * @param source the file name shown in errors (a path relative to the policy root)
 * @throws {ParseError} with code `PARSE_SYNTAX` or `PARSE_TOO_DEEP`
 * @example
 * const file = parsePolicy('resource doc { actions read  permit read }', 'doc.policy');
 */
export function parsePolicy(text: string, source: string): PolicyFile {
  checkNesting(text, source);
  let file: PolicyFile;
  try {
    file = peggyParse(text, { grammarSource: source }) as PolicyFile;
  } catch (err) {
    if (err instanceof PeggySyntaxError) throw new ParseError(syntaxDiagnostic(err, text, source));
    if (err instanceof RangeError) {
      // A stack overflow the nesting pre-check did not foresee: still a typed error.
      const loc = pointAt(text, source, 0);
      throw new ParseError({
        code: 'PARSE_TOO_DEEP',
        message: 'policy is nested too deeply to parse',
        location: loc,
      });
    }
    throw err;
  }
  checkDepth(file, text);
  return file;
}

/**
 * Bounds the depth of every condition's syntax tree. `not not not …` and
 * method chains parse iteratively but nest in the tree, and the compiler
 * recurses over the tree: this keeps it within {@link MAX_NESTING_DEPTH}.
 * The walk itself uses an explicit stack.
 */
function checkDepth(file: PolicyFile, text: string): void {
  const roots: Expr[] = [];
  for (const d of file.decls) {
    if (d.kind === 'derive') roots.push(...[d.when, d.unless].filter((e): e is Expr => e !== null));
    else if (d.kind === 'resource') for (const r of d.rules) roots.push(...[r.when, r.unless].filter((e): e is Expr => e !== null));
  }
  const stack: Array<[Expr, number]> = roots.map((e) => [e, 1]);
  while (stack.length > 0) {
    const [e, depth] = stack.pop() as [Expr, number];
    if (depth > MAX_NESTING_DEPTH) {
      throw new ParseError({
        code: 'PARSE_TOO_DEEP',
        message: `expressions are nested more than ${MAX_NESTING_DEPTH} levels deep`,
        location: e.loc,
        help: 'split the condition into derived roles or separate rules',
        frame: formatFrame(text, e.loc),
      });
    }
    const next = depth + 1;
    switch (e.kind) {
      case 'and':
      case 'or':
        for (const a of e.args) stack.push([a, next]);
        break;
      case 'not':
        stack.push([e.arg, next]);
        break;
      case 'cmp':
      case 'in':
      case 'has':
        stack.push([e.left, next], [e.right, next]);
        break;
      case 'call':
        if (e.target !== null) stack.push([e.target, next]);
        for (const a of e.args) stack.push([a, next]);
        break;
      case 'list':
        for (const a of e.items) stack.push([a, next]);
        break;
      case 'path':
      case 'lit':
        break;
    }
  }
}

function syntaxDiagnostic(err: PeggySyntaxError, text: string, source: string): Diagnostic {
  const location: SourceLocation = {
    source,
    start: err.location.start,
    end: err.location.end,
  };
  const expected = describeExpected(err.expected ?? []);
  const found = describeFound(text, location.start.offset);
  // Expectations are null when the grammar raised a custom error (a fix-it).
  const message =
    err.expected === null || err.expected === undefined
      ? err.message
      : `expected ${joinOr(expected)} but found ${found}`;
  return {
    code: 'PARSE_SYNTAX',
    message,
    location,
    expected,
    frame: formatFrame(text, location),
  };
}

function describeExpected(expected: readonly Expectation[]): string[] {
  const out = new Set<string>();
  for (const e of expected) {
    switch (e.type) {
      case 'literal':
        out.add(`'${e.text}'`);
        break;
      case 'other':
        out.add(e.description);
        break;
      case 'end':
        out.add('end of input');
        break;
      case 'class': {
        // Small classes of plain characters (`[,;]`) read better spelled out.
        const plain = !e.inverted && e.parts.length <= 4 && e.parts.every((p) => typeof p === 'string');
        if (plain) for (const p of e.parts) out.add(`'${String(p)}'`);
        else out.add('a character');
        break;
      }
      case 'any':
        out.add('any character');
        break;
    }
  }
  // Words ("a role name") before punctuation ("'}'"), end of input last.
  const rank = (s: string): number => (s === 'end of input' ? 2 : s.startsWith("'") ? 1 : 0);
  return [...out].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

function joinOr(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? 'something else';
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

function describeFound(text: string, offset: number): string {
  if (offset >= text.length) return 'end of input';
  const word = /^[A-Za-z0-9_-]+/.exec(text.slice(offset, offset + 64));
  const token = word !== null ? word[0] : text.charAt(offset);
  if (token === '\n' || token === '\r') return 'end of line';
  return `'${token}'`;
}

function pointAt(text: string, source: string, offset: number): SourceLocation {
  let line = 1;
  let column = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  const pos = { offset, line, column };
  return { source, start: pos, end: { offset: offset + 1, line, column: column + 1 } };
}

/**
 * Rejects nesting deeper than {@link MAX_NESTING_DEPTH} before the recursive
 * parser sees it. Skips strings and comments; unbalanced brackets are left to
 * the parser, which reports them properly.
 */
function checkNesting(text: string, source: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22 || d === 0x0a) break;
      }
    } else if (c === 0x23 /* # */ || (c === 0x2f /* / */ && text.charCodeAt(i + 1) === 0x2f)) {
      while (i < text.length && text.charCodeAt(i) !== 0x0a) i++;
    } else if (c === 0x28 /* ( */ || c === 0x5b /* [ */) {
      depth++;
      if (depth > MAX_NESTING_DEPTH) {
        const location = pointAt(text, source, i);
        throw new ParseError({
          code: 'PARSE_TOO_DEEP',
          message: `expressions are nested more than ${MAX_NESTING_DEPTH} levels deep`,
          location,
          help: 'split the condition into derived roles or separate rules',
          frame: formatFrame(text, location),
        });
      }
    } else if (c === 0x29 /* ) */ || c === 0x5d /* ] */) {
      if (depth > 0) depth--;
    }
  }
}

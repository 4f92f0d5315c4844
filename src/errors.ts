/**
 * Errors shared by every area of Arbiter. This module imports nothing.
 *
 * Every error carries a stable SCREAMING_SNAKE `code` (what tests and callers
 * match on), a lowercase message without a trailing period, and, where the
 * error points into a policy file, a {@link SourceLocation}.
 */

/** A position in a policy file: 1-based line and column, 0-based offset. */
export interface SourcePosition {
  readonly offset: number;
  readonly line: number;
  readonly column: number;
}

/** A span of a policy file. `source` is the file name as shown to users. */
export interface SourceLocation {
  readonly source: string;
  readonly start: SourcePosition;
  readonly end: SourcePosition;
}

/** One problem found in a policy set, printed `file:line:col: message (code)`. */
export interface Diagnostic {
  readonly code: string;
  readonly message: string;
  readonly location: SourceLocation;
  /** What was expected at that point, for syntax errors. */
  readonly expected?: readonly string[];
  /** A fix-it, when one is obvious ("did you mean `resource.owner`?"). */
  readonly help?: string;
  /** A source frame with a caret under the offending column. */
  readonly frame?: string;
}

/**
 * Base of every Arbiter error: a stable `code`, the subclass name as `name`,
 * and an optional `cause`.
 */
export class ArbiterError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * A policy set that does not compile: every diagnostic found, de-duplicated
 * and sorted by file and position. Loading never half-succeeds.
 */
export class CompileError extends ArbiterError {
  readonly diagnostics: readonly Diagnostic[];

  constructor(diagnostics: readonly Diagnostic[]) {
    const sorted = sortDiagnostics(diagnostics);
    const first = sorted[0];
    const summary =
      first === undefined
        ? 'policy set has errors'
        : `${formatLocation(first.location)}: ${first.message}` +
          (sorted.length > 1 ? ` (and ${sorted.length - 1} more)` : '');
    super(first?.code ?? 'COMPILE_FAILED', summary);
    this.diagnostics = sorted;
  }
}

/** A request that is malformed; `field` names the offending field (`resource.type`). */
export class RequestError extends ArbiterError {
  readonly field: string;

  constructor(code: string, field: string, message: string) {
    super(code, message);
    this.field = field;
  }
}

/** `file:line:col` of a location. */
export function formatLocation(loc: SourceLocation): string {
  return `${loc.source}:${loc.start.line}:${loc.start.column}`;
}

/**
 * A diagnostic as printed by the CLI: `file:line:col: message (code)`, then
 * its frame and help line when present.
 */
export function formatDiagnostic(d: Diagnostic): string {
  let out = `${formatLocation(d.location)}: ${d.message} (${d.code})`;
  if (d.frame !== undefined) out += `\n${d.frame}`;
  if (d.help !== undefined) out += `\n  help: ${d.help}`;
  return out;
}

/** Sorts by file, then offset, then code, and drops exact duplicates. */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of diagnostics) {
    const key = `${formatLocation(d.location)}|${d.code}|${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out.sort(
    (a, b) =>
      (a.location.source < b.location.source ? -1 : a.location.source > b.location.source ? 1 : 0) ||
      a.location.start.offset - b.location.start.offset ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}

/**
 * A token that failed verification. `code` is one of the stable `TOKEN_*`
 * reason codes (listed in `jwt/reasons.ts` and the README); the message never
 * contains the token or any secret. jose's error, when there is one, is the
 * `cause`.
 */
export class TokenError extends ArbiterError {}

/**
 * A configuration file or value that is wrong. `key` is the dotted path of the
 * offending key (`jwt.issuers[0].audiences`); the message starts with
 * `file:line:col` when the value came from a file.
 */
export class ConfigError extends ArbiterError {
  readonly key: string;

  constructor(key: string, message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
    this.key = key;
  }
}

/** A caller that may not make this request at all (an untrusted caller sending `subject`). Code `PERMISSION_DENIED`. */
export class PermissionError extends ArbiterError {
  constructor(message: string) {
    super('PERMISSION_DENIED', message);
  }
}

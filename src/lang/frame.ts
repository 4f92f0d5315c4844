/**
 * Source frames for diagnostics: the offending line with a caret under the
 * column, in the style of rustc, Cedar and Peggy.
 */
import type { SourceLocation } from '../errors.js';

/**
 * Renders the line of `text` that `loc` starts on, with a caret run under the
 * span (clipped to that line).
 *
 * @example
 * formatFrame('permit raed', loc) // "  |\n1 | permit raed\n  |        ^^^^"
 */
export function formatFrame(text: string, loc: SourceLocation): string {
  const lines = text.split('\n');
  const lineNo = loc.start.line;
  const raw = lines[lineNo - 1] ?? '';
  const line = raw.replace(/\r$/, '').replace(/\t/g, ' ');
  const gutter = String(lineNo).length;
  const pad = ' '.repeat(gutter);
  const startCol = Math.max(1, loc.start.column);
  const endCol = loc.end.line === lineNo ? Math.max(loc.end.column, startCol + 1) : line.length + 1;
  const width = Math.max(1, Math.min(endCol, line.length + 1) - startCol);
  const shown = line.length > 200 ? `${line.slice(0, 200)}…` : line;
  return `${pad} |\n${lineNo} | ${shown}\n${pad} | ${' '.repeat(startCol - 1)}${'^'.repeat(width)}`;
}

/**
 * Source frames for diagnostics: the offending line with a caret under the
 * column, in the style of rustc, Cedar and Peggy.
 */
import type { SourceLocation } from '../errors.js';

/** Widest part of a long line shown in a frame. */
const WINDOW = 160;

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
  let width = Math.max(1, Math.min(endCol, line.length + 1) - startCol);
  // Long lines: show a window around the column, keeping the caret under it.
  const from = line.length > WINDOW && startCol > WINDOW / 2 ? startCol - 1 - WINDOW / 2 : 0;
  let shown = line.slice(from, from + WINDOW);
  if (from + WINDOW < line.length) shown += '…';
  let caretAt = startCol - 1 - from;
  if (from > 0) {
    shown = `…${shown}`;
    caretAt += 1;
  }
  width = Math.min(width, Math.max(1, WINDOW - (startCol - 1 - from)));
  return `${pad} |\n${lineNo} | ${shown}\n${pad} | ${' '.repeat(caretAt)}${'^'.repeat(width)}`;
}

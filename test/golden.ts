/**
 * Golden files for tests: compares text against a checked-in file.
 *
 * Run with `UPDATE_GOLDEN=1` to (re)write golden files from the current
 * output, then review the diff. Without it, a missing golden file is a test
 * failure, so CI can never create goldens silently.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { expect } from 'vitest';

/** True when the run should rewrite golden files instead of comparing. */
export const UPDATE_GOLDEN = process.env['UPDATE_GOLDEN'] === '1';

/** Golden text as stored: LF line endings, exactly one trailing newline. */
function normalize(text: string): string {
  return `${text.replace(/\r\n/g, '\n').replace(/\n+$/, '')}\n`;
}

/**
 * Asserts that `actual` equals the contents of the golden file at `path`
 * (ignoring line-ending style and trailing newlines). With `UPDATE_GOLDEN=1`
 * the file is written instead.
 */
export function expectGolden(path: string, actual: string): void {
  const want = normalize(actual);
  if (UPDATE_GOLDEN) {
    mkdirSync(dirname(path), { recursive: true });
    if (!existsSync(path) || readFileSync(path, 'utf8') !== want) writeFileSync(path, want);
    return;
  }
  if (!existsSync(path)) {
    throw new Error(`golden file ${path} is missing: run the tests with UPDATE_GOLDEN=1 to create it, then review it`);
  }
  const stored = normalize(readFileSync(path, 'utf8'));
  expect(want, `output differs from golden file ${path} (UPDATE_GOLDEN=1 rewrites it)`).toBe(stored);
}

/**
 * Hostile and malformed policy text: whatever the input, compilePolicySet
 * either compiles it or throws a CompileError whose every diagnostic points
 * into the file (line and column >= 1). Any other exception (a RangeError
 * from a blown stack, a TypeError from a half-built tree) is a bug, and so is
 * an input that takes seconds: policy text can come from a tenant, and a
 * policy load must not become a denial of service.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicySet, type PolicySource } from '../../src/compile/index.js';
import { CompileError } from '../../src/errors.js';

/** What a compile came to: compiled, or a well-formed CompileError. Anything else fails the test. */
type Outcome = 'compiled' | 'rejected';

/**
 * Compiles `sources` and checks the contract: success, or a CompileError
 * whose diagnostics all carry a location inside the text (1-based).
 */
function compileOrReject(sources: readonly PolicySource[]): Outcome {
  try {
    compilePolicySet(sources);
    return 'compiled';
  } catch (e) {
    if (!(e instanceof CompileError)) {
      // Rethrow with the input's size, so that the failure says which input and what escaped.
      const size = sources.map((s) => `${s.path}: ${s.text.length} chars`).join(', ');
      throw new Error(`compilePolicySet threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} instead of a CompileError (${size})`, { cause: e });
    }
    expect(e.diagnostics.length).toBeGreaterThan(0);
    for (const d of e.diagnostics) {
      expect(d.location.start.line, d.message).toBeGreaterThanOrEqual(1);
      expect(d.location.start.column, d.message).toBeGreaterThanOrEqual(1);
    }
    return 'rejected';
  }
}

const one = (text: string): Outcome => compileOrReject([{ path: 'x.policy', text }]);

/** A condition inside the smallest valid program, so that the compiler's later stages see it. */
const inRule = (condition: string): string => `resource d {\n  actions r\n  permit r when ${condition}\n}\n`;
const terms = (n: number, join: string, term: (i: number) => string): string => Array.from({ length: n }, (_, i) => term(i)).join(join);

const POLICY_DIR = join(import.meta.dirname, '..', '..', 'policies');
const SHIPPED: PolicySource[] = readdirSync(POLICY_DIR)
  .filter((f) => f.endsWith('.policy'))
  .sort()
  .map((f) => ({ path: f, text: readFileSync(join(POLICY_DIR, f), 'utf8') }));

describe('random input', () => {
  it.each([
    { name: 'strings (UTF-16 code units)', arb: fc.string({ unit: 'binary', maxLength: 300 }) },
    { name: 'strings (graphemes)', arb: fc.string({ unit: 'grapheme', maxLength: 300 }) },
    { name: 'bytes as latin1', arb: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')) },
    { name: 'bytes as UTF-8 (invalid sequences become U+FFFD)', arb: fc.uint8Array({ maxLength: 300 }).map((b) => new TextDecoder().decode(b)) },
  ])('$name compile or are rejected with located diagnostics', ({ arb }) => {
    fc.assert(fc.property(arb, (text) => void one(text)), { numRuns: 400 });
  });

  // Random bytes rarely get past the first token; sequences of the language's own tokens reach the
  // parser's deeper rules and the compiler's semantic checks.
  const TOKENS = [
    'resource', 'actions', 'rule', 'permit', 'forbid', 'when', 'unless', 'and', 'or', 'not', 'in', 'has', 'contains',
    'true', 'false', 'roles', 'derive', 'for', 'subject', 'resource', 'context', 'action', 'd', 'r', 'admin', 'owner',
    'role', 'startsWith', 'size', 'exists', 'timestamp', 'time', 'timeOfDay', 'dayOfWeek', 'matches', 'inCidr', 'containsAny',
    '{', '}', '(', ')', '[', ']', ',', '.', ':', ';', '>', '<', '==', '!=', '<=', '>=', '=', '&&', '||', '!', '*', '-',
    '"a"', '"10.0.0.0/8"', '"09:00"', '"2026-01-01T00:00:00Z"', '"+02:00"', '"\\u00e9"', '"\\q"', "'a'", '1', '-2.5', '9'.repeat(400) /* out of range: Infinity */,
    '\n', '# c\n', '// c\n', '\t',
  ] as const;
  const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).chain((ts) => fc.constantFrom(ts.join(' '), ts.join('')));

  it('token soup compiles or is rejected, on its own and as a rule condition', () => {
    fc.assert(
      fc.property(soup, (text) => {
        one(text);
        one(inRule(text));
        one(`roles { admin > editor }\nderive owner for d when ${text}\n${inRule('subject.role("owner")')}`);
      }),
      { numRuns: 1500 },
    );
  });

  it('shipped policies with random edits compile or are rejected', () => {
    const edit = fc.record({
      file: fc.nat(SHIPPED.length - 1),
      at: fc.nat(),
      cut: fc.nat(8),
      insert: fc.constantFrom('', ' ', '(', ')', '[', '"', '.', 'x', 'not ', ' and ', '==', '}', '{', '\n', '#', 'owner', 'admin'),
    });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
        const files = SHIPPED.map((s) => ({ ...s }));
        for (const e of edits) {
          const f = files[e.file] as PolicySource;
          const at = e.at % (f.text.length + 1);
          files[e.file] = { path: f.path, text: f.text.slice(0, at) + e.insert + f.text.slice(at + e.cut) };
        }
        compileOrReject(files);
      }),
      { numRuns: 500 },
    );
  });
});

describe('truncated policies', () => {
  it('the shipped policies compile as they are', () => {
    expect(compileOrReject(SHIPPED)).toBe('compiled');
  });

  it.each(SHIPPED.map((s) => s.path))('every prefix of %s compiles or is rejected, alone and beside the other files', (path) => {
    const file = SHIPPED.find((s) => s.path === path) as PolicySource;
    const others = SHIPPED.filter((s) => s !== file);
    for (let n = 0; n <= file.text.length; n++) {
      const prefix = { path: file.path, text: file.text.slice(0, n) };
      one(prefix.text);
      // Beside the complete other files, a prefix that parses reaches the semantic stages.
      compileOrReject([prefix, ...others]);
    }
  });
});

describe('deep and long input', () => {
  // Each case must end in a tree or a CompileError, within the test timeout. Speed is measured
  // in bench/, not asserted here (timed assertions are flaky on shared machines).
  const n = 50_000;
  it.each([
    { name: "10,000 '('", text: '('.repeat(10_000) },
    { name: "10,000 '(' in a condition", text: inRule('('.repeat(10_000)) },
    { name: "100,000 '['", text: '['.repeat(100_000) },
    { name: "100,000 '[' in a condition", text: inRule(`subject.a in ${'['.repeat(100_000)}`) },
    { name: "'not ' x 100,000", text: 'not '.repeat(100_000) },
    { name: "'not ' x 100,000 in a condition", text: inRule(`${'not '.repeat(100_000)}true`) },
    { name: "'not (' x 10,000 in a condition", text: inRule(`${'not ('.repeat(10_000)}true${')'.repeat(10_000)}`) },
    { name: '64 nested parentheses (the limit)', text: inRule(`${'('.repeat(63)}true${')'.repeat(63)}`) },
    { name: '64 nested method calls, unclosed', text: inRule('subject.a.startsWith('.repeat(64)) },
    { name: '64 nested lists, unclosed', text: inRule(`subject.a in ${'[1, '.repeat(64)}`) },
    { name: `'and' chain of ${n} terms`, text: inRule(terms(n, ' and ', (i) => `subject.a == ${i}`)) },
    { name: `'or' chain of ${n} terms`, text: inRule(terms(n, ' or ', (i) => `subject.a == ${i}`)) },
    { name: "method chain '.size()' x 100,000", text: inRule(`subject.a${'.size()'.repeat(100_000)} == 1`) },
    { name: "method chain '.startsWith(\"x\")' x 20,000", text: inRule(`subject.a${'.startsWith("x")'.repeat(20_000)}`) },
    // Linear work for a path is a few tens of milliseconds; copying the segment list at every step takes seconds.
    { name: 'attribute path of 35,000 segments', text: inRule(`subject${'.a'.repeat(35_000)} == 1`) },
    { name: 'attribute path of 1,000 ["a"] segments', text: inRule(`subject${'["a"]'.repeat(1_000)} == 1`) },
    { name: 'role hierarchy chain of 10,000 roles', text: `roles { ${terms(10_000, ' > ', (i) => `r${i}`)} }` },
    {
      name: 'chain of 8,000 derived roles, each needing the next',
      text: `${terms(8_000, '\n', (i) => `derive d${i} for * when subject.role("d${i + 1}")`)}\nderive d8000 for * when true\nresource d { actions r }`,
    },
    { name: '10,000 rules', text: `resource d {\n  actions r\n${terms(10_000, '\n', (i) => `  rule n${i}: permit r when subject.tenant == "t${i % 50}" and subject.a == ${i}`)}\n}` },
    { name: 'a 1 MB string literal', text: inRule(`subject.a == "${'x'.repeat(1_000_000)}"`) },
    { name: 'a 1 MB identifier', text: inRule(`subject.${'x'.repeat(1_000_000)} == 1`) },
    { name: 'a 1 MB unterminated string', text: inRule(`subject.a == "${'x'.repeat(1_000_000)}`) },
    { name: '1,000,000 newlines', text: `${'\n'.repeat(1_000_000)}resource` },
  ])('$name', ({ text }) => {
    one(text);
  });
});

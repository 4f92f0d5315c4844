import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RequestError } from '../../src/errors.js';
import { parseRequest, REQUEST_LIMITS } from '../../src/engine/request.js';

/**
 * An independent oracle for attribute validation: the first offending value
 * in document order (subject, resource.attributes, context; keys in object
 * order), with its field path, or undefined when the request is valid.
 */
function firstProblem(parts: readonly [string, unknown][]): string | undefined {
  let values = 0;
  const walk = (v: unknown, field: string, depth: number): string | undefined => {
    if (++values > REQUEST_LIMITS.maxValues) return field;
    if (v === null || typeof v === 'boolean') return undefined;
    if (typeof v === 'number') return Number.isFinite(v) ? undefined : field;
    if (typeof v === 'string') return v.length > REQUEST_LIMITS.maxStringLength ? field : undefined;
    if (depth > REQUEST_LIMITS.maxDepth) return field;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const p = walk(v[i], `${field}[${i}]`, depth + 1);
        if (p !== undefined) return p;
      }
      return undefined;
    }
    for (const [k, item] of Object.entries(v as object)) {
      const p = walk(item, `${field}.${k}`, depth + 1);
      if (p !== undefined) return p;
    }
    return undefined;
  };
  for (const [field, v] of parts) {
    const p = walk(v, field, 1);
    if (p !== undefined) return p;
  }
  return undefined;
}

const scalar = fc.oneof(
  { weight: 10, arbitrary: fc.oneof(fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 8 })) },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY) },
);

/** Attribute trees, some deeper than the limit (a chain of single-key objects or lists). */
const tree: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('a', 'b', 'c', '__proto__', 'x.y'), tie('value'), { maxKeys: 3 })),
})).value;
const deep = fc.tuple(fc.integer({ min: 14, max: 18 }), fc.boolean(), scalar).map(([n, list, leaf]) => {
  let v: unknown = leaf;
  for (let i = 0; i < n; i++) v = list && i % 2 === 0 ? [v] : { k: v };
  return { d: v };
});
const attrs = fc.oneof(fc.dictionary(fc.constantFrom('p', 'q', 'r'), tree, { maxKeys: 3 }), deep);

describe('parseRequest attribute validation', () => {
  it('refuses exactly what the limits refuse, naming the first offending field', () => {
    fc.assert(
      fc.property(attrs, attrs, attrs, (subject, resourceAttributes, context) => {
        const problem = firstProblem([
          ['subject', subject],
          ['resource.attributes', resourceAttributes],
          ['context', context],
        ]);
        const request = { subject, action: 'read', resource: { type: 'doc', attributes: resourceAttributes }, context };
        if (problem === undefined) {
          expect(parseRequest(request)).toMatchObject({ subject, resource: { attributes: resourceAttributes }, context });
        } else {
          let error: unknown;
          try {
            parseRequest(request);
          } catch (e) {
            error = e;
          }
          expect(error).toBeInstanceOf(RequestError);
          expect((error as RequestError).field).toBe(problem);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('counts values across the whole request: one over the bound is refused at the value that crosses it', () => {
    const half = Object.fromEntries(Array.from({ length: REQUEST_LIMITS.maxValues / 2 - 1 }, (_, i) => [`k${i}`, i]));
    // subject: 1 + 4,999 values; context: 1 + 4,999 = 10,000 in all.
    expect(() => parseRequest({ subject: half, action: 'a', resource: { type: 't' }, context: half })).not.toThrow();
    const over = { ...half, last: true };
    expect(() => parseRequest({ subject: half, action: 'a', resource: { type: 't' }, context: over })).toThrow(expect.objectContaining({ field: 'context.last' }));
  });

  it('a string one character over the bound is refused, at the bound accepted', () => {
    const at = 'x'.repeat(REQUEST_LIMITS.maxStringLength);
    expect(() => parseRequest({ subject: { s: at }, action: 'a', resource: { type: 't' } })).not.toThrow();
    expect(() => parseRequest({ subject: { n: [1, `${at}x`] }, action: 'a', resource: { type: 't' } })).toThrow(expect.objectContaining({ field: 'subject.n[1]' }));
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecisionCache } from '../../src/cache/decision-cache.js';
import { decisionKey } from '../../src/cache/key.js';

/** A JSON value with its object keys shuffled (same value, different insertion order). */
function shuffled(v: unknown, seed: number): unknown {
  if (Array.isArray(v)) return v.map((x, i) => shuffled(x, seed + i));
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v);
    const rotated = entries.length === 0 ? entries : [...entries.slice(seed % entries.length), ...entries.slice(0, seed % entries.length)].reverse();
    return Object.fromEntries(rotated.map(([k, x], i) => [k, shuffled(x, seed + i)]));
  }
  return v;
}

describe('decisionKey', () => {
  it('is the same for equal values whatever their key order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), (v, seed) => {
        expect(decisionKey('r1', [v])).toBe(decisionKey('r1', [shuffled(v, seed)]));
      }),
      { numRuns: 300 },
    );
  });

  it('differs for different values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        fc.pre(JSON.stringify(sortKeys(a)) !== JSON.stringify(sortKeys(b)));
        expect(decisionKey('r1', [a])).not.toBe(decisionKey('r1', [b]));
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    { name: 'string vs number', a: ['1'], b: [1] },
    { name: 'null vs missing', a: [{ x: null }], b: [{}] },
    { name: 'boolean vs string', a: [true], b: ['true'] },
    { name: 'list vs its items', a: [['a', 'b']], b: ['a', 'b'] },
    { name: 'concatenated strings', a: ['ab', 'c'], b: ['a', 'bc'] },
    { name: 'key and value boundary', a: [{ ab: 'c' }], b: [{ a: 'bc' }] },
    { name: 'nested vs flat', a: [{ a: { b: 1 } }], b: [{ 'a.b': 1 }] },
  ])('tells apart $name', ({ a, b }) => {
    expect(decisionKey('r1', a)).not.toBe(decisionKey('r1', b));
  });

  it('includes the revision', () => {
    expect(decisionKey('r1', ['x'])).not.toBe(decisionKey('r2', ['x']));
    expect(decisionKey('r1', ['x']).startsWith('r1=')).toBe(true);
  });

  it('uses a short canonical form as it is, and hashes a long one (the two forms never collide)', () => {
    expect(decisionKey('r1', ['x'])).toBe('r1=s1:x');
    const long = decisionKey('r1', ['x'.repeat(1000)]);
    expect(long).toMatch(/^r1:[A-Za-z0-9_-]{43}$/);
    // The hashed form of one value is never the plain form of another: `:` vs `=` after the revision.
    expect(long.startsWith('r1=')).toBe(false);
  });
});

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return Object.is(v, -0) ? 0 : v;
}

describe('DecisionCache', () => {
  const value = { decision: 'ALLOW' };

  it('returns an entry until its TTL', () => {
    const cache = new DecisionCache<typeof value>({ maxEntries: 10, ttlSeconds: 10 });
    cache.set('k', value, 1_000);
    expect(cache.get('k', 1_000)).toBe(value);
    expect(cache.get('k', 10_999)).toBe(value);
    expect(cache.get('k', 11_000)).toBeUndefined();
  });

  it('never keeps an entry past notAfter (a token exp)', () => {
    const cache = new DecisionCache<typeof value>({ maxEntries: 10, ttlSeconds: 60 });
    cache.set('k', value, 1_000, 2_000);
    expect(cache.get('k', 1_999)).toBe(value);
    expect(cache.get('k', 2_000)).toBeUndefined();
    cache.set('expired', value, 5_000, 4_000);
    expect(cache.get('expired', 3_000)).toBeUndefined();
  });

  it('is bounded by maxEntries (least recently used goes)', () => {
    const cache = new DecisionCache<typeof value>({ maxEntries: 2, ttlSeconds: 60 });
    cache.set('a', value, 0);
    cache.set('b', value, 0);
    cache.get('a', 0);
    cache.set('c', value, 0);
    expect(cache.get('b', 0)).toBeUndefined();
    expect(cache.get('a', 0)).toBe(value);
    expect(cache.size).toBe(2);
  });

  it('is disabled with 0 entries or a 0 TTL', () => {
    for (const opts of [{ maxEntries: 0, ttlSeconds: 10 }, { maxEntries: 10, ttlSeconds: 0 }]) {
      const cache = new DecisionCache<typeof value>(opts);
      cache.set('k', value, 0);
      expect(cache.enabled).toBe(false);
      expect(cache.get('k', 0)).toBeUndefined();
    }
  });
});

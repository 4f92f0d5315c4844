import { describe, expect, it } from 'vitest';
import { compilePolicySet } from '../../src/compile/index.js';
import { Engine } from '../../src/engine/engine.js';
import { TokenVerifier } from '../../src/jwt/verify.js';
import { Metrics } from '../../src/metrics/registry.js';
import { issuerOptions, makeSecret, sign, verifierOptions } from '../jwt/fixtures.js';

const POLICY = `
roles { editor }
resource doc {
  actions read, edit
  rule editors: permit read when subject.role("editor")
}
resource shift {
  actions clock_in
  rule hours: permit clock_in when context.time.timeOfDay() >= time("08:00") and context.time.timeOfDay() < time("18:00")
}
`;

function engineAt(clock: { now: number }, metrics = new Metrics()): Engine {
  const compiled = compilePolicySet([{ path: 'p.policy', text: POLICY }]);
  return new Engine({ ...compiled, directory: 'mem', sources: [] }, { clock: () => clock.now, cache: { maxEntries: 100, ttlSeconds: 60 }, metrics });
}

const editor = { subject: { sub: 'a', roles: ['editor'] } };

describe('Engine.decide and the decision cache', () => {
  it('caches a decision for the same question and serves it marked cached', async () => {
    const clock = { now: Date.parse('2026-11-23T10:00:00Z') };
    const engine = engineAt(clock);
    const q = { principal: editor, action: 'read', resource: { type: 'doc', id: 'd1' } };
    expect(await engine.decide(q)).toMatchObject({ decision: 'ALLOW', cached: false });
    expect(await engine.decide(q)).toMatchObject({ decision: 'ALLOW', cached: true });
    // A different attribute is a different question.
    expect(await engine.decide({ ...q, context: { ip: '10.0.0.1' } })).toMatchObject({ cached: false });
  });

  it('never caches decisions of a type whose rules read the clock, unless the caller gives the time', async () => {
    const clock = { now: Date.parse('2026-11-23T17:59:00Z') };
    const metrics = new Metrics();
    const engine = engineAt(clock, metrics);
    const q = { principal: editor, action: 'clock_in', resource: { type: 'shift' } };
    expect(await engine.decide(q)).toMatchObject({ decision: 'ALLOW', cached: false });
    clock.now = Date.parse('2026-11-23T18:01:00Z');
    // A cached ALLOW here would outlive the window it was decided in.
    expect(await engine.decide(q)).toMatchObject({ decision: 'DENY', cached: false });
    expect(engine.tree.resources.get('shift')?.readsClock).toBe(true);
    expect(engine.tree.resources.get('doc')?.readsClock).toBe(false);
    const withTime = { ...q, context: { time: '2026-11-23T09:00:00Z' } };
    expect(await engine.decide(withTime)).toMatchObject({ decision: 'ALLOW', cached: false });
    expect(await engine.decide(withTime)).toMatchObject({ decision: 'ALLOW', cached: true });
    const bypass = (await metrics.cacheLookups.counter.get()).values.find((v) => v.labels.result === 'bypass');
    expect(bypass?.value).toBe(2);
  });

  it('explain bypasses the cache', async () => {
    const clock = { now: 0 };
    const engine = engineAt(clock);
    const q = { principal: editor, action: 'read', resource: { type: 'doc' } };
    await engine.decide(q);
    const explained = await engine.decide({ ...q, explain: true });
    expect(explained.cached).toBe(false);
    expect(explained.trace?.decidedBy).toBe('permit');
  });

  it('refuses every token when no issuer is configured', async () => {
    const engine = engineAt({ now: 0 });
    expect(await engine.decide({ principal: { token: 'x.y.z' }, action: 'read', resource: { type: 'doc' } })).toMatchObject({ decision: 'DENY', reason: 'TOKEN_UNKNOWN_ISSUER', cached: false });
  });
});

describe('Engine.decideNow (no waiting when the principal needs no I/O)', () => {
  async function tokenEngine(clock: { now: number }): Promise<{ engine: Engine; verifier: TokenVerifier; sign: (claims?: Record<string, unknown>) => Promise<string> }> {
    const secret = await makeSecret();
    const verifier = await TokenVerifier.create(verifierOptions([issuerOptions({ kind: 'secret', secret, origin: 'test' })]), { clock: () => clock.now });
    const compiled = compilePolicySet([{ path: 'p.policy', text: POLICY }]);
    const engine = new Engine({ ...compiled, directory: 'mem', sources: [] }, { clock: () => clock.now, verifier, cache: { maxEntries: 100, ttlSeconds: 60 } });
    return { engine, verifier, sign: (claims = {}) => sign({ secret }, { claims: { roles: ['editor'], ...claims }, now: clock.now }) };
  }

  it('answers trusted subject attributes at once, exactly as decide does', async () => {
    const engine = engineAt({ now: Date.parse('2026-11-23T10:00:00Z') });
    for (const q of [
      { principal: editor, action: 'read', resource: { type: 'doc' } },
      { principal: { subject: { sub: 'b' } }, action: 'read', resource: { type: 'doc' } },
      { principal: editor, action: 'fly', resource: { type: 'doc' } },
      { principal: editor, action: 'read', resource: { type: 'nope' } },
    ]) {
      const now = engine.decideNow(q);
      expect(now).toBeDefined();
      expect({ ...now, cached: undefined }).toEqual({ ...(await engine.decide(q)), cached: undefined });
    }
  });

  it('a token is answered at once only once the subject cache holds it; a bad token never is', async () => {
    const clock = { now: Date.parse('2026-11-23T10:00:00Z') };
    const { engine, verifier, sign: signed } = await tokenEngine(clock);
    try {
      const token = await signed();
      const q = { principal: { token }, action: 'read', resource: { type: 'doc', id: 'd1' } };
      expect(engine.decideNow(q)).toBeUndefined();
      const first = await engine.decide(q);
      expect(first).toMatchObject({ decision: 'ALLOW', cached: false, subject: { sub: 'alice', cached: false } });
      expect(engine.decideNow(q)).toMatchObject({ decision: 'ALLOW', rules: ['doc.editors'], cached: true, subject: { sub: 'alice', cached: true } });
      // Past exp the subject cache holds nothing: back to verification, which refuses it.
      clock.now += 3_600_000;
      expect(engine.decideNow(q)).toBeUndefined();
      expect(await engine.decide(q)).toMatchObject({ decision: 'DENY', reason: 'TOKEN_EXPIRED' });
      for (const bad of ['', 'garbage', `${token.slice(0, -2)}AA`]) expect(engine.decideNow({ ...q, principal: { token: bad } })).toBeUndefined();
    } finally {
      verifier.close();
    }
  });

  it('without a verifier a token is refused at once (fail closed)', () => {
    const engine = engineAt({ now: 0 });
    expect(engine.decideNow({ principal: { token: 'x' }, action: 'read', resource: { type: 'doc' } })).toMatchObject({ decision: 'DENY', reason: 'TOKEN_UNKNOWN_ISSUER' });
  });
});

describe('Engine.decideBatch answers', () => {
  it('identical answers are one object per call (a batch of thousands makes a handful), each counted', async () => {
    const metrics = new Metrics();
    const engine = engineAt({ now: Date.parse('2026-11-23T10:00:00Z') }, metrics);
    const items = Array.from({ length: 50 }, (_, i) => ({ resource: { type: 'doc', id: `d${i}` }, actions: ['read', 'edit'] }));
    const out = await engine.decideBatch({ principal: editor, items });
    const distinct = new Set(out.results.flat());
    expect(distinct.size).toBe(2);
    expect(out.results.every((r) => r[0]?.decision === 'ALLOW' && r[1]?.decision === 'DENY')).toBe(true);
    const text = await metrics.registry.metrics();
    expect(text).toContain('arbiter_decisions_total{api="authorizer",decision="ALLOW",reason="RULE_PERMIT",resource_type="doc"} 50');
    expect(text).toContain('arbiter_decisions_total{api="authorizer",decision="DENY",reason="NO_MATCHING_RULE",resource_type="doc"} 50');
  });
});

describe('Engine.decideBatch without a decision cache (actions of an item evaluated together)', () => {
  it('decides every (item, action) as decide does, unknown types and actions included', async () => {
    const compiled = compilePolicySet([{ path: 'p.policy', text: POLICY }]);
    const engine = new Engine({ ...compiled, directory: 'mem', sources: [] }, { clock: () => Date.parse('2026-11-23T10:00:00Z') });
    const items = [
      { resource: { type: 'doc', id: 'a' }, actions: ['read', 'edit', 'fly', 'read'] },
      { resource: { type: 'nope' }, actions: ['read'] },
      { resource: { type: 'shift' }, actions: ['clock_in'] },
    ];
    for (const principal of [editor, { subject: { sub: 'b' } }]) {
      const out = await engine.decideBatch({ principal, items });
      const want = await Promise.all(items.map((item) => Promise.all(item.actions.map((action) => engine.decide({ principal, action, resource: item.resource })))));
      expect(out.results).toEqual(want);
    }
  });
});

describe('Engine.decideBatch metrics', () => {
  it('counts each decision once under its own resource type, items of several types mixed', async () => {
    const compiled = compilePolicySet([{ path: 'p.policy', text: POLICY }]);
    for (const cache of [undefined, { maxEntries: 100, ttlSeconds: 60 }]) {
      const metrics = new Metrics();
      const engine = new Engine({ ...compiled, directory: 'mem', sources: [] }, { clock: () => Date.parse('2026-11-23T10:00:00Z'), metrics, ...(cache === undefined ? {} : { cache }) });
      const items = [
        { resource: { type: 'doc', id: 'a' }, actions: ['read', 'edit'] },
        { resource: { type: 'nope' }, actions: ['read'] },
        { resource: { type: 'doc', id: 'b' }, actions: ['read'] },
        { resource: { type: 'other' }, actions: ['read', 'edit'] },
      ];
      await engine.decideBatch({ principal: editor, items });
      const text = await metrics.registry.metrics();
      const lines = text.split('\n').filter((l) => l.startsWith('arbiter_decisions_total{'));
      expect(lines.sort()).toEqual(
        [
          'arbiter_decisions_total{api="authorizer",decision="ALLOW",reason="RULE_PERMIT",resource_type="doc"} 2',
          'arbiter_decisions_total{api="authorizer",decision="DENY",reason="NO_MATCHING_RULE",resource_type="doc"} 1',
          'arbiter_decisions_total{api="authorizer",decision="DENY",reason="UNKNOWN_RESOURCE_TYPE",resource_type="(undeclared)"} 3',
        ].sort(),
      );
    }
  });
});

import { describe, expect, it } from 'vitest';
import { compilePolicySet } from '../../src/compile/index.js';
import { Engine } from '../../src/engine/engine.js';
import { Metrics } from '../../src/metrics/registry.js';

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
    const bypass = (await metrics.cacheLookups.get()).values.find((v) => v.labels.result === 'bypass');
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

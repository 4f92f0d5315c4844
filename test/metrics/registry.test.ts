import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram, InFlightGauge, Metrics } from '../../src/metrics/registry.js';

/** The value of one series in the registry's text exposition, or undefined. */
function series(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(name));
}

describe('HotCounter', () => {
  it('counts per label set and reaches the registry when it is read, once', async () => {
    const registry = new Registry();
    const c = new HotCounter({ name: 't_total', help: 'h', labelNames: ['a', 'b'] as const, registers: [registry] });
    const cell = c.cell({ a: 'x', b: 'y' });
    cell.n += 3;
    c.inc({ a: 'x', b: 'y' });
    c.inc({ a: 'x', b: 'z' }, 5);
    expect(series(await registry.metrics(), 't_total')).toEqual(['t_total{a="x",b="y"} 4', 't_total{a="x",b="z"} 5']);
    // A second read adds nothing new; later counts add to what was read.
    expect(series(await registry.metrics(), 't_total')).toEqual(['t_total{a="x",b="y"} 4', 't_total{a="x",b="z"} 5']);
    cell.n += 1;
    expect(series(await registry.metrics(), 't_total')).toEqual(['t_total{a="x",b="y"} 5', 't_total{a="x",b="z"} 5']);
    expect((await c.counter.get()).values.map((v) => v.value)).toEqual([5, 5]);
  });

  it('one cell per label set, whatever the key order; label values are copied, not kept', () => {
    const registry = new Registry();
    const c = new HotCounter({ name: 't_total', help: 'h', labelNames: ['a', 'b'] as const, registers: [registry] });
    const labels = { a: 'x', b: 'y' };
    const cell = c.cell(labels);
    expect(c.cell({ b: 'y', a: 'x' })).toBe(cell);
    labels.a = 'changed';
    expect(c.cell({ a: 'x', b: 'y' })).toBe(cell);
    // Values cannot run into each other: ('x:y', '') and ('x', 'y:') are two label sets.
    expect(c.cell({ a: 'x:1', b: '' })).not.toBe(c.cell({ a: 'x', b: '1:' }));
  });

  it('the Metrics counters on the hot path are hot counters, read through the registry (cluster aggregation reads the same way)', async () => {
    const m = new Metrics();
    m.decisions.inc({ api: 'authorizer', decision: 'ALLOW', reason: 'RULE_PERMIT', resource_type: 'doc' }, 2);
    m.grpcCalls.inc({ method: 'Check', code: 'OK' });
    const json = await m.registry.getMetricsAsJSON();
    const decisions = json.find((j) => j.name === 'arbiter_decisions_total');
    expect(decisions?.values).toEqual([{ value: 2, labels: { api: 'authorizer', decision: 'ALLOW', reason: 'RULE_PERMIT', resource_type: 'doc' } }]);
  });
});

describe('InFlightGauge', () => {
  it('reports the calls in flight when read', async () => {
    const registry = new Registry();
    const g = new InFlightGauge('t_in_flight', 'h', [registry]);
    g.inc();
    g.inc();
    g.dec();
    expect(series(await registry.metrics(), 't_in_flight')).toEqual(['t_in_flight 1']);
    g.dec();
    expect(series(await registry.metrics(), 't_in_flight')).toEqual(['t_in_flight 0']);
  });
});

describe('HotHistogram', () => {
  const BUCKETS = [0.000_005, 0.000_01, 0.001, 0.1, 1] as const;
  const LABEL_NAMES = ['api', 'cached'] as const;
  type Labels = { api?: string; cached?: string };
  /** Observations: label sets from a small pool (one with a label left out), values on, between and past the bounds. */
  const observations = fc.array(
    fc.record({
      labels: fc.constantFrom<Labels>({ api: 'authorizer', cached: 'true' }, { api: 'authorizer', cached: 'false' }, { api: 'ext_authz', cached: 'false' }, { api: 'ext_authz' }),
      value: fc.oneof(fc.constantFrom(0, ...BUCKETS, 2.5), fc.double({ min: 0, max: 3, noNaN: true })),
    }),
    { maxLength: 60 },
  );
  const pair = (): { plain: Registry; hot: Registry; h: HotHistogram<'api' | 'cached'>; p: Histogram<'api' | 'cached'> } => {
    const plain = new Registry();
    const hot = new Registry();
    const config = { name: 't_seconds', help: 'h', labelNames: LABEL_NAMES, buckets: BUCKETS };
    return { plain, hot, p: new Histogram({ ...config, labelNames: [...LABEL_NAMES], buckets: [...BUCKETS], registers: [plain] }), h: new HotHistogram({ ...config, registers: [hot] }) };
  };

  it('exports what prom-client\'s own Histogram exports for the same observations: text, JSON, cluster aggregation, reset', async () => {
    await fc.assert(
      fc.asyncProperty(observations, observations, async (first, second) => {
        const { plain, hot, p, h } = pair();
        const observe = (list: typeof first): void => {
          for (const o of list) {
            p.observe(o.labels, o.value);
            h.cell(o.labels).observe(o.value);
          }
        };
        observe(first);
        expect(await hot.metrics()).toBe(await plain.metrics());
        expect(await hot.getMetricsAsJSON()).toEqual(await plain.getMetricsAsJSON());
        // What the cluster primary does with the workers' JSON.
        const fromPlain = AggregatorRegistry.aggregate([await plain.getMetricsAsJSON(), await plain.getMetricsAsJSON()]);
        const fromHot = AggregatorRegistry.aggregate([await hot.getMetricsAsJSON(), await hot.getMetricsAsJSON()]);
        expect(await fromHot.metrics()).toBe(await fromPlain.metrics());
        // Cells held across a reset keep counting from zero, as prom-client's series start again.
        hot.resetMetrics();
        plain.resetMetrics();
        observe(second);
        // The same series; prom-client lists them in the order first seen since the reset, the cells in the order first seen.
        const sorted = (text: string): string[] => text.split('\n').sort();
        expect(sorted(await hot.metrics())).toEqual(sorted(await plain.metrics()));
      }),
      { numRuns: 150 },
    );
  });

  it('a value that is not a number is refused, as prom-client refuses it, and counts nothing', async () => {
    const { hot, plain, p, h } = pair();
    const cell = h.cell({ api: 'authorizer', cached: 'true' });
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => cell.observe(bad)).toThrow(TypeError);
      expect(() => p.observe({ api: 'authorizer', cached: 'true' }, bad)).toThrow(TypeError);
    }
    expect(await hot.metrics()).toBe(await plain.metrics());
  });

  it('one cell per label set, whatever the key order; observations through prom-client\'s own API are exported too', async () => {
    const { hot, h } = pair();
    const labels = { api: 'authorizer', cached: 'true' };
    const cell = h.cell(labels);
    expect(h.cell({ cached: 'true', api: 'authorizer' })).toBe(cell);
    labels.api = 'changed';
    expect(h.cell({ api: 'authorizer', cached: 'true' })).toBe(cell);
    cell.observe(0.5);
    h.observe({ api: 'ext_authz', cached: 'false' }, 0.5);
    const counts = (await hot.getMetricsAsJSON())[0]?.values.filter((v) => 'metricName' in v && v.metricName === 't_seconds_count');
    expect(counts?.map((v) => [v.labels, v.value])).toEqual([
      [{ api: 'ext_authz', cached: 'false' }, 1],
      [{ api: 'authorizer', cached: 'true' }, 1],
    ]);
  });

  it('the decision duration in Metrics is a hot histogram', async () => {
    const m = new Metrics();
    m.decisionDuration.cell({ api: 'authorizer', cached: 'false' }).observe(0.000_02);
    expect(series(await m.registry.metrics(), 'arbiter_decision_duration_seconds_count')).toEqual(['arbiter_decision_duration_seconds_count{api="authorizer",cached="false"} 1']);
  });
});

import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { HotCounter, InFlightGauge, Metrics } from '../../src/metrics/registry.js';

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

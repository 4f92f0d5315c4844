import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDecisionLog, type DecisionRecord } from '../../src/audit/decision-log.js';

function record(decision: 'ALLOW' | 'DENY', i: number): DecisionRecord {
  return {
    time: '2026-11-23T10:00:00.000Z',
    request_id: `r${i}`,
    method: 'Check',
    sub: 'alice',
    issuer: 'dev',
    action: 'read',
    resource_type: 'document',
    resource_id: `d${i}`,
    decision,
    reason: decision === 'ALLOW' ? 'RULE_PERMIT' : 'NO_MATCHING_RULE',
    rules: decision === 'ALLOW' ? ['document.dept_editors'] : [],
    revision: 'abc',
    latency_ms: 0.1,
    cached: false,
  };
}

async function written(rate: number, random: () => number, decisions: ('ALLOW' | 'DENY')[]): Promise<DecisionRecord[]> {
  const path = join(mkdtempSync(join(tmpdir(), 'arbiter-dlog-')), 'decisions.jsonl');
  const log = openDecisionLog(path, rate, random);
  decisions.forEach((d, i) => log.write(record(d, i)));
  await log.close();
  return readFileSync(path, 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as DecisionRecord);
}

describe('the decision log', () => {
  it('writes one JSON line per decision to a file, appending', async () => {
    const lines = await written(1, Math.random, ['ALLOW', 'DENY', 'ALLOW']);
    expect(lines.map((l) => l.request_id)).toEqual(['r0', 'r1', 'r2']);
    expect(lines[0]).toEqual(record('ALLOW', 0));
  });

  it('logs every DENY and samples ALLOWs at the configured rate', async () => {
    // A deterministic "random": 0, 0.1, 0.2, ... 0.9, 0, ...
    let n = 0;
    const random = (): number => (n++ % 10) / 10;
    const decisions = Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 'ALLOW' : 'DENY') as 'ALLOW' | 'DENY');
    const lines = await written(0.3, random, decisions);
    expect(lines.filter((l) => l.decision === 'DENY')).toHaveLength(50);
    // random() is drawn for ALLOWs only; values below 0.3 (three in ten) are kept.
    expect(lines.filter((l) => l.decision === 'ALLOW')).toHaveLength(15);
  });

  it('rate 0 keeps denies only; off writes nothing', async () => {
    const lines = await written(0, Math.random, ['ALLOW', 'DENY']);
    expect(lines.map((l) => l.decision)).toEqual(['DENY']);
    const off = openDecisionLog('off', 1);
    off.write(record('DENY', 0));
    await off.close();
  });
});

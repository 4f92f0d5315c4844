/**
 * The cross-engine benchmark: `npm run bench:engines` (or
 * `node dist/bench/engines/run.js [N ...]`).
 *
 * Runs one worker process per (engine, N), one after another so they never
 * compete for the two cores, then compares every engine's decisions with
 * Arbiter's request by request and prints the tables: per (engine, N)
 * setup time, µs per decision, decisions per second and peak RSS; µs per
 * decision, slowdown versus N = 0 and Arbiter's speed-up as matrices; and
 * Arbiter's targets.
 *
 * Exits 1 when any decision differs from Arbiter's, when a probe fails (the
 * tenant rules are not live in some engine) or when a worker fails.
 * Missed performance targets are reported, not failed: timings on a shared
 * machine are too noisy to gate on.
 *
 * Environment: BENCH_QUICK=1 (shorter passes, about half the time);
 * BENCH_ENGINES=arbiter,cedar,… (a subset; Arbiter always runs, it is the
 * reference).
 */
import { fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { ENGINE_NAMES, isEngineName, isWorkerResult, type EngineName, type WorkerResult } from './protocol.js';
import { RULE_COUNTS, STREAM_SIZE, workload, type Entry } from './scenario.js';
import { printReport, runMain } from '../report.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));
/** A worker that takes longer than this is stuck. */
const WORKER_TIMEOUT_MS = 300_000;
/** Mismatching requests printed per engine and N. */
const MISMATCH_EXAMPLES = 5;

const TARGET_US = 0.5;
const TARGET_VS_CASBIN_N0 = 40;
const TARGET_VS_CEDAR_N0 = 250;
const TARGET_VS_BOTH_N10K = 10_000;
const TARGET_VS_JS_MAP = 10;
const TARGET_COMPILE_MS = 1000;
const TARGET_RSS_MIB = 150;

const LABELS: Record<EngineName, string> = {
  arbiter: 'Arbiter',
  'js-map': 'JS by hand, Map buckets',
  'js-scan': 'JS by hand, scan',
  cedar: 'Cedar-wasm (stateful)',
  'cedar-stateless': 'Cedar-wasm (stateless)',
  casbin: 'Casbin',
};

/** What became of one worker. */
interface Outcome {
  readonly engine: EngineName;
  readonly n: number;
  readonly result: WorkerResult | undefined;
  readonly error: string | undefined;
}

function runWorker(engine: EngineName, n: number): Promise<Outcome> {
  // --expose-gc: collect between passes and measure memory after setup.
  // Cedar-wasm 4.x on Node 20 crashes V8 at the first major GC in a hot loop
  // unless JS-to-wasm call inlining is off.
  const execArgv = ['--expose-gc', ...(engine.startsWith('cedar') ? ['--no-turbo-inline-js-wasm-calls'] : [])];
  return new Promise((resolve) => {
    const child = fork(WORKER, [engine, String(n)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: WorkerResult | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), WORKER_TIMEOUT_MS);
    child.on('message', (m: unknown) => {
      if (isWorkerResult(m)) result = m;
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ engine, n, result, error: `could not run ${WORKER}: ${e.message}` });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      let error: string | undefined;
      const what = `${engine} at N=${n}`;
      if (signal !== null) error = `${what}: worker killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${WORKER_TIMEOUT_MS} ms?)` : ''}`;
      else if (code !== 0) error = `${what}: worker exited with code ${String(code)}`;
      else if (result === undefined) error = `${what}: worker reported nothing`;
      resolve({ engine, n, result, error });
    });
  });
}

function parseCounts(argv: readonly string[]): number[] {
  if (argv.length === 0) return [...RULE_COUNTS];
  return argv.map((a) => {
    const n = Number(a);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a rule count: ${a}`);
    return n;
  });
}

function parseEngines(env: string | undefined): EngineName[] {
  if (env === undefined || env.trim() === '') return [...ENGINE_NAMES];
  const wanted = env.split(',').map((s) => s.trim());
  for (const w of wanted) if (!isEngineName(w)) throw new Error(`unknown engine ${w} (engines: ${ENGINE_NAMES.join(', ')})`);
  // Arbiter is the reference every other engine is compared with.
  return ENGINE_NAMES.filter((e) => e === 'arbiter' || wanted.includes(e));
}

const int = (x: number): string => Math.round(x).toLocaleString('en-US');
const fixed = (x: number, digits: number): string => x.toFixed(digits);
/** Microseconds with three significant figures or more. */
const us = (x: number): string => (x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : int(x));
const times = (x: number): string => `${x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : int(x)}×`;
const met = (ok: boolean): string => (ok ? 'met' : 'MISSED');

function bit(bits: Buffer, i: number): boolean {
  return (((bits[i >> 3] ?? 0) >> (i & 7)) & 1) === 1;
}

function describeEntry(i: number, e: Entry): string {
  const s = e.subject;
  const d = e.doc.doc;
  return (
    `#${i}: ${s.sub} (roles [${s.roles.join(', ')}], ${s.department}${s.suspended ? ', suspended' : ''}) ${e.action} ` +
    `${e.doc.id} (owner ${d.owner}, ${d.department}, ${d.classification})`
  );
}

/** Compares one engine's decisions with Arbiter's on the requests both decided. */
function compare(ref: WorkerResult, other: WorkerResult, stream: readonly Entry[]): { compared: number; mismatches: number; examples: string[] } {
  const a = Buffer.from(ref.bits, 'base64');
  const b = Buffer.from(other.bits, 'base64');
  const compared = Math.min(ref.requests, other.requests);
  let mismatches = 0;
  const examples: string[] = [];
  for (let i = 0; i < compared; i++) {
    const x = bit(a, i);
    const y = bit(b, i);
    if (x === y) continue;
    mismatches++;
    if (examples.length < MISMATCH_EXAMPLES) {
      const entry = stream[i];
      examples.push(`${entry === undefined ? `#${i}` : describeEntry(i, entry)}: Arbiter ${x ? 'ALLOW' : 'DENY'}, ${LABELS[other.engine]} ${y ? 'ALLOW' : 'DENY'}`);
    }
  }
  return { compared, mismatches, examples };
}

async function main(): Promise<void> {
  const counts = parseCounts(process.argv.slice(2));
  const engines = parseEngines(process.env['BENCH_ENGINES']);
  const started = performance.now();
  const outcomes: Outcome[] = [];
  for (const n of counts) {
    for (const engine of engines) {
      process.stderr.write(`bench:engines: ${engine} at N=${n} …\n`);
      outcomes.push(await runWorker(engine, n));
    }
  }
  const problems: string[] = [];
  for (const o of outcomes) {
    if (o.error !== undefined) problems.push(o.error);
    for (const f of o.result?.failures ?? []) problems.push(`${o.engine} at N=${o.n}: ${f}`);
  }
  const results = outcomes.flatMap((o) => (o.result === undefined ? [] : [o.result]));
  const get = (engine: EngineName, n: number): WorkerResult | undefined => results.find((r) => r.engine === engine && r.rules === n);
  const { stream } = workload(STREAM_SIZE);

  // ---- correctness: every engine against Arbiter, request by request.
  const agreement = new Map<WorkerResult, string>();
  const correctness: string[] = [];
  for (const n of counts) {
    const ref = get('arbiter', n);
    if (ref === undefined) {
      problems.push(`no Arbiter result at N=${n}: nothing to compare with`);
      continue;
    }
    agreement.set(ref, 'reference');
    for (const engine of engines) {
      const other = get(engine, n);
      if (other === undefined || engine === 'arbiter') continue;
      const c = compare(ref, other, stream);
      agreement.set(other, c.mismatches === 0 ? `${int(c.compared)}/${int(c.compared)}` : `${int(c.mismatches)} DIFFER`);
      if (c.mismatches > 0) {
        problems.push(`${LABELS[engine]} at N=${n}: ${c.mismatches} of ${c.compared} decisions differ from Arbiter's`);
        correctness.push(`${LABELS[engine]} at N=${n} disagrees with Arbiter on ${int(c.mismatches)} of ${int(c.compared)} requests, first:`);
        for (const x of c.examples) correctness.push(`  - ${x}`);
      }
    }
  }
  // The tenant rules never match the main stream: Arbiter's decisions must not move with N.
  const arbiterRuns = counts.flatMap((n) => {
    const r = get('arbiter', n);
    return r === undefined ? [] : [r];
  });
  const firstArbiter = arbiterRuns[0];
  if (firstArbiter !== undefined && arbiterRuns.some((r) => r.bits !== firstArbiter.bits)) {
    problems.push('Arbiter decides the main stream differently at different N');
  }

  // ---- tables.
  const out: string[] = [];
  const nHeader = counts.map((n) => `N=${int(n)}`).join(' | ');
  const nAlign = counts.map(() => '---:').join('|');
  out.push('### Per engine and N');
  out.push('');
  out.push('| engine | N | setup ms | requests decided | µs/decision (median) | decisions/s | peak RSS MiB | RSS after setup MiB | probes | agrees with Arbiter |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|');
  for (const engine of engines) {
    for (const n of counts) {
      const r = get(engine, n);
      if (r === undefined) {
        out.push(`| ${LABELS[engine]} | ${int(n)} | failed | | | | | | | |`);
        continue;
      }
      const probesOk = r.probes.filter((p) => p.ok).length;
      const passes = r.repsPerPass > 1 ? `${int(r.requests)} ×${r.repsPerPass}` : int(r.requests);
      out.push(
        `| ${LABELS[engine]} | ${int(n)} | ${fixed(r.setupMs, 1)} | ${passes} | ${us(r.usMedian)} | ${int(r.decisionsPerSecond)} | ${fixed(r.peakRssMiB, 1)} | ` +
          `${r.rssAfterSetupMiB === null ? 'n/a' : fixed(r.rssAfterSetupMiB, 1)} | ${probesOk}/${r.probes.length} ok | ${agreement.get(r) ?? 'n/a'} |`,
      );
    }
  }
  out.push('');
  out.push(
    `"requests decided": a prefix of the same seeded stream of ${int(STREAM_SIZE)} requests (slow engines decide a shorter prefix, ` +
      'sized to about one pass budget); "×k": a timed pass goes over it k times. Each timed figure is the median of the timed passes. ' +
      '"agrees with Arbiter": requests whose decision was compared with Arbiter\'s, request by request.',
  );

  const matrix = (title: string, cell: (engine: EngineName, n: number) => string, rows: readonly EngineName[] = engines): void => {
    out.push('');
    out.push(`### ${title}`);
    out.push('');
    out.push(`| engine | ${nHeader} |`);
    out.push(`|---|${nAlign}|`);
    for (const engine of rows) out.push(`| ${LABELS[engine]} | ${counts.map((n) => cell(engine, n)).join(' | ')} |`);
  };
  matrix('µs per decision (median)', (e, n) => {
    const r = get(e, n);
    return r === undefined ? 'n/a' : us(r.usMedian);
  });
  matrix('Scaling: slowdown versus N = 0', (e, n) => {
    const r = get(e, n);
    const base = get(e, 0);
    return r === undefined || base === undefined ? 'n/a' : times(r.usMedian / base.usMedian);
  });
  matrix('Setup (compile, preparse, load) ms', (e, n) => {
    const r = get(e, n);
    return r === undefined ? 'n/a' : fixed(r.setupMs, 1);
  });
  matrix('Peak RSS MiB', (e, n) => {
    const r = get(e, n);
    return r === undefined ? 'n/a' : fixed(r.peakRssMiB, 1);
  });
  matrix(
    'Arbiter speed-up: the engine\'s µs per decision ÷ Arbiter\'s (below 1× the engine is faster)',
    (e, n) => {
      const r = get(e, n);
      const a = get('arbiter', n);
      return r === undefined || a === undefined ? 'n/a' : times(r.usMedian / a.usMedian);
    },
    engines.filter((e) => e !== 'arbiter'),
  );

  // ---- targets.
  out.push('');
  out.push('### Arbiter targets (measured, not gated)');
  out.push('');
  const ratio = (engine: EngineName, n: number): number | undefined => {
    const r = get(engine, n);
    const a = get('arbiter', n);
    return r === undefined || a === undefined ? undefined : r.usMedian / a.usMedian;
  };
  const worstUs = Math.max(...arbiterRuns.map((r) => r.usMedian));
  out.push(`- ≤ ${TARGET_US} µs per decision at every N: worst ${us(worstUs)} µs — ${met(worstUs <= TARGET_US)}`);
  const targetRatio = (label: string, engine: EngineName, n: number, target: number): void => {
    const x = ratio(engine, n);
    if (x === undefined) out.push(`- > ${int(target)}× faster than ${label} at N=${int(n)}: not measured`);
    else out.push(`- > ${int(target)}× faster than ${label} at N=${int(n)}: ${times(x)} — ${met(x > target)}`);
  };
  targetRatio('Casbin', 'casbin', 0, TARGET_VS_CASBIN_N0);
  targetRatio('Cedar-wasm (stateful)', 'cedar', 0, TARGET_VS_CEDAR_N0);
  targetRatio('Casbin', 'casbin', 10000, TARGET_VS_BOTH_N10K);
  targetRatio('Cedar-wasm (stateful)', 'cedar', 10000, TARGET_VS_BOTH_N10K);
  const vsJs = counts.flatMap((n) => {
    const x = ratio('js-map', n);
    return x === undefined ? [] : [1 / x];
  });
  if (vsJs.length > 0) {
    const worst = Math.max(...vsJs);
    out.push(`- within ${TARGET_VS_JS_MAP}× of the hand-written Map-bucketed JavaScript at every N: worst ${times(worst)} — ${met(worst <= TARGET_VS_JS_MAP)}`);
  }
  const big = get('arbiter', 10000);
  if (big !== undefined) {
    out.push(`- compile of the 10,000-rule set < ${int(TARGET_COMPILE_MS)} ms: ${fixed(big.setupMs, 1)} ms — ${met(big.setupMs < TARGET_COMPILE_MS)}`);
    out.push(
      `- peak RSS with it loaded < ${TARGET_RSS_MIB} MiB: ${fixed(big.peakRssMiB, 1)} MiB — ${met(big.peakRssMiB < TARGET_RSS_MIB)} ` +
        `(peak when compile returned ${fixed(big.peakRssAfterSetupMiB, 1)} MiB; RSS after compile and a full GC ` +
        `${big.rssAfterSetupMiB === null ? 'n/a' : fixed(big.rssAfterSetupMiB, 1)} MiB, before compile ${fixed(big.rssBeforeSetupMiB, 1)} MiB; ` +
        `JS heap retained by the compiled set ${big.heapAfterSetupMiB === null || big.heapBeforeSetupMiB === null ? 'n/a' : fixed(big.heapAfterSetupMiB - big.heapBeforeSetupMiB, 1)} MiB)`,
    );
  }

  // ---- correctness.
  out.push('');
  out.push('### Correctness');
  out.push('');
  const compared = results.filter((r) => r.engine !== 'arbiter');
  const disagreeing = compared.filter((r) => !(agreement.get(r) ?? '').includes('/'));
  out.push(
    compared.length === 0
      ? 'No other engine ran (BENCH_ENGINES), so no decision was compared.'
      : disagreeing.length === 0
      ? `All engines agree with Arbiter on every request compared (${int(compared.reduce((s, r) => s + r.requests, 0))} decisions over ${compared.length} runs); ` +
          `Arbiter decides the main stream identically at every N (ALLOW ${int(firstArbiter?.allowCount ?? 0)} of ${int(firstArbiter?.requests ?? 0)}).`
      : 'Engines DISAGREE:',
  );
  out.push(...correctness);
  const probeFailures = results.filter((r) => r.probes.some((p) => !p.ok));
  out.push(
    probeFailures.length === 0
      ? `Probes: all ${results.reduce((s, r) => s + r.probes.length, 0)} pass — with N > 0 the tenant editor is allowed by its tenant permit and the tenant admin denied by its isolation forbid in every engine (each engine that names deciding rules names the tenant rule).`
      : `Probes FAILED in: ${probeFailures.map((r) => `${r.engine} N=${r.rules}`).join(', ')}`,
  );

  const versions = [...new Set(results.map((r) => r.version))].join('; ');
  const cpus = os.cpus();
  out.push('');
  out.push(
    `Machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${os.platform()} ${os.release()}, Node ${process.version}; ${versions}; ` +
      `${new Date().toISOString()}; ${process.env['BENCH_QUICK'] === '1' ? 'BENCH_QUICK=1; ' : ''}total ${fixed((performance.now() - started) / 1000, 1)} s.`,
  );
  printReport(out, problems);
}

runMain('bench:engines', main);

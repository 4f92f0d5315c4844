/**
 * The in-process benchmark: `npm run bench` (or `node dist/bench/run.js [N ...]`).
 *
 * Runs one child process (decide.ts) per rule count N, one after another so
 * they never compete for cores, and prints a markdown table of compile time,
 * median decision time, throughput and peak RSS, followed by the checks:
 * identical main-stream decisions for every N, the fixed-request ratio
 * N=10000 vs N=10, and compile time at N=10000.
 *
 * Exits non-zero when a child fails (a probe, the reference check, or
 * index/scan disagreement) or when the main stream's decisions differ
 * between N. Missed performance targets are reported, not failed: timings on
 * a shared machine are too noisy to gate on.
 */
import { fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { isChildResult, type ChildResult } from './protocol.js';
import { RULE_COUNTS } from './scenario.js';
import { printReport, runMain } from './report.js';

/** Located next to this file, so the benchmark runs from any build directory. */
const DECIDE = fileURLToPath(new URL('./decide.js', import.meta.url));
/** A child that takes longer than this is stuck; the whole run should take under two minutes. */
const CHILD_TIMEOUT_MS = 180_000;
const COMPILE_TARGET_MS = 1000;
const RATIO_TARGET = 2;

/** What became of one child. */
type Outcome = { readonly n: number; readonly result: ChildResult | undefined; readonly error: string | undefined };

function runChild(n: number): Promise<Outcome> {
  return new Promise((resolve) => {
    // --expose-gc lets the child collect between timed passes, so a pass does not pay for its predecessor's garbage.
    const child = fork(DECIDE, [String(n)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: ChildResult | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('message', (m: unknown) => {
      if (isChildResult(m)) result = m;
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ n, result, error: `could not run ${DECIDE}: ${e.message}` });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      let error: string | undefined;
      if (signal !== null) error = `child for N=${n} killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${CHILD_TIMEOUT_MS} ms?)` : ''}`;
      else if (code !== 0) error = `child for N=${n} exited with code ${String(code)}`;
      else if (result === undefined) error = `child for N=${n} reported nothing`;
      resolve({ n, result, error });
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

const int = (x: number): string => Math.round(x).toLocaleString('en-US');
const fixed = (x: number, digits: number): string => x.toFixed(digits);

async function main(): Promise<void> {
  const counts = parseCounts(process.argv.slice(2));
  const started = performance.now();
  const outcomes: Outcome[] = [];
  for (const n of counts) {
    process.stderr.write(`bench: N=${n} …\n`);
    outcomes.push(await runChild(n));
  }
  const results = outcomes.flatMap((o) => (o.result === undefined ? [] : [o.result]));
  const problems: string[] = [];
  for (const o of outcomes) {
    if (o.error !== undefined) problems.push(o.error);
    for (const f of o.result?.failures ?? []) problems.push(`N=${o.n}: ${f}`);
  }

  const baseline = results.find((r) => r.rules === 0);
  const cpus = os.cpus();
  const out: string[] = [];
  out.push('| rules (N) | compile ms | µs/decision (median) | decisions/s | vs N=0 | peak RSS MiB |');
  out.push('|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const vs = baseline === undefined ? 'n/a' : `${fixed(r.usMedian / baseline.usMedian, 2)}×`;
    out.push(`| ${int(r.rules)} | ${fixed(r.compileMs, 1)} | ${fixed(r.usMedian, 3)} | ${int(r.decisionsPerSecond)} | ${vs} | ${fixed(r.peakRssMiB, 1)} |`);
  }
  out.push('');
  const first = results[0];
  if (first !== undefined) {
    out.push(
      `Main stream: ${int(first.requests)} seeded requests per pass, ${first.usPerPass.length} timed passes per N (median shown), ` +
        'uncached in-process `evaluate()`, each N in its own process.',
    );
  }

  // The extra rules never match the main stream, so its decisions must not move.
  const digests = new Set(results.map((r) => r.digest));
  if (first !== undefined) {
    const same = digests.size === 1;
    out.push(
      `Main-stream decisions: ALLOW ${int(first.counts.ALLOW)} / DENY ${int(first.counts.DENY)} — ` +
        (same ? `identical for every N (digest ${first.digest.slice(0, 12)})` : 'DIFFER between N:'),
    );
    if (!same) {
      for (const r of results) out.push(`  - N=${r.rules}: ALLOW ${r.counts.ALLOW} / DENY ${r.counts.DENY}, digest ${r.digest.slice(0, 12)}`);
      problems.push('main-stream decisions differ between rule counts');
    }
    const byRule = Object.entries(first.byRule)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${int(v)}`)
      .join(', ');
    out.push(`Deciding rules: ${byRule}.`);
  }

  // Targets.
  const at10 = results.find((r) => r.rules === 10);
  const at10k = results.find((r) => r.rules === 10000);
  if (at10 !== undefined && at10k !== undefined) {
    for (const f of at10k.fixed) {
      const small = at10.fixed.find((g) => g.name === f.name);
      if (small === undefined) continue;
      const ratio = f.usMedian / small.usMedian;
      out.push(
        `Same request, N=10000 vs N=10 — ${f.name}: ${fixed(f.usMedian, 3)} µs vs ${fixed(small.usMedian, 3)} µs = ${fixed(ratio, 2)}× ` +
          `(target ≤ ${RATIO_TARGET}×: ${ratio <= RATIO_TARGET ? 'met' : 'MISSED'})`,
      );
    }
    const stream = at10k.usMedian / at10.usMedian;
    out.push(`Whole stream, N=10000 vs N=10: ${fixed(stream, 2)}× (target ≤ ${RATIO_TARGET}×: ${stream <= RATIO_TARGET ? 'met' : 'MISSED'})`);
  }
  if (at10k !== undefined) {
    const stages = at10k.compileStages.map((s) => `${s.stage} ${fixed(s.ms, 1)}`).join(', ');
    out.push(
      `Compile at N=10000: ${fixed(at10k.compileMs, 1)} ms, cold (target < ${COMPILE_TARGET_MS} ms: ${at10k.compileMs < COMPILE_TARGET_MS ? 'met' : 'MISSED'}); ` +
        `stages ms: ${stages}.`,
    );
  }

  out.push('');
  const prefixSize = first?.unindexed.requests ?? 0;
  out.push(`Index effect, first ${int(prefixSize)} requests of the stream (\`useIndex: false\` scans every rule of the action; rules tested from explain traces):`);
  out.push('');
  out.push('| rules (N) | rules tested/decision (indexed) | µs/decision indexed | µs/decision unindexed | unindexed vs indexed | tree heap MiB | probes |');
  out.push('|---:|---:|---:|---:|---:|---:|---|');
  for (const r of results) {
    const probesOk = r.probes.filter((p) => p.ok).length;
    out.push(
      `| ${int(r.rules)} | ${fixed(r.avgRulesTested, 2)} | ${fixed(r.unindexed.indexedUsMedian, 3)} | ${fixed(r.unindexed.usMedian, 3)} | ` +
        `${fixed(r.unindexed.usMedian / r.unindexed.indexedUsMedian, 1)}× | ${r.treeHeapMiB === null ? 'n/a' : fixed(r.treeHeapMiB, 1)} | ${probesOk}/${r.probes.length} ok |`,
    );
  }
  out.push('');
  out.push(
    `Machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${os.platform()} ${os.release()}, ` +
      `Node ${process.version}, ${new Date().toISOString()}; total ${fixed((performance.now() - started) / 1000, 1)} s.`,
  );
  printReport(out, problems);
}

runMain('bench', main);

/**
 * One engine worker: `node dist/bench/engines/worker.js ENGINE N`.
 *
 * Sets up one engine for N extra rules, checks the probes (the tenant rules
 * are live), picks how much of the common request stream it can decide in
 * about one pass budget (all of it unless the engine is slow), decides that
 * prefix once to record every decision, then times passes over it. Each
 * (engine, N) runs in a fresh process so that JIT state, heap growth and
 * peak RSS never leak from one into another.
 *
 * Reports a {@link WorkerResult} over IPC (or prints it as JSON when run by
 * hand) and exits non-zero when a check failed.
 *
 * Environment: BENCH_QUICK=1 for shorter passes and fewer of them.
 */
import { createEngine, type Engine } from './engines.js';
import { isEngineName, type EngineName, type ProbeResult, type WorkerResult } from './protocol.js';
import { probeSubjects, probes, STREAM_SIZE, workload } from './scenario.js';

const QUICK = process.env['BENCH_QUICK'] === '1';
/** Wall time one timed pass should take at most; slow engines decide a shorter prefix of the stream. */
const PASS_BUDGET_MS = QUICK ? 250 : 1000;
/** Timed passes; the median is reported, so an odd count. */
const TIMED_PASSES = QUICK ? 3 : 5;
/** A pass longer than this many budgets is "long": no extra warm-up pass, and only LONG_TIMED_PASSES timed. */
const LONG_PASS_FACTOR = 4;
const LONG_TIMED_PASSES = 3;
/** Fewest requests any engine decides, however slow. */
const MIN_REQUESTS = 10;
/** A timed pass goes over the stream as many times as it takes to last this long (fast engines)… */
const MIN_PASS_MS = QUICK ? 100 : 250;
/** …but no more times than this. */
const MAX_REPS = 50;
/** Requests the calibration may decide. */
const CALIBRATION_SAMPLE = 4096;
/** Calibration stops once this much time has been spent deciding. */
const CALIBRATION_MS = QUICK ? 20 : 50;

/** `global.gc` exists only under `--expose-gc` (the parent passes it). */
const gc = (globalThis as { gc?: () => void }).gc;

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const hi = s[mid] ?? Number.NaN;
  return s.length % 2 === 1 ? hi : ((s[mid - 1] ?? Number.NaN) + hi) / 2;
}

/** The largest of 1, 2, 5, 10, 20, 50, … not above x: keeps prefix lengths readable. */
function roundDown125(x: number): number {
  if (x < 1) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [5, 2, 1]) if (m * p <= x) return m * p;
  return p;
}

/**
 * How many requests of the stream fit in one pass budget. Warms up on the
 * start of `sample` (until the calibration time is spent or 256 requests
 * are decided: first calls pay for JIT and wasm tier-up), then decides
 * growing runs (1, 2, 4, …) until the calibration time is spent again. The
 * estimate still errs slow, so a pass rarely overruns its budget.
 */
function calibrate<R>(engine: Engine<R>, sample: readonly R[], streamSize: number): number {
  let next = 0;
  const warmStart = performance.now();
  while (next < Math.min(256, sample.length) && performance.now() - warmStart < CALIBRATION_MS) engine.decide(sample[next++] as R);
  let spent = 0;
  let decided = 0;
  for (let k = 1; spent < CALIBRATION_MS; k *= 2) {
    if (next >= sample.length) next = 0;
    const end = Math.min(next + k, sample.length);
    const t0 = performance.now();
    for (let i = next; i < end; i++) engine.decide(sample[i] as R);
    spent += performance.now() - t0;
    decided += end - next;
    next = end;
  }
  const perDecisionMs = spent / decided;
  return Math.min(streamSize, Math.max(MIN_REQUESTS, roundDown125(PASS_BUDGET_MS / perDecisionMs)));
}

/**
 * Times one pass: `reps` rounds over the first `count` requests. Counting
 * ALLOWs gives the loop a result the optimiser cannot drop, and lets the
 * caller check that every pass decided the same way.
 */
function timePass<R>(engine: Engine<R>, requests: readonly R[], count: number, reps: number): { us: number; allow: number } {
  gc?.();
  let allow = 0;
  const start = process.hrtime.bigint();
  for (let rep = 0; rep < reps; rep++) for (let i = 0; i < count; i++) if (engine.decide(requests[i] as R)) allow++;
  const ns = process.hrtime.bigint() - start;
  return { us: Number(ns) / 1000 / (count * reps), allow: allow / reps };
}

function mib(bytes: number): number {
  return bytes / 2 ** 20;
}

async function run(name: EngineName, n: number): Promise<WorkerResult> {
  const failures: string[] = [];
  const { subjects, stream } = workload(STREAM_SIZE);
  const allSubjects = [...subjects, ...probeSubjects(n)];

  gc?.();
  const heapBeforeSetupMiB = gc === undefined ? null : mib(process.memoryUsage().heapUsed);
  const rssBeforeSetupMiB = mib(process.memoryUsage().rss);
  const engine = await createEngine(name, n, allSubjects);
  const peakRssAfterSetupMiB = process.resourceUsage().maxRSS / 1024;
  gc?.();
  const rssAfterSetupMiB = gc === undefined ? null : mib(process.memoryUsage().rss);
  const heapAfterSetupMiB = gc === undefined ? null : mib(process.memoryUsage().heapUsed);

  // Probes first: if the tenant rules are not live, the timings mean nothing.
  const probeResults: ProbeResult[] = probes(n).map((p) => {
    const got = engine.explain(p.entry);
    const decisionOk = got.allow === p.allow;
    const ruleOk = p.decidingRule === null || got.rules === null || got.rules.includes(p.decidingRule);
    const ok = decisionOk && ruleOk;
    const expected = `${p.allow ? 'ALLOW' : 'DENY'}${p.decidingRule === null ? '' : ` by ${p.decidingRule}`}`;
    const gotText = `${got.allow ? 'ALLOW' : 'DENY'}${got.rules === null || got.rules.length === 0 ? '' : ` by ${got.rules.join(', ')}`}`;
    if (!ok) failures.push(`probe "${p.name}": expected ${expected}, got ${gotText}`);
    return { name: p.name, expected, got: gotText, ok };
  });

  // Native requests for the whole stream would cost the slow engines memory
  // they never use: calibrate on a slice, then build only the prefix decided.
  const sample = engine.prepare(stream.slice(0, Math.min(stream.length, CALIBRATION_SAMPLE)));
  // Arbiter is the reference every other engine is compared with: it always decides the whole stream.
  const decided = name === 'arbiter' ? stream.length : calibrate(engine, sample, stream.length);
  const requests = decided <= sample.length ? sample : engine.prepare(stream.slice(0, decided));

  // Verification pass (untimed; also warm-up): every decision, and any error the engine reports.
  const verifyStart = performance.now();
  const bits = new Uint8Array(Math.ceil(decided / 8));
  let allowCount = 0;
  let problems = 0;
  for (let i = 0; i < decided; i++) {
    const { allow, problem } = engine.verify(requests[i] as unknown);
    if (allow) {
      bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
      allowCount++;
    }
    if (problem !== null) {
      problems++;
      if (problems === 1) failures.push(`request #${i}: ${problem}`);
    }
  }
  if (problems > 1) failures.push(`${problems} requests with engine errors in all`);

  // One more warm-up pass, which also sizes the timed passes: a fast engine
  // goes over the stream several times per pass, so that a pass is long
  // enough to time well. A pass far over budget (Cedar's stateless call at
  // large N parses the whole policy set per request) skips that pass — the
  // verification pass warmed it up — and is timed fewer times. Each timed
  // pass must reproduce the ALLOW count.
  const verifyMs = performance.now() - verifyStart;
  const long = verifyMs > LONG_PASS_FACTOR * PASS_BUDGET_MS;
  let reps = 1;
  if (!long) {
    const warm = timePass(engine, requests, decided, 1);
    reps = Math.max(1, Math.min(MAX_REPS, Math.ceil(MIN_PASS_MS / ((warm.us * decided) / 1000))));
  }
  const usPerPass: number[] = [];
  for (let p = 0; p < (long ? LONG_TIMED_PASSES : TIMED_PASSES); p++) {
    const { us, allow } = timePass(engine, requests, decided, reps);
    if (allow !== allowCount) failures.push(`timed pass ${p} allowed ${allow} requests, the verification pass ${allowCount}`);
    usPerPass.push(us);
  }
  const usMedian = median(usPerPass);

  return {
    kind: 'engine-result',
    engine: name,
    rules: n,
    version: engine.version,
    setupMs: engine.setupMs,
    setupNote: engine.setupNote,
    requests: decided,
    repsPerPass: reps,
    usPerPass,
    usMedian,
    decisionsPerSecond: 1e6 / usMedian,
    allowCount,
    bits: Buffer.from(bits).toString('base64'),
    probes: probeResults,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    rssAfterSetupMiB,
    heapAfterSetupMiB,
    heapBeforeSetupMiB,
    rssBeforeSetupMiB,
    peakRssAfterSetupMiB,
    failures,
  };
}

function parseArgs(argv: readonly string[]): { engine: EngineName; n: number } {
  const [engine, count] = argv;
  const n = Number(count);
  if (engine === undefined || !isEngineName(engine) || count === undefined || !Number.isSafeInteger(n) || n < 0) {
    throw new Error(`usage: node worker.js ENGINE N   (got ${argv.join(' ')})`);
  }
  return { engine, n };
}

async function main(): Promise<void> {
  const { engine, n } = parseArgs(process.argv.slice(2));
  const result = await run(engine, n);
  if (process.send !== undefined) {
    // Exit only once the message is flushed, or the parent may never see it.
    process.send(result, () => process.exit(result.failures.length > 0 ? 1 : 0));
  } else {
    process.stdout.write(`${JSON.stringify({ ...result, bits: `${result.bits.length} base64 chars` }, null, 2)}\n`);
    for (const f of result.failures) process.stderr.write(`FAIL: ${f}\n`);
    process.exitCode = result.failures.length > 0 ? 1 : 0;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`worker: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});

/**
 * One benchmark child: `node dist/bench/decide.js N`.
 *
 * Compiles the scenario policy with N extra per-tenant rules, checks that the
 * extra rules are live (probes) and that the main stream decides exactly as
 * the base rules say, then times uncached, in-process `evaluate()` calls.
 * Each N runs in a fresh process so that JIT state, heap growth and peak RSS
 * of one size never leak into another.
 *
 * Reports a {@link ChildResult} to the parent over IPC (or prints it as JSON
 * when run by hand) and exits non-zero when any check failed.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { compilePolicySet, type DecisionTree } from '../src/compile/index.js';
import { evaluate, type Decision, type EvaluateOptions, type Request } from '../src/eval/evaluate.js';
import type { ChildResult, FixedResult, ProbeResult } from './protocol.js';
import { DECISION_TIME, expectedDecision, fixedRequests, policySources, probes, requestStream, STREAM_SIZE, type ExpectedDecision } from './scenario.js';

/** Untimed passes before measuring, so the JIT has compiled the hot path. */
const WARMUP_PASSES = 2;
/** Timed passes over the stream; the median is reported, so an odd count. */
const TIMED_PASSES = 7;
/** Iterations of each fixed request per timed pass. */
const FIXED_ITERATIONS = 200_000;
const FIXED_PASSES = 7;
/** Stream prefix for the unindexed comparison: scanning 10,000 rules per request is slow by design. */
const UNINDEXED_REQUESTS = 1_000;
const UNINDEXED_PASSES = 3;

const OPTIONS: EvaluateOptions = { now: DECISION_TIME };

/** `global.gc` exists only under `--expose-gc` (the parent passes it). */
const gc = (globalThis as { gc?: () => void }).gc;

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const hi = s[mid] ?? Number.NaN;
  return s.length % 2 === 1 ? hi : ((s[mid - 1] ?? Number.NaN) + hi) / 2;
}

function describe(d: ExpectedDecision): string {
  return d.rule === null ? `${d.decision} (no rule)` : `${d.decision} by ${d.rule}`;
}

function actual(d: Decision): ExpectedDecision {
  return { decision: d.decision, rule: d.rules[0] ?? null };
}

/**
 * Times one pass over `requests`. Counting ALLOWs gives the loop a result
 * the optimiser cannot discard, and lets the caller check every pass decided
 * the same way.
 */
function timePass(tree: DecisionTree, requests: readonly Request[], options: EvaluateOptions): { us: number; allow: number } {
  gc?.();
  let allow = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < requests.length; i++) {
    if (evaluate(tree, requests[i] as Request, options).decision === 'ALLOW') allow++;
  }
  const ns = process.hrtime.bigint() - start;
  return { us: Number(ns) / 1000 / requests.length, allow };
}

/** Times one request repeated: its own cost, free of the stream's mix. */
function timeFixed(tree: DecisionTree, request: Request): number {
  const perPass: number[] = [];
  for (let p = 0; p < FIXED_PASSES + 1; p++) {
    gc?.();
    let allow = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < FIXED_ITERATIONS; i++) if (evaluate(tree, request, OPTIONS).decision === 'ALLOW') allow++;
    const ns = process.hrtime.bigint() - start;
    // allow is either 0 or FIXED_ITERATIONS; anything else means the answer changed between calls.
    if (allow !== 0 && allow !== FIXED_ITERATIONS) throw new Error('a fixed request changed its decision between calls');
    if (p > 0) perPass.push(Number(ns) / 1000 / FIXED_ITERATIONS); // pass 0 is warm-up
  }
  return median(perPass);
}

/** Heap in use after a full collection; `null` without `--expose-gc`, when garbage would blur it. */
function retainedHeap(): number | null {
  if (gc === undefined) return null;
  gc();
  return process.memoryUsage().heapUsed;
}

function parseRuleCount(arg: string | undefined): number {
  const n = Number(arg);
  if (arg === undefined || !Number.isSafeInteger(n) || n < 0) {
    throw new Error(`usage: node decide.js N   (N: number of extra rules, a non-negative integer; got ${String(arg)})`);
  }
  return n;
}

function run(n: number): ChildResult {
  const failures: string[] = [];

  // Compile, cold: this is what a server pays at start-up for this policy set.
  const sources = policySources(n);
  const heapBefore = retainedHeap();
  const t0 = performance.now();
  const { tree, timings } = compilePolicySet(sources, { clock: () => performance.now() });
  const compileMs = performance.now() - t0;
  // What the compiled tree keeps alive once the compiler's garbage is gone (the source text is counted too).
  const heapAfter = retainedHeap();
  const treeHeapMiB = heapBefore === null || heapAfter === null ? null : (heapAfter - heapBefore) / 2 ** 20;

  // Probes first: if the extra rules are not live, the timings mean nothing.
  const probeResults: ProbeResult[] = probes(n).map((p) => {
    const got = actual(evaluate(tree, p.request, OPTIONS));
    const ok = got.decision === p.expect.decision && got.rule === p.expect.rule;
    if (!ok) failures.push(`probe "${p.name}": expected ${describe(p.expect)}, got ${describe(got)}`);
    return { name: p.name, expected: describe(p.expect), got: describe(got), ok };
  });

  const stream = requestStream(STREAM_SIZE);
  const requests = stream.map((e) => e.request);

  // Verification pass (untimed, also the first warm-up): counts, a digest of
  // every decision, and a comparison with the hand-written reference.
  const hash = createHash('sha256');
  const counts = { ALLOW: 0, DENY: 0 };
  const byRule: Record<string, number> = {};
  let referenceMismatches = 0;
  const referenceExamples: string[] = [];
  for (const [i, e] of stream.entries()) {
    const d = evaluate(tree, e.request, OPTIONS);
    counts[d.decision]++;
    const key = d.rules[0] ?? d.reason;
    byRule[key] = (byRule[key] ?? 0) + 1;
    hash.update(`${d.decision}\0${key}\n`);
    const want = expectedDecision(e.subject, e.action, e.doc);
    const got = actual(d);
    if (got.decision !== want.decision || got.rule !== want.rule) {
      referenceMismatches++;
      if (referenceExamples.length < 3) {
        referenceExamples.push(`request #${i} ${JSON.stringify(e.request)}: expected ${describe(want)}, got ${describe(got)} (${d.reason})`);
      }
    }
  }
  if (referenceMismatches > 0) failures.push(`${referenceMismatches} main-stream decisions differ from the reference, e.g. ${referenceExamples[0] ?? ''}`);

  // Timed passes. Each must reproduce the verification pass's ALLOW count.
  // The verification pass was warm-up pass 0, hence p = 1.
  for (let p = 1; p < WARMUP_PASSES; p++) timePass(tree, requests, OPTIONS);
  const usPerPass: number[] = [];
  for (let p = 0; p < TIMED_PASSES; p++) {
    const { us, allow } = timePass(tree, requests, OPTIONS);
    if (allow !== counts.ALLOW) failures.push(`timed pass ${p} allowed ${allow} requests, the verification pass ${counts.ALLOW}`);
    usPerPass.push(us);
  }
  const usMedian = median(usPerPass);

  const fixed: FixedResult[] = fixedRequests().map((f) => ({ name: f.name, usMedian: timeFixed(tree, f.request) }));

  // The index must never change a decision: compare with the unindexed scan
  // on a prefix, and time that scan to show what the index saves.
  const prefix = requests.slice(0, UNINDEXED_REQUESTS);
  const unindexedOptions: EvaluateOptions = { now: DECISION_TIME, useIndex: false };
  let unindexedMismatches = 0;
  let rulesTested = 0;
  for (const r of prefix) {
    const indexed = evaluate(tree, r, OPTIONS);
    const scanned = evaluate(tree, r, unindexedOptions);
    if (indexed.decision !== scanned.decision || indexed.rules[0] !== scanned.rules[0]) {
      unindexedMismatches++;
      if (unindexedMismatches === 1) failures.push(`indexed and unindexed evaluation disagree on ${JSON.stringify(r)}: ${describe(actual(indexed))} vs ${describe(actual(scanned))}`);
    }
    rulesTested += evaluate(tree, r, { now: DECISION_TIME, explain: true }).trace?.evaluated.length ?? 0;
  }
  // The indexed prefix is timed alongside, in the same JIT state, so the
  // two figures compare like with like (the explain and unindexed calls
  // above change what the optimiser has seen since the main passes).
  timePass(tree, prefix, unindexedOptions);
  const unindexedPasses: number[] = [];
  const indexedPrefixPasses: number[] = [];
  for (let p = 0; p < UNINDEXED_PASSES; p++) {
    indexedPrefixPasses.push(timePass(tree, prefix, OPTIONS).us);
    unindexedPasses.push(timePass(tree, prefix, unindexedOptions).us);
  }

  const peakRssMiB = process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
  return {
    kind: 'result',
    rules: n,
    totalRules: tree.rules.length,
    compileMs,
    compileStages: timings,
    treeHeapMiB,
    requests: requests.length,
    usPerPass,
    usMedian,
    decisionsPerSecond: 1e6 / usMedian,
    counts,
    byRule,
    digest: hash.digest('hex'),
    referenceMismatches,
    referenceExamples,
    probes: probeResults,
    fixed,
    unindexed: { requests: prefix.length, usMedian: median(unindexedPasses), indexedUsMedian: median(indexedPrefixPasses), mismatches: unindexedMismatches },
    avgRulesTested: rulesTested / prefix.length,
    peakRssMiB,
    failures,
  };
}

function main(): void {
  const result = run(parseRuleCount(process.argv[2]));
  if (process.send !== undefined) {
    // Exit only once the message is flushed, or the parent may never see it.
    process.send(result, () => process.exit(result.failures.length > 0 ? 1 : 0));
  } else {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    for (const f of result.failures) process.stderr.write(`FAIL: ${f}\n`);
    process.exitCode = result.failures.length > 0 ? 1 : 0;
  }
}

main();

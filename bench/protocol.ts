/**
 * What a benchmark child (decide.ts) reports to its parent (run.ts) over the
 * IPC channel. Kept in its own module so the parent can import the types
 * without running the child's main.
 */

/** One probe's outcome. */
export interface ProbeResult {
  readonly name: string;
  readonly expected: string;
  readonly got: string;
  readonly ok: boolean;
}

/** Timing of one request evaluated over and over on its own. */
export interface FixedResult {
  readonly name: string;
  /** Median over passes, microseconds per decision. */
  readonly usMedian: number;
}

/** Everything one child measured for one N. */
export interface ChildResult {
  readonly kind: 'result';
  /** N, the number of extra per-tenant rules. */
  readonly rules: number;
  /** Rules in the compiled tree (base plus extra). */
  readonly totalRules: number;
  /** Wall time of the first (cold) `compilePolicySet` call, milliseconds. */
  readonly compileMs: number;
  /** The compiler's own per-stage timings for that call. */
  readonly compileStages: ReadonlyArray<{ readonly stage: string; readonly ms: number }>;
  /** Heap retained by the compiled tree (and its source text), MiB; `null` when the child could not force a collection. */
  readonly treeHeapMiB: number | null;
  readonly requests: number;
  /** Microseconds per decision of each timed pass, in run order. */
  readonly usPerPass: readonly number[];
  readonly usMedian: number;
  readonly decisionsPerSecond: number;
  readonly counts: { readonly ALLOW: number; readonly DENY: number };
  /** How many decisions of the main stream each reason (or deciding rule) accounts for. */
  readonly byRule: Readonly<Record<string, number>>;
  /** SHA-256 over every (decision, deciding rule) of the main stream, in order. */
  readonly digest: string;
  /** Main-stream decisions that differ from the hand-written reference (scenario.expectedDecision). */
  readonly referenceMismatches: number;
  readonly referenceExamples: readonly string[];
  readonly probes: readonly ProbeResult[];
  readonly fixed: readonly FixedResult[];
  /**
   * Unindexed evaluation (`useIndex: false`) over a prefix of the stream,
   * with the indexed time of the same prefix measured alongside.
   */
  readonly unindexed: { readonly requests: number; readonly usMedian: number; readonly indexedUsMedian: number; readonly mismatches: number };
  /** Mean number of rules the index hands to the evaluator per decision (explain mode, same prefix). */
  readonly avgRulesTested: number;
  /** Peak resident set size of the child, MiB. */
  readonly peakRssMiB: number;
  /** Everything that went wrong; the child exits non-zero when this is not empty. */
  readonly failures: readonly string[];
}

/** Whether an IPC message is a {@link ChildResult} (messages arrive untyped). */
export function isChildResult(m: unknown): m is ChildResult {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as { kind?: unknown; rules?: unknown; usMedian?: unknown; failures?: unknown };
  return r.kind === 'result' && typeof r.rules === 'number' && typeof r.usMedian === 'number' && Array.isArray(r.failures);
}

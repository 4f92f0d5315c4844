/**
 * What an engine worker (worker.ts) reports to the parent (run.ts) over the
 * IPC channel. In its own module so the parent imports the types without
 * running a worker.
 */

/** The engines compared; `cedar` is the stateful (preparsed) call, `cedar-stateless` parses the policy set on every call. */
export const ENGINE_NAMES = ['arbiter', 'js-map', 'js-scan', 'cedar', 'cedar-stateless', 'casbin'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** Whether a string names an engine. */
export function isEngineName(s: string): s is EngineName {
  return (ENGINE_NAMES as readonly string[]).includes(s);
}

/** One probe's outcome in one engine. */
export interface ProbeResult {
  readonly name: string;
  readonly expected: string;
  readonly got: string;
  readonly ok: boolean;
}

/** Everything one worker measured for one (engine, N). */
export interface WorkerResult {
  readonly kind: 'engine-result';
  readonly engine: EngineName;
  /** N, the number of extra per-tenant rules. */
  readonly rules: number;
  /** The engine's version as it reports it (Arbiter: the package version). */
  readonly version: string;
  /** Wall time to turn policy text into something that decides (compile, preparse, enforcer load), milliseconds. */
  readonly setupMs: number;
  /** What setup produced, for the reader (e.g. Casbin's policy line count). */
  readonly setupNote: string;
  /** Requests of the stream decided per pass: a prefix of the common stream (the whole stream unless the engine is slow). */
  readonly requests: number;
  /** Rounds over those requests per timed pass (fast engines repeat the stream so a pass lasts long enough to time). */
  readonly repsPerPass: number;
  /** Microseconds per decision of each timed pass, in run order. */
  readonly usPerPass: readonly number[];
  readonly usMedian: number;
  readonly decisionsPerSecond: number;
  readonly allowCount: number;
  /** One bit per request of the prefix (1 = ALLOW), little-endian within each byte, base64. */
  readonly bits: string;
  readonly probes: readonly ProbeResult[];
  /** Peak resident set size of the worker, MiB (`process.resourceUsage().maxRSS`). */
  readonly peakRssMiB: number;
  /** Resident set size right after setup and a full collection, MiB (`null` without `--expose-gc`). */
  readonly rssAfterSetupMiB: number | null;
  /** JavaScript heap in use right after setup and a full collection, MiB. */
  readonly heapAfterSetupMiB: number | null;
  /** JavaScript heap in use after a full collection just before setup (the request pools are already built), MiB. */
  readonly heapBeforeSetupMiB: number | null;
  /** Resident set size just before setup, MiB. */
  readonly rssBeforeSetupMiB: number;
  /** Peak RSS before the request stream was built: what setup alone cost at its peak, MiB. */
  readonly peakRssAfterSetupMiB: number;
  /** Everything that went wrong; the worker exits non-zero when this is not empty. */
  readonly failures: readonly string[];
}

/** Whether an IPC message is a {@link WorkerResult} (messages arrive untyped). */
export function isWorkerResult(m: unknown): m is WorkerResult {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as { kind?: unknown; engine?: unknown; bits?: unknown; failures?: unknown };
  return r.kind === 'engine-result' && typeof r.engine === 'string' && typeof r.bits === 'string' && Array.isArray(r.failures);
}

/**
 * Every metric Arbiter exports, in this one file, on a registry of its own
 * (never prom-client's global one, so two engines in one process — tests, the
 * CLI — do not collide). Names follow `arbiter_<area>_<thing>_<unit>`; labels
 * come from small fixed sets (reason codes, configured issuer names, results)
 * and never hold a subject, token or resource id.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration, type LabelValues } from 'prom-client';

/** One label set's count on the hot path: add to `n`; it reaches the counter when metrics are read. */
export interface CounterCell {
  n: number;
}

/**
 * A prom-client counter counted on the hot path. prom-client's own `inc`
 * hashes and validates the label object on every call (its `labels()`
 * children too); here each label set has a plain number, added to the
 * counter when the registry is read (its `collect`), so a decision costs an
 * addition. Label sets come from small fixed sets (see {@link Metrics}).
 */
export class HotCounter<L extends string> {
  readonly counter: Counter<L>;
  readonly #labelNames: readonly L[];
  readonly #cells = new Map<string, { readonly labels: LabelValues<L>; readonly cell: CounterCell }>();

  constructor(config: CounterConfiguration<L> & { readonly labelNames: readonly L[] }) {
    const cells = this.#cells;
    this.#labelNames = config.labelNames;
    this.counter = new Counter<L>({
      ...config,
      collect(this: Counter<L>) {
        for (const { labels, cell } of cells.values()) {
          if (cell.n === 0) continue;
          this.inc(labels, cell.n);
          cell.n = 0;
        }
      },
    });
  }

  /** The cell of one label set: look it up once and keep it where the same labels recur. */
  cell(labels: LabelValues<L>): CounterCell {
    let key = '';
    for (const name of this.#labelNames) {
      const v = String(labels[name] ?? '');
      key += `${v.length}:${v}`;
    }
    let entry = this.#cells.get(key);
    if (entry === undefined) {
      entry = { labels: { ...labels }, cell: { n: 0 } };
      this.#cells.set(key, entry);
    }
    return entry.cell;
  }

  /** Adds `n` (default 1) to a label set's count. */
  inc(labels: LabelValues<L>, n = 1): void {
    this.cell(labels).n += n;
  }
}

/** A gauge of calls in flight, kept as a plain number and read by the registry's `collect`. */
export class InFlightGauge {
  n = 0;
  readonly gauge: Gauge;

  constructor(name: string, help: string, registers: Registry[]) {
    const self = this;
    this.gauge = new Gauge({
      name,
      help,
      registers,
      collect(this: Gauge) {
        this.set(self.n);
      },
    });
  }

  inc(): void {
    this.n++;
  }

  dec(): void {
    this.n--;
  }
}

/** The metrics of one Arbiter process. */
export class Metrics {
  readonly registry: Registry;
  /** Tokens verified, by configured issuer name and whether the subject came from the cache. */
  readonly jwtVerified: HotCounter<'issuer' | 'cached'>;
  /** Tokens rejected, by reason code (and issuer name, `unknown` before one is known). */
  readonly jwtRejected: Counter<'reason' | 'issuer'>;
  /** Key set loads and refreshes, by issuer, trigger and outcome (`updated`, `unchanged`, `failed`). */
  readonly jwksRefreshes: Counter<'issuer' | 'trigger' | 'outcome'>;
  /** Keys held per issuer. */
  readonly jwksKeys: Gauge<'issuer'>;
  /** Revocation list reloads by outcome. */
  readonly revocationReloads: Counter<'outcome'>;
  /** Entries in the revocation list in force. */
  readonly revocationEntries: Gauge;
  /** Decisions by API (`authorizer`, `ext_authz`), decision, reason and resource type (`(undeclared)` for a type no policy declares, `(none)` when no route matched). */
  readonly decisions: HotCounter<'api' | 'decision' | 'reason' | 'resource_type'>;
  /** Seconds per decision, token verification included, by whether it came from the cache. */
  readonly decisionDuration: Histogram<'api' | 'cached'>;
  /** Decision cache lookups by result (`hit`, `miss`, `bypass` for explain and clock-dependent requests). */
  readonly cacheLookups: HotCounter<'result'>;
  /** Policy reloads by trigger and outcome (`updated`, `unchanged`, `failed`). */
  readonly policyReloads: Counter<'trigger' | 'outcome'>;
  /** 1 for the policy revision being served. */
  readonly policyRevision: Gauge<'revision'>;
  /** gRPC calls by method and status code name. */
  readonly grpcCalls: HotCounter<'method' | 'code'>;
  /** Calls in flight. */
  readonly grpcInFlight: InFlightGauge;

  /** Marks `revision` as the one served (and drops the previous one's series). */
  setRevision(revision: string): void {
    this.policyRevision.reset();
    this.policyRevision.set({ revision }, 1);
  }

  /**
   * @param options.processMetrics also collect prom-client's default process metrics (the server does; tests and the CLI need not)
   * @example
   * const metrics = new Metrics({ processMetrics: true });
   * const text = await metrics.registry.metrics();
   */
  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [(this.registry = new Registry())];
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry });
    this.jwtVerified = new HotCounter({ name: 'arbiter_jwt_verified_total', help: 'Tokens verified, by issuer and whether the subject came from the subject cache.', labelNames: ['issuer', 'cached'], registers });
    this.jwtRejected = new Counter({ name: 'arbiter_jwt_rejected_total', help: 'Tokens rejected, by reason code and issuer.', labelNames: ['reason', 'issuer'], registers });
    this.jwksRefreshes = new Counter({ name: 'arbiter_jwks_refreshes_total', help: 'Loads of issuer key sets, by issuer, trigger and outcome; on failure the keys already held stay in use.', labelNames: ['issuer', 'trigger', 'outcome'], registers });
    this.jwksKeys = new Gauge({ name: 'arbiter_jwks_keys', help: 'Verification keys held, by issuer.', labelNames: ['issuer'], registers, aggregator: 'max' });
    this.revocationReloads = new Counter({ name: 'arbiter_revocation_reloads_total', help: 'Reloads of the revocation list, by outcome; on failure the last good list stays in force.', labelNames: ['outcome'], registers });
    this.revocationEntries = new Gauge({ name: 'arbiter_revocation_entries', help: 'Entries in the revocation list in force.', registers, aggregator: 'max' });
    this.decisions = new HotCounter({ name: 'arbiter_decisions_total', help: 'Decisions by API (authorizer, ext_authz), decision, reason and resource type.', labelNames: ['api', 'decision', 'reason', 'resource_type'], registers });
    this.decisionDuration = new Histogram({
      name: 'arbiter_decision_duration_seconds',
      help: 'Time to decide, token verification included, by API and whether the decision cache answered (per Check; per CheckBatch call and distinct outcome for batches).',
      labelNames: ['api', 'cached'],
      buckets: [0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    });
    this.cacheLookups = new HotCounter({ name: 'arbiter_decision_cache_lookups_total', help: 'Decision cache lookups by result: hit, miss, or bypass (explain, clock-dependent).', labelNames: ['result'], registers });
    this.policyReloads = new Counter({ name: 'arbiter_policy_reloads_total', help: 'Policy reloads by trigger and outcome; on failure the last good set keeps serving.', labelNames: ['trigger', 'outcome'], registers });
    this.policyRevision = new Gauge({ name: 'arbiter_policy_revision_info', help: 'The policy revision being served (value 1; with several workers, every revision some worker serves).', labelNames: ['revision'], registers, aggregator: 'max' });
    this.grpcCalls = new HotCounter({ name: 'arbiter_grpc_calls_total', help: 'gRPC calls by method and status code.', labelNames: ['method', 'code'], registers });
    this.grpcInFlight = new InFlightGauge('arbiter_grpc_in_flight', 'gRPC calls in flight.', registers);
  }
}

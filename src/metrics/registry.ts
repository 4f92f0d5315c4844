/**
 * Every metric Arbiter exports, in this one file, on a registry of its own
 * (never prom-client's global one, so two engines in one process — tests, the
 * CLI — do not collide). Names follow `arbiter_<area>_<thing>_<unit>`; labels
 * come from small fixed sets (reason codes, configured issuer names, results)
 * and never hold a subject, token or resource id.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration, type HistogramConfiguration, type LabelValues } from 'prom-client';

/** One label set's count on the hot path: add to `n`; it reaches the counter when metrics are read. */
export interface CounterCell {
  n: number;
}

/** One label set of a metric and its cell. */
interface LabelledCell<L extends string, C> {
  readonly labels: LabelValues<L>;
  readonly cell: C;
}

/** A node of {@link LabelCells}' trie: the cells below it by the next label's value, and the cell of the label set that ends here. */
interface CellNode<L extends string, C> {
  readonly next: Map<string, CellNode<L, C>>;
  entry?: LabelledCell<L, C>;
}

/**
 * The cells of one metric, one per label set, found by walking the label
 * values in the label names' order: a lookup builds no key string, so the
 * strings' cached hashes do the work (label values come from small fixed
 * sets, mostly constants). Label values are copied into the cell, not kept.
 */
class LabelCells<L extends string, C> {
  readonly #labelNames: readonly L[];
  readonly #make: () => C;
  readonly #root: CellNode<L, C> = { next: new Map() };
  readonly #all: LabelledCell<L, C>[] = [];

  constructor(labelNames: readonly L[], make: () => C) {
    this.#labelNames = labelNames;
    this.#make = make;
  }

  get(labels: LabelValues<L>): C {
    const names = this.#labelNames;
    let node = this.#root;
    for (let i = 0; i < names.length; i++) {
      const v = labels[names[i]!];
      const key = typeof v === 'string' ? v : String(v ?? '');
      let next = node.next.get(key);
      if (next === undefined) {
        next = { next: new Map() };
        node.next.set(key, next);
      }
      node = next;
    }
    let entry = node.entry;
    if (entry === undefined) {
      const copy: LabelValues<L> = {};
      for (const name of names) {
        const v = labels[name];
        if (v !== undefined) copy[name] = v;
      }
      entry = node.entry = { labels: copy, cell: this.#make() };
      this.#all.push(entry);
    }
    return entry.cell;
  }

  /** Every label set seen, in the order first seen. */
  all(): readonly LabelledCell<L, C>[] {
    return this.#all;
  }
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
  readonly #cells: LabelCells<L, CounterCell>;

  constructor(config: CounterConfiguration<L> & { readonly labelNames: readonly L[] }) {
    const cells = (this.#cells = new LabelCells<L, CounterCell>(config.labelNames, () => ({ n: 0 })));
    this.counter = new Counter<L>({
      ...config,
      collect(this: Counter<L>) {
        for (const { labels, cell } of cells.all()) {
          if (cell.n === 0) continue;
          this.inc(labels, cell.n);
          cell.n = 0;
        }
      },
    });
  }

  /** The cell of one label set (cheap to find again; keep it where the same labels recur). */
  cell(labels: LabelValues<L>): CounterCell {
    return this.#cells.get(labels);
  }

  /** Adds `n` (default 1) to a label set's count. */
  inc(labels: LabelValues<L>, n = 1): void {
    this.#cells.get(labels).n += n;
  }
}

/** One label set of a {@link HotHistogram}: observe into it. */
export interface HistogramCell {
  observe(value: number): void;
}

/** Observations of one label set: a count per bucket (not cumulative; past the last bound only in `count`), their sum and count. */
class BucketCounts implements HistogramCell {
  readonly #bounds: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    // As prom-client's observe: a value that is not a number is a programming error.
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${String(value)}`);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** A value of prom-client's histogram export before its label sets are merged in (what its registry's text exposition reads). */
interface ExportedValue {
  readonly labels: Record<string, string | number>;
  readonly sharedLabels: Record<string, string | number>;
  readonly value: number;
  readonly metricName: string;
  readonly exemplar?: null;
}
interface Exported {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly aggregator: string;
  readonly values: readonly ExportedValue[];
}
/**
 * prom-client's histogram export. Its registry reads every metric through
 * `getForPromString` when the metric has one (the text exposition), and
 * `Histogram#get` (JSON, cluster aggregation) is that export with the label
 * sets merged; the method is not in prom-client's typings. The tests compare
 * {@link HotHistogram} with a plain Histogram, so a prom-client that changes
 * this fails them.
 */
const histogramExport = (Histogram.prototype as unknown as { getForPromString?: (this: Histogram<string>) => Promise<Exported> }).getForPromString;
if (typeof histogramExport !== 'function') throw new Error('prom-client: Histogram#getForPromString is missing; HotHistogram must be updated for this version');

/**
 * A prom-client histogram observed on the hot path. prom-client's `observe`
 * (its `labels()` children too) validates and hashes the labels and writes
 * bucket counts under string keys on every call; here each label set has
 * plain bucket counts, exported in prom-client's own shape when the
 * registry is read. Observe through {@link cell}; observations made through
 * prom-client's own methods are exported as well.
 */
export class HotHistogram<L extends string> extends Histogram<L> {
  readonly #cells: LabelCells<L, BucketCounts>;
  readonly #bounds: readonly number[];
  readonly #name: string;

  constructor(config: Omit<HistogramConfiguration<L>, 'labelNames' | 'buckets'> & { readonly labelNames: readonly L[]; readonly buckets: readonly number[] }) {
    // One copy of the bounds for prom-client and the cells: prom-client uses them in the order given, as the cells do.
    const bounds = [...config.buckets];
    super({ ...config, labelNames: [...config.labelNames], buckets: bounds });
    this.#bounds = bounds;
    this.#name = config.name;
    this.#cells = new LabelCells<L, BucketCounts>(config.labelNames, () => new BucketCounts(bounds));
  }

  /** The cell of one label set (cheap to find again; keep it where the same labels recur). */
  cell(labels: LabelValues<L>): HistogramCell {
    return this.#cells.get(labels);
  }

  /** prom-client's export (see {@link histogramExport}) with the cells' label sets after its own. */
  async getForPromString(): Promise<Exported> {
    const base = await histogramExport!.call(this as unknown as Histogram<string>);
    const values: ExportedValue[] = [...base.values];
    const bucket = `${this.#name}_bucket`;
    for (const { labels, cell } of this.#cells.all()) {
      // As prom-client, a label set is exported once observed (and again only once observed after a reset).
      if (cell.count === 0) continue;
      const shared = labels as Record<string, string | number>;
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += cell.counts[i]!;
        values.push({ labels: { le: this.#bounds[i]! }, sharedLabels: shared, value: acc, metricName: bucket, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: shared, value: cell.count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels: shared, value: cell.sum, metricName: `${this.#name}_sum` });
      values.push({ labels: {}, sharedLabels: shared, value: cell.count, metricName: `${this.#name}_count` });
    }
    return { ...base, values };
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor resets too, before the cells exist.
    if (#cells in this) for (const { cell } of this.#cells.all()) cell.reset();
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
  readonly decisionDuration: HotHistogram<'api' | 'cached'>;
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
    this.decisionDuration = new HotHistogram({
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

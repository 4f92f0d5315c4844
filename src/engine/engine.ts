/**
 * The engine: the front door that the CLI, the test runner and the server
 * call. It joins the policy store (the set in force, swapped atomically on
 * reload), the token verifier, the decision cache and metrics around the
 * evaluator.
 */
import type { Attributes, DecisionTree } from '../compile/index.js';
import { validateAgainstSchema, type RequestValidationMode, type Schema, type SchemaViolation } from '../compile/schema.js';
import { DecisionCache, type DecisionCacheOptions } from '../cache/decision-cache.js';
import { decisionKey } from '../cache/key.js';
import { evaluate, evaluateActions, type BatchScratch, type Decision, type Reason, type Request } from '../eval/evaluate.js';
import type { TokenReason } from '../jwt/reasons.js';
import type { TokenVerifier, VerifyResult } from '../jwt/verify.js';
import type { CounterCell, Metrics } from '../metrics/registry.js';
import { loadPolicySet, PolicyStore, type LoadedPolicySet } from './policy-store.js';

/** Options of one check. */
export interface CheckOptions {
  readonly explain?: boolean;
  /** Decision time in ms since the epoch; defaults to the engine's clock. */
  readonly now?: number;
}

/** The engine's own reasons, beside the evaluator's and the token verifier's. */
export const ENGINE_REASONS = {
  /** `schema.validate_requests: reject` and the request does not match the policy set's schema. */
  REQUEST_SCHEMA_VIOLATION: 'REQUEST_SCHEMA_VIOLATION',
} as const;

/** A decision reason: the evaluator's, why the token was refused, or the engine's own. */
export type DecisionReason = Reason | TokenReason | (typeof ENGINE_REASONS)[keyof typeof ENGINE_REASONS];

/** The verified subject a token decision was made for (never the token). */
export interface DecidedSubject {
  /** Configured issuer name. */
  readonly issuer: string;
  readonly sub?: string;
  /** The token's `exp`, ms since the epoch: the decision must not be reused past it. */
  readonly expiresAt?: number;
  /** Whether the verified subject came from the subject cache. */
  readonly cached: boolean;
}

/** A decision for a request whose subject is a bearer token. */
export interface TokenDecision extends Omit<Decision, 'reason'> {
  readonly reason: DecisionReason;
  /** For a token refused: what was wrong with it (safe to show; never the token). For a schema violation: the first one. */
  readonly message?: string;
  /** For a token accepted: whose it was. */
  readonly subject?: DecidedSubject;
}

/** A decision as the server returns it. */
export interface EngineDecision extends TokenDecision {
  /** Whether the decision cache answered. */
  readonly cached: boolean;
}

/** Who is asking about: a token to verify, or attributes a trusted caller verified. */
export type Principal = { readonly token: string } | { readonly subject: Attributes };

/** One question for {@link Engine.decide}. */
export interface DecideInput {
  readonly principal: Principal;
  readonly action: string;
  readonly resource: Request['resource'];
  readonly context?: Attributes;
  readonly explain?: boolean;
  /** The API asking, for metrics (`authorizer` by default). */
  readonly api?: Api;
}

/** The APIs decisions are asked through. */
export type Api = 'authorizer' | 'ext_authz';

/** Many questions about one principal, for {@link Engine.decideBatch}. */
export interface DecideBatchInput {
  readonly principal: Principal;
  readonly items: readonly { readonly resource: Request['resource']; readonly actions: readonly string[] }[];
  readonly context?: Attributes;
}

export interface BatchOutcome {
  readonly revision: string;
  /** For a refused token: every decision is DENY with this reason. */
  readonly tokenReason?: TokenReason;
  readonly message?: string;
  readonly subject?: DecidedSubject;
  /** Per item, per action, in the order asked. */
  readonly results: readonly (readonly EngineDecision[])[];
}

export interface EngineOptions {
  readonly clock?: () => number;
  /** Verifies bearer tokens; without one every token is refused as `TOKEN_UNKNOWN_ISSUER`. */
  readonly verifier?: TokenVerifier;
  /** The decision cache; none when absent. */
  readonly cache?: DecisionCacheOptions;
  readonly metrics?: Metrics;
  /**
   * What {@link Engine.decide} and {@link Engine.decideBatch} do with a
   * request that does not match the policy set's schema: `off` (the default;
   * not checked), `warn` (decide as usual and tell `onSchemaViolation`) or
   * `reject` (DENY `REQUEST_SCHEMA_VIOLATION`, and tell `onSchemaViolation`).
   * A policy set without a schema checks nothing.
   */
  readonly validateRequests?: RequestValidationMode;
  /** Told of every request that does not match the schema (the engine itself never logs). */
  readonly onSchemaViolation?: (event: SchemaViolationEvent) => void;
}

/** A request that did not match the schema, for {@link EngineOptions.onSchemaViolation}. */
export interface SchemaViolationEvent {
  readonly mode: 'warn' | 'reject';
  readonly action: string;
  readonly resourceType: string;
  readonly revision: string;
  /** Every violation found (fields and what is wrong; never values). */
  readonly violations: readonly SchemaViolation[];
}

type Subject =
  | {
      readonly ok: true;
      readonly attributes: Attributes;
      /** What identifies the subject in decision cache keys: `t:<token hash>` (a string: cheap to key), or `['s', attributes]`. */
      readonly cacheId: unknown;
      readonly notAfter: number;
      readonly decided?: DecidedSubject;
    }
  | { readonly ok: false; readonly reason: TokenReason; readonly message: string; readonly issuer?: string };

/** Decides requests against the policy set in force. */
export class Engine {
  readonly #store: PolicyStore;
  readonly #clock: () => number;
  readonly #verifier: TokenVerifier | undefined;
  readonly #cache: DecisionCache<Decision> | undefined;
  readonly #metrics: Metrics | undefined;
  /** The decision cache's lookup counts, by result (looked up once: they are counted on every decision). */
  readonly #lookups: { readonly hit: CounterCell; readonly miss: CounterCell; readonly bypass: CounterCell } | undefined;
  readonly #validateRequests: RequestValidationMode;
  readonly #onSchemaViolation: ((event: SchemaViolationEvent) => void) | undefined;

  constructor(policies: PolicyStore | LoadedPolicySet, options: EngineOptions = {}) {
    this.#store = policies instanceof PolicyStore ? policies : PolicyStore.of(policies);
    this.#clock = options.clock ?? Date.now;
    this.#verifier = options.verifier;
    this.#metrics = options.metrics;
    const lookups = options.metrics?.cacheLookups;
    this.#lookups = lookups === undefined ? undefined : { hit: lookups.cell({ result: 'hit' }), miss: lookups.cell({ result: 'miss' }), bypass: lookups.cell({ result: 'bypass' }) };
    this.#validateRequests = options.validateRequests ?? 'off';
    this.#onSchemaViolation = options.onSchemaViolation;
    const cache = options.cache === undefined ? undefined : new DecisionCache<Decision>(options.cache);
    this.#cache = cache?.enabled === true ? cache : undefined;
    this.#metrics?.setRevision(this.revision);
    this.#store.onReload((e) => {
      this.#metrics?.policyReloads.inc({ trigger: e.trigger, outcome: e.outcome });
      if (e.outcome === 'updated') {
        // Old entries can never be hit (the revision is in the key); free them.
        this.#cache?.clear();
        this.#metrics?.setRevision(e.revision);
      }
    });
  }

  /**
   * Loads and compiles the policies under `dir`.
   *
   * @throws {PolicyLoadError | CompileError}
   * @example
   * const engine = await Engine.fromDirectory('policies');
   */
  static async fromDirectory(dir: string, options: EngineOptions = {}): Promise<Engine> {
    return new Engine(await loadPolicySet(dir), options);
  }

  get store(): PolicyStore {
    return this.#store;
  }

  get revision(): string {
    return this.#store.current.tree.revision;
  }

  get tree(): DecisionTree {
    return this.#store.current.tree;
  }

  get policySet(): LoadedPolicySet {
    return this.#store.current;
  }

  /** Decides one request whose subject is given as attributes. Never throws: every failure is a DENY. Uncached. */
  check(request: Request, options: CheckOptions = {}): Decision {
    const explain = options.explain === true;
    return evaluate(this.#store.current.tree, request, { now: options.now ?? this.#clock(), explain });
  }

  /**
   * Verifies `token` and decides `request` for the subject it carries. A
   * token that does not verify is a DENY whose reason is the token's
   * (`TOKEN_EXPIRED`, ...). Never throws. Uncached.
   *
   * @example
   * const d = await engine.checkToken(bearer, { action: 'read', resource: { type: 'document', id: 'a' } });
   */
  async checkToken(token: string, request: Omit<Request, 'subject'>, options: CheckOptions = {}): Promise<TokenDecision> {
    const now = options.now ?? this.#clock();
    const tree = this.#store.current.tree;
    const subject = this.#subjectNow({ token }, now) ?? (await this.#verify({ token }, now));
    if (!subject.ok) return { decision: 'DENY', reason: subject.reason, rules: [], revision: tree.revision, message: subject.message };
    const decision = evaluate(tree, { ...request, subject: subject.attributes }, { now, explain: options.explain === true });
    return subject.decided === undefined ? decision : { ...decision, subject: subject.decided };
  }

  /**
   * The server's path: verifies the principal, then decides through the
   * decision cache, counting and timing the decision. The policy set is taken
   * once, so the decision is made wholly on one revision. Never throws.
   */
  async decide(input: DecideInput, options: CheckOptions = {}): Promise<EngineDecision> {
    const started = performance.now();
    const now = options.now ?? this.#clock();
    const set = this.#store.current;
    const subject = this.#subjectNow(input.principal, now) ?? (await this.#verify(input.principal, now));
    return this.#decideCounted(set, subject, input, now, started);
  }

  /**
   * {@link decide} without waiting, for when the principal needs no I/O:
   * trusted subject attributes, or a token the subject cache holds (the
   * common case on a busy server). `undefined` when the token must be
   * verified first: then call {@link decide}. Saves the promise machinery on
   * the hot path. Never throws.
   *
   * @example
   * const d = engine.decideNow(input) ?? (await engine.decide(input));
   */
  decideNow(input: DecideInput, options: CheckOptions = {}): EngineDecision | undefined {
    const started = performance.now();
    const now = options.now ?? this.#clock();
    const set = this.#store.current;
    const subject = this.#subjectNow(input.principal, now);
    return subject === undefined ? undefined : this.#decideCounted(set, subject, input, now, started);
  }

  #decideCounted(set: LoadedPolicySet, subject: Subject, input: DecideInput, now: number, started: number): EngineDecision {
    const tree = set.tree;
    let out: EngineDecision;
    if (subject.ok) {
      const { decision, cached } = this.#decideOne(tree, set.schema, subject, input.action, input.resource, input.context, input.explain === true, now);
      out = engineDecision(decision, cached, subject.decided);
    } else {
      out = { decision: 'DENY', reason: subject.reason, rules: [], revision: tree.revision, message: subject.message, cached: false };
    }
    this.#count(input.api ?? 'authorizer', tree, input.resource.type, out, started);
    return out;
  }

  /** {@link decide} for many (resource, actions) items and one principal, verified once. Never throws. */
  async decideBatch(input: DecideBatchInput, options: CheckOptions = {}): Promise<BatchOutcome> {
    const now = options.now ?? this.#clock();
    const set = this.#store.current;
    const tree = set.tree;
    const started = performance.now();
    const subject = this.#subjectNow(input.principal, now) ?? (await this.#verify(input.principal, now));
    if (!subject.ok) {
      const deny: EngineDecision = { decision: 'DENY', reason: subject.reason, rules: [], revision: tree.revision, message: subject.message, cached: false };
      const results = input.items.map((item) => item.actions.map(() => deny));
      for (const item of input.items) for (const _ of item.actions) this.#count('authorizer', tree, item.resource.type, deny, started);
      return { revision: tree.revision, tokenReason: subject.reason, message: subject.message, results };
    }
    // The subject is given once, in the outcome. Decisions are shared objects (one per
    // deciding rule, see the evaluator), and so are their answers here: `answers` maps each
    // decision to its answer, cached or not, so that a batch of thousands of decisions makes a
    // handful of objects, and counts them once per distinct answer.
    const bare: Extract<Subject, { ok: true }> = subject.decided === undefined ? subject : { ok: true, attributes: subject.attributes, cacheId: subject.cacheId, notAfter: subject.notAfter };
    const answers = new Map<TokenDecision, { fresh?: BatchAnswer; cached?: BatchAnswer }>();
    const answerOf = (decision: TokenDecision, cached: boolean, type: string): EngineDecision => {
      let byDecision = answers.get(decision);
      if (byDecision === undefined) answers.set(decision, (byDecision = {}));
      let answer = cached ? byDecision.cached : byDecision.fresh;
      if (answer === undefined) {
        answer = { decision: engineDecision(decision, cached, undefined), type, n: 0, otherTypes: undefined };
        if (cached) byDecision.cached = answer;
        else byDecision.fresh = answer;
      }
      // Items of one batch are mostly of one type: count it in place, others in a map.
      if (type === answer.type) answer.n++;
      else (answer.otherTypes ??= new Map()).set(type, (answer.otherTypes.get(type) ?? 0) + 1);
      return answer.decision;
    };
    // Without a decision cache or request validation, an item's actions are evaluated together (one
    // evaluation context for all of them); otherwise each goes through #decideOne.
    const together = this.#cache === undefined && (this.#validateRequests === 'off' || set.schema === undefined);
    const decided: Decision[] = [];
    // One request object for every item (evaluateActions keeps no reference to it).
    const itemRequest: { subject: Attributes; resource: Request['resource']; context: Attributes | undefined } = { subject: bare.attributes, resource: { type: '' }, context: input.context };
    const scratch: BatchScratch = {};
    const results = input.items.map((item) => {
      if (together) {
        decided.length = 0;
        itemRequest.resource = item.resource;
        evaluateActions(tree, itemRequest, item.actions, now, decided, scratch);
        return decided.map((d) => answerOf(d, false, item.resource.type));
      }
      return item.actions.map((action) => {
        const { decision, cached } = this.#decideOne(tree, set.schema, bare, action, item.resource, input.context, false, now);
        return answerOf(decision, cached, item.resource.type);
      });
    });
    for (const byDecision of answers.values()) {
      for (const answer of [byDecision.fresh, byDecision.cached]) {
        if (answer === undefined) continue;
        this.#count('authorizer', tree, answer.type, answer.decision, started, answer.n);
        for (const [type, n] of answer.otherTypes ?? []) this.#count('authorizer', tree, type, answer.decision, started, n);
      }
    }
    return subject.decided === undefined ? { revision: tree.revision, results } : { revision: tree.revision, subject: subject.decided, results };
  }

  /** One decision through the schema check and the decision cache: the decision (shared, see the evaluator) and whether the cache gave it. */
  #decideOne(
    tree: DecisionTree,
    schema: Schema | undefined,
    subject: Extract<Subject, { ok: true }>,
    action: string,
    resource: Request['resource'],
    context: Attributes | undefined,
    explain: boolean,
    now: number,
  ): { readonly decision: TokenDecision; readonly cached: boolean } {
    const request: Request = context === undefined ? { subject: subject.attributes, action, resource } : { subject: subject.attributes, action, resource, context };
    // Before the cache: a rejected request must never be answered from it.
    const violation = this.#checkSchema(tree, schema, request);
    if (violation !== undefined) {
      const deny: TokenDecision = { decision: 'DENY', reason: ENGINE_REASONS.REQUEST_SCHEMA_VIOLATION, rules: [], revision: tree.revision, message: `request does not match the policy schema: ${violation.message}` };
      return { decision: deny, cached: false };
    }
    const cache = this.#cache;
    // Explained requests, and decisions that read the clock, are never cached.
    // A null time is an absent one to the evaluator, which then reads the clock.
    const clockBound = tree.resources.get(resource.type)?.readsClock === true && (context?.['time'] === undefined || context['time'] === null);
    if (cache === undefined || explain || clockBound) {
      if (cache !== undefined && this.#lookups !== undefined) this.#lookups.bypass.n++;
      return { decision: evaluate(tree, request, { now, explain }), cached: false };
    }
    const key = decisionKey(tree.revision, [subject.cacheId, action, resource.type, resource.id ?? null, resource.attributes ?? {}, context ?? {}]);
    const hit = cache.get(key, now);
    if (hit !== undefined) {
      if (this.#lookups !== undefined) this.#lookups.hit.n++;
      return { decision: hit, cached: true };
    }
    if (this.#lookups !== undefined) this.#lookups.miss.n++;
    const decision = evaluate(tree, request, { now, explain: false });
    if (decision.reason !== 'EVALUATION_ERROR') cache.set(key, decision, now, subject.notAfter);
    return { decision, cached: false };
  }

  /** Validates the request when configured to; returns the first violation when it must be rejected. */
  #checkSchema(tree: DecisionTree, schema: Schema | undefined, request: Request): SchemaViolation | undefined {
    const mode = this.#validateRequests;
    if (mode === 'off' || schema === undefined) return undefined;
    const violations = validateAgainstSchema(schema, request);
    const first = violations[0];
    if (first === undefined) return undefined;
    try {
      this.#onSchemaViolation?.({ mode, action: request.action, resourceType: request.resource.type, revision: tree.revision, violations });
    } catch {
      // A listener's failure must not change the decision.
    }
    return mode === 'reject' ? first : undefined;
  }

  /** The subject when it needs no I/O (trusted attributes, a token in the subject cache, no verifier); `undefined` when the token must be verified. */
  #subjectNow(principal: Principal, now: number): Subject | undefined {
    if ('subject' in principal) {
      return { ok: true, attributes: principal.subject, cacheId: ['s', principal.subject], notAfter: Number.POSITIVE_INFINITY };
    }
    if (this.#verifier === undefined) return { ok: false, reason: 'TOKEN_UNKNOWN_ISSUER', message: 'no token issuers are configured' };
    const cached = this.#verifier.verifyCached(principal.token, now);
    return cached === undefined ? undefined : subjectOf(cached);
  }

  /** The subject of a token that {@link #subjectNow} could not answer: verified. */
  async #verify(principal: Principal, now: number): Promise<Subject> {
    if ('subject' in principal || this.#verifier === undefined) return this.#subjectNow(principal, now) ?? { ok: false, reason: 'TOKEN_UNKNOWN_ISSUER', message: 'no token issuers are configured' };
    return subjectOf(await this.#verifier.verify(principal.token, now));
  }

  /** Counts `n` decisions like `d`; for a batch (n > 1 or several label sets) the duration is observed once per label set. */
  #count(api: Api, tree: DecisionTree, type: string, d: EngineDecision, started: number, n = 1): void {
    const m = this.#metrics;
    if (m === undefined) return;
    // Label sets are small and fixed (APIs × decisions × reasons × declared types); their cells are found without hashing a label object.
    const resourceType = tree.resources.has(type) ? type : '(undeclared)';
    m.decisions.cell({ api, decision: d.decision, reason: d.reason, resource_type: resourceType }).n += n;
    m.decisionDuration.cell({ api, cached: d.cached ? 'true' : 'false' }).observe((performance.now() - started) / 1000);
  }
}

/** An answer of a batch: the decision as returned, and how many of it per resource type (for metrics). */
interface BatchAnswer {
  readonly decision: EngineDecision;
  /** The first resource type it was given for, and how many times; other types in `otherTypes`. */
  readonly type: string;
  n: number;
  otherTypes: Map<string, number> | undefined;
}

/** A verification result as the engine's subject. */
function subjectOf(verified: VerifyResult): Subject {
  if (!verified.ok) {
    return verified.issuer === undefined
      ? { ok: false, reason: verified.error.code, message: verified.error.message }
      : { ok: false, reason: verified.error.code, message: verified.error.message, issuer: verified.issuer };
  }
  const s = verified.subject;
  const decided: DecidedSubject = { issuer: s.issuer, sub: s.sub, expiresAt: s.expiresAt, cached: verified.cached };
  return { ok: true, attributes: s.attributes as Attributes, cacheId: `t:${s.tokenHash}`, notAfter: s.expiresAt ?? Number.POSITIVE_INFINITY, decided };
}

/** A decision as the engine returns it. One object literal, so every answer has one shape (the hot path reads them monomorphically). */
function engineDecision(d: TokenDecision, cached: boolean, subject: DecidedSubject | undefined): EngineDecision {
  return { decision: d.decision, reason: d.reason, rules: d.rules, revision: d.revision, trace: d.trace, message: d.message, subject: subject ?? d.subject, cached };
}

/**
 * The engine: the front door that the CLI, the test runner and the server
 * call. It holds the current compiled policy set and, when issuers are
 * configured, the token verifier, and decides requests against them. Cache,
 * metrics and hot reload join here as they are built.
 */
import type { DecisionTree } from '../compile/index.js';
import { evaluate, type Decision, type Reason, type Request } from '../eval/evaluate.js';
import type { TokenReason } from '../jwt/reasons.js';
import type { TokenVerifier } from '../jwt/verify.js';
import { loadPolicySet, type LoadedPolicySet } from './policy-store.js';

/** Options of one check. */
export interface CheckOptions {
  readonly explain?: boolean;
  /** Decision time in ms since the epoch; defaults to the engine's clock. */
  readonly now?: number;
}

/** A decision reason: the evaluator's, or why the token was refused. */
export type DecisionReason = Reason | TokenReason;

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
  /** For a token refused: what was wrong with it (safe to show; never the token). */
  readonly message?: string;
  /** For a token accepted: whose it was. */
  readonly subject?: DecidedSubject;
}

export interface EngineOptions {
  readonly clock?: () => number;
  /** Verifies bearer tokens; without one every token is refused as `TOKEN_UNKNOWN_ISSUER`. */
  readonly verifier?: TokenVerifier;
}

/** Decides requests against one loaded policy set. */
export class Engine {
  readonly #set: LoadedPolicySet;
  readonly #clock: () => number;
  readonly #verifier: TokenVerifier | undefined;

  constructor(set: LoadedPolicySet, options: EngineOptions = {}) {
    this.#set = set;
    this.#clock = options.clock ?? Date.now;
    this.#verifier = options.verifier;
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

  get revision(): string {
    return this.#set.tree.revision;
  }

  get tree(): DecisionTree {
    return this.#set.tree;
  }

  get policySet(): LoadedPolicySet {
    return this.#set;
  }

  /** Decides one request whose subject is given as attributes. Never throws: every failure is a DENY. */
  check(request: Request, options: CheckOptions = {}): Decision {
    const explain = options.explain === true;
    return evaluate(this.#set.tree, request, { now: options.now ?? this.#clock(), explain });
  }

  /**
   * Verifies `token` and decides `request` for the subject it carries. A
   * token that does not verify is a DENY whose reason is the token's
   * (`TOKEN_EXPIRED`, ...). Never throws.
   *
   * @example
   * const d = await engine.checkToken(bearer, { action: 'read', resource: { type: 'document', id: 'a' } });
   */
  async checkToken(token: string, request: Omit<Request, 'subject'>, options: CheckOptions = {}): Promise<TokenDecision> {
    const now = options.now ?? this.#clock();
    const revision = this.revision;
    if (this.#verifier === undefined) {
      return { decision: 'DENY', reason: 'TOKEN_UNKNOWN_ISSUER', rules: [], revision, message: 'no token issuers are configured' };
    }
    const verified = await this.#verifier.verify(token, now);
    if (!verified.ok) {
      return { decision: 'DENY', reason: verified.error.code, rules: [], revision, message: verified.error.message };
    }
    const { subject } = verified;
    const decision = this.check({ ...request, subject: subject.attributes }, { explain: options.explain === true, now });
    return {
      ...decision,
      subject: {
        issuer: subject.issuer,
        ...(subject.sub === undefined ? {} : { sub: subject.sub }),
        ...(subject.expiresAt === undefined ? {} : { expiresAt: subject.expiresAt }),
        cached: verified.cached,
      },
    };
  }
}

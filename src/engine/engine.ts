/**
 * The engine: the front door that the CLI, the test runner and (later) the
 * server call. It holds the current compiled policy set and decides requests
 * against it. Cache, metrics and hot reload join here as they are built.
 */
import type { DecisionTree } from '../compile/index.js';
import { evaluate, type Decision, type Request } from '../eval/evaluate.js';
import { loadPolicySet, type LoadedPolicySet } from './policy-store.js';

/** Options of one check. */
export interface CheckOptions {
  readonly explain?: boolean;
  /** Decision time in ms since the epoch; defaults to the engine's clock. */
  readonly now?: number;
}

/** Decides requests against one loaded policy set. */
export class Engine {
  readonly #set: LoadedPolicySet;
  readonly #clock: () => number;

  constructor(set: LoadedPolicySet, clock: () => number = Date.now) {
    this.#set = set;
    this.#clock = clock;
  }

  /**
   * Loads and compiles the policies under `dir`.
   *
   * @throws {PolicyLoadError | CompileError}
   * @example
   * const engine = await Engine.fromDirectory('policies');
   */
  static async fromDirectory(dir: string): Promise<Engine> {
    return new Engine(await loadPolicySet(dir));
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

  /** Decides one request. Never throws: every failure is a DENY. */
  check(request: Request, options: CheckOptions = {}): Decision {
    const explain = options.explain === true;
    return evaluate(this.#set.tree, request, { now: options.now ?? this.#clock(), explain });
  }
}

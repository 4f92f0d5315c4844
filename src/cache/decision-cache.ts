/**
 * The decision cache: an LRU (lru-cache) of decisions keyed by the policy
 * revision and a canonical hash of everything the decision read. An entry
 * never outlives the token it was decided for (its `exp`) nor the configured
 * TTL; a reload changes the revision, so entries of an old policy set can
 * never be hit again (and are cleared to free memory).
 */
import { LRUCache } from 'lru-cache';

export interface DecisionCacheOptions {
  /** Most entries; 0 disables the cache. */
  readonly maxEntries: number;
  /** Longest an entry is kept, in seconds. */
  readonly ttlSeconds: number;
}

interface Entry<T> {
  readonly value: T;
  /** ms since the epoch, on the engine's clock. */
  readonly validUntil: number;
}

/** A bounded, time-limited cache of decisions. */
export class DecisionCache<T extends object> {
  readonly #lru: LRUCache<string, Entry<T>> | undefined;
  readonly #ttlMs: number;

  constructor(options: DecisionCacheOptions) {
    this.#ttlMs = options.ttlSeconds * 1000;
    this.#lru = options.maxEntries > 0 && options.ttlSeconds > 0 ? new LRUCache({ max: options.maxEntries }) : undefined;
  }

  get enabled(): boolean {
    return this.#lru !== undefined;
  }

  get size(): number {
    return this.#lru?.size ?? 0;
  }

  /** The entry for `key` if it is still valid at `now`. */
  get(key: string, now: number): T | undefined {
    const entry = this.#lru?.get(key);
    if (entry === undefined) return undefined;
    if (now >= entry.validUntil) {
      this.#lru?.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Stores `value` until the earlier of `now + ttl` and `notAfter` (a token's `exp`). */
  set(key: string, value: T, now: number, notAfter: number = Number.POSITIVE_INFINITY): void {
    if (this.#lru === undefined) return;
    const validUntil = Math.min(now + this.#ttlMs, notAfter);
    if (validUntil <= now) return;
    this.#lru.set(key, { value, validUntil });
  }

  clear(): void {
    this.#lru?.clear();
  }
}

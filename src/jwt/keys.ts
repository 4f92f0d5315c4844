/**
 * Where an issuer's verification keys come from: a JWKS file (reloaded when it
 * changes), a JWKS URL or OIDC discovery (fetched at start-up, on a refresh
 * interval and on an unknown `kid`), or an HMAC secret.
 *
 * jose does every JOSE operation: `createLocalJWKSet` selects and imports keys.
 * Fetching is our own rather than jose's `createRemoteJWKSet`, because a
 * production verifier must keep using the keys it holds when the provider is
 * down or answers garbage (jose's remote set fails verification once its cache
 * is stale and a refetch fails), must never wait for the provider on a known
 * key, and must report each refresh to logs and metrics.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, type CryptoKey, type JWTHeaderParameters } from 'jose';
import { errors as joseErrors } from 'jose';
import { TokenError } from '../errors.js';
import { watchPath, type Watcher } from '../watch/file-watch.js';
import type { IssuerOptions } from './options.js';

/** What started a key refresh. */
export type KeyTrigger = 'startup' | 'interval' | 'unknown-kid' | 'retry' | 'file-change';

/** The outcome of one attempt to load an issuer's keys. */
export interface KeyRefreshEvent {
  readonly issuer: string;
  readonly trigger: KeyTrigger;
  /** `updated`: a different key set is now used; `unchanged`: same keys; `failed`: the held keys (if any) stay in use. */
  readonly outcome: 'updated' | 'unchanged' | 'failed';
  /** Keys held after the attempt. */
  readonly keyCount: number;
  /** Why it failed (no secrets, no tokens). */
  readonly detail?: string;
}

/** A verification key as jose takes it. */
export type VerificationKey = CryptoKey | Uint8Array;

/** Runtime hooks of a key source. */
export interface KeySourceRuntime {
  /** Monotonic milliseconds, for cooldowns. */
  readonly monotonic: () => number;
  readonly onRefresh: (event: KeyRefreshEvent) => void;
  /** Called after the key set changed (a rotation), so cached subjects can be dropped. */
  readonly onRotate: () => void;
  readonly filePollMs: number;
}

/** An issuer's keys. */
export interface KeySource {
  /** Loads the keys once. A file that cannot be read is an error; a provider that is down is not. */
  start(): Promise<void>;
  /**
   * The key for a token header. Throws `TokenError` (`TOKEN_KEYS_UNAVAILABLE`),
   * or jose's `JWKSNoMatchingKey` / `JWKSMultipleMatchingKeys`.
   */
  getKey(header: JWTHeaderParameters): Promise<VerificationKey>;
  /** Keys currently held. */
  readonly keyCount: number;
  close(): void;
}

/** Most keys accepted in one JWKS. */
export const MAX_JWKS_KEYS = 100;
/** Largest JWKS or discovery document read. */
export const MAX_KEY_DOCUMENT_BYTES = 1024 * 1024;

/** Private-key members of a JWK (RFC 7518 §6): a JWKS carrying any is refused. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];

/**
 * Creates the key source an issuer's config names.
 *
 * @example
 * const source = createKeySource(issuer, runtime); await source.start();
 */
export function createKeySource(issuer: IssuerOptions, runtime: KeySourceRuntime): KeySource {
  switch (issuer.keys.kind) {
    case 'secret':
      return new SecretSource(issuer.keys.secret);
    case 'jwks_file':
      return new JwksFileSource(issuer, issuer.keys.path, runtime);
    case 'jwks_url':
    case 'discovery':
      return new RemoteJwksSource(issuer, runtime);
    case 'jwks':
      return new InlineJwksSource(issuer.keys.jwks);
  }
}

class InlineJwksSource implements KeySource {
  readonly #holder = new JwksHolder();
  readonly #jwks: unknown;
  constructor(jwks: unknown) {
    this.#jwks = jwks;
  }
  async start(): Promise<void> {
    this.#holder.accept(this.#jwks);
  }
  getKey(header: JWTHeaderParameters): Promise<VerificationKey> {
    return this.#holder.getKey(header);
  }
  get keyCount(): number {
    return this.#holder.count;
  }
  close(): void {}
}

class SecretSource implements KeySource {
  readonly #secret: Uint8Array;
  constructor(secret: Uint8Array) {
    this.#secret = secret;
  }
  async start(): Promise<void> {}
  async getKey(): Promise<VerificationKey> {
    return this.#secret;
  }
  get keyCount(): number {
    return 1;
  }
  close(): void {}
}

/** The key set currently in use, replaced whole by a newer valid one. */
class JwksHolder {
  #select: ReturnType<typeof createLocalJWKSet> | undefined;
  #fingerprint: string | undefined;
  #count = 0;

  get count(): number {
    return this.#count;
  }

  /** Validates and installs `doc`. Throws an `Error` saying what is wrong; the held set is then kept. */
  accept(doc: unknown): 'updated' | 'unchanged' {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('JWKS is not a JSON object');
    const keys = (doc as { keys?: unknown }).keys;
    if (!Array.isArray(keys)) throw new Error('JWKS has no `keys` list');
    if (keys.length === 0) throw new Error('JWKS has no keys');
    if (keys.length > MAX_JWKS_KEYS) throw new Error(`JWKS has more than ${MAX_JWKS_KEYS} keys`);
    for (const [i, key] of keys.entries()) {
      if (key === null || typeof key !== 'object' || Array.isArray(key)) throw new Error(`JWKS key ${i} is not an object`);
      if (PRIVATE_MEMBERS.some((m) => Object.hasOwn(key, m))) throw new Error(`JWKS key ${i} contains private or symmetric key material`);
    }
    let select;
    try {
      select = createLocalJWKSet({ keys } as Parameters<typeof createLocalJWKSet>[0]);
    } catch (e) {
      throw new Error(`JWKS is malformed: ${(e as Error).message}`);
    }
    const fingerprint = createHash('sha256').update(JSON.stringify(keys)).digest('hex');
    if (fingerprint === this.#fingerprint) return 'unchanged';
    this.#select = select;
    this.#fingerprint = fingerprint;
    this.#count = keys.length;
    return 'updated';
  }

  async getKey(header: JWTHeaderParameters): Promise<VerificationKey> {
    if (this.#select === undefined) throw new TokenError('TOKEN_KEYS_UNAVAILABLE', "the issuer's keys have not been loaded");
    return this.#select(header);
  }
}

class JwksFileSource implements KeySource {
  readonly #holder = new JwksHolder();
  readonly #issuer: IssuerOptions;
  readonly #path: string;
  readonly #runtime: KeySourceRuntime;
  #lastBytes: string | undefined;
  #watcher: Watcher | undefined;

  constructor(issuer: IssuerOptions, path: string, runtime: KeySourceRuntime) {
    this.#issuer = issuer;
    this.#path = path;
    this.#runtime = runtime;
  }

  get keyCount(): number {
    return this.#holder.count;
  }

  async start(): Promise<void> {
    const text = await readFile(this.#path, 'utf8');
    if (text.length > MAX_KEY_DOCUMENT_BYTES) throw new Error(`JWKS file is larger than ${MAX_KEY_DOCUMENT_BYTES} bytes`);
    this.#lastBytes = text;
    this.#holder.accept(parseJson(text));
    this.#runtime.onRefresh({ issuer: this.#issuer.name, trigger: 'startup', outcome: 'updated', keyCount: this.#holder.count });
    this.#watcher = watchPath(this.#path, () => this.#reload(), { pollMs: this.#runtime.filePollMs });
  }

  async #reload(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (e) {
      this.#failed(`cannot read ${this.#path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    if (text === this.#lastBytes) return;
    this.#lastBytes = text;
    try {
      if (text.length > MAX_KEY_DOCUMENT_BYTES) throw new Error(`JWKS file is larger than ${MAX_KEY_DOCUMENT_BYTES} bytes`);
      const outcome = this.#holder.accept(parseJson(text));
      this.#runtime.onRefresh({ issuer: this.#issuer.name, trigger: 'file-change', outcome, keyCount: this.#holder.count });
      if (outcome === 'updated') this.#runtime.onRotate();
    } catch (e) {
      this.#failed((e as Error).message);
    }
  }

  #failed(detail: string): void {
    this.#runtime.onRefresh({ issuer: this.#issuer.name, trigger: 'file-change', outcome: 'failed', keyCount: this.#holder.count, detail });
  }

  getKey(header: JWTHeaderParameters): Promise<VerificationKey> {
    return this.#holder.getKey(header);
  }

  close(): void {
    this.#watcher?.close();
  }
}

class RemoteJwksSource implements KeySource {
  readonly #holder = new JwksHolder();
  readonly #issuer: IssuerOptions;
  readonly #runtime: KeySourceRuntime;
  #jwksUri: string | undefined;
  #lastAttempt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(issuer: IssuerOptions, runtime: KeySourceRuntime) {
    this.#issuer = issuer;
    this.#runtime = runtime;
    if (issuer.keys.kind === 'jwks_url') this.#jwksUri = issuer.keys.url;
  }

  get keyCount(): number {
    return this.#holder.count;
  }

  async start(): Promise<void> {
    await this.#refresh('startup');
    if (this.#closed) return;
    this.#timer = setInterval(() => void this.#refresh('interval'), this.#issuer.refreshIntervalSeconds * 1000);
    this.#timer.unref();
  }

  async getKey(header: JWTHeaderParameters): Promise<VerificationKey> {
    if (this.#holder.count === 0) {
      // Never loaded: the provider was down at start-up. Join a fetch under way, or try again once the cooldown is over.
      if (this.#inflight !== undefined) await this.#inflight;
      else if (this.#cooldownOver()) await this.#refresh('retry');
      return this.#holder.getKey(header);
    }
    try {
      return await this.#holder.getKey(header);
    } catch (e) {
      if (!(e instanceof joseErrors.JWKSNoMatchingKey)) throw e;
      // A refetch under way may bring the key (a rotation seen by a burst of tokens): wait for it.
      if (this.#inflight !== undefined) await this.#inflight;
      else if (this.#cooldownOver()) await this.#refresh('unknown-kid');
      else throw e;
      return this.#holder.getKey(header);
    }
  }

  #cooldownOver(): boolean {
    return this.#runtime.monotonic() - this.#lastAttempt >= this.#issuer.unknownKidCooldownSeconds * 1000;
  }

  /** One fetch at a time: concurrent callers share it. */
  #refresh(trigger: KeyTrigger): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight;
    this.#lastAttempt = this.#runtime.monotonic();
    this.#inflight = this.#fetchAndInstall(trigger).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #fetchAndInstall(trigger: KeyTrigger): Promise<void> {
    const name = this.#issuer.name;
    try {
      if (this.#issuer.keys.kind === 'discovery' && (this.#jwksUri === undefined || trigger === 'interval')) {
        this.#jwksUri = await this.#discover(this.#issuer.keys.url);
      }
      const uri = this.#jwksUri;
      if (uri === undefined) throw new Error('no JWKS URI');
      const hadKeys = this.#holder.count > 0;
      const outcome = this.#holder.accept(await fetchJson(uri, this.#issuer.fetchTimeoutSeconds * 1000));
      this.#runtime.onRefresh({ issuer: name, trigger, outcome, keyCount: this.#holder.count });
      if (outcome === 'updated' && hadKeys) this.#runtime.onRotate();
    } catch (e) {
      this.#runtime.onRefresh({ issuer: name, trigger, outcome: 'failed', keyCount: this.#holder.count, detail: (e as Error).message });
    }
  }

  async #discover(url: string): Promise<string> {
    const doc = await fetchJson(url, this.#issuer.fetchTimeoutSeconds * 1000);
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('discovery document is not a JSON object');
    const { issuer, jwks_uri: jwksUri } = doc as { issuer?: unknown; jwks_uri?: unknown };
    // OpenID Connect Discovery 1.0 §4.3: the document must name the issuer it was fetched for.
    if (issuer !== this.#issuer.issuer) throw new Error(`discovery document names issuer ${JSON.stringify(String(issuer))}, not ${JSON.stringify(this.#issuer.issuer)}`);
    if (typeof jwksUri !== 'string') throw new Error('discovery document has no `jwks_uri`');
    const problem = checkKeyUrl(jwksUri, this.#issuer.allowInsecureHttp);
    if (problem !== undefined) throw new Error(`discovery document's jwks_uri ${problem}`);
    return jwksUri;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}

/**
 * Why a key URL is not acceptable, or `undefined` when it is: https, or http
 * to a loopback host, or any http when explicitly allowed.
 */
export function checkKeyUrl(url: string, allowInsecureHttp: boolean): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (parsed.username !== '' || parsed.password !== '') return 'must not carry credentials';
  if (parsed.protocol === 'https:') return undefined;
  if (parsed.protocol !== 'http:') return 'must be an https URL';
  if (allowInsecureHttp || ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname)) return undefined;
  return 'must be https (set `allow_insecure_http: true` to accept plain http)';
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error('not valid JSON');
  }
}

/** GETs a JSON document, bounded in time and size. */
async function fetchJson(url: string, timeoutMs: number): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    throw new Error(`GET ${url} failed: ${cause ?? (e as Error).name}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`GET ${url} answered HTTP ${res.status}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  for (;;) {
    if (reader === undefined) break;
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_KEY_DOCUMENT_BYTES) {
      await reader.cancel().catch(() => {});
      throw new Error(`GET ${url} answered more than ${MAX_KEY_DOCUMENT_BYTES} bytes`);
    }
    chunks.push(value);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new Error(`GET ${url} did not answer valid JSON`);
  }
}

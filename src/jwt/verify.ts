/**
 * The token verifier: raw bearer token in, verified subject (or a stable
 * reason code) out. jose does the JOSE work; this file decides the order of
 * the checks, so that each rejection has its own reason:
 *
 * 1. size, then structure (jose's decoders) — before any key is touched;
 * 2. `alg: none`, `crit`, the issuer (from the unverified `iss`, only to pick
 *    its keys and rules), then the algorithm against that issuer's allow-list
 *    (an HMAC algorithm for an asymmetric issuer is algorithm confusion);
 * 3. signature, `iss`, `aud`, `exp`, `nbf`, maximum age and required claims
 *    (jose's `jwtVerify`, with our clock and tolerance); `iat` in the future;
 * 4. the revocation list; then the claim mapping.
 *
 * `verify` never throws: every failure is `{ ok: false, error }`, which the
 * engine turns into a DENY. Verified subjects are cached by a hash of the
 * token until the earliest of `exp`, the maximum age and the cache TTL; the
 * cache is dropped for an issuer whose keys rotate and whole when the
 * revocation list changes.
 */
import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyOptions, type ProtectedHeaderParameters } from 'jose';
import { TokenError } from '../errors.js';
import { mapClaims, type SubjectAttributes } from './claims.js';
import { createKeySource, type KeyRefreshEvent, type KeySource, type VerificationKey } from './keys.js';
import { isHmacAlgorithm, VERIFIER_DEFAULTS, type IssuerOptions, type VerifierOptions } from './options.js';
import { TOKEN_REASONS, type TokenReason } from './reasons.js';
import { EMPTY_REVOCATION_LIST, isRevoked, RevocationSource, type RevocationReloadEvent } from './revocation.js';

/** A subject built from a verified token. */
export interface VerifiedSubject {
  /** `subject` as policies see it. */
  readonly attributes: SubjectAttributes;
  /** The configured name of the issuer that signed it. */
  readonly issuer: string;
  readonly sub?: string;
  /** The token's `exp` in ms since the epoch: nothing decided from it may be reused past this. */
  readonly expiresAt?: number;
  /** SHA-256 of the token, base64url: safe to log and to key caches with. */
  readonly tokenHash: string;
}

export type VerifyResult =
  | { readonly ok: true; readonly subject: VerifiedSubject; readonly cached: boolean }
  | { readonly ok: false; readonly error: TokenError & { readonly code: TokenReason }; readonly issuer?: string };

/** What the verifier reports as it runs: wire these to logs and metrics. */
export interface VerifierEvents {
  onKeyRefresh?(event: KeyRefreshEvent): void;
  onRevocationReload?(event: RevocationReloadEvent): void;
  onVerified?(issuer: string, cached: boolean): void;
  onRejected?(reason: TokenReason, issuer: string | undefined): void;
}

export interface VerifierRuntime {
  /** Wall clock, ms since the epoch (token times are checked against it). */
  readonly clock?: () => number;
  /** Monotonic ms, for refetch cooldowns. */
  readonly monotonic?: () => number;
  readonly events?: VerifierEvents;
}

interface Issuer {
  readonly options: IssuerOptions;
  readonly source: KeySource;
  readonly verifyOptions: JWTVerifyOptions;
}

interface CacheEntry {
  readonly subject: VerifiedSubject;
  readonly validUntil: number;
}

/** Verifies bearer tokens against the configured issuers. */
export class TokenVerifier {
  readonly #byIss: ReadonlyMap<string, Issuer>;
  readonly #options: VerifierOptions;
  readonly #clock: () => number;
  readonly #events: VerifierEvents;
  readonly #cache: LRUCache<string, CacheEntry> | undefined;
  #revocation: RevocationSource | undefined;

  private constructor(options: VerifierOptions, runtime: VerifierRuntime) {
    this.#options = options;
    this.#clock = runtime.clock ?? Date.now;
    this.#events = runtime.events ?? {};
    this.#cache = options.cache.maxEntries > 0 && options.cache.ttlSeconds > 0 ? new LRUCache({ max: options.cache.maxEntries }) : undefined;
    const monotonic = runtime.monotonic ?? (() => performance.now());
    const byIss = new Map<string, Issuer>();
    for (const issuer of options.issuers) {
      const source = createKeySource(issuer, {
        monotonic,
        filePollMs: options.filePollSeconds * 1000,
        onRefresh: (e) => this.#events.onKeyRefresh?.(e),
        onRotate: () => this.#dropIssuer(issuer.name),
      });
      byIss.set(issuer.issuer, {
        options: issuer,
        source,
        verifyOptions: {
          issuer: issuer.issuer,
          audience: [...issuer.audiences],
          algorithms: [...issuer.algorithms],
          clockTolerance: issuer.clockToleranceSeconds,
          requiredClaims: [...issuer.requiredClaims],
          ...(issuer.maxTokenAgeSeconds === undefined ? {} : { maxTokenAge: issuer.maxTokenAgeSeconds }),
        },
      });
    }
    this.#byIss = byIss;
  }

  /**
   * Creates a verifier and loads every issuer's keys and the revocation list.
   * A provider that is down does not fail this (its tokens are denied with
   * `TOKEN_KEYS_UNAVAILABLE` until its keys load); a JWKS or revocation file
   * that cannot be read does.
   *
   * @throws {ConfigError | Error} when a file named in the options cannot be loaded
   * @example
   * const verifier = await TokenVerifier.create(config.jwt);
   * const result = await verifier.verify(token);
   */
  static async create(options: VerifierOptions, runtime: VerifierRuntime = {}): Promise<TokenVerifier> {
    const verifier = new TokenVerifier(options, runtime);
    try {
      if (options.revocationFile !== undefined) {
        verifier.#revocation = await RevocationSource.open(
          options.revocationFile,
          (e) => {
            verifier.#cache?.clear();
            verifier.#events.onRevocationReload?.(e);
          },
          options.filePollSeconds * 1000,
        );
        verifier.#events.onRevocationReload?.({ outcome: 'updated', entries: verifier.#revocation.list.size });
      }
      await Promise.all([...verifier.#byIss.values()].map((i) => i.source.start()));
    } catch (e) {
      verifier.close();
      throw e;
    }
    return verifier;
  }

  /** Issuer names and how many keys each holds (for readiness and `arbiter check`). */
  get issuers(): { name: string; issuer: string; keyCount: number }[] {
    return [...this.#byIss.values()].map((i) => ({ name: i.options.name, issuer: i.options.issuer, keyCount: i.source.keyCount }));
  }

  /**
   * The subject cache's answer for `token` as of `now`, without verifying
   * anything: `undefined` when it holds none (then call {@link verify}, which
   * also refuses what is malformed). Synchronous, for the hot path.
   *
   * @example
   * const r = verifier.verifyCached(bearer, now) ?? (await verifier.verify(bearer, now));
   */
  verifyCached(token: unknown, now: number = this.#clock()): VerifyResult | undefined {
    if (this.#cache === undefined || typeof token !== 'string' || token === '' || token.length > this.#options.maxTokenBytes) return undefined;
    return this.#cacheHit(hashToken(token), now);
  }

  #cacheHit(tokenHash: string, now: number): VerifyResult | undefined {
    const hit = this.#cache?.get(tokenHash);
    if (hit === undefined || now >= hit.validUntil) return undefined;
    this.#events.onVerified?.(hit.subject.issuer, true);
    return { ok: true, subject: hit.subject, cached: true };
  }

  /**
   * Verifies `token` as of `now` (ms since the epoch). Never throws.
   *
   * @example
   * const r = await verifier.verify(bearer);
   * if (!r.ok) deny(r.error.code); else decide(r.subject.attributes);
   */
  async verify(token: unknown, now: number = this.#clock()): Promise<VerifyResult> {
    let issuerName: string | undefined;
    try {
      if (typeof token !== 'string' || token === '') throw reject('TOKEN_MISSING');
      if (token.length > this.#options.maxTokenBytes || Buffer.byteLength(token, 'utf8') > this.#options.maxTokenBytes) {
        throw reject('TOKEN_TOO_LARGE', `token is longer than ${this.#options.maxTokenBytes} bytes`);
      }
      const tokenHash = hashToken(token);
      const hit = this.#cacheHit(tokenHash, now);
      if (hit !== undefined) return hit;
      const { header, claims } = decode(token);
      const issuer = this.#pickIssuer(header, claims);
      issuerName = issuer.options.name;
      this.#checkAlgorithm(header, issuer);
      const payload = await this.#verifySignatureAndClaims(token, issuer, now);
      const subject = this.#buildSubject(payload, issuer, tokenHash, now);
      this.#events.onVerified?.(issuer.options.name, false);
      return { ok: true, subject, cached: false };
    } catch (e) {
      const error = toTokenError(e);
      this.#events.onRejected?.(error.code, issuerName);
      return issuerName === undefined ? { ok: false, error } : { ok: false, error, issuer: issuerName };
    }
  }

  #pickIssuer(header: ProtectedHeaderParameters, claims: JWTPayload): Issuer {
    const alg = header.alg;
    if (typeof alg !== 'string' || alg === '') throw reject('TOKEN_MALFORMED', 'token header has no `alg`');
    if (alg.toLowerCase() === 'none') throw reject('TOKEN_ALG_NONE');
    // Arbiter understands no extension headers, so any `crit` is refused (RFC 7515 §4.1.11).
    if (header.crit !== undefined) throw reject('TOKEN_UNSUPPORTED_CRIT');
    const iss = claims.iss;
    const issuer = typeof iss === 'string' ? this.#byIss.get(iss) : undefined;
    if (issuer === undefined) throw reject('TOKEN_UNKNOWN_ISSUER', typeof iss === 'string' ? 'issuer is not one of the configured issuers' : 'token has no `iss` claim');
    return issuer;
  }

  #checkAlgorithm(header: ProtectedHeaderParameters, issuer: Issuer): void {
    const alg = header.alg as string;
    if (isHmacAlgorithm(alg) && issuer.options.keys.kind !== 'secret') throw reject('TOKEN_ALG_CONFUSION', `\`${alg}\` token for issuer \`${issuer.options.name}\`, whose keys are asymmetric`);
    if (!(issuer.options.algorithms as readonly string[]).includes(alg)) throw reject('TOKEN_ALG_NOT_ALLOWED', `algorithm \`${safeName(alg)}\` is not allowed for issuer \`${issuer.options.name}\``);
  }

  async #verifySignatureAndClaims(token: string, issuer: Issuer, now: number): Promise<JWTPayload> {
    const options: JWTVerifyOptions = { ...issuer.verifyOptions, currentDate: new Date(now) };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, (header) => issuer.source.getKey(header), options));
    } catch (e) {
      // A JWKS with several keys that fit a token without `kid`: try each (jose's documented pattern).
      if (!(e instanceof joseErrors.JWKSMultipleMatchingKeys)) throw e;
      payload = await verifyWithAny(token, e as unknown as AsyncIterable<VerificationKey>, options);
    }
    // RFC 7519 §4.1.2, §4.1.7: `sub` and `jti` are strings. jose does not check them, and one of
    // another type would slip past the revocation list (whose entries are strings).
    for (const claim of ['sub', 'jti'] as const) {
      if (payload[claim] !== undefined && typeof payload[claim] !== 'string') throw reject('TOKEN_INVALID_CLAIM', `claim \`${claim}\` must be a string`);
    }
    // jose checks `iat` against the clock only when a maximum age is set.
    if (typeof payload.iat === 'number' && payload.iat * 1000 > now + issuer.options.clockToleranceSeconds * 1000) throw reject('TOKEN_ISSUED_IN_FUTURE');
    if (this.#revocation !== undefined && isRevoked(this.#revocation.list, payload)) throw reject('TOKEN_REVOKED');
    return payload;
  }

  #buildSubject(payload: JWTPayload, issuer: Issuer, tokenHash: string, now: number): VerifiedSubject {
    const attributes = mapClaims(payload, issuer.options.claims);
    const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
    const subject: VerifiedSubject = {
      attributes,
      issuer: issuer.options.name,
      ...(typeof payload.sub === 'string' ? { sub: payload.sub } : {}),
      ...(expiresAt === undefined ? {} : { expiresAt }),
      tokenHash,
    };
    if (this.#cache !== undefined) {
      let validUntil = Math.min(now + this.#options.cache.ttlSeconds * 1000, expiresAt ?? Number.POSITIVE_INFINITY);
      const max = issuer.options.maxTokenAgeSeconds;
      if (max !== undefined && typeof payload.iat === 'number') validUntil = Math.min(validUntil, (payload.iat + max) * 1000);
      if (validUntil > now) this.#cache.set(tokenHash, { subject, validUntil });
    }
    return subject;
  }

  #dropIssuer(name: string): void {
    if (this.#cache === undefined) return;
    for (const [key, entry] of this.#cache.entries()) {
      if (entry.subject.issuer === name) this.#cache.delete(key);
    }
  }

  /** Stops refresh timers and file watchers. */
  close(): void {
    for (const issuer of this.#byIss.values()) issuer.source.close();
    this.#revocation?.close();
  }

  /** The revocation list in force (empty when none is configured). */
  get revocationEntries(): number {
    return (this.#revocation?.list ?? EMPTY_REVOCATION_LIST).size;
  }
}

function reject(code: TokenReason, message: string = TOKEN_REASONS[code]): TokenError & { code: TokenReason } {
  return new TokenError(code, message) as TokenError & { code: TokenReason };
}

/** Header and claims, decoded by jose without verification, only to choose the issuer. */
/**
 * The JWS compact serialisation's alphabet (RFC 7515 §7.1, base64url without
 * padding, RFC 7515 §2). jose's decoder also accepts `=` padding and skips
 * white space, which would let one token be spelled many ways (each missing the
 * cache and costing a signature check); this structural check refuses them
 * before anything is decoded. jose still does all the decoding.
 */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function decode(token: string): { header: ProtectedHeaderParameters; claims: JWTPayload } {
  if (!COMPACT_JWS.test(token)) throw new TokenError('TOKEN_MALFORMED', TOKEN_REASONS.TOKEN_MALFORMED);
  try {
    // decodeJwt insists on three parts, base64url and a JSON object payload.
    const claims = decodeJwt(token);
    const header = decodeProtectedHeader(token);
    return { header, claims };
  } catch (e) {
    throw new TokenError('TOKEN_MALFORMED', TOKEN_REASONS.TOKEN_MALFORMED, { cause: e });
  }
}

async function verifyWithAny(token: string, keys: AsyncIterable<VerificationKey>, options: JWTVerifyOptions): Promise<JWTPayload> {
  for await (const key of keys) {
    try {
      return (await jwtVerify(token, key, options)).payload;
    } catch (e) {
      if (!(e instanceof joseErrors.JWSSignatureVerificationFailed)) throw e;
    }
  }
  throw new joseErrors.JWSSignatureVerificationFailed();
}

/** An algorithm name as it may appear in a message: short and plain, or not at all. */
function safeName(s: string): string {
  return /^[A-Za-z0-9_-]{1,32}$/.test(s) ? s : '(invalid)';
}

/** jose's errors → our reason codes. Anything unrecognised fails closed as `TOKEN_VERIFICATION_ERROR`. */
function toTokenError(e: unknown): TokenError & { code: TokenReason } {
  if (e instanceof TokenError && Object.hasOwn(TOKEN_REASONS, e.code)) return e as TokenError & { code: TokenReason };
  const wrap = (code: TokenReason, message: string = TOKEN_REASONS[code]): TokenError & { code: TokenReason } =>
    new TokenError(code, message, { cause: e }) as TokenError & { code: TokenReason };
  if (e instanceof joseErrors.JWTExpired) return e.claim === 'iat' ? wrap('TOKEN_TOO_OLD') : wrap('TOKEN_EXPIRED');
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = safeName(e.claim);
    if (e.reason === 'missing') return wrap('TOKEN_MISSING_CLAIM', `required claim \`${claim}\` is missing`);
    if (e.reason !== 'check_failed') return wrap('TOKEN_INVALID_CLAIM', `claim \`${claim}\` has the wrong type`);
    switch (e.claim) {
      case 'aud':
        return wrap('TOKEN_WRONG_AUDIENCE');
      case 'nbf':
        return wrap('TOKEN_NOT_YET_VALID');
      case 'iat':
        return wrap('TOKEN_ISSUED_IN_FUTURE');
      case 'iss':
        return wrap('TOKEN_UNKNOWN_ISSUER');
      default:
        return wrap('TOKEN_INVALID_CLAIM', `claim \`${claim}\` is not valid`);
    }
  }
  if (e instanceof joseErrors.JWKSNoMatchingKey) return wrap('TOKEN_UNKNOWN_KID');
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return wrap('TOKEN_INVALID_SIGNATURE');
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return wrap('TOKEN_ALG_NOT_ALLOWED');
  if (e instanceof joseErrors.JWTInvalid || e instanceof joseErrors.JWSInvalid) return wrap('TOKEN_MALFORMED');
  return wrap('TOKEN_VERIFICATION_ERROR');
}

export { VERIFIER_DEFAULTS };

/** SHA-256 of a token, base64url: the subject cache's key (the token itself is never kept). */
function hashToken(token: string): string {
  return hash('sha256', token, 'base64url');
}

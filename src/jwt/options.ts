/**
 * What the verifier is configured with. `config/` reads these from YAML; the
 * verifier itself never reads files it was not pointed at here.
 */

/** Asymmetric algorithms an issuer accepts when its config names none. */
export const DEFAULT_ASYMMETRIC_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
/** Algorithms an issuer configured with a secret accepts when its config names none. */
export const DEFAULT_HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
/** Every algorithm Arbiter can be configured to accept. */
export const SUPPORTED_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
  'HS256', 'HS384', 'HS512',
] as const;
export type Algorithm = (typeof SUPPORTED_ALGORITHMS)[number];

/** Whether `alg` is an HMAC (symmetric) algorithm. */
export function isHmacAlgorithm(alg: string): boolean {
  return alg === 'HS256' || alg === 'HS384' || alg === 'HS512';
}

/** Where an issuer's verification keys come from: exactly one per issuer. */
export type KeySourceOptions =
  | { readonly kind: 'jwks_file'; readonly path: string }
  | { readonly kind: 'jwks_url'; readonly url: string }
  | { readonly kind: 'discovery'; readonly url: string }
  /** A key set given in memory (the test runner's ephemeral keys); never read from config. */
  | { readonly kind: 'jwks'; readonly jwks: unknown }
  /** The secret's bytes, already read from a file or an environment variable. */
  | { readonly kind: 'secret'; readonly secret: Uint8Array; readonly origin: string };

/** A claim path: the claim's name then the keys below it, each taken literally. */
export type ClaimPath = readonly string[];

/** How claims become subject attributes. */
export interface ClaimMapping {
  /** Claims whose values (a string or list of strings) are the subject's roles. */
  readonly roles: readonly ClaimPath[];
  /** Removed from the start of each role (`ROLE_` for `ROLE_ADMIN`). */
  readonly stripPrefix?: string;
  /** Exact renames, applied to the role as it appears in the token, before prefix stripping. */
  readonly rename: ReadonlyMap<string, string>;
  /** Lower-case every role after stripping. */
  readonly lowercase: boolean;
  /** Claims read as space-separated strings or lists of strings into `subject.scopes`. */
  readonly scopes: readonly ClaimPath[];
  /** Named subject attributes taken from claims (`email: [email]`). */
  readonly attributes: ReadonlyMap<string, ClaimPath>;
}

/** One trusted issuer. */
export interface IssuerOptions {
  /** Short name used in logs, metrics labels and the decision log. */
  readonly name: string;
  /** The exact `iss` value. */
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly algorithms: readonly Algorithm[];
  readonly keys: KeySourceOptions;
  /** Seconds of leeway on `exp`, `nbf` and `iat`. */
  readonly clockToleranceSeconds: number;
  /** Oldest accepted `iat`, in seconds; no bound when absent. */
  readonly maxTokenAgeSeconds?: number;
  readonly requiredClaims: readonly string[];
  readonly claims: ClaimMapping;
  /** Seconds between scheduled refreshes of a remote key set. */
  readonly refreshIntervalSeconds: number;
  /** Least seconds between two refetches caused by unknown `kid`s. */
  readonly unknownKidCooldownSeconds: number;
  /** Seconds a fetch from the provider may take. */
  readonly fetchTimeoutSeconds: number;
  /** Allow `http:` key URLs to hosts other than loopback. */
  readonly allowInsecureHttp: boolean;
}

/** Subject cache bounds. */
export interface SubjectCacheOptions {
  readonly maxEntries: number;
  /** Longest a verified subject is reused, in seconds; never past the token's `exp`. */
  readonly ttlSeconds: number;
}

/** The whole `jwt` section. */
export interface VerifierOptions {
  readonly issuers: readonly IssuerOptions[];
  readonly maxTokenBytes: number;
  readonly cache: SubjectCacheOptions;
  /** A revocation list file, reloaded when it changes. */
  readonly revocationFile?: string;
  /** Seconds between polls of watched files (a backstop for file-system events). */
  readonly filePollSeconds: number;
}

export const VERIFIER_DEFAULTS = {
  maxTokenBytes: 16 * 1024,
  clockToleranceSeconds: 30,
  requiredClaims: ['sub', 'exp'],
  refreshIntervalSeconds: 600,
  unknownKidCooldownSeconds: 30,
  fetchTimeoutSeconds: 5,
  cacheMaxEntries: 10_000,
  cacheTtlSeconds: 300,
  filePollSeconds: 10,
  /** Smallest HMAC secret accepted, in bytes (RFC 7518 §3.2: at least the hash size). */
  minSecretBytes: 32,
} as const;

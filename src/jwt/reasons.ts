/**
 * Why a token was rejected: one stable code per failure, returned as the
 * decision's `reason` (the decision is always DENY), counted in metrics and
 * listed in the README. Codes are never renamed; new failures get new codes.
 */
export const TOKEN_REASONS = {
  /** No token was given where one is required. */
  TOKEN_MISSING: 'no bearer token was given',
  /** Longer than the configured bound (16 KiB by default), rejected before decoding. */
  TOKEN_TOO_LARGE: 'token is larger than the configured maximum',
  /** Not three dot-separated parts, bad base64url, or a header or payload that is not a JSON object. */
  TOKEN_MALFORMED: 'token is not a well-formed JWS compact serialisation',
  /** `alg: none`: an unsigned token. */
  TOKEN_ALG_NONE: 'unsigned tokens (`alg: none`) are never accepted',
  /** An HMAC algorithm for an issuer whose keys are asymmetric (the public key used as an HMAC secret). */
  TOKEN_ALG_CONFUSION: 'symmetric algorithm for an issuer with asymmetric keys',
  /** An algorithm outside the issuer's allow-list. */
  TOKEN_ALG_NOT_ALLOWED: 'algorithm is not allowed for this issuer',
  /** A `crit` header names an extension Arbiter does not understand. */
  TOKEN_UNSUPPORTED_CRIT: 'token has a critical header extension that is not understood',
  /** `iss` is missing or names no configured issuer. */
  TOKEN_UNKNOWN_ISSUER: 'issuer is not trusted',
  /** The issuer's keys have never been loaded (provider down since start-up). */
  TOKEN_KEYS_UNAVAILABLE: "the issuer's keys are not available",
  /** No key of the issuer matches the token's `kid` (after a refetch, within its cooldown). */
  TOKEN_UNKNOWN_KID: 'no key of the issuer matches the token',
  /** The signature does not verify with the issuer's key. */
  TOKEN_INVALID_SIGNATURE: 'signature is not valid',
  /** `exp` is in the past (beyond the clock tolerance). */
  TOKEN_EXPIRED: 'token has expired',
  /** `nbf` is in the future (beyond the clock tolerance). */
  TOKEN_NOT_YET_VALID: 'token is not valid yet',
  /** `iat` is in the future (beyond the clock tolerance). */
  TOKEN_ISSUED_IN_FUTURE: 'token is issued in the future',
  /** `iat` is older than the issuer's maximum token age. */
  TOKEN_TOO_OLD: 'token is older than the maximum token age',
  /** None of the token's audiences is one of the issuer's. */
  TOKEN_WRONG_AUDIENCE: 'token is not meant for this audience',
  /** A claim the issuer requires is absent. */
  TOKEN_MISSING_CLAIM: 'a required claim is missing',
  /** A registered claim of the wrong type (`exp` not a number), or a mapped claim of the wrong shape (roles not a list of strings). */
  TOKEN_INVALID_CLAIM: 'a claim has the wrong type',
  /** The token's `jti`, or its subject before a cut-off time, is on the revocation list. */
  TOKEN_REVOKED: 'token has been revoked',
  /** Any other failure while verifying: the decision fails closed. */
  TOKEN_VERIFICATION_ERROR: 'token could not be verified',
} as const;

export type TokenReason = keyof typeof TOKEN_REASONS;

/** Every token reason code, in the order above. */
export const TOKEN_REASON_CODES = Object.keys(TOKEN_REASONS) as TokenReason[];

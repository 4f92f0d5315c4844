/**
 * Wiring of the verifier's events to log lines and metrics. The verifier
 * reports; the engine decides where reports go.
 */
import type { VerifierEvents } from '../jwt/verify.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/registry.js';

/**
 * Events that log key and revocation reloads (a failure at `warn`) and count
 * them, with every token verified or rejected.
 *
 * @example
 * const verifier = await TokenVerifier.create(config.jwt, { events: verifierEvents(logger, metrics) });
 */
export function verifierEvents(logger: Logger, metrics?: Metrics): VerifierEvents {
  return {
    onKeyRefresh(e) {
      metrics?.jwksRefreshes.inc({ issuer: e.issuer, trigger: e.trigger, outcome: e.outcome });
      metrics?.jwksKeys.set({ issuer: e.issuer }, e.keyCount);
      if (e.outcome === 'failed') {
        logger.log('warn', e.keyCount > 0 ? 'jwks refresh failed; keeping the keys already held' : 'jwks refresh failed; no keys held, tokens of this issuer are denied', {
          issuer: e.issuer,
          trigger: e.trigger,
          keys: e.keyCount,
          detail: e.detail,
        });
      } else if (e.outcome === 'updated') {
        logger.log('info', 'jwks loaded', { issuer: e.issuer, trigger: e.trigger, keys: e.keyCount });
      }
    },
    onRevocationReload(e) {
      metrics?.revocationReloads.inc({ outcome: e.outcome });
      if (e.outcome === 'failed') {
        logger.log('warn', 'revocation list reload failed; keeping the last good list', { entries: e.entries, detail: e.detail });
      } else {
        metrics?.revocationEntries.set(e.entries);
        logger.log('info', 'revocation list reloaded', { entries: e.entries });
      }
    },
    onVerified(issuer, cached) {
      metrics?.jwtVerified.inc({ issuer, cached: String(cached) });
    },
    onRejected(reason, issuer) {
      metrics?.jwtRejected.inc({ reason, issuer: issuer ?? 'unknown' });
    },
  };
}

/**
 * Every metric Arbiter exports, in this one file, on a registry of its own
 * (never prom-client's global one, so two engines in one process — tests, the
 * CLI — do not collide). Names follow `arbiter_<area>_<thing>_<unit>`; labels
 * come from small fixed sets (reason codes, configured issuer names, results)
 * and never hold a subject, token or resource id.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The metrics of one Arbiter process. */
export class Metrics {
  readonly registry: Registry;
  /** Tokens verified, by configured issuer name and whether the subject came from the cache. */
  readonly jwtVerified: Counter<'issuer' | 'cached'>;
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

  /**
   * @param options.processMetrics also collect prom-client's default process metrics (the server does; tests and the CLI need not)
   * @example
   * const metrics = new Metrics({ processMetrics: true });
   * const text = await metrics.registry.metrics();
   */
  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [(this.registry = new Registry())];
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry });
    this.jwtVerified = new Counter({ name: 'arbiter_jwt_verified_total', help: 'Tokens verified, by issuer and whether the subject came from the subject cache.', labelNames: ['issuer', 'cached'], registers });
    this.jwtRejected = new Counter({ name: 'arbiter_jwt_rejected_total', help: 'Tokens rejected, by reason code and issuer.', labelNames: ['reason', 'issuer'], registers });
    this.jwksRefreshes = new Counter({ name: 'arbiter_jwks_refreshes_total', help: 'Loads of issuer key sets, by issuer, trigger and outcome; on failure the keys already held stay in use.', labelNames: ['issuer', 'trigger', 'outcome'], registers });
    this.jwksKeys = new Gauge({ name: 'arbiter_jwks_keys', help: 'Verification keys held, by issuer.', labelNames: ['issuer'], registers });
    this.revocationReloads = new Counter({ name: 'arbiter_revocation_reloads_total', help: 'Reloads of the revocation list, by outcome; on failure the last good list stays in force.', labelNames: ['outcome'], registers });
    this.revocationEntries = new Gauge({ name: 'arbiter_revocation_entries', help: 'Entries in the revocation list in force.', registers });
  }
}

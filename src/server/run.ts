/**
 * One Arbiter server process: the policy store (watched, reloaded off the
 * request path and swapped atomically), the token verifier, the engine with
 * its decision cache and metrics, the gRPC server, the ops HTTP port and the
 * decision log — started in that order, stopped in reverse.
 */
import { CompileError, formatDiagnostic } from '../errors.js';
import { openDecisionLog, type DecisionLog } from '../audit/decision-log.js';
import type { ArbiterConfig } from '../config/config.js';
import type { ServeOptions } from '../config/server.js';
import { Engine } from '../engine/engine.js';
import { verifierEvents } from '../engine/observe.js';
import { PolicyStore, type ReloadEvent } from '../engine/policy-store.js';
import { TokenVerifier } from '../jwt/verify.js';
import type { Logger } from '../log/logger.js';
import { Metrics } from '../metrics/registry.js';
import { watchPath, type Watcher } from '../watch/file-watch.js';
import { createAuthorizer } from './authorizer.js';
import { createExtAuthz } from './ext-authz.js';
import { startGrpcServer, type RunningGrpcServer } from './grpc.js';
import { startOpsServer, type OpsServer } from './http.js';

export interface StartOptions {
  readonly config: ArbiterConfig;
  readonly serve: ServeOptions;
  readonly policies: string;
  readonly logger: Logger;
  /** Defaults to the one `serve.decisionLog` names. */
  readonly decisionLog?: DecisionLog;
  /** Defaults to a fresh registry with process metrics. */
  readonly metrics?: Metrics;
  /** Start the ops HTTP server here (false in cluster workers: the primary serves aggregated metrics). */
  readonly opsServer?: boolean;
  readonly clock?: () => number;
}

/** A running server. */
export interface ArbiterServer {
  readonly port: number;
  readonly opsPort?: number;
  readonly engine: Engine;
  readonly metrics: Metrics;
  /** Serving and not draining. */
  readonly ready: boolean;
  /** Reloads the policies now (SIGHUP). */
  reload(trigger?: ReloadEvent['trigger']): Promise<ReloadEvent>;
  /** Drains and stops everything; resolves when done. Idempotent. */
  shutdown(): Promise<void>;
}

/**
 * Starts a server process.
 *
 * @throws {PolicyLoadError | CompileError} when the policies do not load; {@link ConfigError} or I/O errors for TLS files and key files
 * @example
 * const server = await startArbiter({ config, serve, policies: config.policies, logger });
 * process.on('SIGTERM', () => void server.shutdown());
 */
export async function startArbiter(options: StartOptions): Promise<ArbiterServer> {
  const { serve, logger } = options;
  const metrics = options.metrics ?? new Metrics({ processMetrics: true });
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c();
  };
  try {
    const verifier = options.config.jwt === undefined ? undefined : await TokenVerifier.create(options.config.jwt, { events: verifierEvents(logger, metrics), ...(options.clock === undefined ? {} : { clock: options.clock }) });
    if (verifier !== undefined) cleanups.push(() => verifier.close());
    const store = await PolicyStore.open(options.policies);
    store.onReload((e) => logReload(logger, e));
    const engine = new Engine(store, {
      ...(verifier === undefined ? {} : { verifier }),
      cache: serve.cache,
      metrics,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      validateRequests: options.config.validateRequests ?? 'off',
      onSchemaViolation: (e) =>
        logger.log('warn', 'request does not match the policy schema', {
          mode: e.mode,
          action: e.action,
          resource_type: e.resourceType,
          revision: e.revision,
          violations: e.violations.length,
          detail: e.violations.slice(0, 10).map((v) => v.message).join('; '),
        }),
    });
    const decisionLog = options.decisionLog ?? openDecisionLog(serve.decisionLog.path, serve.decisionLog.allowSampleRate);
    cleanups.push(() => decisionLog.close());
    let draining = false;
    let grpcServer: RunningGrpcServer | undefined;
    let ops: OpsServer | undefined;
    if (serve.metricsAddress !== undefined && options.opsServer !== false) {
      ops = await startOpsServer(serve.metricsAddress, metrics.registry, () => grpcServer !== undefined && !draining);
      const o = ops;
      cleanups.push(() => o.close());
    }
    grpcServer = await startGrpcServer({
      address: serve.address,
      ...(serve.tls === undefined ? {} : { tls: serve.tls }),
      maxMessageBytes: serve.maxMessageBytes,
      maxBatchItems: serve.maxBatchItems,
      ...(serve.extAuthz.enabled ? { extAuthz: createExtAuthz({ engine, decisionLog, logger, metrics, options: serve.extAuthz }) } : {}),
      handlers: createAuthorizer({
        engine,
        decisionLog,
        logger,
        metrics,
        trustedSubjectCallers: new Set(serve.trustedSubjectCallers),
        maxBatchItems: serve.maxBatchItems,
        clientCertificates: serve.tls?.clientCaFile !== undefined,
      }),
    });
    const g = grpcServer;
    cleanups.push(() => g.server.forceShutdown());
    const watcher: Watcher = watchPath(options.policies, () => store.reload('watch').then(() => {}), {
      recursive: true,
      debounceMs: 200,
      pollMs: serve.policyPollSeconds * 1000,
    });
    cleanups.push(() => watcher.close());
    grpcServer.setServing(true);
    logger.log('info', 'serving', { address: serve.address, port: grpcServer.port, tls: serve.tls !== undefined, mtls: serve.tls?.clientCaFile !== undefined, revision: engine.revision, ...(ops === undefined ? {} : { ops_port: ops.port }) });

    let stopping: Promise<void> | undefined;
    return {
      port: grpcServer.port,
      ...(ops === undefined ? {} : { opsPort: ops.port }),
      engine,
      metrics,
      get ready() {
        return !draining;
      },
      reload: (trigger = 'manual') => store.reload(trigger),
      shutdown() {
        stopping ??= (async () => {
          draining = true;
          watcher.close();
          logger.log('info', 'draining', { grace_seconds: serve.shutdownGraceSeconds });
          await g.shutdown(serve.shutdownGraceSeconds * 1000);
          await cleanup();
          logger.log('info', 'stopped');
        })();
        return stopping;
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

function logReload(logger: Logger, e: ReloadEvent): void {
  if (e.outcome === 'updated') {
    logger.log('info', 'policies reloaded', { trigger: e.trigger, revision: e.revision, previous_revision: e.previousRevision, duration_ms: Math.round(e.durationMs ?? 0) });
  } else if (e.outcome === 'failed') {
    const err = e.error;
    const detail = err instanceof CompileError ? err.diagnostics.slice(0, 20).map(formatDiagnostic).join('\n') : err instanceof Error ? err.message : String(err);
    logger.log('error', 'policy reload rejected; the last good policy set keeps serving', {
      trigger: e.trigger,
      revision: e.revision,
      errors: err instanceof CompileError ? err.diagnostics.length : 1,
      detail,
    });
  }
}

/**
 * `arbiter serve`: load the config (a bad one is an error naming the key,
 * before any port opens), then run the server — in this process, or as N
 * cluster workers sharing the port, with the primary serving aggregated
 * metrics and forwarding signals.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { AggregatorRegistry } from 'prom-client';
import { CompileError, ConfigError } from '../../errors.js';
import { loadConfig, type ArbiterConfig } from '../../config/config.js';
import { readServeSections, type ServeOptions, type ServeOverrides } from '../../config/server.js';
import { PolicyLoadError } from '../../engine/policy-store.js';
import { createJsonLogger, type Logger, type LogLevel } from '../../log/logger.js';
import { Metrics } from '../../metrics/registry.js';
import { startArbiter, type ArbiterServer } from '../../server/run.js';
import { startOpsServer } from '../../server/http.js';
import { EXIT, type CliIO } from '../io.js';
import { reportLoadError } from './check.js';

export const SERVE_USAGE = `usage: arbiter serve [--config FILE] [--policies DIR] [--address HOST:PORT]
                     [--metrics-address HOST:PORT] [--workers N|auto] [--log-level LEVEL]

Runs the gRPC decision server (arbiter.v1.Authorizer, grpc.health.v1.Health,
server reflection) on the policies, reloading them when they change (and on
SIGHUP); SIGTERM or SIGINT drains in-flight calls and exits 0.

  --config FILE              config file (default: $ARBITER_CONFIG, else ./arbiter.yaml)
  --policies DIR             policy directory (default: \`policies\` in the config; $ARBITER_POLICIES)
  --address HOST:PORT        gRPC address (server.address; $ARBITER_ADDRESS)
  --metrics-address HOST:PORT  /metrics, /healthz, /readyz (metrics.address; $ARBITER_METRICS_ADDRESS)
  --workers N|auto           server processes sharing the port (server.workers;
                             $ARBITER_WORKERS; default auto: one per CPU)
  --log-level LEVEL          debug, info, warn or error (log.level; $ARBITER_LOG_LEVEL)

Flags override the environment, which overrides the config file.

exit status: 0 stopped by a signal after draining, 1 the policies do not load,
2 bad usage, 3 the config (or a file it names) cannot be loaded`;

/** Messages between the cluster primary and its workers. */
type ClusterMessage = { type: 'ready'; port: number } | { type: 'reload' } | { type: 'shutdown' };

export async function runServe(argv: readonly string[], io: CliIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string' },
        policies: { type: 'string' },
        address: { type: 'string' },
        'metrics-address': { type: 'string' },
        workers: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.stderr.write(`arbiter serve: ${(e as Error).message}\n\n${SERVE_USAGE}\n`);
    return EXIT.USAGE;
  }
  if (values.help) {
    io.stdout.write(`${SERVE_USAGE}\n`);
    return EXIT.OK;
  }
  const env = io.env ?? process.env;
  const workersRaw = values.workers ?? env['ARBITER_WORKERS'];
  let workers: number | undefined;
  if (workersRaw !== undefined) {
    workers = workersRaw === 'auto' ? 0 : Number(workersRaw);
    if (!Number.isInteger(workers) || workers < 0 || workers > 1024) {
      io.stderr.write(`arbiter serve: --workers must be a whole number from 1 to 1024, or auto\n`);
      return EXIT.USAGE;
    }
  }
  const logLevel = values['log-level'] ?? env['ARBITER_LOG_LEVEL'];
  const overrides: ServeOverrides = {
    ...pick('address', values.address ?? env['ARBITER_ADDRESS']),
    ...pick('metricsAddress', values['metrics-address'] ?? env['ARBITER_METRICS_ADDRESS']),
    ...(workers === undefined ? {} : { workers }),
    ...(logLevel === undefined ? {} : { logLevel: logLevel as LogLevel }),
  };
  const configPath = values.config ?? env['ARBITER_CONFIG'] ?? 'arbiter.yaml';
  let config: ArbiterConfig;
  let serve: ServeOptions;
  try {
    config = await loadConfig(configPath, env);
    serve = readServeSections(config.root, overrides);
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr.write(`arbiter serve: ${e.message}\n`);
      return EXIT.CONFIG_ERROR;
    }
    throw e;
  }
  const policies = values.policies ?? env['ARBITER_POLICIES'] ?? config.policies;
  if (policies === undefined) {
    io.stderr.write('arbiter serve: no policy directory: set `policies` in the config, ARBITER_POLICIES or --policies\n');
    return EXIT.CONFIG_ERROR;
  }
  const logger = createJsonLogger(io.stderr, serve.logLevel);
  const processes = serve.workers === 0 ? availableParallelism() : serve.workers;
  if (cluster.isWorker) return runWorker(config, serve, policies, logger, io);
  if (processes > 1) return runPrimary(serve, processes, logger, io);
  return runSingle(config, serve, policies, logger, io);
}

function pick<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

async function start(config: ArbiterConfig, serve: ServeOptions, policies: string, logger: Logger, io: CliIO, worker: boolean): Promise<ArbiterServer | number> {
  try {
    return await startArbiter({ config, serve, policies, logger, opsServer: !worker, metrics: new Metrics({ processMetrics: true }) });
  } catch (e) {
    if (e instanceof CompileError || e instanceof PolicyLoadError) return reportLoadError(e, io);
    if (e instanceof ConfigError) {
      io.stderr.write(`arbiter serve: ${e.message}\n`);
      return EXIT.CONFIG_ERROR;
    }
    const code = (e as NodeJS.ErrnoException).code;
    io.stderr.write(`arbiter serve: cannot start: ${code === undefined ? (e as Error).message : `${code} ${(e as Error).message}`}\n`);
    return EXIT.CONFIG_ERROR;
  }
}

/** Runs until SIGTERM/SIGINT; SIGHUP reloads. */
async function runSingle(config: ArbiterConfig, serve: ServeOptions, policies: string, logger: Logger, io: CliIO): Promise<number> {
  const server = await start(config, serve, policies, logger, io, false);
  if (typeof server === 'number') return server;
  io.stdout.write(readyBanner(serve, server.port, server.opsPort));
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGHUP', hup);
      void server.shutdown().then(() => resolve(EXIT.OK));
    };
    const hup = (): void => void server.reload('signal');
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('SIGHUP', hup);
  });
}

async function runWorker(config: ArbiterConfig, serve: ServeOptions, policies: string, logger: Logger, io: CliIO): Promise<number> {
  const server = await start(config, serve, policies, logger, io, true);
  if (typeof server === 'number') return server;
  // The primary aggregates every worker's registry for /metrics. Constructing an
  // AggregatorRegistry in a worker is what makes prom-client answer the primary's requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([server.metrics.registry]);
  process.send?.({ type: 'ready', port: server.port } satisfies ClusterMessage);
  return new Promise((resolve) => {
    // Disconnecting the IPC channel lets the worker's event loop end.
    const stop = (): void =>
      void server.shutdown().then(() => {
        if (process.connected) process.disconnect();
        resolve(EXIT.OK);
      });
    process.on('message', (m: ClusterMessage) => {
      if (m.type === 'reload') void server.reload('signal');
      else if (m.type === 'shutdown') stop();
    });
    // The primary forwards signals; a signal sent to the whole process group also drains.
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('SIGHUP', () => {});
  });
}

async function runPrimary(serve: ServeOptions, processes: number, logger: Logger, io: CliIO): Promise<number> {
  const ready = new Set<number>();
  let draining = false;
  let port = 0;
  const aggregator = new AggregatorRegistry();
  const ops = serve.metricsAddress === undefined ? undefined : await startOpsServer(serve.metricsAddress, { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType }, () => ready.size > 0 && !draining).catch((e: Error) => e);
  if (ops instanceof Error) {
    io.stderr.write(`arbiter serve: cannot open the metrics port ${serve.metricsAddress}: ${ops.message}\n`);
    return EXIT.CONFIG_ERROR;
  }
  const fork = (): Worker => cluster.fork();
  let firstFailure: number | undefined;
  return new Promise((resolve) => {
    const finish = (code: number): void => {
      void ops?.close().then(() => resolve(code));
      if (ops === undefined) resolve(code);
    };
    cluster.on('message', (worker, m: ClusterMessage) => {
      if (m.type !== 'ready') return;
      ready.add(worker.id);
      port = m.port;
      if (ready.size === processes) {
        logger.log('info', 'all workers serving', { workers: processes, port });
        io.stdout.write(readyBanner(serve, port, ops?.port, processes));
      }
    });
    cluster.on('exit', (worker, code) => {
      ready.delete(worker.id);
      if (draining) {
        if (Object.keys(cluster.workers ?? {}).length === 0) finish(EXIT.OK);
        return;
      }
      if (port === 0) {
        // A worker failed before any served: the config or policies are bad; stop them all.
        firstFailure ??= code ?? 1;
        draining = true;
        for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
        if (Object.keys(cluster.workers ?? {}).length === 0) finish(firstFailure);
        return;
      }
      logger.log('error', 'worker exited; starting another', { worker: worker.id, code: code ?? -1 });
      fork();
    });
    for (let i = 0; i < processes; i++) fork();
    const send = (m: ClusterMessage): void => {
      for (const w of Object.values(cluster.workers ?? {})) w?.send(m);
    };
    process.on('SIGHUP', () => send({ type: 'reload' }));
    const stop = (): void => {
      if (draining) return;
      draining = true;
      logger.log('info', 'draining workers', { workers: Object.keys(cluster.workers ?? {}).length });
      send({ type: 'shutdown' });
      // Workers that do not finish within the grace period (plus start-up slack) are killed.
      setTimeout(() => {
        for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGKILL');
      }, (serve.shutdownGraceSeconds + 5) * 1000).unref();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

function readyBanner(serve: ServeOptions, port: number, opsPort: number | undefined, workers = 1): string {
  const host = serve.address.slice(0, serve.address.lastIndexOf(':'));
  const target = `${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  const tlsFlag = serve.tls === undefined ? ' --plaintext' : '';
  return [
    `arbiter: serving arbiter.v1.Authorizer${serve.extAuthz.enabled ? ' and envoy.service.auth.v3.Authorization (ext_authz)' : ''} on ${target}${serve.tls === undefined ? ' (plaintext)' : serve.tls.clientCaFile === undefined ? ' (TLS)' : ' (mTLS)'}, ${workers} worker${workers === 1 ? '' : 's'}`,
    ...(opsPort === undefined ? [] : [`arbiter: metrics, /healthz and /readyz on http://${serve.metricsAddress?.slice(0, serve.metricsAddress.lastIndexOf(':'))}:${opsPort}`]),
    'try it (dev token, dev config only):',
    `  node bin/arbiter.js call --address ${target}${tlsFlag} --token "$(node bin/arbiter.js token --dev --sub alice --roles editor --claim department=engineering)" \\`,
    `    --input policies/examples/alice-reads-spec.json`,
    '',
  ].join('\n');
}

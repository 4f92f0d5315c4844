/**
 * Arbiter, single worker, in its own process: `startArbiter` on the shipped
 * policies/ and the dev issuer (dev/jwks.json), plaintext on 127.0.0.1:0,
 * decision cache and subject cache on (as dev/arbiter.yaml sets them), the
 * decision log off, no metrics port, a silent logger.
 *
 * `node dist/bench/grpc/arbiter-server.js` prints `{"port": N, "pid": P,
 * "revision": R}` on stdout once serving; SIGTERM drains and exits 0 (so
 * `node --cpu-prof` writes its profile).
 */
import { readServeSections } from '../../src/config/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { startArbiter } from '../../src/server/run.js';
import { benchConfig } from './common.js';

async function main(): Promise<void> {
  const config = benchConfig(1);
  const serve = readServeSections(config.root);
  if (config.policies === undefined) throw new Error('the bench config names no policies');
  if (serve.decisionLog.path !== 'off' || serve.metricsAddress !== undefined || serve.tls !== undefined) throw new Error('the bench config must have the decision log off, no metrics port and plaintext');
  const server = await startArbiter({ config, serve, policies: config.policies, logger: silentLogger });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void server.shutdown().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ port: server.port, pid: process.pid, revision: server.engine.revision })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`arbiter-server: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});

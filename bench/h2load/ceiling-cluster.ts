/**
 * The bare grpc-js ceiling (bench/grpc/ceiling-server.ts) on all cores: a
 * node:cluster primary forks N workers, each running ceiling-server.js on the
 * same address, so they share one port the way `arbiter serve --workers N`
 * does (the primary accepts and hands connections round-robin to workers).
 *
 * `node dist/bench/h2load/ceiling-cluster.js N` prints `{"port": P, "pid":
 * PRIMARY, "workers": N}` once every worker listens; SIGTERM stops them all.
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';

const CEILING = fileURLToPath(new URL('../grpc/ceiling-server.js', import.meta.url));

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? '2');
  if (!Number.isInteger(n) || n < 1) throw new Error(`not a worker count: ${process.argv[2]}`);
  cluster.setupPrimary({ exec: CEILING, args: ['127.0.0.1:0'], silent: true });
  const ports = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<number>((resolve, reject) => {
          const w = cluster.fork();
          let out = '';
          w.process.stdout!.setEncoding('utf8');
          w.process.stdout!.on('data', (c: string) => {
            out += c;
            const m = /"port":(\d+)/.exec(out);
            if (m !== null) resolve(Number(m[1]));
          });
          w.process.stderr!.pipe(process.stderr);
          w.on('exit', (code) => reject(new Error(`a ceiling worker exited (${String(code)}) before it listened: ${out}`)));
        }),
    ),
  );
  // Port 0 in cluster workers: the primary binds once, every worker gets the same port.
  if (new Set(ports).size !== 1) throw new Error(`the workers listen on different ports: ${ports.join(', ')}`);
  const stop = (): void => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 200);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ port: ports[0], pid: process.pid, workers: n })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`ceiling-cluster: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});

/**
 * The load generator, in its own process:
 *
 *   node dist/bench/grpc/load.js --target HOST:PORT --concurrency C --seconds S
 *        [--warmup W] [--mix hits|misses|token-misses] [--expect arbiter|allow]
 *        [--mix-file FILE] [--channels N] [--server-pid PID] [--pool-start K]
 *        [--client-options JSON]
 *
 * Opens N client channels (each its own HTTP/2 connection: a local subchannel
 * pool per channel), waits until they are connected, then runs C concurrent
 * loops of unary Check — loop j on channel j mod N, each loop sending its next
 * call as soon as the previous one answers — for W seconds of warm-up and S
 * timed seconds. Latency is per call (process.hrtime.bigint, from just before
 * the call is made to its callback); the timed window counts the calls that
 * complete inside it. Prints one JSON line, a {@link LoadResult}.
 *
 * Mixes (see common.ts MIX_NOTES): `hits` repeats the templates' fixed
 * (token, request) pairs; `misses` gives every call a distinct resource id
 * with the templates' tokens; `token-misses` also gives every call a fresh
 * token from the pre-signed pool. `--expect arbiter` holds every answer to the
 * expected decision of its template (computed in process by run.ts);
 * `--expect allow` (the ceiling server) to ALLOW.
 *
 * Tokens are signed before timing starts: read from --mix-file (run.ts writes
 * it), or signed here when it is absent.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { authorizerClient } from '../../src/server/proto.js';
import { buildMix, checkMessage, machineBusyCpuSeconds, MIXES, missId, processTreeCpuSeconds, quantile, type CheckRequestMsg, type Expected, type LoadResult, type Mix, type MixFile } from './common.js';

/**
 * The client setup every target gets. Each channel has its own subchannel
 * pool, hence its own HTTP/2 connection (channels with equal options would
 * otherwise share one); see run.ts for how the channel count was chosen.
 */
export const CLIENT_OPTIONS: grpc.ChannelOptions = {
  'grpc.use_local_subchannel_pool': 1,
};

/** Channels for concurrency C: min(C, 4). */
export function defaultChannels(concurrency: number): number {
  return Math.min(concurrency, 4);
}

interface CheckResponseMsg {
  decision?: string;
  reason?: string;
  rules?: string[];
  cached?: boolean;
}

type CheckFn = (req: CheckRequestMsg, callback: (err: grpc.ServiceError | null, res?: CheckResponseMsg) => void) => void;

function positive(name: string, v: string | undefined, fallback?: number): number {
  if (v === undefined) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number (got ${v})`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      concurrency: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      mix: { type: 'string', default: 'hits' },
      expect: { type: 'string', default: 'arbiter' },
      'mix-file': { type: 'string' },
      channels: { type: 'string' },
      'server-pid': { type: 'string' },
      'client-options': { type: 'string' },
      pool: { type: 'string' },
      'pool-start': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const target = values.target;
  if (target === undefined) throw new Error('--target HOST:PORT is required');
  const concurrency = positive('concurrency', values.concurrency);
  if (!Number.isInteger(concurrency)) throw new Error('--concurrency must be a whole number');
  const seconds = positive('seconds', values.seconds);
  const warmup = values.warmup === undefined ? 1 : Number(values.warmup);
  if (!Number.isFinite(warmup) || warmup < 0) throw new Error('--warmup must be a number of seconds ≥ 0');
  const mix = values.mix as Mix;
  if (!(MIXES as readonly string[]).includes(mix)) throw new Error(`--mix must be one of ${MIXES.join(', ')}`);
  const expectMode = values.expect;
  if (expectMode !== 'arbiter' && expectMode !== 'allow') throw new Error('--expect must be arbiter or allow');
  const channels = values.channels === undefined ? defaultChannels(concurrency) : positive('channels', values.channels);
  const serverPid = values['server-pid'] === undefined ? undefined : Number(values['server-pid']);
  const clientOptions: grpc.ChannelOptions = { ...CLIENT_OPTIONS, ...(values['client-options'] === undefined ? {} : (JSON.parse(values['client-options']) as grpc.ChannelOptions)) };

  // Everything signed and built before any call is made.
  const mixFile: MixFile =
    values['mix-file'] === undefined
      ? await buildMix(mix === 'token-misses' ? positive('pool', values.pool, 20_000) : 0)
      : (JSON.parse(readFileSync(values['mix-file'], 'utf8')) as MixFile);
  const templates = mixFile.templates;
  const T = templates.length;
  const fixedMsgs = templates.map((t) => checkMessage(t.token, t.request));
  const expected: readonly Expected[] = templates.map((t) => (expectMode === 'allow' ? { decision: 'ALLOW', reason: 'RULE_PERMIT', rules: [] } : t.expected));
  const pool = mixFile.tokenPool;
  if (mix === 'token-misses' && pool.length <= mixFile.subjectCacheEntries) {
    throw new Error(`the token pool (${pool.length}) must be larger than the subject cache (${mixFile.subjectCacheEntries}) or cycling it would hit`);
  }
  // Token-misses go round the pool across runs (run.ts passes where the last run stopped): a token
  // used by an earlier run is reused only after more than the subject cache's capacity of others.
  const poolStart = values['pool-start'] === undefined ? 0 : Number(values['pool-start']) % Math.max(1, pool.length);
  if (!Number.isInteger(poolStart) || poolStart < 0) throw new Error('--pool-start must be a whole number ≥ 0');
  let poolNext = poolStart;
  let poolWrapped = false;
  /** Tells this process's distinct resource ids from every other run's. */
  const runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;

  /** The n-th call of loop `loop`: its message and the index of its template. */
  const nextCall = (loop: number, n: number): { msg: CheckRequestMsg; tpl: number } => {
    if (mix === 'hits') {
      const tpl = (loop + n) % T;
      return { msg: fixedMsgs[tpl]!, tpl };
    }
    if (mix === 'misses') {
      const tpl = (loop + n) % T;
      const base = fixedMsgs[tpl]!;
      return { msg: { ...base, resource: { ...base.resource, id: missId(templates[tpl]!.request.resource.id, runId, loop, n) } }, tpl };
    }
    const k = poolNext++;
    if (poolNext === pool.length) poolNext = 0;
    if (poolNext === poolStart) poolWrapped = true;
    const tpl = k % T;
    const base = fixedMsgs[tpl]!;
    return { msg: { ...base, token: pool[k]!, resource: { ...base.resource, id: missId(templates[tpl]!.request.resource.id, runId, loop, n) } }, tpl };
  };

  const Client = authorizerClient();
  const clients = Array.from({ length: channels }, () => new Client(target, grpc.credentials.createInsecure(), clientOptions));
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve, reject) => {
          c.waitForReady(Date.now() + 10_000, (err) => (err === undefined || err === null ? resolve() : reject(err)));
        }),
    ),
  );
  const checks: CheckFn[] = clients.map((c) => (c as unknown as { Check: CheckFn }).Check.bind(c));

  // State of the run.
  let measuring = false;
  let stopped = false;
  let windowStart = 0n;
  let windowEnd = 0n;
  const latenciesNs: number[] = [];
  let allow = 0;
  let deny = 0;
  let cached = 0;
  let errors = 0;
  const errorExamples: string[] = [];
  let mismatches = 0;
  const mismatchExamples: string[] = [];

  const loops = Array.from(
    { length: concurrency },
    (_, loop) =>
      new Promise<void>((done) => {
        const check = checks[loop % channels]!;
        let n = 0;
        const next = (): void => {
          if (stopped) {
            done();
            return;
          }
          const { msg, tpl } = nextCall(loop, n++);
          const t0 = process.hrtime.bigint();
          check(msg, (err, res) => {
            const t1 = process.hrtime.bigint();
            const inWindow = measuring && t0 >= windowStart && !stopped;
            if (err !== null || res === undefined) {
              errors++;
              if (errorExamples.length < 3) errorExamples.push(err === null ? 'no response' : `${grpc.status[err.code] ?? err.code}: ${err.details}`);
            } else {
              const want = expected[tpl]!;
              const ok = res.decision === want.decision && (expectMode === 'allow' || (res.reason === want.reason && (res.rules ?? []).join(',') === want.rules.join(',')));
              if (!ok) {
                mismatches++;
                if (mismatchExamples.length < 3) {
                  mismatchExamples.push(`"${templates[tpl]!.name}": expected ${want.decision}/${want.reason}, got ${String(res.decision)}/${String(res.reason)} [${(res.rules ?? []).join(',')}]`);
                }
              }
              if (inWindow) {
                if (res.decision === 'ALLOW') allow++;
                else deny++;
                if (res.cached === true) cached++;
              }
            }
            if (inWindow) latenciesNs.push(Number(t1 - t0));
            next();
          });
        };
        next();
      }),
  );

  let cpu0 = process.cpuUsage();
  let server0: number | null = null;
  let machine0: number | null = null;
  await new Promise<void>((resolve) => setTimeout(resolve, warmup * 1000));
  windowStart = process.hrtime.bigint();
  cpu0 = process.cpuUsage();
  server0 = serverPid === undefined ? null : processTreeCpuSeconds(serverPid);
  machine0 = machineBusyCpuSeconds();
  measuring = true;
  await new Promise<void>((resolve) => setTimeout(resolve, seconds * 1000));
  stopped = true;
  windowEnd = process.hrtime.bigint();
  const cpu = process.cpuUsage(cpu0);
  const server1 = serverPid === undefined ? null : processTreeCpuSeconds(serverPid);
  const machine1 = machineBusyCpuSeconds();
  await Promise.all(loops);
  for (const c of clients) c.close();

  const windowS = Number(windowEnd - windowStart) / 1e9;
  const sorted = Float64Array.from(latenciesNs).sort();
  const us = (ns: number): number => Math.round(ns / 100) / 10;
  let sum = 0;
  for (const x of sorted) sum += x;
  const result: LoadResult = {
    target,
    mix,
    concurrency,
    channels,
    seconds: windowS,
    calls: sorted.length,
    rps: sorted.length / windowS,
    p50_us: us(quantile(sorted, 0.5)),
    p99_us: us(quantile(sorted, 0.99)),
    mean_us: us(sorted.length === 0 ? Number.NaN : sum / sorted.length),
    errors,
    errorExamples,
    allow,
    deny,
    cached,
    mismatches,
    mismatchExamples,
    poolStart: mix === 'token-misses' ? poolStart : 0,
    poolEnd: mix === 'token-misses' ? poolNext : 0,
    poolWrapped: mix === 'token-misses' && poolWrapped,
    clientCpu: (cpu.user + cpu.system) / 1e6 / windowS,
    serverCpu: server0 === null || server1 === null ? null : (server1 - server0) / windowS,
    machineCpu: machine0 === null || machine1 === null ? null : (machine1 - machine0) / windowS,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`load: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});

/**
 * The load generator, in its own process:
 *
 *   node dist/bench/grpc/load.js --target HOST:PORT --concurrency C --seconds S
 *        [--warmup W] [--mix hits|misses|token-misses|ext-hits|ext-misses] [--expect arbiter|allow]
 *        [--mix-file FILE] [--channels N] [--server-pid PID] [--pool-start K]
 *        [--client-options JSON]
 *
 * Opens N client channels (each its own HTTP/2 connection: a local subchannel
 * pool per channel), waits until they are connected, then runs C concurrent
 * loops of unary Check — loop j on channel j mod N, each loop sending its next
 * call as soon as the previous one answers — for W seconds of warm-up and S
 * timed seconds (the `ext-*` mixes call Envoy's ext_authz Check,
 * envoy.service.auth.v3.Authorization, instead). Latency is per call (process.hrtime.bigint, from just before
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
 * ext_authz mixes (common.ts EXT_MIX_NOTES): `ext-hits` repeats the fixed
 * Envoy requests of the ext_authz templates; `ext-misses` sends those with a
 * document id, each call with a distinct id in the path and its own request
 * id, with the templates' tokens. `--expect arbiter` holds every answer to its
 * template's (status code, allowed or denied, HTTP status and reason, headers
 * for the upstream; computed in process by run.ts); `--expect allow` (the
 * ceiling server) to status code 0 with an `ok_response`.
 *
 * Tokens are signed before timing starts: read from --mix-file (run.ts writes
 * it), or signed here when it is absent.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { authorizerClient, extAuthzClient } from '../../src/server/proto.js';
import {
  buildMix,
  checkMessage,
  envoyMessage,
  EXT_MIXES,
  extAnswer,
  extRequestId,
  isExtMix,
  machineBusyCpuSeconds,
  MIXES,
  missId,
  processTreeCpuSeconds,
  quantile,
  type AnyMix,
  type CheckRequestMsg,
  type ExtCheckRequestMsg,
  type ExtCheckResponseMsg,
  type Expected,
  type LoadResult,
  type MixFile,
} from './common.js';

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

type CheckFn = (req: CheckRequestMsg | ExtCheckRequestMsg, callback: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

/** What the loop makes of one answer. */
interface Judged {
  /** The answer is the expected one. */
  readonly ok: boolean;
  readonly allowed: boolean;
  readonly cached: boolean;
  /** What was expected and what came, for a mismatch. */
  readonly mismatch?: string;
}

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
  const mix = values.mix as AnyMix;
  if (!(MIXES as readonly string[]).includes(mix) && !isExtMix(mix)) throw new Error(`--mix must be one of ${[...MIXES, ...EXT_MIXES].join(', ')}`);
  const api = isExtMix(mix) ? 'ext_authz' : 'check';
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

  /** The n-th Check call of loop `loop`: its message and the index of its template. */
  const nextCheckCall = (loop: number, n: number): { msg: CheckRequestMsg; tpl: number } => {
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

  /** Judges a Check answer to template `tpl`. */
  const judgeCheck = (raw: unknown, tpl: number): Judged => {
    const res = raw as CheckResponseMsg;
    const want = expected[tpl]!;
    const ok = res.decision === want.decision && (expectMode === 'allow' || (res.reason === want.reason && (res.rules ?? []).join(',') === want.rules.join(',')));
    return {
      ok,
      allowed: res.decision === 'ALLOW',
      cached: res.cached === true,
      ...(ok ? {} : { mismatch: `"${templates[tpl]!.name}": expected ${want.decision}/${want.reason}, got ${String(res.decision)}/${String(res.reason)} [${(res.rules ?? []).join(',')}]` }),
    };
  };

  // ext_authz: the templates, their fixed messages, and (ext-misses) those with an id.
  const ext = mixFile.ext;
  const extSeconds = Math.floor(Date.now() / 1000);
  const extFixed = ext.map((t) => envoyMessage(t.method, t.token, t.path + (t.id ?? ''), t.requestId, extSeconds));
  const extWithId = ext.flatMap((t, i) => (t.id === undefined ? [] : [i]));
  if (api === 'ext_authz' && (ext.length === 0 || extWithId.length === 0)) throw new Error('the mix file has no ext_authz templates (or none with an id)');
  /** The n-th ext_authz call of loop `loop`: its message and the index of its template. */
  const nextExtCall = (loop: number, n: number): { msg: ExtCheckRequestMsg; tpl: number } => {
    if (mix === 'ext-hits') {
      const tpl = (loop + n) % ext.length;
      return { msg: extFixed[tpl]!, tpl };
    }
    const tpl = extWithId[(loop + n) % extWithId.length]!;
    const t = ext[tpl]!;
    return { msg: envoyMessage(t.method, t.token, t.path + missId(t.id!, runId, loop, n), extRequestId(runId, loop, n), extSeconds), tpl };
  };
  /** Judges an ext_authz answer to template `tpl`. */
  const judgeExt = (raw: unknown, tpl: number): Judged => {
    const res = raw as ExtCheckResponseMsg;
    const allowed = res.http_response === 'ok_response';
    const ok = expectMode === 'allow' ? allowed && (res.status?.code ?? 0) === 0 : extAnswer(res) === ext[tpl]!.answer;
    return {
      ok,
      allowed,
      cached: false,
      ...(ok ? {} : { mismatch: `"${ext[tpl]!.name}": expected ${expectMode === 'allow' ? '0 ok' : ext[tpl]!.answer}, got ${extAnswer(res)}` }),
    };
  };
  const nextCall: (loop: number, n: number) => { msg: CheckRequestMsg | ExtCheckRequestMsg; tpl: number } = api === 'ext_authz' ? nextExtCall : nextCheckCall;
  const judge = api === 'ext_authz' ? judgeExt : judgeCheck;

  const Client = api === 'ext_authz' ? extAuthzClient() : authorizerClient();
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
              const j = judge(res, tpl);
              if (!j.ok) {
                mismatches++;
                if (mismatchExamples.length < 3 && j.mismatch !== undefined) mismatchExamples.push(j.mismatch);
              }
              if (inWindow) {
                if (j.allowed) allow++;
                else deny++;
                if (j.cached) cached++;
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
    api,
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

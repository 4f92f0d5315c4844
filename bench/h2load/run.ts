/**
 * The gRPC benchmark driven by h2load: `npm run bench:h2load` (or
 * `node dist/bench/h2load/run.js` after a build; this script builds nothing).
 *
 * Why a second gRPC bench: bench/grpc's load generator is a grpc-js process,
 * and on a small machine it takes about a core, so its ratios are bounded by
 * the client. h2load (nghttp2, C, one thread) posts a pre-encoded gRPC request
 * over HTTP/2 for a fraction of that CPU; its own CPU use is printed with
 * every point, to show it is not the bottleneck.
 *
 * The targets are ratios of CPU time, which a shared VM's changing speed
 * moves by ±0.2 from run to run; instructions.ts (`npm run
 * bench:instructions`) counts the servers' instructions per call under
 * callgrind instead, which that noise does not reach.
 *
 * Not part of `npm test` or CI: it needs h2load (`apt-get install -y
 * nghttp2-client` on Debian/Ubuntu); without it, it says so and exits 2.
 *
 * What h2load can and cannot do: it sends ONE body (-d FILE) for every
 * request of a run, so a run cannot vary the request. "Hits" is the same
 * request repeated (the decision cache answers); "misses" cannot be distinct
 * requests, so it is the same request against a server whose decision cache
 * is OFF (`cache.max_entries: 0`): full evaluation on every call, honestly.
 * Likewise the JWT targets turn the subject cache off (`jwt.cache.max_entries:
 * 0`): ES256 verification on every call. h2load sees only HTTP statuses, and
 * a gRPC error is an HTTP 200 with `grpc-status` ≠ 0 in the trailers, so its
 * "2xx" count does not prove the answers right: before timing, every body is
 * posted (same bytes, same headers) over Node's HTTP/2 client and its decoded
 * answer checked against the in-process engine's decision (bodies.ts).
 *
 * Targets, each a fresh server process, with `--workers 1` and with all
 * cores: the bare grpc-js ceiling (bench/grpc/ceiling-server.ts; on all cores
 * ceiling-cluster.ts), for Check and for ext_authz; Arbiter Check with the
 * decision cache hit, with it off, and with the subject cache off (decision
 * cache hit, and both off); CheckBatch of 1, 10, 100 and 1,000 items × 3
 * actions (decision cache off); Envoy ext_authz Check (decision cache hit).
 * Concurrency C = connections × streams per connection: connections =
 * min(C, BENCH_CONNECTIONS), streams = C / connections. Each point: wait for an idle machine
 * (as bench/grpc does), a warm-up h2load run, then the timed h2load run with
 * `--log-file` (per-request times → p50/p99/p99.9). Server CPU is the server
 * process tree's utime+stime (/proc) over the timed run; h2load's CPU is what
 * it used (this process's cutime+cstime once it is reaped).
 *
 * Environment: BENCH_SECONDS (timed, default 5), BENCH_WARMUP_SECONDS
 * (default 1), BENCH_CONCURRENCY (default "1,16,64"), BENCH_WORKERS (default
 * "1,<cores>"), BENCH_TARGETS (comma-separated target keys, default all; a key that names no target stops the run),
 * BENCH_QUIET_MAX_SECONDS (default 60), BENCH_RETRIES (default 2),
 * BENCH_ROUNDS (default 3: every target is run that many times, round after
 * round, and each point reports its median round; a ratio to the ceiling
 * divides by the ceiling of the same round, so a slow spell of a shared
 * machine moves one round's ratio, not the reported median),
 * BENCH_CONNECTIONS (most h2load connections, default 4),
 * BENCH_PROFILE (a directory: run one target's single-worker server under
 * `node --cpu-prof` and write its profile there), BENCH_PROFILE_TARGET (that
 * target's key, default batch-1000).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildMix, machineBusyCpuSeconds, processTreeCpuSeconds, quantile, ROOT } from '../grpc/common.js';
import { servedCacheEntries, verifyBody } from './bodies.js';
import { bannerPort, jsonPort, startServer, stopServer, waitForQuiet, type Server } from '../grpc/servers.js';
import { allTargets, arbiterYaml, BATCH_TARGET_DPS, chosenTargets, CPU_TARGETS, grab, h2loadArgs, h2loadVersion, listEnv, median, numberEnv, refKey, runH2load, type Target } from './targets.js';
import { printReport, runMain } from '../report.js';

const HERE = (name: string): string => fileURLToPath(new URL(name, import.meta.url));
const CEILING = HERE('../grpc/ceiling-server.js');
const CEILING_CLUSTER = HERE('./ceiling-cluster.js');
const CLI = join(ROOT, 'bin', 'arbiter.js');

const CORES = os.availableParallelism();
const SECONDS = numberEnv('BENCH_SECONDS', 5);
const WARMUP = numberEnv('BENCH_WARMUP_SECONDS', 1);
const CONCURRENCY = listEnv('BENCH_CONCURRENCY', '1,16,64');
const WORKERS = [...new Set(listEnv('BENCH_WORKERS', `1,${CORES}`))];
const QUIET_MAX_SECONDS = numberEnv('BENCH_QUIET_MAX_SECONDS', 60);
const RETRIES = numberEnv('BENCH_RETRIES', 2);
const ROUNDS = Math.max(1, Math.round(numberEnv('BENCH_ROUNDS', 3)));
/** Most h2load connections; C streams are spread over min(C, this). */
const MAX_CONNECTIONS = Math.max(1, numberEnv('BENCH_CONNECTIONS', 4));
const PROFILE_DIR = process.env['BENCH_PROFILE'];
const PROFILE_TARGET = process.env['BENCH_PROFILE_TARGET'] ?? 'batch-1000';
/** CPU (cores) other processes may take during a timed run before it is flagged (as bench/grpc). */
const OTHER_CPU_FLAG = 0.2;

/** What one timed h2load run measured. */
interface Measure {
  readonly rps: number;
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly non2xx: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly mean: number;
  readonly max: number;
  /** Server process tree CPU, cores, over the run. */
  readonly serverCores: number;
  /** Server CPU per successful request, µs. */
  readonly serverUsPerCall: number;
  /** h2load's CPU, cores, over the run. */
  readonly h2loadCores: number;
  /** Other processes, cores. */
  readonly otherCores: number;
  readonly wall: number;
}

async function measureOnce(server: Server, path: string, bodyFile: string, c: number, logFile: string): Promise<Measure> {
  if (WARMUP > 0) await runH2load(h2loadArgs(server.port, path, bodyFile, c, { seconds: WARMUP }, MAX_CONNECTIONS));
  rmSync(logFile, { force: true }); // h2load appends to an existing log file
  const s0 = processTreeCpuSeconds(server.pid);
  const m0 = machineBusyCpuSeconds();
  const run = await runH2load(h2loadArgs(server.port, path, bodyFile, c, { seconds: SECONDS }, MAX_CONNECTIONS, logFile));
  const s1 = processTreeCpuSeconds(server.pid);
  const m1 = machineBusyCpuSeconds();
  const out = run.out;
  const rps = grab(out, /finished in [\d.]+\w*, ([\d.]+) req\/s/);
  const done = grab(out, /requests: \d+ total, \d+ started, (\d+) done/);
  const succeeded = grab(out, /(\d+) succeeded/);
  const failed = grab(out, /(\d+) failed/);
  const errored = grab(out, /(\d+) errored/);
  // "status codes" also counts answers whose headers arrived before the stop but that were not done: compare the non-2xx classes only.
  const sNon2xx = grab(out, /(\d+) 3xx/) + grab(out, /(\d+) 4xx/) + grab(out, /(\d+) 5xx/);
  const lat: number[] = [];
  let badStatus = 0;
  for (const l of readFileSync(logFile, 'utf8').split('\n')) {
    if (l === '') continue;
    const [, status, us] = l.split('\t');
    if (status !== '200') badStatus++;
    lat.push(Number(us));
  }
  const sorted = Float64Array.from(lat).sort();
  const serverCpu = s0 === null || s1 === null ? Number.NaN : s1 - s0;
  // The run's wall time includes h2load's start and connection set-up (a few ms); rates are over the timed -D window.
  const wall = run.wall;
  const machine = m0 === null || m1 === null ? Number.NaN : m1 - m0;
  return {
    rps,
    done,
    succeeded,
    failed,
    errored,
    non2xx: (Number.isFinite(sNon2xx) ? sNon2xx : 0) + badStatus,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    mean: lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    serverCores: serverCpu / wall,
    serverUsPerCall: (serverCpu * 1e6) / Math.max(1, succeeded),
    h2loadCores: run.cpu / wall,
    otherCores: Math.max(0, (machine - serverCpu - run.cpu) / wall),
    wall,
  };
}

async function measure(server: Server, path: string, bodyFile: string, c: number, logFile: string, label: string): Promise<Measure> {
  let best: Measure | undefined;
  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    const waited = await waitForQuiet(QUIET_MAX_SECONDS, OTHER_CPU_FLAG);
    if (waited > 2) process.stderr.write(`bench:h2load: waited ${waited.toFixed(0)} s for other processes to leave the CPU\n`);
    process.stderr.write(`bench:h2load: ${label} …\n`);
    const m = await measureOnce(server, path, bodyFile, c, logFile);
    if (best === undefined || m.otherCores < best.otherCores) best = m;
    if (!(m.otherCores > OTHER_CPU_FLAG)) break;
    if (attempt < RETRIES) process.stderr.write(`bench:h2load: other processes took ${m.otherCores.toFixed(2)} cores; running it again\n`);
  }
  return best!;
}

interface Point {
  readonly target: Target;
  readonly workers: number;
  readonly c: number;
  readonly round: number;
  readonly m: Measure;
}

const int = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const num = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

async function main(): Promise<void> {
  const version = h2loadVersion();
  if (version === undefined) {
    process.stderr.write(
      'bench:h2load: h2load not found. It is in the nghttp2 client tools:\n' +
        '  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y nghttp2-client\n' +
        '  Fedora: sudo dnf install nghttp2    macOS: brew install nghttp2\n',
    );
    process.exit(2);
  }
  const started = performance.now();
  const cpuModel = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const machine = `${cpuModel}, ${CORES} cores, ${os.type()} ${os.release()}, Node ${process.version}, ${version}, ${new Date().toISOString().slice(0, 10)}`;
  const tmp = mkdtempSync(join(os.tmpdir(), 'arbiter-h2load-'));
  const problems: string[] = [];
  const points: Point[] = [];
  const verified: string[] = [];
  const servers: Server[] = [];
  try {
    const mix = await buildMix(1);
    const wanted = chosenTargets(await allTargets(mix));
    process.stderr.write(`bench:h2load: ${machine}\n`);

    for (let round = 1; round <= ROUNDS; round++) {
      for (const workers of WORKERS) {
        for (const t of wanted) {
          const bodyFile = join(tmp, `${t.key}.bin`);
          writeFileSync(bodyFile, t.body);
          let server: Server;
          const profile = PROFILE_DIR !== undefined && round === 1 && workers === 1 && t.key === PROFILE_TARGET ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : [];
          if (t.server === 'ceiling') {
            server = workers === 1 ? await startServer('ceiling', [...profile, CEILING], jsonPort) : await startServer(`ceiling ×${workers}`, [CEILING_CLUSTER, String(workers)], jsonPort);
          } else {
            const config = join(tmp, `${t.key}-${workers}.yaml`);
            writeFileSync(config, arbiterYaml(workers, t.server));
            server = await startServer(`arbiter ${t.key} w${workers}`, [...profile, CLI, 'serve', '--config', config, '--workers', String(workers)], bannerPort);
          }
          servers.push(server);
          try {
            const summary = await verifyBody(server.port, t.path, t.body, t.want);
            if (round === 1 && workers === WORKERS[0]) verified.push(`- \`${t.key}\` (${t.body.length.toLocaleString('en-US')}-byte body): ${summary}`);
            for (const c of CONCURRENCY) {
              const m = await measure(server, t.path, bodyFile, c, join(tmp, 'log.tsv'), `${t.key} workers=${workers} C=${c}${ROUNDS > 1 ? ` round ${round}/${ROUNDS}` : ''}`);
              points.push({ target: t, workers, c, round, m });
              if (m.failed + m.errored + m.non2xx > 0) problems.push(`${t.key} workers=${workers} C=${c} round ${round}: ${m.failed} failed, ${m.errored} errored, ${m.non2xx} not HTTP 200`);
            }
          } catch (e) {
            problems.push(`${t.key} workers=${workers} round ${round}: ${e instanceof Error ? e.message : String(e)}`);
          } finally {
            await stopServer(server);
          }
        }
      }
    }
  } catch (e) {
    problems.push(`run aborted: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  } finally {
    for (const s of servers) await stopServer(s);
    rmSync(tmp, { recursive: true, force: true });
  }

  const refUs = (ref: string, workers: number, c: number, round: number): number =>
    points.find((p) => p.target.key === ref && p.workers === workers && p.c === c && p.round === round)?.m.serverUsPerCall ?? Number.NaN;
  /** One (target, workers, C) over its rounds: the median round's measures, and its CPU per call against the ceiling's of the same round (median and range). */
  interface Row {
    readonly target: Target;
    readonly workers: number;
    readonly c: number;
    readonly m: Measure;
    readonly ratio: number;
    readonly ratioMin: number;
    readonly ratioMax: number;
    readonly rounds: number;
    readonly disturbed: boolean;
  }
  const rows: Row[] = [];
  // Each (target, workers, C) once, in the order first measured (a round that failed for one target leaves the others).
  const firsts = points.filter((p, i) => points.findIndex((q) => q.target.key === p.target.key && q.workers === p.workers && q.c === p.c) === i);
  for (const p of firsts) {
    const same = points.filter((q) => q.target.key === p.target.key && q.workers === p.workers && q.c === p.c);
    const us = median(same.map((q) => q.m.serverUsPerCall));
    const mid = same.find((q) => q.m.serverUsPerCall === us) ?? p;
    const ratios = same.map((q) => q.m.serverUsPerCall / refUs(refKey(q.target), q.workers, q.c, q.round)).filter(Number.isFinite);
    rows.push({
      target: p.target,
      workers: p.workers,
      c: p.c,
      m: mid.m,
      ratio: ratios.length === 0 ? Number.NaN : median(ratios),
      ratioMin: ratios.length === 0 ? Number.NaN : Math.min(...ratios),
      ratioMax: ratios.length === 0 ? Number.NaN : Math.max(...ratios),
      rounds: same.length,
      disturbed: same.some((q) => q.m.otherCores > OTHER_CPU_FLAG),
    });
  }
  const ratioText = (r: Row): string => (r.target.server === 'ceiling' ? '1.00' : r.rounds > 1 && Number.isFinite(r.ratio) ? `${num(r.ratio, 2)} (${num(r.ratioMin, 2)}–${num(r.ratioMax, 2)})` : num(r.ratio, 2));
  const out: string[] = [];
  out.push(`Machine: ${machine}.`);
  out.push('');
  out.push(
    `Each point: a fresh server process per target (all C on it), an idle-machine wait, a ${WARMUP} s h2load warm-up run, then ${SECONDS} s timed ` +
      `(\`h2load -t 1 -c min(C,${MAX_CONNECTIONS}) -m C/min(C,${MAX_CONNECTIONS}) -D S -d body.bin\`, plaintext HTTP/2 on the loopback). Latency percentiles from \`--log-file\`. ` +
      'server CPU µs/call: the server process tree\'s utime+stime over the timed run / requests answered. ' +
      `${ROUNDS} round${ROUNDS === 1 ? '' : 's'}: every target was run ${ROUNDS === 1 ? 'once' : `${ROUNDS} times, round after round; a row is its median round (by server CPU per call)`}. ` +
      `"vs ceiling" divides the server CPU per call by the ceiling's at the same workers and C in the same round (ext_authz by the ext_authz ceiling)${ROUNDS > 1 ? ': the median over the rounds, and their range' : ''}. ` +
      `CPU cores: h2load / server / other processes († other > ${OTHER_CPU_FLAG} in some round: disturbed).`,
  );
  for (const workers of WORKERS) {
    out.push('');
    out.push(`Workers: ${workers}${workers === 1 ? ' (one process)' : ` (cluster: a primary and ${workers} workers sharing the port; the ceiling likewise, ceiling-cluster.ts)`}`);
    out.push('');
    out.push('| target | C | req/s | decisions/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/call | µs/decision | vs ceiling | CPU h2load / server / other | errors |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows.filter((q) => q.workers === workers)) {
      const m = r.m;
      out.push(
        `| ${r.target.key} | ${r.c} | ${int(m.rps)} | ${int(m.rps * r.target.decisions)} | ${int(m.p50)} | ${int(m.p99)} | ${int(m.p999)} | ${int(m.serverUsPerCall)} | ${num(m.serverUsPerCall / r.target.decisions, 1)} | ${ratioText(r)} | ` +
          `${num(m.h2loadCores, 2)} / ${num(m.serverCores, 2)} / ${num(m.otherCores, 2)}${r.disturbed ? ' †' : ''} | ${m.failed + m.errored + m.non2xx} |`,
      );
    }
  }
  out.push('');
  out.push('Targets:');
  const seen = new Set<string>();
  for (const p of points) {
    if (seen.has(p.target.key)) continue;
    seen.add(p.target.key);
    out.push(`- \`${p.target.key}\`: ${p.target.label}${p.target.server === 'ceiling' ? '' : ` (decision cache ${p.target.server.decisionCache ? `on, ${servedCacheEntries().toLocaleString('en-US')} entries` : 'off: cache.max_entries 0'}; subject cache ${p.target.server.subjectCache ? 'on' : 'off: jwt.cache.max_entries 0'})`}.`);
  }
  out.push('');
  out.push('Answers checked before timing (same body bytes and headers as h2load, posted over Node\'s HTTP/2 client, answer decoded and compared with the in-process engine; h2load itself only sees HTTP 200, since gRPC errors travel in trailers):');
  out.push(...verified);
  out.push('');
  out.push('Goals (reported, not enforced):');
  for (const [key, limit] of Object.entries(CPU_TARGETS)) {
    const met = rows.filter((r) => r.target.key === key).map((r) => `w${r.workers} C=${r.c} ${ratioText(r)} (${r.ratio <= limit ? 'met' : 'MISSED'}${r.disturbed ? ' †' : ''})`);
    out.push(`- ${key} server CPU/call ≤ ${limit}× the ceiling's${ROUNDS > 1 ? ' (median of the rounds)' : ''}: ${met.join(', ') || 'not measured'}.`);
  }
  const b = rows.filter((r) => r.target.key === 'batch-1000' && r.workers === 1);
  out.push(`- CheckBatch of 1,000 items > ${int(BATCH_TARGET_DPS)} decisions/s on one worker: ${b.map((r) => `C=${r.c} ${int(r.m.rps * r.target.decisions)} (${r.m.rps * r.target.decisions > BATCH_TARGET_DPS ? 'met' : 'MISSED'})`).join(', ') || 'not measured'}.`);
  out.push('');
  out.push(`Total ${num((performance.now() - started) / 1000, 0)} s.`);
  printReport(out, problems);
}

runMain('bench:h2load', main);

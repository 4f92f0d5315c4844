/**
 * Server instructions per call, counted by callgrind: `npm run
 * bench:instructions` (or `node dist/bench/h2load/instructions.js` after a
 * build; this script builds nothing).
 *
 * Why: bench:h2load's targets are ratios of server CPU time per call
 * (Arbiter's over the bare grpc-js ceiling's). On a shared VM whose CPU speed
 * swings by half within a second, those ratios move ±0.2 from run to run,
 * more than the margins of the targets (1.25×, 1.5×). Callgrind counts the
 * instructions the server executes instead of timing them: the count for the
 * same binary and inputs does not depend on what else the machine is doing,
 * so the ratio of counts is a repeatable stand-in for the ratio of CPU times.
 *
 * What it is and is not: user-space instructions of the server process, all
 * its threads (callgrind serializes them), JIT-compiled code included
 * (valgrind translates it like any code). Not counted: time in the kernel
 * (socket reads and writes, epoll), which the ceiling and Arbiter pay alike,
 * so leaving it out makes a ratio larger, not smaller; nor what an
 * instruction costs (cache misses, branch mispredictions), which a count
 * cannot see and bench:h2load's CPU times do.
 *
 * How, per target and worker count: a fresh server process under `valgrind
 * --tool=callgrind` (with more workers, `--trace-children=yes`: the cluster
 * primary and each worker are counted, and summed). The answers are checked
 * as bench:h2load checks them (bodies.ts). A warm-up h2load run at the
 * highest C; then per C one window not counted and BENCH_WINDOWS counted,
 * each callgrind `zero` (sent by vgdb), an h2load run of a fixed number
 * of requests, a short settle, and a `dump`. A window's figure
 * is its instructions over the requests answered; a point reports the median
 * window, the range, and the mean (all its windows' instructions over all
 * their calls, which keeps the occasional major garbage collection the median
 * leaves out). Node runs with `--single-threaded --no-memory-reducer`
 * (BENCH_NODE_FLAGS): V8 then compiles and collects on the main thread
 * rather than on helper threads, and does not collect on a timer, so the
 * same work is counted whichever thread would have done it, and a window
 * does not pay for wall-clock time (valgrind runs the server about 50× slower
 * than native, so anything driven by the clock weighs 50× more per request).
 *
 * Servers run BENCH_PARALLEL at a time (default: the cores): a count does not
 * depend on the CPU it gets, only the wall time does.
 *
 * Not part of `npm test` or CI: it needs valgrind (with vgdb) and h2load (`apt-get install -y valgrind nghttp2-client`); without them it
 * says so and exits 2.
 *
 * Environment: BENCH_TARGETS (default "ceiling,check-hits,check-nocache"; any
 * of bench:h2load's), BENCH_CONCURRENCY (default "1,16,64"), BENCH_WORKERS
 * (default "1,<cores>"), BENCH_WINDOWS (default 5), BENCH_WINDOW_REQUESTS
 * (default 3000), BENCH_WARMUP_REQUESTS (default 20000; both are divided by
 * a target's decisions per request, so a CheckBatch window holds about as
 * many decisions as a Check window, and are at least 4 × C),
 * BENCH_CONNECTIONS (most h2load connections, default 4), BENCH_PARALLEL,
 * BENCH_NODE_FLAGS.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildMix, processTree, ROOT } from '../grpc/common.js';
import { bannerPort, jsonPort, startServer, stopServer, type Server } from '../grpc/servers.js';
import { verifyBody } from './bodies.js';
import { allTargets, arbiterYaml, chosenTargets, CPU_TARGETS, grab, h2loadArgs, h2loadVersion, listEnv, median, numberEnv, refKey, runH2load, type Target } from './targets.js';
import { printReport, runMain } from '../report.js';

const CEILING = fileURLToPath(new URL('../grpc/ceiling-server.js', import.meta.url));
const CEILING_CLUSTER = fileURLToPath(new URL('./ceiling-cluster.js', import.meta.url));
const CLI = join(ROOT, 'bin', 'arbiter.js');

const CORES = os.availableParallelism();
const CONCURRENCY = listEnv('BENCH_CONCURRENCY', '1,16,64');
const WORKERS = [...new Set(listEnv('BENCH_WORKERS', `1,${CORES}`))];
const WINDOWS = Math.max(1, Math.round(numberEnv('BENCH_WINDOWS', 5)));
const WINDOW_REQUESTS = Math.max(1, Math.round(numberEnv('BENCH_WINDOW_REQUESTS', 3000)));
const WARMUP_REQUESTS = Math.round(numberEnv('BENCH_WARMUP_REQUESTS', 20_000));
const MAX_CONNECTIONS = Math.max(1, numberEnv('BENCH_CONNECTIONS', 4));
const PARALLEL = Math.max(1, Math.round(numberEnv('BENCH_PARALLEL', CORES)));
const NODE_FLAGS = (process.env['BENCH_NODE_FLAGS'] ?? '--single-threaded --no-memory-reducer').split(' ').filter((f) => f !== '');
const DEFAULT_TARGETS = ['ceiling', 'check-hits', 'check-nocache'];
/**
 * After an h2load run, before the dump: the server closes the run's
 * connections. What it has not done by then falls into the next window, and
 * is the same for every target.
 */
const SETTLE_MS = 500;
/** Under valgrind a server takes 10–30 s to start; a slow machine, more. */
const START_SECONDS = 300;
/** A control command that takes longer than this is stuck (the process is wedged or gone). */
const CONTROL_SECONDS = 60;
/** An h2load window that takes longer than this is stuck (the server stopped answering). */
const WINDOW_SECONDS = 900;
/** How long a stopped server tree may take to drain and write its last dumps before it is killed. */
const STOP_SECONDS = 120;

/** One counted window. */
interface Window {
  readonly instructions: number;
  readonly answered: number;
}

/** What one (target, workers, C) measured. */
interface Point {
  readonly target: Target;
  readonly workers: number;
  readonly c: number;
  readonly windows: readonly Window[];
  /** Per call: the median window, the least and the most, and all windows together (their instructions over their calls). */
  readonly perCall: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
}

function tool(command: string, args: readonly string[]): { ok: boolean; out: string } {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return { ok: r.error === undefined && r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/**
 * Sends callgrind's monitor command `zero` or `dump` to process `pid` through
 * vgdb (whose exit status says whether the process got it; callgrind_control
 * prints OK either way). Throws when it fails or takes over CONTROL_SECONDS.
 */
function callgrindControl(pid: number, what: 'zero' | 'dump'): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('vgdb', [`--pid=${pid}`, what], { timeout: CONTROL_SECONDS * 1000 }, (err, stdout, stderr) => {
      if (err === null) resolve();
      else reject(new Error(`vgdb --pid=${pid} ${what}: ${err.killed ? `no answer in ${CONTROL_SECONDS} s` : `${stdout}${stderr}`.trim() || err.message}`));
    });
  });
}

/**
 * The instructions of the dumps of `prefix` (files `<prefix>.<pid>.<part>`):
 * one per process, all deleted once read, so each call sees only the dumps
 * made since the last.
 */
function takeDumps(dir: string, prefix: string, pids: readonly number[]): number {
  const re = new RegExp(`^${prefix}\\.(\\d+)\\.(\\d+)$`);
  const files = readdirSync(dir)
    .map((f) => ({ f, m: re.exec(f) }))
    .filter((x): x is { f: string; m: RegExpExecArray } => x.m !== null);
  let total = 0;
  for (const pid of pids) {
    const mine = files.filter((x) => Number(x.m[1]) === pid);
    if (mine.length !== 1) throw new Error(`${prefix}: ${mine.length} callgrind dumps of process ${pid}, not 1`);
    // `summary:` is what the process executed since the last zero; `totals:` also keeps a little cost
    // of calls that were running when it was zeroed.
    const line = /^summary:\s+(\d+)/m.exec(readFileSync(join(dir, mine[0]!.f), 'utf8'));
    if (line === null) throw new Error(`callgrind dump ${mine[0]!.f} has no summary line`);
    total += Number(line[1]);
  }
  for (const x of files) rmSync(join(dir, x.f), { force: true });
  return total;
}

/** Requests for a run of `base` decisions' worth on target `t` at concurrency `c`. */
const requestsFor = (base: number, t: Target, c: number): number => Math.max(4 * c, Math.round(base / t.decisions));

/** One window on `server` (all of whose processes are `pids`): zero, h2load, settle, dump. */
async function countWindow(t: Target, name: string, server: Server, pids: readonly number[], bodyFile: string, c: number, tmp: string): Promise<Window & { wall: number }> {
  const n = requestsFor(WINDOW_REQUESTS, t, c);
  for (const pid of pids) await callgrindControl(pid, 'zero');
  const run = await runH2load(h2loadArgs(server.port, t.path, bodyFile, c, { requests: n }, MAX_CONNECTIONS), WINDOW_SECONDS);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  for (const pid of pids) await callgrindControl(pid, 'dump');
  const instructions = takeDumps(tmp, name, pids);
  const answered = grab(run.out, /(\d+) succeeded/);
  const failed = grab(run.out, /(\d+) failed/) + grab(run.out, /(\d+) errored/);
  if (answered !== n || failed !== 0) throw new Error(`${name} C=${c}: ${answered} of ${n} requests succeeded, ${failed} failed or errored`);
  return { instructions, answered, wall: run.wall };
}

async function measureTarget(t: Target, workers: number, tmp: string, log: (s: string) => void): Promise<Point[]> {
  const name = `${t.key}-w${workers}`;
  const bodyFile = join(tmp, `${name}.bin`);
  writeFileSync(bodyFile, t.body);
  const wrap = [
    'valgrind',
    '--tool=callgrind',
    `--callgrind-out-file=${join(tmp, `${name}.%p`)}`,
    `--log-file=${join(tmp, `${name}.valgrind.%p.log`)}`,
    ...(workers > 1 ? ['--trace-children=yes'] : []),
    '--dump-instr=no',
  ];
  let server: Server;
  try {
    if (t.server === 'ceiling') {
      const args = workers === 1 ? [CEILING] : [CEILING_CLUSTER, String(workers)];
      server = await startServer(name, [...NODE_FLAGS, ...args], jsonPort, { wrap, startSeconds: START_SECONDS });
    } else {
      const config = join(tmp, `${name}.yaml`);
      writeFileSync(config, arbiterYaml(workers, t.server));
      server = await startServer(name, [...NODE_FLAGS, CLI, 'serve', '--config', config, '--workers', String(workers)], bannerPort, { wrap, startSeconds: START_SECONDS });
    }
  } catch (e) {
    throw withValgrindLog(e, tmp, name);
  }
  const points: Point[] = [];
  let pids: number[] = [server.pid];
  try {
    pids = processTree(server.pid);
    if (pids.length !== (workers === 1 ? 1 : workers + 1)) throw new Error(`${name}: ${pids.length} processes, expected ${workers === 1 ? 1 : workers + 1}`);
    const summary = await verifyBody(server.port, t.path, t.body, t.want);
    log(`${name}: ${summary}`);
    // The first command to a valgrind process also sets up vgdb's link to it; keep that out of every window.
    for (const pid of pids) await callgrindControl(pid, 'zero');
    // JIT compilation settles faster at the highest concurrency (more calls per second under valgrind).
    const top = Math.max(...CONCURRENCY);
    if (WARMUP_REQUESTS > 0) await runH2load(h2loadArgs(server.port, t.path, bodyFile, top, { requests: requestsFor(WARMUP_REQUESTS, t, top) }, MAX_CONNECTIONS), WINDOW_SECONDS);
    for (const c of CONCURRENCY) {
      // One window not counted, so each C starts from the same state of its connections and code.
      await countWindow(t, name, server, pids, bodyFile, c, tmp);
      const windows: Window[] = [];
      for (let w = 1; w <= WINDOWS; w++) {
        const win = await countWindow(t, name, server, pids, bodyFile, c, tmp);
        windows.push(win);
        log(`${name} C=${c} window ${w}/${WINDOWS}: ${Math.round(win.instructions / win.answered).toLocaleString('en-US')} instructions per call (${win.wall.toFixed(1)} s)`);
      }
      const per = windows.map((w) => w.instructions / w.answered);
      const mean = windows.reduce((a, w) => a + w.instructions, 0) / windows.reduce((a, w) => a + w.answered, 0);
      points.push({ target: t, workers, c, windows, perCall: median(per), min: Math.min(...per), max: Math.max(...per), mean });
    }
  } catch (e) {
    throw withValgrindLog(e, tmp, name);
  } finally {
    await stopTree(server, pids);
  }
  return points;
}

/** Stops the server, then waits for every process of its tree (cluster workers under valgrind write their last dumps on the way out); kills what is left after STOP_SECONDS. */
async function stopTree(server: Server, pids: readonly number[]): Promise<void> {
  await stopServer(server);
  const deadline = performance.now() + STOP_SECONDS * 1000;
  let alive = pids.filter((p) => existsSync(`/proc/${p}`));
  while (alive.length > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    alive = alive.filter((p) => existsSync(`/proc/${p}`));
  }
  for (const p of alive) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/** `e`, with the end of the target's valgrind logs (which live in the run's temporary directory, deleted at the end). */
function withValgrindLog(e: unknown, tmp: string, name: string): Error {
  const message = e instanceof Error ? e.message : String(e);
  const logs = readdirSync(tmp).filter((f) => f.startsWith(`${name}.valgrind.`) && f.endsWith('.log'));
  const tails = logs.map((f) => {
    const lines = readFileSync(join(tmp, f), 'utf8').trimEnd().split('\n');
    return `${f}:\n${lines.slice(-15).join('\n')}`;
  });
  return new Error(tails.length === 0 ? message : `${message}\nvalgrind said:\n${tails.join('\n')}`);
}

/** Runs `jobs` with at most `limit` at a time; the results in the jobs' order. */
async function pool<T>(jobs: readonly (() => Promise<T>)[], limit: number): Promise<PromiseSettledResult<T>[]> {
  const results: PromiseSettledResult<T>[] = new Array(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < jobs.length; i = next++) {
      try {
        results[i] = { status: 'fulfilled', value: await jobs[i]!() };
      } catch (e) {
        results[i] = { status: 'rejected', reason: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

const int = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const num = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

async function main(): Promise<void> {
  const h2load = h2loadVersion();
  const missing = [...[['valgrind', '--version'], ['vgdb', '--help']].filter(([cmd, arg]) => !tool(cmd!, [arg!]).ok).map(([cmd]) => cmd!), ...(h2load === undefined ? ['h2load'] : [])];
  if (missing.length > 0) {
    process.stderr.write(`bench:instructions: not found: ${missing.join(', ')}. On Debian/Ubuntu: sudo apt-get install -y valgrind nghttp2-client\n`);
    process.exit(2);
  }
  const started = performance.now();
  const versions = `${tool('valgrind', ['--version']).out}, ${h2load}`;
  const cpuModel = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const machine = `${cpuModel}, ${CORES} cores, ${os.type()} ${os.release()}, Node ${process.version}, ${versions}, ${new Date().toISOString().slice(0, 10)}`;
  const tmp = mkdtempSync(join(os.tmpdir(), 'arbiter-callgrind-'));
  const problems: string[] = [];
  const points: Point[] = [];
  const log = (s: string): void => void process.stderr.write(`bench:instructions: ${s}\n`);
  try {
    const mix = await buildMix(1);
    const targets = chosenTargets(await allTargets(mix), DEFAULT_TARGETS);
    log(machine);
    const jobs = WORKERS.flatMap((workers) => targets.map((t) => ({ t, workers })));
    const results = await pool(
      jobs.map(({ t, workers }) => () => measureTarget(t, workers, tmp, log)),
      PARALLEL,
    );
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') points.push(...r.value);
      else problems.push(`${jobs[i]!.t.key} workers=${jobs[i]!.workers}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`);
    });
  } catch (e) {
    problems.push(`run aborted: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }

  const ref = (p: Point): Point | undefined => points.find((q) => q.target.key === refKey(p.target) && q.workers === p.workers && q.c === p.c);
  const ratio = (p: Point): number => p.perCall / (ref(p)?.perCall ?? Number.NaN);
  const meanRatio = (p: Point): number => p.mean / (ref(p)?.mean ?? Number.NaN);
  const out: string[] = [];
  out.push(`Machine: ${machine}.`);
  out.push('');
  out.push(
    `Each target: a fresh server process (with more workers, a cluster primary and its workers) under \`valgrind --tool=callgrind\` (node ${NODE_FLAGS.join(' ')}). ` +
      `A warm-up h2load run at C=${Math.max(...CONCURRENCY)}, then per C one window not counted and ${WINDOWS} counted ` +
      '(callgrind `zero` through vgdb, an h2load run of a fixed number of requests, `dump`). Instructions per call: a window\'s user-space instructions of every server process and thread (the dumps\' `summary:`) ' +
      '/ requests answered; the median window, the range, and the mean (all windows\' instructions over their calls: it keeps the occasional major garbage collection that the median leaves out). ' +
      '"vs ceiling": over the ceiling\'s at the same workers and C, of the medians and of the means.',
  );
  for (const workers of WORKERS) {
    out.push('');
    out.push(`Workers: ${workers}`);
    out.push('');
    out.push('| target | C | requests per window | instructions per call (median) | range | mean | per decision | vs ceiling (median / mean) |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const p of points.filter((q) => q.workers === workers)) {
      out.push(
        `| ${p.target.key} | ${p.c} | ${int(p.windows[0]?.answered ?? Number.NaN)} | ${int(p.perCall)} | ${int(p.min)}–${int(p.max)} | ${int(p.mean)} | ${int(p.perCall / p.target.decisions)} | ` +
          `${p.target.server === 'ceiling' ? '1.00' : `${num(ratio(p), 2)} / ${num(meanRatio(p), 2)}`} |`,
      );
    }
  }
  out.push('');
  out.push('Targets:');
  for (const t of [...new Map(points.map((p) => [p.target.key, p.target])).values()]) out.push(`- \`${t.key}\`: ${t.label}.`);
  out.push('');
  out.push('Goals in instructions (the issue states them in CPU time; reported, not enforced; median / mean):');
  for (const [key, limit] of Object.entries(CPU_TARGETS)) {
    const met = points
      .filter((p) => p.target.key === key)
      .map((p) => `w${p.workers} C=${p.c} ${num(ratio(p), 2)} / ${num(meanRatio(p), 2)} (${ratio(p) <= limit && meanRatio(p) <= limit ? 'met' : 'MISSED'})`);
    out.push(`- ${key} ≤ ${limit}× the ceiling's instructions per call: ${met.join(', ') || 'not measured'}.`);
  }
  out.push('');
  out.push(`Total ${num((performance.now() - started) / 1000, 0)} s.`);
  printReport(out, problems);
}

runMain('bench:instructions', main);

/**
 * What bench:h2load and bench:instructions share: the targets (which server,
 * which body, what answer proves it right), the Arbiter config each target
 * runs with, the goals, and running h2load itself.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { benchConfigYaml, type MixFile } from '../grpc/common.js';
import { BATCH_ACTIONS, BATCH_PATH, batchBody, batchExpected, CHECK_PATH, checkBody, EXT_PATH, extBody, type Expectation } from './bodies.js';

/** Targets from the issue (reported, not enforced): server CPU per call vs the ceiling's, and batch throughput. */
export const CPU_TARGETS: Readonly<Record<string, number>> = { 'check-hits': 1.25, 'check-nocache': 1.5 };
export const BATCH_TARGET_DPS = 1_000_000;

/** How a target's Arbiter is configured. */
export interface ArbiterSetup {
  readonly decisionCache: boolean;
  readonly subjectCache: boolean;
}

export interface Target {
  readonly key: string;
  readonly label: string;
  readonly server: 'ceiling' | ArbiterSetup;
  readonly path: string;
  readonly body: Buffer;
  readonly want: Expectation;
  /** Decisions per request (items × actions; 1 for Check). */
  readonly decisions: number;
  /** Whose server CPU per call it is compared with. */
  readonly ref: 'ceiling-check' | 'ceiling-ext';
}

/** The key of the target a target is compared with. */
export const refKey = (t: Target): string => (t.ref === 'ceiling-check' ? 'ceiling' : 'ceiling-ext');

const int = (x: number): string => Math.round(x).toLocaleString('en-US');

/** Every target, in the order they run: the ceilings first, since every ratio divides by them. */
export async function allTargets(mix: MixFile): Promise<Target[]> {
  const check = checkBody(mix, 0);
  const ext = extBody(mix, 0);
  const hit = (subjectCache: boolean): ArbiterSetup => ({ decisionCache: true, subjectCache });
  const off = (subjectCache: boolean): ArbiterSetup => ({ decisionCache: false, subjectCache });
  const targets: Target[] = [
    { key: 'ceiling', label: 'ceiling (bare grpc-js, constant ALLOW)', server: 'ceiling', path: CHECK_PATH, body: check.body, want: { kind: 'check', expected: { decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['dept_editors'] }, cached: 'any' }, decisions: 1, ref: 'ceiling-check' },
    { key: 'ceiling-ext', label: 'ceiling ext_authz (constant OK)', server: 'ceiling', path: EXT_PATH, body: ext.body, want: { kind: 'ext', expected: ext.expected }, decisions: 1, ref: 'ceiling-ext' },
    { key: 'check-hits', label: 'Check, decision cache hit', server: hit(true), path: CHECK_PATH, body: check.body, want: { kind: 'check', expected: check.expected, cached: true }, decisions: 1, ref: 'ceiling-check' },
    { key: 'check-nocache', label: 'Check, decision cache off (evaluates), JWT cached', server: off(true), path: CHECK_PATH, body: check.body, want: { kind: 'check', expected: check.expected, cached: false }, decisions: 1, ref: 'ceiling-check' },
    { key: 'check-jwt-uncached', label: 'Check, JWT uncached (ES256 every call), decision cache hit', server: hit(false), path: CHECK_PATH, body: check.body, want: { kind: 'check', expected: check.expected, cached: true }, decisions: 1, ref: 'ceiling-check' },
    { key: 'check-nocache-jwt-uncached', label: 'Check, JWT uncached and decision cache off', server: off(false), path: CHECK_PATH, body: check.body, want: { kind: 'check', expected: check.expected, cached: false }, decisions: 1, ref: 'ceiling-check' },
  ];
  const batchExp = await batchExpected(mix, 1000);
  for (const n of [1, 10, 100, 1000]) {
    targets.push({
      key: `batch-${n}`,
      label: `CheckBatch ${int(n)} item${n === 1 ? '' : 's'} × ${BATCH_ACTIONS.length} actions, decision cache off`,
      server: off(true),
      path: BATCH_PATH,
      body: batchBody(mix, n),
      want: { kind: 'batch', expected: batchExp.slice(0, n) },
      decisions: n * BATCH_ACTIONS.length,
      ref: 'ceiling-check',
    });
  }
  targets.push({ key: 'ext-hits', label: 'ext_authz Check, decision cache hit', server: hit(true), path: EXT_PATH, body: ext.body, want: { kind: 'ext', expected: ext.expected }, decisions: 1, ref: 'ceiling-ext' });
  return targets;
}

/** The targets BENCH_TARGETS names (comma-separated keys), or `fallback` keys when it is unset (all targets when that is undefined). */
export function chosenTargets(targets: readonly Target[], fallback?: readonly string[]): Target[] {
  const only = process.env['BENCH_TARGETS'];
  const keys = only === undefined || only.trim() === '' ? fallback : only.split(',').map((s) => s.trim()).filter((k) => k !== '');
  if (keys === undefined) return [...targets];
  const unknown = keys.filter((k) => !targets.some((t) => t.key === k));
  if (unknown.length > 0) throw new Error(`BENCH_TARGETS: no such target ${unknown.join(', ')} (targets: ${targets.map((t) => t.key).join(', ')})`);
  return targets.filter((t) => keys.includes(t.key));
}

/** bench/grpc's config, with the caches the target turns off. */
export function arbiterYaml(workers: number, setup: ArbiterSetup): string {
  const doc = parseDocument(benchConfigYaml(workers));
  if (!setup.decisionCache) doc.setIn(['cache', 'max_entries'], 0);
  if (!setup.subjectCache) doc.setIn(['jwt', 'cache', 'max_entries'], 0);
  return doc.toString();
}

/** A number from the environment (≥ 0), or `fallback` when unset. */
export function numberEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number ≥ 0 (got ${raw})`);
  return n;
}

/** A comma-separated list of positive integers from the environment. */
export function listEnv(name: string, fallback: string): number[] {
  return (process.env[name] ?? fallback).split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: not a positive integer: ${s}`);
    return n;
  });
}

/** The median of a non-empty list (the lower middle one for an even count, so it is a measured value). */
export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

const CLOCK_TICKS = 100;

/** CPU seconds of this process's reaped children (cutime + cstime, /proc/self/stat): h2load's, once it has exited. */
function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / CLOCK_TICKS;
}

/** One h2load run: what it printed, its wall time and its CPU (seconds). Killed, and rejected, after `timeoutSeconds` if given. */
export function runH2load(args: readonly string[], timeoutSeconds?: number): Promise<{ out: string; wall: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    const cpu0 = childrenCpuSeconds();
    const t0 = performance.now();
    const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let timedOut = false;
    const timer =
      timeoutSeconds === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, timeoutSeconds * 1000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (out += c));
    child.stderr.on('data', (c: string) => (out += c));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // 'close', not 'exit': by then everything it printed has been read.
    child.on('close', (code) => {
      clearTimeout(timer);
      const wall = (performance.now() - t0) / 1000;
      const cpu = childrenCpuSeconds() - cpu0;
      if (timedOut) reject(new Error(`h2load ${args.join(' ')} did not finish in ${timeoutSeconds} s (the server stopped answering?)`));
      else if (code !== 0) reject(new Error(`h2load ${args.join(' ')} exited ${String(code)}: ${out}`));
      else resolve({ out, wall, cpu });
    });
  });
}

/** How long an h2load run lasts: a duration, or a number of requests. */
export type H2loadLength = { readonly seconds: number } | { readonly requests: number };

/**
 * h2load's arguments for concurrency `c` (connections = min(c, maxConnections),
 * streams = c / connections) posting `bodyFile` as gRPC.
 */
export function h2loadArgs(port: number, path: string, bodyFile: string, c: number, length: H2loadLength, maxConnections: number, logFile?: string): string[] {
  const conns = Math.min(c, maxConnections);
  const streams = Math.max(1, Math.round(c / conns));
  return [
    '-c',
    String(conns),
    '-m',
    String(streams),
    '-t',
    '1',
    ...('seconds' in length ? ['-D', `${Math.round(length.seconds * 1000)}ms`] : ['-n', String(length.requests)]),
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    '-d',
    bodyFile,
    ...(logFile === undefined ? [] : ['--log-file', logFile]),
    `http://127.0.0.1:${port}${path}`,
  ];
}

/** What `h2load --version` prints, or `undefined` when there is no h2load. */
export function h2loadVersion(): string | undefined {
  const r = spawnSync('h2load', ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return undefined;
  return r.stdout.trim();
}

/** A number h2load printed, found by the first group of `re`. */
export const grab = (out: string, re: RegExp): number => {
  const m = re.exec(out);
  return m === null ? Number.NaN : Number(m[1]);
};

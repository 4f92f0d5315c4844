/**
 * Server processes for the gRPC benchmarks (bench/grpc and bench/h2load):
 * spawning one and finding its port, stopping it, and waiting for the machine
 * to go quiet between points.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { machineBusyCpuSeconds, ROOT } from './common.js';

/** What Arbiter's reflection service may print at start-up about well-known types: noise here. */
const STDERR_NOISE = /^Could not find file associated with reference /;

/** A server child and where it listens. */
export interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
  /** The process whose tree's CPU is measured (the cluster primary for `serve --workers`). */
  readonly pid: number;
}

/** How {@link startServer} runs node. */
export interface StartOptions {
  /** A command node runs under (`['valgrind', '--tool=callgrind', …]`): it is spawned with node and the args after its own. */
  readonly wrap?: readonly string[];
  /** How long the server may take to print its port (default 30 s). */
  readonly startSeconds?: number;
}

/**
 * Spawns `node ...args` (with `wrap`, `wrap[0] ...wrap[1..] node ...args`)
 * and waits until `parsePort` finds its port in what it prints on stdout;
 * its stderr is passed on, prefixed with `name`.
 */
export function startServer(name: string, args: readonly string[], parsePort: (stdout: string) => number | undefined, options: StartOptions = {}): Promise<Server> {
  return new Promise((resolve, reject) => {
    const [command, ...wrapArgs] = options.wrap ?? [];
    const child = command === undefined ? spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(command, [...wrapArgs, process.execPath, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    forwardStderr(child, name);
    let out = '';
    const startSeconds = options.startSeconds ?? 30;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${startSeconds} s; it printed: ${out}`));
    }, startSeconds * 1000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const port = parsePort(out);
      if (port !== undefined && child.pid !== undefined) {
        clearTimeout(timer);
        child.stdout!.removeAllListeners('data');
        child.stdout!.resume(); // keep draining, so the child never blocks on a full pipe
        child.removeAllListeners('exit');
        resolve({ name, child, port, pid: child.pid });
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${signal ?? `code ${String(code)}`}) before it served; it printed: ${out}`));
    });
  });
}

function forwardStderr(child: ChildProcess, name: string): void {
  let pending = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line !== '' && !STDERR_NOISE.test(line)) process.stderr.write(`[${name}] ${line}\n`);
  });
}

/** The first line holding a JSON object with a numeric `port` (our bench servers). */
export function jsonPort(out: string): number | undefined {
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const v = JSON.parse(line) as { port?: unknown };
      if (typeof v.port === 'number') return v.port;
    } catch {
      // a partial line: wait for more
    }
  }
  return undefined;
}

/** The port in `arbiter serve`'s ready banner. */
export function bannerPort(out: string): number | undefined {
  // "arbiter: serving arbiter.v1.Authorizer[ and …] on HOST:PORT (plaintext), N workers"
  const m = /serving arbiter\.v1\.Authorizer\b[^\n]*? on (?:\[[^\]]+\]|[^\s:]+):(\d+)\b/.exec(out);
  return m === null ? undefined : Number(m[1]);
}

/** SIGTERM (drain), then SIGKILL if it lingers. */
export function stopServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    if (s.child.exitCode !== null || s.child.signalCode !== null) {
      resolve();
      return;
    }
    const timer = setTimeout(() => s.child.kill('SIGKILL'), 20_000);
    s.child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    s.child.kill('SIGTERM');
  });
}

/**
 * Waits, up to `maxSeconds`, until the whole machine uses less than
 * `otherCpuFlag` cores over a second (the servers are idle between points, so
 * what is left is other processes). Returns the seconds waited.
 */
export async function waitForQuiet(maxSeconds: number, otherCpuFlag: number): Promise<number> {
  if (maxSeconds === 0) return 0;
  const start = performance.now();
  for (;;) {
    const a = machineBusyCpuSeconds();
    await new Promise((r) => setTimeout(r, 1000));
    const b = machineBusyCpuSeconds();
    const waited = (performance.now() - start) / 1000;
    if (a === null || b === null || b - a < otherCpuFlag || waited >= maxSeconds) return waited;
  }
}

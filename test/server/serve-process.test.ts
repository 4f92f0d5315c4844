/**
 * `arbiter serve` as a real process (`node bin/arbiter.js serve`, which runs
 * the compiled dist/: CI builds before testing): start-up banner, health,
 * SIGHUP reloads, SIGTERM drains, exit codes for bad config and bad policies,
 * cluster workers, and the dev setup `npm start` runs.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { authorizerClient } from '../../src/server/proto.js';
import { call, checkRequest, POLICIES, REPO, testIssuerYaml } from './harness.js';
import { jwksOf, makeKey, sign, writeJson, type TestKey } from '../jwt/fixtures.js';

const BIN = join(REPO, 'bin', 'arbiter.js');

type CheckResponse = { decision: string; reason: string; rules?: string[]; policy_revision: string; cached?: boolean; message?: string };
type Client = grpc.Client & Record<string, Function>;
type Exit = { code: number | null; signal: NodeJS.Signals | null };

/** A spawned `arbiter` process with its output collected. */
interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (or the signal) once the process has ended and its output is read. */
  readonly closed: Promise<Exit>;
  /** Set when the process has exited. */
  exit?: Exit;
}

const procs: Proc[] = [];
const clients: grpc.Client[] = [];
const dirs: string[] = [];
const httpServers: HttpServer[] = [];

function spawnArbiter(args: string[]): Proc {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ARBITER_')));
  // Its own process group, so cleanup can reach cluster workers too.
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
  const p = { child, pid: child.pid!, stdout: '', stderr: '' } as Proc;
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (p.stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (p.stderr += s));
  child.once('exit', (code, signal) => (p.exit = { code, signal }));
  (p as { closed: Promise<Exit> }).closed = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  procs.push(p);
  return p;
}

/** Resolves with the match once `pattern` appears on the stream; rejects if the process ends first. */
function waitForOutput(p: Proc, stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const check = (): void => {
      const m = p[stream].match(pattern);
      if (m === null || settled) return;
      settled = true;
      clearTimeout(timer);
      p.child[stream]!.off('data', check);
      resolve(m);
    };
    // A safety net, not a wait: the match normally comes long before.
    const timer = setTimeout(() => fail(`${pattern} did not appear on ${stream} within ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      p.child[stream]!.off('data', check);
      reject(new Error(`${why}\nstdout:\n${p.stdout}\nstderr:\n${p.stderr}`));
    };
    // Listeners run in order: the collector above has appended the chunk before `check` sees it.
    p.child[stream]!.on('data', check);
    void p.closed.then((exit) => {
      check();
      fail(`process ended (${JSON.stringify(exit)}) before ${pattern} appeared on ${stream}`);
    });
    check();
  });
}

/** The gRPC target and ops URL printed in the ready banner. */
async function ready(p: Proc): Promise<{ target: string; ops: string | undefined; workers: number }> {
  const m = await waitForOutput(p, 'stdout', /serving arbiter\.v1\.Authorizer(?: and envoy\.service\.auth\.v3\.Authorization \(ext_authz\))? on (127\.0\.0\.1:\d+) \(plaintext\), (\d+) workers?\n(?:arbiter: metrics, \/healthz and \/readyz on (http:\/\/127\.0\.0\.1:\d+)\n)?/);
  return { target: m[1]!, workers: Number(m[2]), ops: m[3] };
}

function clientFor(target: string): Client {
  const Client = authorizerClient();
  const c = new Client(target, grpc.credentials.createInsecure()) as Client;
  clients.push(c);
  return c;
}

/** The JSON log lines on stderr. */
function logLines(p: Proc): Record<string, unknown>[] {
  return p.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'arbiter-serve-'));
  dirs.push(d);
  return d;
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function replaceFile(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the live children of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

let key: TestKey;
let keyDir: string;
let jwksPath: string;

beforeAll(async () => {
  if (!existsSync(join(REPO, 'dist', 'src', 'cli', 'main.js'))) throw new Error('dist/ is missing: build first (npx tsc -p tsconfig.json && node scripts/copy-parser.js)');
  key = await makeKey('ES256', 'k1');
  keyDir = mkdtempSync(join(tmpdir(), 'arbiter-serve-keys-'));
  jwksPath = writeJson(keyDir, 'jwks.json', jwksOf(key));
  return () => rmSync(keyDir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const p of procs.splice(0)) {
    // The whole process group: the server and any cluster workers it left behind.
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      // Every one of them is gone already.
    }
    await p.closed;
  }
  for (const s of httpServers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function issuerYaml(keys: string, extra: string[] = []): string {
  return testIssuerYaml(keys, { issuerLines: extra }).trimEnd();
}

/** A temp dir with a copy of policies/ and an arbiter.yaml; returns the config path and the policy dir. */
function setup(options: { server?: string[]; jwt?: string; metrics?: boolean } = {}): { config: string; policies: string; dir: string } {
  const dir = tempDir();
  const policies = join(dir, 'policies');
  cpSync(POLICIES, policies, { recursive: true });
  const text = [
    `policies: ${JSON.stringify(policies)}`,
    'server:',
    '  plaintext: true',
    ...(options.server ?? ['address: 127.0.0.1:0', 'workers: 1']).map((l) => `  ${l}`),
    ...(options.metrics === false ? [] : ['metrics:', '  address: 127.0.0.1:0']),
    'decision_log:',
    '  path: "off"',
    options.jwt ?? issuerYaml(`jwks_file: ${JSON.stringify(jwksPath)}`),
    '',
  ].join('\n');
  const config = join(dir, 'arbiter.yaml');
  writeFileSync(config, text);
  return { config, policies, dir };
}

const READ_SPEC = {
  action: 'read',
  resource: { type: 'document', id: 'spec-42', attributes: { owner: 'bob', department: 'engineering', classification: 'internal' } },
  context: { ip: '10.1.2.3' },
};
const CREATE_IN_FOLDER = { action: 'create_document', resource: { type: 'folder', id: 'f1', attributes: { path: '/projects/' } } };

function aliceToken(k: TestKey = key): Promise<string> {
  return sign(k, { claims: { sub: 'alice', roles: ['editor'], department: 'engineering' } });
}

describe('arbiter serve', () => {
  it('prints the ready banner with the real ports, answers Check, /healthz and /readyz; SIGTERM exits 0', async () => {
    const { config } = setup();
    const p = spawnArbiter(['serve', '--config', config]);
    const { target, ops, workers } = await ready(p);
    expect(workers).toBe(1);
    expect(target).not.toBe('127.0.0.1:0');
    expect(ops).toBeDefined();

    const res = await call<CheckResponse>(clientFor(target), 'Check', checkRequest({ token: await aliceToken(), ...READ_SPEC }));
    expect(res).toMatchObject({ decision: 'ALLOW', rules: ['document.dept_editors'], cached: false });
    expect(res.policy_revision).toMatch(/^[0-9a-f]+$/);
    const serving = logLines(p).find((l) => l['msg'] === 'serving');
    expect(serving).toMatchObject({ level: 'info', port: Number(target.split(':')[1]), revision: res.policy_revision });

    const healthz = await fetch(`${ops}/healthz`);
    expect(healthz.status).toBe(200);
    const readyz = await fetch(`${ops}/readyz`);
    expect(readyz.status).toBe(200);
    expect(await readyz.text()).toBe('ready\n');

    p.child.kill('SIGTERM');
    expect(await p.closed).toEqual({ code: 0, signal: null });
  });

  it('reloads the policies on SIGHUP', async () => {
    const { config, policies } = setup({ server: ['address: 127.0.0.1:0', 'workers: 1', 'policy_poll: 1h'] });
    const p = spawnArbiter(['serve', '--config', config]);
    const { target } = await ready(p);
    const client = clientFor(target);
    const viewer = await sign(key, { claims: { sub: 'vera', roles: ['viewer'] } });
    const before = await call<CheckResponse>(client, 'Check', checkRequest({ token: viewer, ...CREATE_IN_FOLDER }));
    expect(before.decision).toBe('DENY');

    const docs = join(policies, 'documents.policy');
    const text = readFileSync(docs, 'utf8');
    const end = text.lastIndexOf('}');
    replaceFile(docs, `${text.slice(0, end)}  rule viewers_create: permit create_document when subject.role("viewer")\n${text.slice(end)}`);
    // fs.watch may see the change too; either way the reload is logged once, by whichever ran first.
    p.child.kill('SIGHUP');
    await waitForOutput(p, 'stderr', /"msg":"policies reloaded"/);
    const reloaded = logLines(p).filter((l) => l['msg'] === 'policies reloaded');
    expect(reloaded).toHaveLength(1);
    expect(['signal', 'watch']).toContain(reloaded[0]!['trigger']);
    expect(reloaded[0]!['previous_revision']).toBe(before.policy_revision);
    const revision = reloaded[0]!['revision'];
    expect(revision).not.toBe(before.policy_revision);

    await expect(call<CheckResponse>(client, 'Check', checkRequest({ token: viewer, ...CREATE_IN_FOLDER }))).resolves.toMatchObject({
      decision: 'ALLOW',
      rules: ['folder.viewers_create'],
      policy_revision: revision,
    });
    // SIGHUP did not stop the process; SIGTERM does.
    expect(p.exit).toBeUndefined();
    p.child.kill('SIGTERM');
    expect(await p.closed).toEqual({ code: 0, signal: null });
  });

  it('drains a call in flight on SIGTERM: it completes, /readyz turns 503, the process exits 0', async () => {
    // The issuer's key endpoint: down at start-up (503), then it hangs until the fetch times out.
    let requests = 0;
    let onHang: (() => void) | undefined;
    const provider = createHttpServer((_req: IncomingMessage, res: ServerResponse) => {
      requests++;
      if (requests === 1) {
        res.writeHead(503).end();
        return;
      }
      onHang?.();
    });
    httpServers.push(provider);
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/jwks`;
    const { config } = setup({ jwt: issuerYaml(`jwks_url: ${url}`, ['fetch_timeout: 3s', 'unknown_kid_cooldown: 0s']) });

    const p = spawnArbiter(['serve', '--config', config]);
    const { target, ops } = await ready(p);
    expect(requests).toBe(1);
    const hung = new Promise<void>((resolve) => (onHang = resolve));
    const inFlight = call<CheckResponse>(clientFor(target), 'Check', checkRequest({ token: await aliceToken(), ...READ_SPEC }), 20_000);
    await hung;

    p.child.kill('SIGTERM');
    await waitForOutput(p, 'stderr', /"msg":"draining"/);
    const readyz = await fetch(`${ops}/readyz`).then(
      (r) => r.status,
      () => 'closed' as const,
    );
    // The ops port stays open until the gRPC server has drained, so it answers, and not ready.
    expect(readyz).toBe(503);
    expect(p.exit).toBeUndefined();

    const res = await inFlight;
    expect(res).toMatchObject({ decision: 'DENY', reason: 'TOKEN_KEYS_UNAVAILABLE' });
    expect(await p.closed).toEqual({ code: 0, signal: null });
    const msgs = logLines(p).map((l) => l['msg']);
    expect(msgs.indexOf('draining')).toBeGreaterThan(-1);
    expect(msgs.indexOf('stopped')).toBeGreaterThan(msgs.indexOf('draining'));
  });

  it('exits 3 on a config with an unknown key, naming it with file:line:col, before opening any port', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const dir = tempDir();
    const config = join(dir, 'arbiter.yaml');
    writeFileSync(
      config,
      [
        `policies: ${JSON.stringify(POLICIES)}`,
        'server:',
        `  address: 127.0.0.1:${port}`,
        '  plaintext: true',
        '  max_batch_itemz: 10',
        'metrics:',
        `  address: 127.0.0.1:${metricsPort}`,
        '',
      ].join('\n'),
    );
    const p = spawnArbiter(['serve', '--config', config]);
    expect(await p.closed).toEqual({ code: 3, signal: null });
    // The key is named, on its line (the column is checked in the `it.fails` below).
    expect(p.stderr).toMatch(new RegExp(`^arbiter serve: ${escapeRegExp(config)}:5:\\d+: \`server\\.max_batch_itemz\` is not a known key; did you mean \`max_batch_items\`\\?$`, 'm'));
    expect(p.stdout).not.toContain('serving');
    expect(await listening(port)).toBe(false);
    expect(await listening(metricsPort)).toBe(false);
  });

  // Regression test, fixed (was: src/config/reader.ts, ConfigDocument.locate): the location of an error about a key is that of
  // the key's value node (`doc.getIn(path, true)`), not of the key. README documents
  // `arbiter.yaml:14:7: \`jwt.issuers[0].audience\` is not a known key` (the key's column).
  it('puts the unknown key error at the key’s column (not its value’s)', async () => {
    const dir = tempDir();
    const config = join(dir, 'arbiter.yaml');
    writeFileSync(config, ['policies: p', 'server:', '  plaintext: true', '  max_batch_itemz: 10', ''].join('\n'));
    const p = spawnArbiter(['serve', '--config', config]);
    expect(await p.closed).toEqual({ code: 3, signal: null });
    // Actual: `:4:20:` (the column of `10`).
    expect(p.stderr).toContain(`${config}:4:3: \`server.max_batch_itemz\` is not a known key`);
  });

  // Regression test, fixed (was: same place): when the unknown key's value is a block mapping, the error names the line of the
  // mapping's first entry, the line after the key.
  it('puts the unknown key error on the key’s line when its value is a block mapping', async () => {
    const dir = tempDir();
    const config = join(dir, 'arbiter.yaml');
    writeFileSync(config, ['policies: p', 'server:', '  plaintext: true', '  tls_files:', '    cert: c.pem', ''].join('\n'));
    const p = spawnArbiter(['serve', '--config', config]);
    expect(await p.closed).toEqual({ code: 3, signal: null });
    expect(p.stderr).toContain('`server.tls_files` is not a known key');
    // Actual: `:5:5:` (the line and column of `cert`).
    expect(p.stderr).toContain(`${config}:4:3: \`server.tls_files\``);
  });

  it('exits 1 on a policy directory with an error, with file:line:col, before opening any port', async () => {
    const port = await freePort();
    const { config, policies } = setup({ server: [`address: 127.0.0.1:${port}`, 'workers: 1'], metrics: false });
    writeFileSync(join(policies, 'bad.policy'), 'resource gadget {\n  actions use\n  rule r: permit use when subject.role("editor") &&\n}\n');
    const p = spawnArbiter(['serve', '--config', config]);
    expect(await p.closed).toEqual({ code: 1, signal: null });
    expect(p.stderr).toContain("bad.policy:3:50: use 'and' instead of '&&' (PARSE_SYNTAX)");
    expect(p.stderr).toContain('1 error');
    expect(p.stdout).not.toContain('serving');
    expect(await listening(port)).toBe(false);
  });

  it('runs --workers 2: serves, aggregates /metrics on the primary, and every process exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const { config } = setup({ server: [`address: 127.0.0.1:${port}`] });
    const p = spawnArbiter(['serve', '--config', config, '--workers', '2']);
    const { target, ops, workers } = await ready(p);
    expect(workers).toBe(2);
    expect(target).toBe(`127.0.0.1:${port}`);
    const workerPids = childrenOf(p.pid);
    expect(workerPids).toHaveLength(2);

    const token = await aliceToken();
    const CALLS = 6;
    // A channel per call, so the calls may land on either worker.
    const results = await Promise.all(Array.from({ length: CALLS }, () => call<CheckResponse>(clientFor(target), 'Check', checkRequest({ token, ...READ_SPEC }))));
    for (const r of results) expect(r.decision).toBe('ALLOW');

    const metrics = await (await fetch(`${ops}/metrics`)).text();
    const decided = metrics
      .split('\n')
      .filter((l) => l.startsWith('arbiter_decisions_total{'))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(decided).toBe(CALLS);
    expect(metrics).toMatch(/arbiter_policy_revision_info\{revision="[0-9a-f]+"\} 1/);
    expect((await fetch(`${ops}/readyz`)).status).toBe(200);

    p.child.kill('SIGTERM');
    expect(await p.closed).toEqual({ code: 0, signal: null });
    for (const pid of workerPids) expect(alive(pid)).toBe(false);
    const msgs = logLines(p).map((l) => l['msg']);
    expect(msgs.filter((m) => m === 'stopped')).toHaveLength(2);
    expect(msgs).toContain('draining workers');
    expect(await listening(port)).toBe(false);
  });

  it('runs the dev setup (`npm start`) and allows alice to read the spec with a dev token', async () => {
    const p = spawnArbiter(['serve', '--config', 'dev/arbiter.yaml', '--address', '127.0.0.1:0', '--metrics-address', '127.0.0.1:0']);
    const { stdout: token } = await promisify(execFile)(process.execPath, [BIN, 'token', '--dev', '--sub', 'alice', '--roles', 'editor', '--claim', 'department=engineering'], { cwd: REPO });
    const { target } = await ready(p);
    const spec = JSON.parse(readFileSync(join(REPO, 'policies', 'examples', 'alice-reads-spec.json'), 'utf8')) as Record<string, unknown> & { subject?: unknown };
    delete spec.subject;
    const res = await call<CheckResponse>(clientFor(target), 'Check', checkRequest({ ...(spec as Parameters<typeof checkRequest>[0]), token: token.trim() }));
    expect(res).toMatchObject({ decision: 'ALLOW', rules: ['document.dept_editors'] });
    p.child.kill('SIGTERM');
    expect(await p.closed).toEqual({ code: 0, signal: null });
    expect(logLines(p).map((l) => l['msg'])).toContain('stopped');
  });
});

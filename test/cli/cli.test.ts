import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'arbiter.js');
const POLICIES = join(import.meta.dirname, '..', '..', 'policies');

/** Runs the CLI in process with the given stdin. */
async function cli(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  return runCli(argv, { stdin });
}

const request = (over: Record<string, unknown> = {}): string =>
  JSON.stringify({
    subject: { sub: 'alice', roles: ['editor'], department: 'engineering' },
    action: 'read',
    resource: { type: 'document', id: 'd1', attributes: { owner: 'bob', department: 'engineering', classification: 'internal' } },
    ...over,
  });

describe('arbiter check', () => {
  it('prints decision, reason, rules and revision as JSON (real binary, request from a file)', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'check', '--policies', POLICIES, '--input', join(POLICIES, 'examples', 'alice-reads-spec.json')]);
    const d = JSON.parse(stdout);
    expect(d).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['document.dept_editors'] });
    expect(d.revision).toMatch(/^[0-9a-f]{16}$/);
  });

  it('reads the request from stdin', async () => {
    const r = await cli(['check', '--policies', POLICIES], request({ action: 'delete' }));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ decision: 'DENY', reason: 'NO_MATCHING_RULE', rules: [] });
  });

  it('explains with --explain', async () => {
    const r = await cli(['check', '--policies', POLICIES, '--explain'], request());
    const d = JSON.parse(r.out);
    expect(d.trace.decidedBy).toBe('permit');
    expect(d.trace.matched).toContain('document.dept_editors');
    expect(d.trace.evaluated.length).toBeGreaterThan(0);
  });

  it('decides as of --now', async () => {
    const body = JSON.stringify({
      subject: { sub: 'fiona', department: 'finance' },
      action: 'refund',
      resource: { type: 'order', id: 'o1', attributes: { amount: 10 } },
      context: { ip: '10.0.0.1' },
    });
    const monday = await cli(['check', '--policies', POLICIES, '--now', '2026-11-23T10:00:00Z'], body);
    expect(JSON.parse(monday.out).decision).toBe('ALLOW');
    const night = await cli(['check', '--policies', POLICIES, '--now', '2026-11-23T22:00:00Z'], body);
    expect(JSON.parse(night.out).decision).toBe('DENY');
    const bad = await cli(['check', '--policies', POLICIES, '--now', 'yesterday'], body);
    expect(bad.code).toBe(2);
  });

  it.each([
    { name: 'not JSON', input: '{', field: '' },
    { name: 'no action', input: request({ action: undefined }), field: 'action' },
    { name: 'no resource type', input: request({ resource: { id: 'x' } }), field: 'resource.type' },
    { name: 'subject not an object', input: request({ subject: 'alice' }), field: 'subject' },
    { name: 'unknown field', input: request({ actions: ['read'] }), field: 'actions' },
    { name: 'too deep', input: request({ context: JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40)) }), field: 'context' },
  ])('rejects a malformed request ($name) with exit 2 naming the field', async ({ input, field }) => {
    const r = await cli(['check', '--policies', POLICIES], input);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('invalid request');
    if (field !== '') expect(r.err).toContain(`field ${field}`);
  });

  it('exits 2 on bad usage and 1 when the policies do not load', async () => {
    expect((await cli(['check'])).code).toBe(2);
    expect((await cli(['check', '--bogus'])).code).toBe(2);
    const r = await cli(['check', '--policies', join(POLICIES, 'does-not-exist')], request());
    expect(r.code).toBe(1);
    expect(r.err).toContain('cannot read policy directory');
  });
});

describe('arbiter validate', () => {
  it('accepts the shipped policies', async () => {
    const r = await cli(['validate', POLICIES]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/policies: ok \(4 files, \d+ rules, revision [0-9a-f]{16}\)/);
  });

  it('reports every error with file:line:col, a frame and exit 1 (real binary)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arbiter-validate-'));
    await mkdir(join(dir, 'nested'));
    await writeFile(join(dir, 'a.policy'), 'roles { admin > editor }\nresource doc {\n  actions read\n  permit raed when subject.role("editr")\n}\n');
    await writeFile(join(dir, 'nested', 'b.policy'), 'resource folder {\n  actions list\n  permit list when user.id == 1\n}\n');
    const err = await run(process.execPath, [BIN, 'validate', dir]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(1);
    const text = err?.stderr ?? '';
    expect(text).toContain('a.policy:4:10: action `raed` is not declared for resource type `doc` (COMPILE_UNDECLARED_ACTION)');
    expect(text).toContain('help: did you mean `read`?');
    expect(text).toContain('a.policy:4:33: unknown role `editr` (COMPILE_UNKNOWN_ROLE)');
    expect(text).toContain('nested/b.policy:3:20: unknown attribute root `user` (COMPILE_UNKNOWN_ROOT)');
    expect(text).toContain('4 |   permit raed when subject.role("editr")');
    expect(text).toMatch(/\n3 errors\n$/);
  });

  it('prints JSON with --format json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arbiter-validate-'));
    await writeFile(join(dir, 'a.policy'), 'resource doc { actions read permit read when }');
    const r = await cli(['validate', '--format', 'json', dir]);
    expect(r.code).toBe(1);
    const [report] = JSON.parse(r.out);
    expect(report.ok).toBe(false);
    expect(report.errors[0]).toMatchObject({ location: 'a.policy:1:46', code: 'PARSE_SYNTAX' });
  });
});

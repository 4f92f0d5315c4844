import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../server/harness.js';
import { runCli } from './run-cli.js';

const REPO = join(import.meta.dirname, '..', '..');
const DEV_JWKS = join(REPO, 'dev', 'jwks.json');
const SPEC = join(REPO, 'policies', 'examples', 'alice-reads-spec.json');

async function cli(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  return runCli(argv, { stdin });
}

let h: Harness;

beforeAll(async () => {
  // The dev issuer, as dev/arbiter.yaml configures it, so `arbiter token --dev` tokens verify.
  h = await startHarness({
    yaml: `jwt:\n  issuers:\n    - name: dev\n      issuer: https://dev.arbiter.invalid\n      audiences: [arbiter]\n      jwks_file: ${JSON.stringify(DEV_JWKS)}\n      algorithms: [ES256]\n      claims:\n        attributes:\n          department: department\n`,
  });
});

afterAll(async () => {
  await h.close();
});

describe('arbiter call (with arbiter token --dev)', () => {
  it('makes a Check with a dev token and prints the decision', async () => {
    const token = await cli(['token', '--dev', '--sub', 'alice', '--roles', 'editor', '--claim', 'department=engineering']);
    expect(token.code).toBe(0);
    expect(token.err).toContain('DEV-ONLY');
    const r = await cli(['call', '--address', h.address, '--plaintext', '--token', token.out.trim(), '--input', SPEC, '--request-id', 'cli-1']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ decision: 'ALLOW', reason: 'RULE_PERMIT', rules: ['document.dept_editors'], request_id: 'cli-1' });
  });

  it('asks for the trace with --explain', async () => {
    const token = (await cli(['token', '--dev', '--sub', 'alice', '--roles', 'editor', '--claim', 'department=engineering'])).out.trim();
    const r = await cli(['call', '--address', h.address, '--plaintext', '--token', token, '--explain', '--input', SPEC]);
    expect(JSON.parse(r.out).trace.decided_by).toBe('permit');
  });

  it('prints a refused token as a DENY with its reason', async () => {
    const r = await cli(['call', '--address', h.address, '--plaintext', '--token', 'not-a-token', '--input', SPEC]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ decision: 'DENY', reason: 'TOKEN_MALFORMED' });
  });

  it('reports a call that fails with its status and exit 1 (subject from an untrusted caller)', async () => {
    const r = await cli(['call', '--address', h.address, '--plaintext', '--input', SPEC]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('PERMISSION_DENIED');
  });

  it('reports an unreachable server within the deadline', async () => {
    const r = await cli(['call', '--address', '127.0.0.1:1', '--plaintext', '--token', 'x', '--deadline', '1s', '--input', SPEC]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/UNAVAILABLE|DEADLINE_EXCEEDED/);
  });

  it('refuses bad usage', async () => {
    expect((await cli(['call', '--plaintext', '--ca', 'x'])).code).toBe(2);
    expect((await cli(['call', '--deadline', 'soon'])).code).toBe(2);
    expect((await cli(['token'])).code).toBe(2);
    expect((await cli(['token', '--dev', '--ttl', '0s'])).code).toBe(2);
  });
});

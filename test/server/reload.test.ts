/**
 * Policy reloads in a running server (in process, through the harness, on a
 * writable copy of policies/): by file watch, rejected when the new set has
 * errors, under continuous traffic, with calls in flight, and their effect on
 * the decision cache. Real files, real gRPC clients, real signed tokens.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { JWK } from 'jose';
import { call, checkRequest, startHarness, testIssuerYaml, type Harness } from './harness.js';
import { jwksOf, makeKey, sign, writeJson, type TestKey } from '../jwt/fixtures.js';

type CheckResponse = {
  decision: string;
  reason: string;
  rules?: string[];
  policy_revision: string;
  cached?: boolean;
  message?: string;
};

/** Replaces `path` whole, by rename, as editors and ConfigMap updates do (a reader never sees half a file). */
function replaceFile(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** `text` with `insert` placed before its last `}` (the end of the file's last resource block). */
function beforeLastBrace(text: string, insert: string): string {
  const i = text.lastIndexOf('}');
  return `${text.slice(0, i)}${insert}\n${text.slice(i)}`;
}

async function reloadCount(h: Harness, trigger: string, outcome: string): Promise<number> {
  const m = await h.metrics.policyReloads.get();
  return m.values.find((v) => v.labels['trigger'] === trigger && v.labels['outcome'] === outcome)?.value ?? 0;
}

function jwtYaml(keys: string): string {
  return testIssuerYaml(keys).trimEnd();
}

/** A resource type whose one rule lets editors (A) or only admins (B) view. */
const WIDGET_A = 'resource widget {\n  actions view\n  rule r: permit view when subject.role("editor")\n}\n';
const WIDGET_B = 'resource widget {\n  actions view\n  rule r: permit view when subject.role("admin")\n}\n';
const VIEW_WIDGET = { action: 'view', resource: { type: 'widget', id: 'w1' } };

const VIEWER_CREATES = '\n  rule viewers_create: permit create_document when subject.role("viewer")';
const CREATE_IN_FOLDER = { action: 'create_document', resource: { type: 'folder', id: 'f1', attributes: { path: '/projects/' } } };
const READ_SPEC = {
  action: 'read',
  resource: { type: 'document', id: 'spec-42', attributes: { owner: 'bob', department: 'engineering', classification: 'internal' } },
};

let key: TestKey;
let keyDir: string;
let jwksPath: string;
const harnesses: Harness[] = [];
const httpServers: Server[] = [];

beforeAll(async () => {
  key = await makeKey('ES256', 'k1');
  keyDir = mkdtempSync(join(tmpdir(), 'arbiter-reload-keys-'));
  jwksPath = writeJson(keyDir, 'jwks.json', jwksOf(key));
  return () => rmSync(keyDir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const h of harnesses.splice(0)) {
    await h.close();
    rmSync(h.dir, { recursive: true, force: true });
  }
  for (const s of httpServers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

async function start(yaml = jwtYaml(`jwks_file: ${JSON.stringify(jwksPath)}`)): Promise<Harness> {
  const h = await startHarness({ copyPolicies: true, yaml });
  harnesses.push(h);
  return h;
}

function token(claims: Record<string, unknown>, k: TestKey = key): Promise<string> {
  return sign(k, { claims });
}

describe('policy reload by file watch', () => {
  it('serves a rule added to a policy file, counts and logs the reload', async () => {
    const h = await start();
    const client = h.client();
    const viewer = await token({ sub: 'vera', roles: ['viewer'] });
    const before = h.server.engine.revision;
    const denied = await call<CheckResponse>(client, 'Check', checkRequest({ token: viewer, ...CREATE_IN_FOLDER }));
    expect(denied).toMatchObject({ decision: 'DENY', policy_revision: before });

    const file = join(h.policies, 'documents.policy');
    replaceFile(file, beforeLastBrace(readFileSync(file, 'utf8'), VIEWER_CREATES));

    await vi.waitFor(() => expect(h.server.engine.revision).not.toBe(before), { timeout: 10_000, interval: 25 });
    const after = h.server.engine.revision;
    const allowed = await call<CheckResponse>(client, 'Check', checkRequest({ token: viewer, ...CREATE_IN_FOLDER }));
    expect(allowed).toMatchObject({ decision: 'ALLOW', policy_revision: after, rules: ['folder.viewers_create'] });

    expect(await reloadCount(h, 'watch', 'updated')).toBeGreaterThanOrEqual(1);
    expect(await reloadCount(h, 'watch', 'failed')).toBe(0);
    const line = h.logger.lines.find((l) => l.msg === 'policies reloaded');
    expect(line).toMatchObject({ level: 'info', fields: { trigger: 'watch', revision: after, previous_revision: before } });
    // The revision gauge follows the set in force.
    expect(await h.metrics.registry.getSingleMetricAsString('arbiter_policy_revision_info')).toContain(`revision="${after}"`);
  });
});

describe('a policy set with errors', () => {
  it('is rejected whole on a syntax error: the last good set keeps serving; fixing the file is picked up', async () => {
    const h = await start();
    const client = h.client();
    const viewer = await token({ sub: 'vera', roles: ['viewer'] });
    const editor = await token({ sub: 'eddie', roles: ['editor'] });
    const good = h.server.engine.revision;
    const before = await call<CheckResponse>(client, 'Check', checkRequest({ token: viewer, ...CREATE_IN_FOLDER }));
    expect(before).toMatchObject({ decision: 'DENY', policy_revision: good });

    // The broken file first, then a valid change elsewhere: no state of the directory in between compiles.
    const bad = join(h.policies, 'bad.policy');
    const badText = 'resource gadget {\n  actions use\n  rule r: permit use when subject.role("editor") &&\n}\n';
    replaceFile(bad, badText);
    const docs = join(h.policies, 'documents.policy');
    replaceFile(docs, beforeLastBrace(readFileSync(docs, 'utf8'), VIEWER_CREATES));

    await vi.waitFor(
      () => {
        expect(h.logger.lines.some((l) => l.level === 'error' && l.msg.startsWith('policy reload rejected'))).toBe(true);
      },
      { timeout: 10_000, interval: 25 },
    );
    // Whatever the watcher saw, the directory as it now is does not compile.
    const event = await h.server.reload();
    expect(event).toMatchObject({ outcome: 'failed', revision: good, previousRevision: good });

    expect(h.server.engine.revision).toBe(good);
    const still = await call<CheckResponse>(client, 'Check', checkRequest({ token: viewer, ...CREATE_IN_FOLDER }));
    expect(still).toMatchObject({ decision: 'DENY', reason: before.reason, policy_revision: good });
    const gadget = await call<CheckResponse>(client, 'Check', checkRequest({ token: editor, action: 'use', resource: { type: 'gadget' } }));
    expect(gadget).toMatchObject({ decision: 'DENY', policy_revision: good });

    const error = h.logger.lines.find((l) => l.level === 'error' && l.msg.startsWith('policy reload rejected'));
    expect(error?.fields).toMatchObject({ revision: good, errors: 1 });
    expect(String(error?.fields['detail'])).toContain("bad.policy:3:50: use 'and' instead of '&&' (PARSE_SYNTAX)");
    expect(await reloadCount(h, 'watch', 'failed')).toBeGreaterThanOrEqual(1);
    expect(await reloadCount(h, 'manual', 'failed')).toBe(1);
    expect(await reloadCount(h, 'watch', 'updated')).toBe(0);

    // Fixed: the watcher picks up the whole directory (both changes).
    replaceFile(bad, badText.replace(' &&', ''));
    await vi.waitFor(() => expect(h.server.engine.revision).not.toBe(good), { timeout: 10_000, interval: 25 });
    const fixed = h.server.engine.revision;
    await expect(call<CheckResponse>(client, 'Check', checkRequest({ token: viewer, ...CREATE_IN_FOLDER }))).resolves.toMatchObject({ decision: 'ALLOW', policy_revision: fixed });
    await expect(call<CheckResponse>(client, 'Check', checkRequest({ token: editor, action: 'use', resource: { type: 'gadget' } }))).resolves.toMatchObject({
      decision: 'ALLOW',
      rules: ['gadget.r'],
      policy_revision: fixed,
    });
    expect(await reloadCount(h, 'watch', 'updated')).toBeGreaterThanOrEqual(1);
  });

  it('is rejected whole when the error spans two files (a rule naming a role no longer declared)', async () => {
    const h = await start();
    const client = h.client();
    const auditor = await token({ sub: 'audrey', roles: ['auditor'] });
    const editor = await token({ sub: 'eddie', roles: ['editor'] });
    const good = h.server.engine.revision;
    await expect(call<CheckResponse>(client, 'Check', checkRequest({ token: auditor, ...READ_SPEC }))).resolves.toMatchObject({ decision: 'ALLOW', rules: ['document.auditors'] });

    // roles.policy drops `auditor` (which documents.policy and orders.policy use); a new valid file comes with it.
    const roles = join(h.policies, 'roles.policy');
    const rolesText = readFileSync(roles, 'utf8');
    expect(rolesText).toContain('  auditor > viewer\n');
    replaceFile(roles, rolesText.replace('  auditor > viewer\n', ''));
    replaceFile(join(h.policies, 'widget.policy'), WIDGET_A);

    const event = await h.server.reload();
    expect(event).toMatchObject({ outcome: 'failed', revision: good });
    expect(h.server.engine.revision).toBe(good);

    // Nothing of the new set serves: not the new resource type, not the dropped role.
    await expect(call<CheckResponse>(client, 'Check', checkRequest({ token: editor, ...VIEW_WIDGET }))).resolves.toMatchObject({ decision: 'DENY', policy_revision: good });
    await expect(call<CheckResponse>(client, 'Check', checkRequest({ token: auditor, ...READ_SPEC }))).resolves.toMatchObject({
      decision: 'ALLOW',
      rules: ['document.auditors'],
      policy_revision: good,
    });

    const docsLines = readFileSync(join(h.policies, 'documents.policy'), 'utf8').split('\n');
    const line = docsLines.findIndex((l) => l.includes('subject.role("auditor")'));
    const col = docsLines[line]!.indexOf('"auditor"') + 1;
    const errors = h.logger.lines.filter((l) => l.level === 'error' && l.fields['trigger'] === 'manual');
    expect(errors).toHaveLength(1);
    expect(String(errors[0]!.fields['detail'])).toContain(`documents.policy:${line + 1}:${col}: unknown role \`auditor\` (COMPILE_UNKNOWN_ROLE)`);
    expect(String(errors[0]!.fields['detail'])).toMatch(/orders\.policy:\d+:\d+: unknown role `auditor`/);
    expect(await reloadCount(h, 'manual', 'failed')).toBe(1);
  });
});

describe('reload under continuous traffic', () => {
  it('never fails a call nor mixes one revision’s decision with another’s label', async () => {
    const h = await start();
    const widget = join(h.policies, 'widget.policy');
    replaceFile(widget, WIDGET_A);
    const first = await h.server.reload();
    expect(first.outcome === 'updated' || first.outcome === 'unchanged').toBe(true);
    const revA = h.server.engine.revision;

    const LOOPS = 8;
    const tokens = await Promise.all(Array.from({ length: LOOPS }, (_, i) => token({ sub: `user-${i}`, roles: ['editor'] })));
    const clients = Array.from({ length: LOOPS }, () => h.client());
    const seen: CheckResponse[] = [];
    const failures: unknown[] = [];
    let stop = false;
    const loops = clients.map(async (client, i) => {
      while (!stop) {
        try {
          seen.push(await call<CheckResponse>(client, 'Check', checkRequest({ token: tokens[i]!, ...VIEW_WIDGET })));
        } catch (e) {
          failures.push(e);
          stop = true;
        }
      }
    });
    const countOf = (rev: string): number => seen.filter((r) => r.policy_revision === rev).length;

    let revB: string | undefined;
    try {
      await vi.waitFor(() => expect(countOf(revA)).toBeGreaterThanOrEqual(LOOPS), { timeout: 10_000, interval: 10 });
      for (let i = 0; i < 10; i++) {
        const toB = i % 2 === 0;
        replaceFile(widget, toB ? WIDGET_B : WIDGET_A);
        const event = await h.server.reload();
        // The watcher may have got there first ('unchanged'); either way the new set serves.
        expect(['updated', 'unchanged']).toContain(event.outcome);
        if (toB) {
          revB ??= event.revision;
          expect(event.revision).toBe(revB);
        } else {
          expect(event.revision).toBe(revA);
        }
        const expected = event.revision;
        const n = countOf(expected);
        await vi.waitFor(() => expect(countOf(expected)).toBeGreaterThanOrEqual(n + LOOPS), { timeout: 10_000, interval: 10 });
      }
    } finally {
      stop = true;
      await Promise.all(loops);
    }

    expect(failures).toEqual([]);
    expect(revB).toBeDefined();
    expect(revB).not.toBe(revA);
    const revisions = new Set(seen.map((r) => r.policy_revision));
    expect([...revisions].sort()).toEqual([revA, revB!].sort());
    const underA = seen.filter((r) => r.policy_revision === revA);
    const underB = seen.filter((r) => r.policy_revision === revB);
    expect(underA.length).toBeGreaterThan(0);
    expect(underB.length).toBeGreaterThan(0);
    // Revision A allows (by widget.r), B denies (no permit): every answer is one of those, whole.
    for (const r of underA) expect({ decision: r.decision, rules: r.rules ?? [] }).toEqual({ decision: 'ALLOW', rules: ['widget.r'] });
    for (const r of underB) expect({ decision: r.decision, rules: r.rules ?? [] }).toEqual({ decision: 'DENY', rules: [] });
    expect(new Set(underA.map((r) => r.reason)).size).toBe(1);
    expect(new Set(underB.map((r) => r.reason)).size).toBe(1);
  });
});

describe('a call in flight during a reload', () => {
  it('is decided on the policy set in force when it started', async () => {
    // A JWKS endpoint we control: it answers at once, except while `hold` is set, when it keeps the request open.
    const k2 = await makeKey('ES256', 'k2');
    let keys: { keys: JWK[] } = jwksOf(key);
    let hold = false;
    const held: ServerResponse[] = [];
    let onHeld: (() => void) | undefined;
    const jwks = createServer((_req: IncomingMessage, res: ServerResponse) => {
      if (hold) {
        held.push(res);
        onHeld?.();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys));
    });
    httpServers.push(jwks);
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
    const h = await start(`${jwtYaml(`jwks_url: ${url}`)}\n      unknown_kid_cooldown: 0s\n      fetch_timeout: 10s`);
    const client = h.client();

    const widget = join(h.policies, 'widget.policy');
    replaceFile(widget, WIDGET_A);
    await h.server.reload();
    const revA = h.server.engine.revision;

    // A token signed with a key the server has not seen: deciding it waits on a JWKS refetch that we hold.
    const editor = await token({ sub: 'eddie', roles: ['editor'] }, k2);
    hold = true;
    const requestHeld = new Promise<void>((resolve) => (onHeld = resolve));
    const inFlight = call<CheckResponse>(client, 'Check', checkRequest({ token: editor, ...VIEW_WIDGET }));
    await requestHeld;

    replaceFile(widget, WIDGET_B);
    const event = await h.server.reload();
    expect(event.outcome === 'updated' || event.outcome === 'unchanged').toBe(true);
    const revB = h.server.engine.revision;
    expect(revB).not.toBe(revA);

    // Let the key fetch complete: the call started under A is decided under A.
    hold = false;
    keys = jwksOf(key, k2);
    for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys));
    await expect(inFlight).resolves.toMatchObject({ decision: 'ALLOW', rules: ['widget.r'], policy_revision: revA });
    // A call started now is decided under B.
    await expect(call<CheckResponse>(client, 'Check', checkRequest({ token: editor, ...VIEW_WIDGET }))).resolves.toMatchObject({ decision: 'DENY', policy_revision: revB });
  });
});

describe('the decision cache across a reload', () => {
  it('answers a repeated request from the cache, and not after the revision changes', async () => {
    const h = await start();
    const client = h.client();
    const alice = await token({ sub: 'alice', roles: ['editor'], department: 'engineering' });
    const req = checkRequest({ token: alice, ...READ_SPEC });
    const rev1 = h.server.engine.revision;
    await expect(call<CheckResponse>(client, 'Check', req)).resolves.toMatchObject({ decision: 'ALLOW', cached: false, policy_revision: rev1 });
    await expect(call<CheckResponse>(client, 'Check', req)).resolves.toMatchObject({ decision: 'ALLOW', cached: true, policy_revision: rev1 });

    // The new revision forbids exactly this request: a stale cache entry would still say ALLOW.
    const docs = join(h.policies, 'documents.policy');
    const text = readFileSync(docs, 'utf8');
    const folderAt = text.indexOf('resource folder');
    const withForbid = beforeLastBrace(text.slice(0, folderAt), '\n  rule no_spec: forbid read when resource.owner == "bob"') + text.slice(folderAt);
    replaceFile(docs, withForbid);
    const event = await h.server.reload();
    expect(event.outcome === 'updated' || event.outcome === 'unchanged').toBe(true);
    const rev2 = h.server.engine.revision;
    expect(rev2).not.toBe(rev1);

    await expect(call<CheckResponse>(client, 'Check', req)).resolves.toMatchObject({ decision: 'DENY', rules: ['document.no_spec'], cached: false, policy_revision: rev2 });
    await expect(call<CheckResponse>(client, 'Check', req)).resolves.toMatchObject({ decision: 'DENY', cached: true, policy_revision: rev2 });
  });
});

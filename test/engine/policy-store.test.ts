import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CompileError, RequestError } from '../../src/errors.js';
import { Engine } from '../../src/engine/engine.js';
import { PolicyLoadError, loadPolicySet, readPolicyDirectory } from '../../src/engine/policy-store.js';
import { parseRequest } from '../../src/engine/request.js';

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'arbiter-store-'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}

const DOC = 'resource doc { actions read\n rule r: permit read when subject.role("viewer") }\n';
const ROLES = 'roles { viewer }\n';

describe('readPolicyDirectory', () => {
  it('reads *.policy files recursively, sorted, with / paths, skipping dot-directories and node_modules', async () => {
    const dir = await dirWith({
      'b.policy': ROLES,
      'a/doc.policy': DOC,
      'a/notes.md': '# not a policy',
      '.git/x.policy': 'garbage',
      'node_modules/y.policy': 'garbage',
    });
    const sources = await readPolicyDirectory(dir);
    expect(sources.map((s) => s.path)).toEqual(['a/doc.policy', 'b.policy']);
  });

  it('fails with POLICY_LOAD_FAILED for a missing directory', async () => {
    await expect(readPolicyDirectory('/nonexistent/arbiter')).rejects.toMatchObject({ code: 'POLICY_LOAD_FAILED' });
    await expect(readPolicyDirectory('/nonexistent/arbiter')).rejects.toBeInstanceOf(PolicyLoadError);
  });
});

describe('loadPolicySet', () => {
  it('compiles files that depend on each other', async () => {
    const set = await loadPolicySet(await dirWith({ 'roles.policy': ROLES, 'doc.policy': DOC }));
    expect(set.tree.rules.map((r) => r.id)).toEqual(['doc.r']);
    expect(set.timings.map((t) => t.stage)).toEqual(['parse', 'declarations', 'derived-roles', 'rules', 'routes', 'index']);
  });

  it('rejects the whole set when one file has an error', async () => {
    const dir = await dirWith({ 'roles.policy': ROLES, 'doc.policy': DOC, 'bad.policy': 'resource x { actions a\n permit b }' });
    const err = await loadPolicySet(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CompileError);
    expect((err as CompileError).diagnostics.map((d) => `${d.location.source}:${d.location.start.line}`)).toEqual(['bad.policy:2']);
  });

  it('gives the same revision for the same files, another for any change', async () => {
    const a = await loadPolicySet(await dirWith({ 'roles.policy': ROLES, 'doc.policy': DOC }));
    const b = await loadPolicySet(await dirWith({ 'roles.policy': ROLES, 'doc.policy': DOC }));
    const c = await loadPolicySet(await dirWith({ 'roles.policy': ROLES, 'doc.policy': `${DOC}# a comment\n` }));
    const d = await loadPolicySet(await dirWith({ 'roles.policy': ROLES, 'sub/doc.policy': DOC }));
    expect(a.tree.revision).toBe(b.tree.revision);
    expect(c.tree.revision).not.toBe(a.tree.revision);
    expect(d.tree.revision).not.toBe(a.tree.revision);
  });
});

describe('Engine', () => {
  it('decides with the loaded set and reports its revision', async () => {
    const engine = await Engine.fromDirectory(await dirWith({ 'roles.policy': ROLES, 'doc.policy': DOC }));
    expect(engine.check({ subject: { roles: ['viewer'] }, action: 'read', resource: { type: 'doc' } })).toMatchObject({ decision: 'ALLOW', rules: ['doc.r'], revision: engine.revision });
    expect(engine.check({ subject: {}, action: 'read', resource: { type: 'doc' } }).decision).toBe('DENY');
  });
});

describe('parseRequest', () => {
  const ok = { subject: { sub: 'a' }, action: 'read', resource: { type: 'doc', id: 'd', attributes: { x: [1, { y: null }] } }, context: { ip: '10.0.0.1' } };

  it('accepts a well-formed request', () => {
    expect(parseRequest(ok)).toEqual(ok);
    expect(parseRequest({ subject: {}, action: 'a', resource: { type: 't' } })).toEqual({ subject: {}, action: 'a', resource: { type: 't', attributes: {} }, context: {} });
  });

  it.each([
    { name: 'not an object', input: [], field: '' },
    { name: 'missing subject', input: { ...ok, subject: undefined }, field: 'subject' },
    { name: 'empty action', input: { ...ok, action: '' }, field: 'action' },
    { name: 'long action', input: { ...ok, action: 'a'.repeat(257) }, field: 'action' },
    { name: 'resource not an object', input: { ...ok, resource: 'doc' }, field: 'resource' },
    { name: 'resource id a number', input: { ...ok, resource: { type: 'doc', id: 7 } }, field: 'resource.id' },
    { name: 'resource attributes at the wrong level', input: { ...ok, resource: { type: 'doc', owner: 'x' } }, field: 'resource.owner' },
    { name: 'context a list', input: { ...ok, context: [] }, field: 'context' },
    { name: 'long string', input: { ...ok, context: { s: 'x'.repeat(70_000) } }, field: 'context.s' },
    { name: 'too many values', input: { ...ok, context: { l: Array.from({ length: 10_001 }, () => 1) } }, field: 'context.l[9991]' },
    { name: 'too deep', input: { ...ok, subject: { a: [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]] } }, field: 'subject.a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]' },
  ])('rejects $name naming the field', ({ input, field }) => {
    let err: unknown;
    try {
      parseRequest(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).field).toBe(field);
    expect((err as RequestError).code).toBe('REQUEST_INVALID');
  });
});

/**
 * `arbiter fmt`: rewriting files and directories, `--check` listing and exit
 * codes, syntax errors reported as `file:line:col`, standard input.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'arbiter.js');
const POLICIES = join(import.meta.dirname, '..', '..', 'policies');

async function cli(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  return runCli(argv, { stdin });
}

const MESSY = 'resource doc{actions read;rule r:permit read when ((subject.a)) # keep me\n}';
const TIDY = 'resource doc {\n  actions read\n  rule r: permit read when subject.a # keep me\n}\n';
const BROKEN = 'resource doc {\n  actions read\n  permit read when subject.a = 1\n}\n';

/** A temp policy tree: messy and tidy files, nested, plus files fmt must not touch. */
async function tree(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'arbiter-fmt-'));
  await mkdir(join(dir, 'nested'));
  await mkdir(join(dir, '.hidden'));
  await mkdir(join(dir, 'node_modules'));
  await writeFile(join(dir, 'a.policy'), MESSY);
  await writeFile(join(dir, 'tidy.policy'), TIDY);
  await writeFile(join(dir, 'nested', 'b.policy'), 'roles{admin>viewer,guest}');
  await writeFile(join(dir, '.hidden', 'c.policy'), MESSY);
  await writeFile(join(dir, 'node_modules', 'd.policy'), MESSY);
  await writeFile(join(dir, 'notes.txt'), MESSY);
  return dir;
}

describe('arbiter fmt', () => {
  it('the shipped policies are formatted: --check passes (real binary)', async () => {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'fmt', '--check', POLICIES]);
    expect(stdout).toBe('');
    expect(stderr).toBe('');
  });

  it('--check lists the files that would change, writes nothing and exits 1', async () => {
    const dir = await tree();
    const r = await cli(['fmt', '--check', dir]);
    expect(r.code).toBe(1);
    expect(r.out).toBe(`${join(dir, 'a.policy')}\n${join(dir, 'nested', 'b.policy')}\n`);
    expect(r.err).toBe('');
    expect(await readFile(join(dir, 'a.policy'), 'utf8')).toBe(MESSY);
  });

  it('rewrites the files under a directory, prints those it changed, and leaves the rest alone', async () => {
    const dir = await tree();
    const r = await cli(['fmt', dir]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${join(dir, 'a.policy')}\n${join(dir, 'nested', 'b.policy')}\n`);
    expect(await readFile(join(dir, 'a.policy'), 'utf8')).toBe(TIDY);
    expect(await readFile(join(dir, 'nested', 'b.policy'), 'utf8')).toBe('roles {\n  admin > viewer\n  guest\n}\n');
    // Dot-directories, node_modules and other extensions are skipped.
    for (const f of [join('.hidden', 'c.policy'), join('node_modules', 'd.policy'), 'notes.txt']) expect(await readFile(join(dir, f), 'utf8')).toBe(MESSY);
    // A second run has nothing to do.
    expect(await cli(['fmt', dir])).toEqual({ code: 0, out: '', err: '' });
    expect((await cli(['fmt', '--check', dir])).code).toBe(0);
  });

  it('formats a file named on the command line, whatever its extension', async () => {
    const dir = await tree();
    const r = await cli(['fmt', join(dir, 'notes.txt'), join(dir, 'tidy.policy')]);
    expect(r).toEqual({ code: 0, out: `${join(dir, 'notes.txt')}\n`, err: '' });
    expect(await readFile(join(dir, 'notes.txt'), 'utf8')).toBe(TIDY);
  });

  it('reports a syntax error as file:line:col with a frame, exits 2, and still formats the other files (real binary)', async () => {
    const dir = await tree();
    await writeFile(join(dir, 'bad.policy'), BROKEN);
    const err = await run(process.execPath, [BIN, 'fmt', dir]).then(
      () => undefined,
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toContain(`${join(dir, 'bad.policy')}:3:30: '=' is not a valid operator; try '==' (PARSE_SYNTAX)`);
    expect(err?.stderr).toContain('3 |   permit read when subject.a = 1');
    expect(err?.stdout).toContain(join(dir, 'a.policy'));
    expect(await readFile(join(dir, 'bad.policy'), 'utf8')).toBe(BROKEN);
    expect(await readFile(join(dir, 'a.policy'), 'utf8')).toBe(TIDY);
  });

  it('exits 2 with --check too when a file does not parse', async () => {
    const dir = await tree();
    await writeFile(join(dir, 'bad.policy'), BROKEN);
    const r = await cli(['fmt', '--check', dir]);
    expect(r.code).toBe(2);
    expect(r.out).toContain(join(dir, 'a.policy'));
  });

  it('formats standard input to standard output with -', async () => {
    expect(await cli(['fmt', '-'], MESSY)).toEqual({ code: 0, out: TIDY, err: '' });
    expect(await cli(['fmt', '--check', '-'], MESSY)).toEqual({ code: 1, out: '<stdin>\n', err: '' });
    expect(await cli(['fmt', '--check', '-'], TIDY)).toEqual({ code: 0, out: '', err: '' });
    const bad = await cli(['fmt', '-'], BROKEN);
    expect(bad.code).toBe(2);
    expect(bad.out).toBe('');
    expect(bad.err).toContain('<stdin>:3:30:');
  });

  it.each([
    { name: 'no path', argv: ['fmt'] },
    { name: 'an unknown option', argv: ['fmt', '--write', 'x'] },
  ])('exits 2 on bad usage ($name)', async ({ argv }) => {
    const r = await cli(argv);
    expect(r.code).toBe(2);
    expect(r.err).toContain('usage: arbiter fmt');
  });

  it('exits 2 when a path cannot be read', async () => {
    const r = await cli(['fmt', join(tmpdir(), 'arbiter-fmt-does-not-exist')]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('arbiter fmt: cannot read');
    expect(r.err).toContain('ENOENT');
  });

  it('prints its usage with --help and is listed by arbiter --help', async () => {
    expect((await cli(['fmt', '--help'])).out).toContain('--check');
    expect((await cli(['--help'])).out).toMatch(/\n {2}fmt {7}/);
  });
});

/**
 * Loading a policy set from a directory: every `*.policy` file under it,
 * read whole and bounded in size, then compiled. Either the whole set
 * compiles or loading fails with every error; it never half-succeeds.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ArbiterError } from '../errors.js';
import { compilePolicySet, type CompiledPolicySet, type PolicySource } from '../compile/index.js';

/** Bounds on a policy directory. */
export const POLICY_LIMITS = {
  maxFiles: 10_000,
  maxFileBytes: 8 * 1024 * 1024,
  maxTotalBytes: 64 * 1024 * 1024,
} as const;

/** The file extension of policy files. */
export const POLICY_EXTENSION = '.policy';

/** A policy directory that cannot be read (as opposed to one that does not compile). */
export class PolicyLoadError extends ArbiterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('POLICY_LOAD_FAILED', message, options);
  }
}

/** A loaded and compiled policy set. */
export interface LoadedPolicySet extends CompiledPolicySet {
  readonly directory: string;
  readonly sources: readonly PolicySource[];
}

/**
 * Reads every `*.policy` file under `dir` (skipping dot-directories and
 * node_modules), with paths relative to `dir` and `/` as separator.
 *
 * @throws {PolicyLoadError} when the directory cannot be read or is over a bound
 */
export async function readPolicyDirectory(dir: string): Promise<PolicySource[]> {
  const files: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      throw new PolicyLoadError(`cannot read policy directory \`${d}\`: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e });
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const full = join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if ((e.isFile() || e.isSymbolicLink()) && e.name.endsWith(POLICY_EXTENSION)) {
        files.push(full);
        if (files.length > POLICY_LIMITS.maxFiles) throw new PolicyLoadError(`more than ${POLICY_LIMITS.maxFiles} policy files under \`${dir}\``);
      }
    }
  };
  await walk(dir);
  const sources: PolicySource[] = [];
  let total = 0;
  for (const f of files) {
    const path = relative(dir, f).split(sep).join('/');
    try {
      const info = await stat(f);
      if (!info.isFile()) continue;
      if (info.size > POLICY_LIMITS.maxFileBytes) throw new PolicyLoadError(`policy file \`${path}\` is larger than ${POLICY_LIMITS.maxFileBytes} bytes`);
      total += info.size;
      if (total > POLICY_LIMITS.maxTotalBytes) throw new PolicyLoadError(`policy files under \`${dir}\` exceed ${POLICY_LIMITS.maxTotalBytes} bytes`);
      sources.push({ path, text: await readFile(f, 'utf8') });
    } catch (e) {
      if (e instanceof PolicyLoadError) throw e;
      throw new PolicyLoadError(`cannot read policy file \`${path}\`: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e });
    }
  }
  return sources;
}

/**
 * Reads and compiles the policy set under `dir`.
 *
 * @throws {PolicyLoadError} when files cannot be read
 * @throws {CompileError} when the set has errors (all of them)
 * @example
 * const set = await loadPolicySet('policies');
 * set.tree.revision // '3f2a…'
 */
export async function loadPolicySet(dir: string, clock: () => number = () => performance.now()): Promise<LoadedPolicySet> {
  const sources = await readPolicyDirectory(dir);
  const compiled = compilePolicySet(sources, { clock });
  return { ...compiled, directory: dir, sources };
}

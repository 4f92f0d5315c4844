/**
 * Loading a policy set from a directory: every `*.policy` file under it, and
 * the schema (`schema.yaml` at its root) when there is one, read whole and
 * bounded in size, then compiled. Either the whole set compiles or loading
 * fails with every error; it never half-succeeds.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ArbiterError } from '../errors.js';
import { compilePolicySet, policyRevision, type CompiledPolicySet, type PolicySource } from '../compile/index.js';
import { SCHEMA_FILE, type SchemaSource } from '../compile/schema.js';

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
  /** The `*.policy` files. */
  readonly sources: readonly PolicySource[];
  /** The schema file, when the directory has one. */
  readonly schemaSource?: SchemaSource;
}

/** What a policy directory holds: its policy files and its schema file, if any. */
export interface PolicyFiles {
  readonly sources: PolicySource[];
  readonly schema?: SchemaSource;
}

/**
 * Reads every `*.policy` file under `dir` (skipping dot-directories and
 * node_modules), with paths relative to `dir` and `/` as separator. The
 * schema is not among them: see {@link readPolicyFiles}.
 *
 * @throws {PolicyLoadError} when the directory cannot be read or is over a bound
 */
export async function readPolicyDirectory(dir: string): Promise<PolicySource[]> {
  return (await readPolicyFiles(dir)).sources;
}

/**
 * Reads a policy directory: every `*.policy` file under it (as
 * {@link readPolicyDirectory}) and `schema.yaml` at its root. The bounds
 * count the schema as one of the files.
 *
 * @throws {PolicyLoadError} when the directory cannot be read or is over a bound
 * @example
 * const { sources, schema } = await readPolicyFiles('policies');
 */
export async function readPolicyFiles(dir: string): Promise<PolicyFiles> {
  const files: string[] = [];
  let schemaFile: string | undefined;
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
      else if ((e.isFile() || e.isSymbolicLink()) && (e.name.endsWith(POLICY_EXTENSION) || (d === dir && e.name === SCHEMA_FILE))) {
        if (e.name === SCHEMA_FILE && d === dir) schemaFile = full;
        else files.push(full);
        if (files.length + (schemaFile === undefined ? 0 : 1) > POLICY_LIMITS.maxFiles) throw new PolicyLoadError(`more than ${POLICY_LIMITS.maxFiles} policy files under \`${dir}\``);
      }
    }
  };
  await walk(dir);
  const sources: PolicySource[] = [];
  let schema: SchemaSource | undefined;
  let total = 0;
  for (const f of schemaFile === undefined ? files : [...files, schemaFile]) {
    const path = relative(dir, f).split(sep).join('/');
    try {
      const info = await stat(f);
      if (!info.isFile()) continue;
      if (info.size > POLICY_LIMITS.maxFileBytes) throw new PolicyLoadError(`policy file \`${path}\` is larger than ${POLICY_LIMITS.maxFileBytes} bytes`);
      total += info.size;
      if (total > POLICY_LIMITS.maxTotalBytes) throw new PolicyLoadError(`policy files under \`${dir}\` exceed ${POLICY_LIMITS.maxTotalBytes} bytes`);
      const text = await readFile(f, 'utf8');
      if (f === schemaFile) schema = { path, text };
      else sources.push({ path, text });
    } catch (e) {
      if (e instanceof PolicyLoadError) throw e;
      throw new PolicyLoadError(`cannot read policy file \`${path}\`: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e });
    }
  }
  return schema === undefined ? { sources } : { sources, schema };
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
  return compileFiles(dir, await readPolicyFiles(dir), clock);
}

function compileFiles(dir: string, files: PolicyFiles, clock: () => number): LoadedPolicySet {
  const { sources, schema } = files;
  const compiled = compilePolicySet(sources, schema === undefined ? { clock } : { clock, schema });
  return schema === undefined ? { ...compiled, directory: dir, sources } : { ...compiled, directory: dir, sources, schemaSource: schema };
}

/** The outcome of one reload. */
export interface ReloadEvent {
  readonly trigger: 'watch' | 'signal' | 'manual';
  /** `updated`: a new revision serves; `unchanged`: same revision; `failed`: the last good set keeps serving. */
  readonly outcome: 'updated' | 'unchanged' | 'failed';
  readonly revision: string;
  readonly previousRevision: string;
  /** Compile time in ms (for `updated` and `unchanged`). */
  readonly durationMs?: number;
  /** Why it failed: the error (with file:line:col for compile errors). */
  readonly error?: unknown;
}

/**
 * The policy set in force, replaced atomically by reloads. A reload reads and
 * compiles the whole directory; a set with any error is rejected whole and the
 * last good set keeps serving. Callers take `current` once per request, so a
 * request in flight finishes on the set it started with.
 */
export class PolicyStore {
  #current: LoadedPolicySet;
  readonly #dir: string;
  readonly #listeners: ((e: ReloadEvent) => void)[] = [];
  #running: Promise<ReloadEvent> | undefined;
  #queued: Promise<ReloadEvent> | undefined;

  private constructor(dir: string, set: LoadedPolicySet) {
    this.#dir = dir;
    this.#current = set;
  }

  /**
   * Loads the set under `dir`.
   *
   * @throws {PolicyLoadError | CompileError} when the first load fails
   * @example
   * const store = await PolicyStore.open('policies');
   * store.onReload((e) => log(e)); const w = watchPath('policies', () => store.reload('watch'), { recursive: true });
   */
  static async open(dir: string): Promise<PolicyStore> {
    return new PolicyStore(dir, await loadPolicySet(dir));
  }

  /** Wraps an already loaded set (tests, the CLI). */
  static of(set: LoadedPolicySet): PolicyStore {
    return new PolicyStore(set.directory, set);
  }

  get current(): LoadedPolicySet {
    return this.#current;
  }

  get directory(): string {
    return this.#dir;
  }

  onReload(listener: (e: ReloadEvent) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Reads and compiles the directory again and swaps the new set in if it
   * compiles. Reloads never overlap: one asked for while another runs starts
   * when it ends (and several such requests make one reload). Never throws.
   */
  reload(trigger: ReloadEvent['trigger'] = 'manual'): Promise<ReloadEvent> {
    if (this.#running !== undefined) {
      // A change seen while compiling may be missed by that compile: run once more after it.
      this.#queued ??= this.#running.then(() => {
        this.#queued = undefined;
        return this.reload(trigger);
      });
      return this.#queued;
    }
    this.#running = this.#reloadOnce(trigger).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #reloadOnce(trigger: ReloadEvent['trigger']): Promise<ReloadEvent> {
    const previous = this.#current.tree.revision;
    const started = performance.now();
    let event: ReloadEvent;
    try {
      const files = await readPolicyFiles(this.#dir);
      // Same files, same revision: nothing to compile (the poll backstop lands here).
      if (policyRevision(files.sources, files.schema) === previous) {
        event = { trigger, outcome: 'unchanged', revision: previous, previousRevision: previous, durationMs: performance.now() - started };
      } else {
        const next = compileFiles(this.#dir, files, () => performance.now());
        this.#current = next;
        event = { trigger, outcome: 'updated', revision: next.tree.revision, previousRevision: previous, durationMs: performance.now() - started };
      }
    } catch (error) {
      event = { trigger, outcome: 'failed', revision: previous, previousRevision: previous, error };
    }
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure must not undo a reload.
      }
    }
    return event;
  }
}

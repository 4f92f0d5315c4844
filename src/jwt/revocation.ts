/**
 * The revocation list: the usual answer to "a JWT cannot be revoked before it
 * expires". A YAML (or JSON) file, reloaded when it changes:
 *
 * ```yaml
 * jti: [3f1c9a4e-0b2d-4d7e-9c51-5a8f4e2b7c10]   # these token ids
 * subjects:                                     # every token of `sub` issued before the time
 *   - sub: alice
 *     iss: https://sso.example.com/realms/acme   # optional: only tokens of this issuer
 *     revoked_before: 2026-11-20T10:00:00Z
 * ```
 *
 * A token of a listed subject without `iat` counts as revoked: its age is
 * unknown, so it fails closed. A file that does not parse is refused whole and
 * the last good list stays in force.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { watchPath, type Watcher } from '../watch/file-watch.js';

/** Largest revocation file read. */
export const MAX_REVOCATION_FILE_BYTES = 8 * 1024 * 1024;

interface SubjectCutoff {
  readonly iss?: string;
  /** Tokens issued before this (ms since the epoch) are revoked. */
  readonly before: number;
}

/** A parsed revocation list. */
export interface RevocationList {
  readonly jtis: ReadonlySet<string>;
  readonly subjects: ReadonlyMap<string, readonly SubjectCutoff[]>;
  /** Entries in all. */
  readonly size: number;
}

export const EMPTY_REVOCATION_LIST: RevocationList = { jtis: new Set(), subjects: new Map(), size: 0 };

/**
 * Parses a revocation list. `source` names the file in errors.
 *
 * @throws {ConfigError} naming the key that is wrong
 * @example
 * parseRevocationList('jti: [abc]', 'revoked.yaml').jtis.has('abc') // true
 */
export function parseRevocationList(text: string, source: string): RevocationList {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 0 });
  } catch (e) {
    throw new ConfigError('', `${source}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return EMPTY_REVOCATION_LIST;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('', `${source}: must be a mapping with \`jti\` and/or \`subjects\``);
  const record = doc as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== 'jti' && key !== 'subjects') throw new ConfigError(key, `${source}: unknown key \`${key}\` (expected \`jti\` or \`subjects\`)`);
  }
  const jtis = new Set<string>();
  const jtiList = record['jti'] ?? [];
  if (!Array.isArray(jtiList)) throw new ConfigError('jti', `${source}: \`jti\` must be a list of token ids`);
  for (const [i, jti] of jtiList.entries()) {
    if (typeof jti !== 'string' || jti === '') throw new ConfigError(`jti[${i}]`, `${source}: \`jti[${i}]\` must be a non-empty string`);
    jtis.add(jti);
  }
  const subjects = new Map<string, SubjectCutoff[]>();
  const subjectList = record['subjects'] ?? [];
  if (!Array.isArray(subjectList)) throw new ConfigError('subjects', `${source}: \`subjects\` must be a list`);
  for (const [i, entry] of subjectList.entries()) {
    const key = `subjects[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new ConfigError(key, `${source}: \`${key}\` must be a mapping with \`sub\` and \`revoked_before\``);
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!['sub', 'iss', 'revoked_before'].includes(k)) throw new ConfigError(`${key}.${k}`, `${source}: unknown key \`${key}.${k}\``);
    }
    const sub = e['sub'];
    if (typeof sub !== 'string' || sub === '') throw new ConfigError(`${key}.sub`, `${source}: \`${key}.sub\` must be a non-empty string`);
    const iss = e['iss'];
    if (iss !== undefined && typeof iss !== 'string') throw new ConfigError(`${key}.iss`, `${source}: \`${key}.iss\` must be a string`);
    const before = toMillis(e['revoked_before']);
    if (before === undefined) throw new ConfigError(`${key}.revoked_before`, `${source}: \`${key}.revoked_before\` must be an RFC 3339 time such as 2026-11-20T10:00:00Z`);
    const list = subjects.get(sub) ?? [];
    list.push(iss === undefined ? { before } : { iss, before });
    subjects.set(sub, list);
  }
  return { jtis, subjects, size: jtis.size + subjectList.length };
}

function toMillis(v: unknown): number | undefined {
  // YAML turns an unquoted timestamp into a string (core schema), a quoted one too.
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.getTime();
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Whether verified claims are revoked by `list`.
 *
 * @example
 * isRevoked(list, { jti: 'abc', sub: 'alice', iat: 1763900000 })
 */
export function isRevoked(list: RevocationList, claims: Readonly<Record<string, unknown>>): boolean {
  const jti = claims['jti'];
  if (typeof jti === 'string' && list.jtis.has(jti)) return true;
  const sub = claims['sub'];
  if (typeof sub !== 'string') return false;
  const cutoffs = list.subjects.get(sub);
  if (cutoffs === undefined) return false;
  const iat = claims['iat'];
  for (const c of cutoffs) {
    if (c.iss !== undefined && c.iss !== claims['iss']) continue;
    if (typeof iat !== 'number' || iat * 1000 < c.before) return true;
  }
  return false;
}

/** Outcome of reading the revocation file after a change. */
export interface RevocationReloadEvent {
  readonly outcome: 'updated' | 'failed';
  readonly entries: number;
  readonly detail?: string;
}

/** A revocation file kept current: read at start (an error then is fatal), then on every change. */
export class RevocationSource {
  #list: RevocationList;
  #text: string;
  #watcher: Watcher | undefined;
  readonly #path: string;

  private constructor(path: string, text: string, list: RevocationList) {
    this.#path = path;
    this.#text = text;
    this.#list = list;
  }

  /**
   * Reads `path` and watches it. `onReload` hears every later change.
   *
   * @throws {ConfigError} when the file cannot be read or does not parse
   */
  static async open(path: string, onReload: (event: RevocationReloadEvent) => void, pollMs: number): Promise<RevocationSource> {
    const text = await readBounded(path);
    const source = new RevocationSource(path, text, parseRevocationList(text, path));
    source.#watcher = watchPath(path, () => source.#reload(onReload), { pollMs });
    return source;
  }

  get list(): RevocationList {
    return this.#list;
  }

  async #reload(onReload: (event: RevocationReloadEvent) => void): Promise<void> {
    let text: string;
    try {
      text = await readBounded(this.#path);
      if (text === this.#text) return;
      this.#text = text;
      this.#list = parseRevocationList(text, this.#path);
      onReload({ outcome: 'updated', entries: this.#list.size });
    } catch (e) {
      onReload({ outcome: 'failed', entries: this.#list.size, detail: e instanceof ConfigError ? e.message : `cannot read ${this.#path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
    }
  }

  close(): void {
    this.#watcher?.close();
  }
}

async function readBounded(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ConfigError('jwt.revocation_file', `cannot read revocation list ${path}: ${e.code ?? e.message}`);
  });
  if (text.length > MAX_REVOCATION_FILE_BYTES) throw new ConfigError('jwt.revocation_file', `${path} is larger than ${MAX_REVOCATION_FILE_BYTES} bytes`);
  return text;
}

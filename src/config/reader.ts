/**
 * Typed reading of a YAML config document with errors that point at the
 * offending key: `arbiter.yaml:12:7: \`jwt.issuers[0].audiences\` must be a
 * list of strings`. Unknown keys are errors too (a misspelt `audience` must
 * not silently leave audiences unchecked).
 */
import { isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { ConfigError } from '../errors.js';
import { closest } from '../compile/suggest.js';

type PathSegment = string | number;

/** A position in a YAML text: 0-based offset, 1-based line and column. */
export interface YamlPosition {
  readonly offset: number;
  readonly line: number;
  readonly col: number;
}

/** A parsed YAML document with the means to locate any of its keys. */
export class ConfigDocument {
  readonly #doc: Document;
  readonly #lines: LineCounter;
  /** The file name shown in errors. */
  readonly source: string;
  /** Directory that relative paths in the document are resolved against. */
  readonly baseDir: string;

  private constructor(doc: Document, lines: LineCounter, source: string, baseDir: string) {
    this.#doc = doc;
    this.#lines = lines;
    this.source = source;
    this.baseDir = baseDir;
  }

  /**
   * Parses YAML text. Aliases are refused (no billion-laughs expansion).
   *
   * @throws {ConfigError} on a YAML syntax error, with its line and column
   */
  static parse(text: string, source: string, baseDir: string): ConfigDocument {
    const parsed = ConfigDocument.tryParse(text, source, baseDir);
    if (!parsed.ok) throw new ConfigError('', `${source}:${parsed.line}:${parsed.col}: ${parsed.message}`);
    return parsed.doc;
  }

  /**
   * {@link parse} without throwing: the document, or the first syntax problem
   * with its position (for callers that collect diagnostics, such as the
   * policy schema).
   *
   * @example
   * const r = ConfigDocument.tryParse('a: [', 'schema.yaml', '.');
   * if (!r.ok) console.log(r.line, r.col, r.message);
   */
  static tryParse(text: string, source: string, baseDir: string): { readonly ok: true; readonly doc: ConfigDocument } | ({ readonly ok: false; readonly message: string } & YamlPosition) {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const problem = (offset: number, message: string): { ok: false; message: string } & YamlPosition => {
      const pos = lines.linePos(offset);
      return { ok: false, message, offset, line: pos.line, col: pos.col };
    };
    const first = doc.errors[0];
    if (first !== undefined) return problem(first.pos[0], first.message.split('\n')[0] ?? first.message);
    // Aliases are refused where they are (no billion-laughs expansion).
    let alias: number | undefined;
    visit(doc, {
      Alias(_, node) {
        alias = node.range?.[0];
        return visit.BREAK;
      },
    });
    if (alias !== undefined) return problem(alias, 'YAML aliases (`*name`) are not supported; write the value out');
    return { ok: true, doc: new ConfigDocument(doc, lines, source, baseDir) };
  }

  /**
   * The document as plain data (mappings as objects, sequences as arrays).
   *
   * @throws {ConfigError} when it cannot be converted
   */
  toValue(): unknown {
    try {
      return this.#doc.toJS({ maxAliasCount: 0 });
    } catch (e) {
      throw new ConfigError('', `${this.source}: ${(e as Error).message}`);
    }
  }

  /**
   * Where the key at `path` is (`part: 'key'`), or its value (`'value'`; for
   * a list index, the item): offsets and 1-based lines and columns of its
   * start and end. `undefined` when there is no such node.
   */
  span(path: readonly PathSegment[], part: 'key' | 'value' = 'key'): { readonly start: YamlPosition; readonly end: YamlPosition } | undefined {
    let range: readonly number[] | null | undefined;
    const last = path[path.length - 1];
    if (part === 'key' && typeof last === 'string') {
      const parent = this.#doc.getIn(path.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === last);
        if (pair !== undefined && isScalar(pair.key)) range = pair.key.range;
      }
    } else {
      const node = this.#doc.getIn(path, true) as { range?: readonly number[] | null } | undefined | null;
      if (node !== undefined && node !== null && typeof node === 'object') range = node.range;
    }
    const start = range?.[0];
    const end = range?.[1];
    if (start === undefined || end === undefined) return undefined;
    return { start: this.#position(start), end: this.#position(end) };
  }

  #position(offset: number): YamlPosition {
    const pos = this.#lines.linePos(offset);
    return { offset, line: pos.line, col: pos.col };
  }

  /** The root as a section (an empty document is an empty mapping). */
  root(): Section {
    let value = this.toValue();
    if (value === null || value === undefined) value = {};
    if (!isMapping(value)) throw new ConfigError('', `${this.source}:1:1: the config must be a mapping of keys`);
    return new Section(this, [], value);
  }

  /** `file:line:col` of the key at `path` (or the list item, for an index), as close as can be found. */
  locate(path: readonly PathSegment[]): string {
    const at = (offset: number): string => {
      const pos = this.#lines.linePos(offset);
      return `${this.source}:${pos.line}:${pos.col}`;
    };
    for (let n = path.length; n >= 0; n--) {
      const last = path[n - 1];
      if (typeof last === 'string') {
        // The key itself, not its value: an unknown key's value may be lines below it.
        const parent = this.#doc.getIn(path.slice(0, n - 1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === last);
          const range = pair !== undefined && isScalar(pair.key) ? pair.key.range : undefined;
          if (range !== undefined && range !== null) return at(range[0]);
        }
      }
      const node = this.#doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node !== undefined && node !== null && typeof node === 'object' && node.range !== undefined) return at(node.range[0]);
    }
    return this.source;
  }
}

/** Formats a key path: `jwt.issuers[0].audiences`. */
export function formatKey(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Map);
}

/** One mapping of the document and the typed accessors for its keys. */
export class Section {
  readonly doc: ConfigDocument;
  readonly path: readonly PathSegment[];
  readonly #value: Record<string, unknown>;

  constructor(doc: ConfigDocument, path: readonly PathSegment[], value: Record<string, unknown>) {
    this.doc = doc;
    this.path = path;
    this.#value = value;
  }

  /** A {@link ConfigError} about `key` (or the section itself), located in the file. */
  error(key: PathSegment | undefined, problem: string): ConfigError {
    const path = key === undefined ? this.path : [...this.path, key];
    const name = formatKey(path);
    return new ConfigError(name, `${this.doc.locate(path)}: \`${name === '' ? '(root)' : name}\` ${problem}`);
  }

  has(key: string): boolean {
    return Object.hasOwn(this.#value, key) && this.#value[key] !== null && this.#value[key] !== undefined;
  }

  /** Refuses keys outside `known`, suggesting the closest one. */
  allowOnly(known: readonly string[]): void {
    for (const key of Object.keys(this.#value)) {
      if (known.includes(key)) continue;
      const close = known.find((k) => k.replace(/_/g, '') === key.replace(/[_-]/g, '').toLowerCase()) ?? closest(key, known) ?? known.find((k) => k.startsWith(key) || key.startsWith(k));
      throw this.error(key, `is not a known key${close === undefined ? ` (expected one of ${known.map((k) => `\`${k}\``).join(', ')})` : `; did you mean \`${close}\`?`}`);
    }
  }

  raw(key: string): unknown {
    return Object.hasOwn(this.#value, key) ? this.#value[key] : undefined;
  }

  string(key: string): string | undefined {
    if (!this.has(key)) return undefined;
    const v = this.#value[key];
    if (typeof v !== 'string' || v === '') throw this.error(key, 'must be a non-empty string');
    return v;
  }

  requiredString(key: string): string {
    const v = this.string(key);
    if (v === undefined) throw this.error(key, 'is required');
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const v = this.#value[key];
    if (typeof v !== 'boolean') throw this.error(key, 'must be true or false');
    return v;
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    if (!this.has(key)) return fallback;
    const v = this.#value[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw this.error(key, `must be a whole number from ${min} to ${max}`);
    return v;
  }

  /** A number in [0, 1]. */
  fraction(key: string, fallback: number): number {
    if (!this.has(key)) return fallback;
    const v = this.#value[key];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw this.error(key, 'must be a number from 0 to 1');
    return v;
  }

  /** A duration in seconds: `30s`, `5m`, `1h`, `250ms`, or a number of seconds. */
  duration(key: string, fallback: number): number {
    if (!this.has(key)) return fallback;
    const seconds = parseDuration(this.#value[key]);
    if (seconds === undefined) throw this.error(key, 'must be a duration such as `30s`, `5m`, `1h` or a number of seconds');
    return seconds;
  }

  optionalDuration(key: string): number | undefined {
    return this.has(key) ? this.duration(key, 0) : undefined;
  }

  stringList(key: string, fallback: readonly string[]): readonly string[] {
    if (!this.has(key)) return fallback;
    const v = this.#value[key];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) throw this.error(key, 'must be a list of non-empty strings');
    return v as string[];
  }

  /** A path to a file or directory, resolved against the config file's directory. */
  filePath(key: string): string | undefined {
    const v = this.string(key);
    return v === undefined ? undefined : isAbsolute(v) ? v : resolve(this.doc.baseDir, v);
  }

  section(key: string): Section {
    if (!this.has(key)) return new Section(this.doc, [...this.path, key], {});
    const v = this.#value[key];
    if (!isMapping(v)) throw this.error(key, 'must be a mapping of keys');
    return new Section(this.doc, [...this.path, key], v);
  }

  /** A list of mappings. */
  sections(key: string): Section[] {
    if (!this.has(key)) return [];
    const v = this.#value[key];
    if (!Array.isArray(v)) throw this.error(key, 'must be a list');
    return v.map((item, i) => {
      if (!isMapping(item)) throw new Section(this.doc, [...this.path, key], {}).error(i, 'must be a mapping of keys');
      return new Section(this.doc, [...this.path, key, i], item);
    });
  }

  /** A mapping of string keys to values, for maps like `rename`. */
  entries(key: string): [string, unknown][] {
    if (!this.has(key)) return [];
    const v = this.#value[key];
    if (!isMapping(v)) throw this.error(key, 'must be a mapping');
    return Object.entries(v);
  }
}

/**
 * Seconds in a duration: `250ms`, `30s`, `5m`, `1h`, `1d`, or a plain number
 * of seconds. `undefined` when malformed or negative.
 *
 * @example
 * parseDuration('5m') // 300
 */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,9}(?:\.\d{1,6})?)(ms|s|m|h|d)$/.exec(v.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return n * unit;
}

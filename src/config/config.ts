/**
 * The config file (`arbiter.yaml`): one YAML document read by `arbiter check`
 * and `arbiter serve`. Each top-level section is read by its own module; a
 * wrong key is a {@link ConfigError} naming it, with its line and column.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { REQUEST_VALIDATION_MODES, type RequestValidationMode } from '../compile/schema.js';
import { ConfigError } from '../errors.js';
import type { VerifierOptions } from '../jwt/options.js';
import { readJwtSection } from './jwt.js';
import { ConfigDocument, type Section } from './reader.js';

/** Largest config file read. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** The parsed config. */
export interface ArbiterConfig {
  /** Directory of `*.policy` files. */
  readonly policies?: string;
  /** Token verification; absent when no issuer is configured. */
  readonly jwt?: VerifierOptions;
  /** `schema.validate_requests`: what the server does with requests that do not match the policy schema (`off` when absent). */
  readonly validateRequests?: RequestValidationMode;
  /** The document, for sections read by other modules (the server's). */
  readonly root: Section;
}

/** Top-level sections, and the module that reads each. Sections not read yet are still known keys. */
export const TOP_LEVEL_KEYS = ['policies', 'jwt', 'server', 'cache', 'metrics', 'decision_log', 'log', 'ext_authz', 'schema'] as const;

/**
 * Reads and checks a config file. Relative paths inside are resolved against
 * the file's directory; `env` supplies the variables `secret_env` names.
 *
 * @throws {ConfigError}
 * @example
 * const config = await loadConfig('arbiter.yaml', process.env);
 */
export async function loadConfig(path: string, env: Readonly<Record<string, string | undefined>>): Promise<ArbiterConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError('', `cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (text.length > MAX_CONFIG_BYTES) throw new ConfigError('', `config file ${path} is larger than ${MAX_CONFIG_BYTES} bytes`);
  return parseConfig(text, path, dirname(path), env);
}

/**
 * Parses config text (see {@link loadConfig}).
 *
 * @throws {ConfigError}
 */
export function parseConfig(text: string, source: string, baseDir: string, env: Readonly<Record<string, string | undefined>>): ArbiterConfig {
  const root = ConfigDocument.parse(text, source, baseDir).root();
  root.allowOnly(TOP_LEVEL_KEYS);
  const policies = root.filePath('policies');
  const jwt = root.has('jwt') ? readJwtSection(root.section('jwt'), env) : undefined;
  const validateRequests = root.has('schema') ? readSchemaSection(root.section('schema')) : undefined;
  return {
    ...(policies === undefined ? {} : { policies }),
    ...(jwt === undefined ? {} : { jwt }),
    ...(validateRequests === undefined ? {} : { validateRequests }),
    root,
  };
}

/**
 * The `schema` section: `validate_requests: off | warn | reject` (default
 * `off`), checking requests against the policy directory's `schema.yaml`.
 *
 * @throws {ConfigError}
 */
export function readSchemaSection(s: Section): RequestValidationMode {
  s.allowOnly(['validate_requests']);
  if (!s.has('validate_requests')) return 'off';
  const v = s.raw('validate_requests');
  // YAML 1.1 readers take a bare `off` for false; accept that spelling too.
  if (v === false) return 'off';
  if (typeof v !== 'string' || !(REQUEST_VALIDATION_MODES as readonly string[]).includes(v)) {
    throw s.error('validate_requests', `must be one of ${REQUEST_VALIDATION_MODES.map((m) => `\`${m}\``).join(', ')}`);
  }
  return v as RequestValidationMode;
}

/** `arbiter check`: decide one request against a policy directory and print the decision as JSON. */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CompileError, ConfigError, RequestError, formatDiagnostic } from '../../errors.js';
import { toTimestamp } from '../../compile/ops.js';
import { loadConfig, type ArbiterConfig } from '../../config/config.js';
import { Engine } from '../../engine/engine.js';
import { verifierEvents } from '../../engine/observe.js';
import { PolicyLoadError } from '../../engine/policy-store.js';
import { parseRequest } from '../../engine/request.js';
import { TokenVerifier } from '../../jwt/verify.js';
import { createJsonLogger } from '../../log/logger.js';
import { EXIT, InputTooLargeError, readInput, type CliIO } from '../io.js';

export const CHECK_USAGE = `usage: arbiter check [--policies DIR] [--input FILE] [--token JWT | --token-file FILE]
                     [--config FILE] [--explain] [--now TIME]

Decides one request and prints the decision as JSON: decision, reason,
deciding rules and policy revision (and the evaluation trace with --explain).
The request is read from --input FILE, or from standard input.

  --policies DIR     policy directory (every *.policy file under it); default:
                     \`policies\` from the config file
  --input FILE       request JSON: {"subject": {...}, "action": "...",
                     "resource": {"type": "...", "id": "...", "attributes": {...}},
                     "context": {...}}; "-" or absent reads standard input
  --token JWT        take the subject from this bearer token, verified against
                     the issuers of the config file (the request then has no
                     "subject"); a token that fails is a DENY with its reason
  --token-file FILE  the same, with the token read from FILE (keeps it out of
                     the process list and shell history)
  --config FILE      config file (default: $ARBITER_CONFIG, else ./arbiter.yaml
                     when it exists)
  --explain          include every rule evaluated and whether it applied
  --now TIME         decide (and check token times) as of TIME (RFC 3339)

exit status: 0 a decision was printed (ALLOW or DENY), 1 the policies do not
load, 2 bad usage or a malformed request, 3 the config (or a key or
revocation file it names) cannot be loaded`;

export async function runCheck(argv: readonly string[], io: CliIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        policies: { type: 'string' },
        input: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        config: { type: 'string' },
        explain: { type: 'boolean', default: false },
        now: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.stderr.write(`arbiter check: ${(e as Error).message}\n\n${CHECK_USAGE}\n`);
    return EXIT.USAGE;
  }
  if (values.help) {
    io.stdout.write(`${CHECK_USAGE}\n`);
    return EXIT.OK;
  }
  const usage = (message: string): number => {
    io.stderr.write(`arbiter check: ${message}\n`);
    return EXIT.USAGE;
  };
  if (values.token !== undefined && values['token-file'] !== undefined) return usage('give --token or --token-file, not both');
  if (values.input === undefined && values['token-file'] === '-') return usage('--token-file - and the request cannot both come from standard input');
  let now: number | undefined;
  if (values.now !== undefined) {
    now = toTimestamp(values.now);
    if (now === undefined) return usage('--now must be an RFC 3339 time such as 2026-11-23T09:00:00Z');
  }
  const env = io.env ?? process.env;
  const wantsToken = values.token !== undefined || values['token-file'] !== undefined;

  let config: ArbiterConfig | undefined;
  const configPath = values.config ?? env['ARBITER_CONFIG'] ?? (existsSync('arbiter.yaml') ? 'arbiter.yaml' : undefined);
  if (configPath !== undefined) {
    try {
      config = await loadConfig(configPath, env);
    } catch (e) {
      if (e instanceof ConfigError) {
        io.stderr.write(`arbiter check: ${e.message}\n`);
        return EXIT.CONFIG_ERROR;
      }
      throw e;
    }
  }
  const policies = values.policies ?? config?.policies;
  if (policies === undefined) {
    io.stderr.write(`arbiter check: --policies is required (or \`policies\` in the config file)\n\n${CHECK_USAGE}\n`);
    return EXIT.USAGE;
  }
  if (wantsToken && config?.jwt === undefined) {
    return usage(configPath === undefined
      ? '--token needs a config file with a `jwt` section naming the trusted issuers (--config FILE)'
      : `--token needs a \`jwt\` section in ${configPath} naming the trusted issuers`);
  }

  let token: string | undefined = values.token;
  let request;
  try {
    if (values['token-file'] !== undefined) token = (await readInput(values['token-file'], io)).trim();
    const text = await readInput(values.input, io);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new RequestError('REQUEST_INVALID', '', 'request is not valid JSON');
    }
    request = parseRequest(json, { subjectFromToken: wantsToken });
  } catch (e) {
    if (e instanceof RequestError) return usage(`invalid request${e.field === '' ? '' : ` (field ${e.field})`}: ${e.message}`);
    if (e instanceof InputTooLargeError) return usage(e.message);
    return usage(`cannot read the input: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }

  let verifier: TokenVerifier | undefined;
  if (wantsToken && config?.jwt !== undefined) {
    try {
      const logger = createJsonLogger(io.stderr, 'warn');
      verifier = await TokenVerifier.create(config.jwt, { events: verifierEvents(logger), ...(now === undefined ? {} : { clock: () => now }) });
    } catch (e) {
      io.stderr.write(`arbiter check: ${e instanceof ConfigError ? e.message : `cannot load the issuers' keys: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`}\n`);
      return EXIT.CONFIG_ERROR;
    }
  }
  try {
    let engine: Engine;
    try {
      engine = await Engine.fromDirectory(policies, verifier === undefined ? {} : { verifier });
    } catch (e) {
      return reportLoadError(e, io);
    }
    const options = now === undefined ? { explain: values.explain } : { explain: values.explain, now };
    const { subject: _ignored, ...rest } = request;
    const decision = token !== undefined ? await engine.checkToken(token, rest, options) : engine.check(request, options);
    io.stdout.write(`${JSON.stringify(decision, null, 2)}\n`);
    return EXIT.OK;
  } finally {
    verifier?.close();
  }
}

/** Prints why a policy set did not load; shared by the commands that load one. */
export function reportLoadError(e: unknown, io: CliIO): number {
  if (e instanceof CompileError) {
    for (const d of e.diagnostics) io.stderr.write(`${formatDiagnostic(d)}\n`);
    io.stderr.write(`${e.diagnostics.length} error${e.diagnostics.length === 1 ? '' : 's'}\n`);
    return EXIT.POLICY_ERROR;
  }
  if (e instanceof PolicyLoadError) {
    io.stderr.write(`arbiter: ${e.message}\n`);
    return EXIT.POLICY_ERROR;
  }
  throw e;
}

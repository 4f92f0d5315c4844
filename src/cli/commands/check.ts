/** `arbiter check`: decide one request against a policy directory and print the decision as JSON. */
import { parseArgs } from 'node:util';
import { CompileError, RequestError, formatDiagnostic } from '../../errors.js';
import { toTimestamp } from '../../compile/ops.js';
import { Engine } from '../../engine/engine.js';
import { PolicyLoadError } from '../../engine/policy-store.js';
import { parseRequest } from '../../engine/request.js';
import { EXIT, InputTooLargeError, readInput, type CliIO } from '../io.js';

export const CHECK_USAGE = `usage: arbiter check --policies DIR [--input FILE] [--explain] [--now TIME]

Decides one request and prints the decision as JSON: decision, reason,
deciding rules and policy revision (and the evaluation trace with --explain).
The request is read from --input FILE, or from standard input.

  --policies DIR   policy directory (every *.policy file under it)
  --input FILE     request JSON: {"subject": {...}, "action": "...",
                   "resource": {"type": "...", "id": "...", "attributes": {...}},
                   "context": {...}}; "-" or absent reads standard input
  --explain        include every rule evaluated and whether it applied
  --now TIME       decide as of TIME (RFC 3339), instead of the clock

exit status: 0 a decision was printed (ALLOW or DENY), 1 the policies do not
load, 2 bad usage or a malformed request`;

export async function runCheck(argv: readonly string[], io: CliIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        policies: { type: 'string' },
        input: { type: 'string' },
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
  if (values.policies === undefined) {
    io.stderr.write(`arbiter check: --policies is required\n\n${CHECK_USAGE}\n`);
    return EXIT.USAGE;
  }
  let now: number | undefined;
  if (values.now !== undefined) {
    now = toTimestamp(values.now);
    if (now === undefined) {
      io.stderr.write(`arbiter check: --now must be an RFC 3339 time such as 2026-11-23T09:00:00Z\n`);
      return EXIT.USAGE;
    }
  }
  let engine: Engine;
  try {
    engine = await Engine.fromDirectory(values.policies);
  } catch (e) {
    return reportLoadError(e, io);
  }
  let request;
  try {
    const text = await readInput(values.input, io);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new RequestError('REQUEST_INVALID', '', 'request is not valid JSON');
    }
    request = parseRequest(json);
  } catch (e) {
    if (e instanceof RequestError) {
      io.stderr.write(`arbiter check: invalid request${e.field === '' ? '' : ` (field ${e.field})`}: ${e.message}\n`);
      return EXIT.USAGE;
    }
    if (e instanceof InputTooLargeError) {
      io.stderr.write(`arbiter check: ${e.message}\n`);
      return EXIT.USAGE;
    }
    io.stderr.write(`arbiter check: cannot read the request: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return EXIT.USAGE;
  }
  const decision = engine.check(request, now === undefined ? { explain: values.explain } : { explain: values.explain, now });
  io.stdout.write(`${JSON.stringify(decision, null, 2)}\n`);
  return EXIT.OK;
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

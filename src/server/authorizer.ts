/**
 * The `arbiter.v1.Authorizer` handlers: protobuf in, engine call, protobuf
 * out, one decision-log line per decision. A thin shell: validation is the
 * engine's request parser, decisions are the engine's.
 */
import { randomUUID } from 'node:crypto';
import { status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Attributes } from '../compile/index.js';
import { PermissionError, RequestError } from '../errors.js';
import type { DecisionLog } from '../audit/decision-log.js';
import type { DecidedSubject, DecideInput, Engine, EngineDecision, Principal } from '../engine/engine.js';
import { parseRequest, parseResource, REQUEST_LIMITS } from '../engine/request.js';
import type { Request, Trace } from '../eval/evaluate.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/registry.js';
import type { CheckBatchResponseMsg, CheckResponseMsg } from './encode.js';
import { serviceError, toServiceError } from './status.js';
import type { DecodedCheckBatchRequest, DecodedCheckRequest, DecodedResource, JsonObject } from './decode.js';

export interface AuthorizerDeps {
  readonly engine: Engine;
  readonly decisionLog: DecisionLog;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Certificate identities allowed to send `subject` instead of a token. */
  readonly trustedSubjectCallers: ReadonlySet<string>;
  readonly maxBatchItems: number;
  /**
   * Whether callers can present client certificates (mTLS). `false` skips
   * looking for a caller identity on every call (plaintext, or TLS without a
   * client CA: there is none). Default: look.
   */
  readonly clientCertificates?: boolean;
}

/** Most actions in one CheckBatch item (a resource type declares a handful; this bounds the work one call can ask for). */
export const MAX_ACTIONS_PER_ITEM = 100;

/** Longest request id accepted. */
const MAX_REQUEST_ID = 128;

/**
 * The handlers, to pass to `server.addService(authorizer, createAuthorizer(deps))`.
 *
 * @example
 * server.addService(loadAuthorizerProto().authorizer, createAuthorizer({ engine, decisionLog, logger, trustedSubjectCallers: new Set(), maxBatchItems: 1000 }));
 */
export function createAuthorizer(deps: AuthorizerDeps): UntypedServiceImplementation {
  return {
    Check: (call: ServerUnaryCall<DecodedCheckRequest, unknown>, callback: sendUnaryData<unknown>) => {
      answer(deps, 'Check', callback, () => check(deps, call));
    },
    CheckBatch: (call: ServerUnaryCall<DecodedCheckBatchRequest, unknown>, callback: sendUnaryData<unknown>) => {
      answer(deps, 'CheckBatch', callback, () => checkBatch(deps, call));
    },
  };
}

type Outcome = { ok: true; response: object } | { ok: false; error: ReturnType<typeof serviceError> };

/**
 * Runs a handler and answers the call, counting it. A handler that can
 * answer without waiting (the principal needed no I/O) is answered in the
 * same tick, with no promise made.
 */
function answer(deps: AuthorizerDeps, method: 'Check' | 'CheckBatch', callback: sendUnaryData<unknown>, run: () => Outcome | Promise<Outcome>): void {
  deps.metrics?.grpcInFlight.inc();
  let result: Outcome | Promise<Outcome>;
  try {
    result = run();
  } catch (e) {
    result = failed(deps, method, e);
  }
  if (result instanceof Promise) {
    result.then(
      (outcome) => finish(deps, method, callback, outcome),
      (e: unknown) => finish(deps, method, callback, failed(deps, method, e)),
    );
  } else {
    finish(deps, method, callback, result);
  }
}

function failed(deps: AuthorizerDeps, method: 'Check' | 'CheckBatch', e: unknown): Outcome {
  if (!(e instanceof RequestError) && !(e instanceof PermissionError)) {
    deps.logger.log('error', 'request handling failed', { method, error: (e as Error).message });
  }
  return { ok: false, error: toServiceError(e) };
}

function finish(deps: AuthorizerDeps, method: 'Check' | 'CheckBatch', callback: sendUnaryData<unknown>, outcome: Outcome): void {
  const metrics = deps.metrics;
  if (metrics !== undefined) {
    metrics.grpcInFlight.dec();
    metrics.grpcCalls.inc({ method, code: outcome.ok ? 'OK' : status[outcome.error.code ?? status.UNKNOWN] ?? 'UNKNOWN' });
  }
  if (outcome.ok) callback(null, outcome.response);
  else callback(outcome.error);
}

function check(deps: AuthorizerDeps, call: ServerUnaryCall<DecodedCheckRequest, unknown>): Outcome | Promise<Outcome> {
  const started = performance.now();
  const req = call.request;
  const requestId = requestIdOf(refusedBytes(req).request_id);
  const caller = deps.clientCertificates === false ? undefined : callerOf(call);
  const principal = principalOf(deps, req, caller);
  // A Struct that is not JSON (decode.ts): refused after the caller's right to send `subject` is checked, as before.
  if (req.invalid !== undefined) throw req.invalid;
  const parsed = parseRequest(
    {
      ...('subject' in principal ? { subject: principal.subject } : {}),
      action: req.action,
      resource: resourceJson(req.resource),
      ...(req.context === undefined ? {} : { context: req.context }),
    },
    { subjectFromToken: 'token' in principal },
  );
  const context = withCaller(parsed.context, caller);
  const input: DecideInput = {
    principal,
    action: parsed.action,
    resource: parsed.resource,
    ...(context === undefined ? {} : { context }),
    explain: req.explain === true,
  };
  const respond = (decision: EngineDecision): Outcome => {
    writeLog(deps, 'Check', requestId, caller, parsed.action, parsed.resource, decision, started);
    // Encoded by encode.ts (the service definition's serializer for Check).
    const response: CheckResponseMsg = {
      decision: decision.decision,
      reason: decision.reason,
      rules: decision.rules,
      policy_revision: decision.revision,
      ...(decision.message === undefined ? {} : { message: decision.message }),
      ...(decision.trace === undefined ? {} : { trace: traceMsg(decision.trace) }),
      request_id: requestId,
      cached: decision.cached,
    };
    return { ok: true, response };
  };
  const now = deps.engine.decideNow(input);
  return now !== undefined ? respond(now) : deps.engine.decide(input).then(respond);
}

async function checkBatch(deps: AuthorizerDeps, call: ServerUnaryCall<DecodedCheckBatchRequest, unknown>): Promise<Outcome> {
  const started = performance.now();
  const req = call.request;
  const requestId = requestIdOf(refusedBytes(req).request_id);
  const caller = deps.clientCertificates === false ? undefined : callerOf(call);
  const principal = principalOf(deps, req, caller);
  // Too many items or actions, or a Struct that is not JSON (decode.ts).
  if (req.invalid !== undefined) throw req.invalid;
  // Trusted subject attributes get the same bounds as in Check (depth, value count, string sizes).
  if ('subject' in principal) parseRequest({ subject: principal.subject, action: 'batch', resource: { type: 'batch' } });
  const items = req.items;
  if (items.length === 0) throw new RequestError('REQUEST_INVALID', 'items', '`items` must list at least one (resource, actions) item');
  if (items.length > deps.maxBatchItems) throw new RequestError('REQUEST_INVALID', 'items', `\`items\` has ${items.length} items; at most ${deps.maxBatchItems} are allowed per call`);
  // The context once, checked as in Check.
  const context = req.context === undefined ? undefined : parseRequest({ action: 'batch', resource: { type: 'batch' }, context: req.context }, { subjectFromToken: true }).context;
  const parsedItems = items.map((item, i) => {
    const field = `items[${i}]`;
    const actions = item.actions;
    if (actions.length === 0) throw new RequestError('REQUEST_INVALID', `${field}.actions`, `\`${field}.actions\` must list at least one action`);
    if (actions.length > MAX_ACTIONS_PER_ITEM) throw new RequestError('REQUEST_INVALID', `${field}.actions`, `\`${field}.actions\` lists ${actions.length} actions; at most ${MAX_ACTIONS_PER_ITEM} are allowed per item`);
    for (let j = 0; j < actions.length; j++) {
      const action = actions[j];
      if (typeof action !== 'string' || action.length === 0 || action.length > REQUEST_LIMITS.maxNameLength) {
        const f = `${field}.actions[${j}]`;
        throw new RequestError('REQUEST_INVALID', f, `\`${f}\` must be a non-empty string of at most ${REQUEST_LIMITS.maxNameLength} characters`);
      }
    }
    try {
      const resource = parseResource(resourceJson(item.resource));
      // A decoded item whose resource needed no change is passed on as it is.
      return resource === item.resource ? (item as { readonly resource: Request['resource']; readonly actions: readonly string[] }) : { resource, actions };
    } catch (e) {
      if (!(e instanceof RequestError)) throw e;
      const f = `${field}.${e.field}`;
      throw new RequestError(e.code, f, e.message.replaceAll(`\`${e.field}\``, `\`${f}\``));
    }
  });
  const ctx = withCaller(context, caller);
  if (call.cancelled) return { ok: false, error: serviceError(status.CANCELLED, 'call cancelled') };
  const outcome = await deps.engine.decideBatch({ principal, items: parsedItems, ...(ctx === undefined ? {} : { context: ctx }) });
  if (deps.decisionLog.enabled !== false) {
    for (const [i, item] of parsedItems.entries()) {
      for (const [j, action] of item.actions.entries()) {
        const d = outcome.results[i]?.[j];
        if (d !== undefined) writeLog(deps, 'CheckBatch', requestId, caller, action, item.resource, d, started, outcome.subject);
      }
    }
  }
  // Encoded by encode.ts (the service definition's serializer for CheckBatch).
  const response: CheckBatchResponseMsg = {
    results: outcome.results.map((answers, i) => ({ actions: parsedItems[i]?.actions ?? [], answers })),
    policy_revision: outcome.revision,
    request_id: requestId,
    ...(outcome.tokenReason === undefined ? {} : { token_reason: outcome.tokenReason }),
    ...(outcome.message === undefined ? {} : { message: outcome.message }),
  };
  return { ok: true, response };
}

/** The request, unless its bytes did not decode at all (then nothing else in it can be read): that is refused first. */
function refusedBytes<T extends { readonly invalid?: RequestError }>(req: T): T {
  if (req.invalid !== undefined && req.invalid.field === 'request') throw req.invalid;
  return req;
}

/** The token, or trusted subject attributes; an untrusted caller sending `subject` is refused. */
function principalOf(deps: AuthorizerDeps, req: { principal?: 'token' | 'subject'; token?: string; subject?: JsonObject }, caller: string | undefined): Principal {
  if (req.principal === 'subject') {
    if (caller === undefined || !deps.trustedSubjectCallers.has(caller)) {
      throw new PermissionError(
        caller === undefined
          ? '`subject` is accepted only from callers identified by a trusted client certificate; send `token` instead'
          : `caller ${JSON.stringify(caller)} is not trusted to send \`subject\`; send \`token\` instead`,
      );
    }
    return { subject: (req.subject ?? {}) as Attributes };
  }
  let token = req.token ?? '';
  // Tolerate a copied Authorization header value.
  if (/^bearer\s+/i.test(token)) token = token.replace(/^bearer\s+/i, '');
  return { token };
}

/** The resource as request validation reads it (an empty id is no id). */
function resourceJson(resource: DecodedResource | undefined): Record<string, unknown> | undefined {
  if (resource === undefined) return undefined;
  // The decoder's resource holds only type, id and (when sent) attributes: with an id, it is the JSON already.
  if (resource.id !== '') return resource as unknown as Record<string, unknown>;
  return {
    type: resource.type,
    ...(resource.id === '' ? {} : { id: resource.id }),
    ...(resource.attributes === undefined ? {} : { attributes: resource.attributes }),
  };
}

/** `context.caller` is the certificate identity, never what the caller wrote there. */
function withCaller(context: Attributes | undefined, caller: string | undefined): Attributes | undefined {
  if (context === undefined) return caller === undefined ? undefined : { caller };
  if (caller === undefined) {
    if (!Object.hasOwn(context, 'caller')) return context;
    const { caller: _dropped, ...rest } = context;
    return rest;
  }
  return { ...context, caller };
}

function requestIdOf(id: string | undefined): string {
  if (id === undefined || id === '') return randomUUID();
  if (id.length > MAX_REQUEST_ID || !/^[A-Za-z0-9._:/-]+$/.test(id)) {
    throw new RequestError('REQUEST_INVALID', 'request_id', `\`request_id\` must be at most ${MAX_REQUEST_ID} letters, digits or \`._:/-\``);
  }
  return id;
}

/**
 * The caller's identity from its client certificate: the first SAN URI (a
 * SPIFFE ID), else the first SAN DNS name. `undefined` without mTLS.
 */
export function callerOf(call: { getAuthContext?: () => { sslPeerCertificate?: { subjectaltname?: string } } | null }): string | undefined {
  const san = call.getAuthContext?.()?.sslPeerCertificate?.subjectaltname;
  if (san === undefined || san === '') return undefined;
  const entries = san.split(', ').map((e) => e.trim());
  const uri = entries.find((e) => e.startsWith('URI:'));
  if (uri !== undefined) return uri.slice(4);
  const dns = entries.find((e) => e.startsWith('DNS:'));
  return dns === undefined ? undefined : dns.slice(4);
}

function traceMsg(t: Trace): object {
  return {
    decided_by: t.decidedBy,
    evaluated: t.evaluated.map((r) => ({ rule: r.rule, effect: r.effect, applied: r.applied, location: r.location })),
    matched: t.matched,
    rules_for_action: t.rulesForAction,
  };
}

function writeLog(
  deps: AuthorizerDeps,
  method: 'Check' | 'CheckBatch',
  requestId: string,
  caller: string | undefined,
  action: string,
  resource: { type: string; id?: string },
  d: EngineDecision,
  started: number,
  batchSubject?: DecidedSubject,
): void {
  if (deps.decisionLog.enabled === false) return;
  const subject = batchSubject ?? d.subject;
  deps.decisionLog.write({
    time: new Date().toISOString(),
    request_id: requestId,
    ...(caller === undefined ? {} : { caller }),
    method,
    ...(subject?.sub === undefined ? {} : { sub: subject.sub }),
    ...(subject === undefined ? {} : { issuer: subject.issuer }),
    action,
    resource_type: resource.type,
    ...(resource.id === undefined ? {} : { resource_id: resource.id.slice(0, REQUEST_LIMITS.maxIdLength) }),
    decision: d.decision,
    reason: d.reason,
    rules: d.rules,
    revision: d.revision,
    latency_ms: Math.round((performance.now() - started) * 1000) / 1000,
    cached: d.cached,
  });
}

/**
 * Envoy's external authorization (`envoy.service.auth.v3.Authorization/Check`)
 * on the same server as `arbiter.v1.Authorizer`: an HTTP request as Envoy
 * describes it → its normalised path → the route the policies declare → a
 * decision through the same engine, cache, metrics and decision log.
 *
 * Allow → OK (with headers for the upstream); missing or refused token on a
 * protected route → UNAUTHENTICATED and HTTP 401 with `WWW-Authenticate`;
 * policy deny → PERMISSION_DENIED and 403; no route → 403 (or 404, by
 * config); a path that could be read two ways → 400; every other failure →
 * deny. A gRPC error status is returned only to a caller that is not allowed
 * to call at all.
 */
import { randomUUID } from 'node:crypto';
import { status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Attributes } from '../compile/index.js';
import type { DecisionLog } from '../audit/decision-log.js';
import type { ExtAuthzOptions } from '../config/server.js';
import type { Engine, EngineDecision } from '../engine/engine.js';
import { REQUEST_LIMITS } from '../engine/request.js';
import { matchRoute } from '../eval/route.js';
import { decodeSegment, normalisePath, parseQuery } from '../gateway/path.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/registry.js';
import { callerOf } from './authorizer.js';
import { serviceError } from './status.js';

/** google.rpc.Code values used in the response status. */
const RPC = { OK: 0, INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

/** Reasons of decisions made before the policies are asked. */
export const GATEWAY_REASONS = {
  /** The route is public: no token needed. */
  PUBLIC_ROUTE: 'PUBLIC_ROUTE',
  /** No route matched the method and path. */
  NO_ROUTE: 'NO_ROUTE',
  /** The path could be read more than one way (encoded slash, NUL, bad escape, ...). */
  BAD_PATH: 'BAD_PATH',
  /** The request headers exceed `ext_authz.max_header_bytes`. */
  HEADERS_TOO_LARGE: 'HEADERS_TOO_LARGE',
  /** The request has no HTTP attributes. */
  NOT_HTTP: 'NOT_HTTP',
  /** An unexpected failure: fail closed. */
  INTERNAL_ERROR: 'INTERNAL_ERROR',
} as const;

interface PeerMsg {
  address?: { socket_address?: { address?: string; port_value?: number } | null } | null;
  principal?: string;
}

interface HttpRequestMsg {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  header_map?: { headers?: { key?: string; value?: string; raw_value?: Uint8Array }[] } | null;
  path?: string;
  host?: string;
  scheme?: string;
}

interface ExtAuthzCheckRequest {
  attributes?: {
    source?: PeerMsg | null;
    destination?: PeerMsg | null;
    request?: { http?: HttpRequestMsg | null } | null;
    context_extensions?: Record<string, string>;
  } | null;
}

interface HeaderOption {
  header: { key: string; value: string };
  append_action: 'OVERWRITE_IF_EXISTS_OR_ADD';
}

export interface ExtAuthzDeps {
  readonly engine: Engine;
  readonly decisionLog: DecisionLog;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly options: ExtAuthzOptions;
}

/**
 * The handlers, for `server.addService(loadExtAuthzProto().authorization, createExtAuthz(deps))`.
 *
 * @example
 * server.addService(loadExtAuthzProto().authorization, createExtAuthz({ engine, decisionLog, logger, options }));
 */
export function createExtAuthz(deps: ExtAuthzDeps): UntypedServiceImplementation {
  return {
    Check: (call: ServerUnaryCall<ExtAuthzCheckRequest, unknown>, callback: sendUnaryData<unknown>) => {
      const caller = callerOf(call);
      const trusted = deps.options.trustedCallers;
      if (trusted.length > 0 && (caller === undefined || !trusted.includes(caller))) {
        deps.metrics?.grpcCalls.inc({ method: 'ext_authz.Check', code: 'PERMISSION_DENIED' });
        callback(serviceError(status.PERMISSION_DENIED, caller === undefined ? 'ext_authz callers must present a trusted client certificate' : `caller ${JSON.stringify(caller)} may not call ext_authz`));
        return;
      }
      deps.metrics?.grpcInFlight.inc();
      decide(deps, call.request, caller)
        .catch((e: unknown) => {
          // Fail closed, and count and log the denial like any other.
          deps.logger.log('error', 'ext_authz check failed', { error: (e as Error).message });
          deps.metrics?.decisions.inc({ api: 'ext_authz', decision: 'DENY', reason: GATEWAY_REASONS.INTERNAL_ERROR, resource_type: '(none)' });
          deps.decisionLog.write({
            time: new Date().toISOString(),
            request_id: randomUUID(),
            ...(caller === undefined ? {} : { caller }),
            method: 'ext_authz',
            action: '',
            resource_type: '',
            decision: 'DENY',
            reason: GATEWAY_REASONS.INTERNAL_ERROR,
            rules: [],
            revision: deps.engine.revision,
            latency_ms: 0,
            cached: false,
          });
          return denied(deps, 403, RPC.PERMISSION_DENIED, GATEWAY_REASONS.INTERNAL_ERROR, '');
        })
        .then((response) => {
          deps.metrics?.grpcInFlight.dec();
          deps.metrics?.grpcCalls.inc({ method: 'ext_authz.Check', code: 'OK' });
          callback(null, response);
        });
    },
  };
}

async function decide(deps: ExtAuthzDeps, req: ExtAuthzCheckRequest, caller: string | undefined): Promise<object> {
  const started = performance.now();
  const opts = deps.options;
  const http = req.attributes?.request?.http;
  // The client-visible request id (x-request-id) when the gateway forwards one, else Envoy's stream id.
  // Read once: with `header_map` (Envoy's encode_raw_headers) this builds the map.
  const headers = http === undefined || http === null ? {} : headersOf(http);
  const requestId = validId(headers['x-request-id']) ?? validId(http?.id) ?? randomUUID();
  const log = (d: { decision: 'ALLOW' | 'DENY'; reason: string; rules?: readonly string[]; revision?: string; cached?: boolean; sub?: string; issuer?: string; action?: string; type?: string; id?: string; route?: string }): void => {
    deps.decisionLog.write({
      time: new Date().toISOString(),
      request_id: requestId,
      ...(caller === undefined ? {} : { caller }),
      method: 'ext_authz',
      ...(d.route === undefined ? {} : { route: d.route }),
      ...(d.sub === undefined ? {} : { sub: d.sub }),
      ...(d.issuer === undefined ? {} : { issuer: d.issuer }),
      action: d.action ?? '',
      resource_type: d.type ?? '',
      ...(d.id === undefined ? {} : { resource_id: d.id }),
      decision: d.decision,
      reason: d.reason,
      rules: d.rules ?? [],
      revision: d.revision ?? deps.engine.revision,
      latency_ms: Math.round((performance.now() - started) * 1000) / 1000,
      cached: d.cached ?? false,
    });
  };
  const early = (httpCode: number, rpcCode: number, reason: string, route?: string): object => {
    deps.metrics?.decisions.inc({ api: 'ext_authz', decision: 'DENY', reason, resource_type: '(none)' });
    log(route === undefined ? { decision: 'DENY', reason } : { decision: 'DENY', reason, route });
    return denied(deps, httpCode, rpcCode, reason, requestId);
  };

  if (http === undefined || http === null) return early(403, RPC.PERMISSION_DENIED, GATEWAY_REASONS.NOT_HTTP);
  let headerBytes = 0;
  for (const [k, v] of Object.entries(headers)) headerBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  if (headerBytes > opts.maxHeaderBytes) return early(431, RPC.INVALID_ARGUMENT, GATEWAY_REASONS.HEADERS_TOO_LARGE);

  const normalised = normalisePath(http.path ?? '');
  if (!normalised.ok) return early(400, RPC.INVALID_ARGUMENT, GATEWAY_REASONS.BAD_PATH);
  const method = (http.method ?? '').toUpperCase();
  const match = matchRoute(deps.engine.tree.routes, method, normalised.segments);
  if (match === undefined) return early(opts.noRouteStatus, RPC.PERMISSION_DENIED, GATEWAY_REASONS.NO_ROUTE);
  const route = match.route;

  if (route.target.kind === 'public') {
    deps.metrics?.decisions.inc({ api: 'ext_authz', decision: 'ALLOW', reason: GATEWAY_REASONS.PUBLIC_ROUTE, resource_type: '(none)' });
    log({ decision: 'ALLOW', reason: GATEWAY_REASONS.PUBLIC_ROUTE, route: route.id });
    return allowed(deps, undefined, undefined);
  }

  const target = route.target;
  let id: string | undefined;
  if (target.idCapture !== null) {
    const raw = match.captures[route.captures.indexOf(target.idCapture)];
    id = raw === undefined ? undefined : decodeSegment(raw);
    if (id === undefined || id.length > REQUEST_LIMITS.maxIdLength) return early(400, RPC.INVALID_ARGUMENT, GATEWAY_REASONS.BAD_PATH, route.id);
  }
  const context = contextOf(http, headers, normalised.path, normalised.query, route.id, req, caller, opts.contextHeaders);
  const token = bearerToken(headers);
  const decision = await deps.engine.decide({
    principal: { token: token ?? '' },
    action: target.action,
    resource: id === undefined ? { type: target.resourceType } : { type: target.resourceType, id },
    context,
    api: 'ext_authz',
  });
  log({
    decision: decision.decision,
    reason: decision.reason,
    rules: decision.rules,
    revision: decision.revision,
    cached: decision.cached,
    ...(decision.subject?.sub === undefined ? {} : { sub: decision.subject.sub }),
    ...(decision.subject === undefined ? {} : { issuer: decision.subject.issuer }),
    action: target.action,
    type: target.resourceType,
    ...(id === undefined ? {} : { id }),
    route: route.id,
  });
  if (decision.decision === 'ALLOW') return allowed(deps, decision, route.id);
  if (decision.reason.startsWith('TOKEN_')) {
    if (decision.reason === 'TOKEN_KEYS_UNAVAILABLE' || decision.reason === 'TOKEN_VERIFICATION_ERROR') {
      return denied(deps, 503, RPC.UNAVAILABLE, decision.reason, requestId);
    }
    const challenge = token === undefined ? 'Bearer realm="arbiter"' : `Bearer realm="arbiter", error="invalid_token", error_description="${decision.reason}"`;
    return denied(deps, 401, RPC.UNAUTHENTICATED, decision.reason, requestId, [['www-authenticate', challenge]]);
  }
  return denied(deps, 403, RPC.PERMISSION_DENIED, decision.reason, requestId);
}

/**
 * The request headers: `headers`, or — when Envoy is configured with
 * `encode_raw_headers: true` — `header_map`, with names lower-cased and
 * repeated headers joined with `,` as the map form does.
 */
function headersOf(http: HttpRequestMsg): Record<string, string> {
  const raw = http.header_map?.headers;
  if ((http.headers === undefined || Object.keys(http.headers).length === 0) && raw !== undefined && raw.length > 0) {
    const out = new Map<string, string>();
    for (const h of raw) {
      const key = (h.key ?? '').toLowerCase();
      const value = h.raw_value !== undefined && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('utf8') : (h.value ?? '');
      out.set(key, out.has(key) ? `${out.get(key)},${value}` : value);
    }
    return Object.fromEntries(out);
  }
  return http.headers ?? {};
}

/** The token of an `Authorization: Bearer ...` header (names are case-insensitive), or undefined. */
export function bearerToken(headers: Readonly<Record<string, string>>): string | undefined {
  let value: string | undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === 'authorization') {
      value = v;
      break;
    }
  }
  if (value === undefined) return undefined;
  const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(value);
  return m === null ? undefined : m[1];
}

function contextOf(
  http: HttpRequestMsg,
  headers: Readonly<Record<string, string>>,
  path: string,
  query: string,
  route: string,
  req: ExtAuthzCheckRequest,
  caller: string | undefined,
  contextHeaders: readonly string[],
): Attributes {
  const selected: Record<string, string> = {};
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  for (const name of contextHeaders) {
    const v = lower.get(name);
    if (v !== undefined) Object.defineProperty(selected, name, { value: v.slice(0, REQUEST_LIMITS.maxStringLength), enumerable: true, writable: true, configurable: true });
  }
  const source = req.attributes?.source;
  const ip = source?.address?.socket_address?.address;
  return {
    method: (http.method ?? '').toUpperCase(),
    path,
    host: (http.host ?? '').slice(0, REQUEST_LIMITS.maxNameLength),
    scheme: (http.scheme ?? '').slice(0, 16),
    query: parseQuery(query),
    headers: selected,
    route,
    ...(ip === undefined || ip === '' ? {} : { ip }),
    ...(source?.principal === undefined || source.principal === '' ? {} : { principal: source.principal.slice(0, REQUEST_LIMITS.maxIdLength) }),
    ...(caller === undefined ? {} : { caller }),
  };
}

function header(key: string, value: string): HeaderOption {
  // Overwrite: a client must not be able to send these headers itself. Values come from
  // token claims: anything outside printable ASCII is percent-encoded, so a `sub` holding
  // CR/LF can never inject a header (RFC 9110 §5.5).
  return { header: { key, value: value.replace(/[^\x20-\x7e]/gu, (c) => encodeURIComponent(c)) }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' };
}

function allowed(deps: ExtAuthzDeps, decision: EngineDecision | undefined, route: string | undefined): object {
  const { upstreamHeaders, removeAuthorization } = deps.options;
  const headers: HeaderOption[] = [];
  const remove: string[] = [];
  const sub = decision?.subject?.sub;
  const rule = decision?.rules[0];
  // Set what is known; remove what is not, so a client-sent value never reaches the upstream.
  if (upstreamHeaders.subject !== undefined) sub === undefined ? remove.push(upstreamHeaders.subject) : headers.push(header(upstreamHeaders.subject, sub));
  if (upstreamHeaders.rule !== undefined) rule === undefined ? remove.push(upstreamHeaders.rule) : headers.push(header(upstreamHeaders.rule, rule));
  if (upstreamHeaders.route !== undefined) route === undefined ? remove.push(upstreamHeaders.route) : headers.push(header(upstreamHeaders.route, route));
  if (removeAuthorization) remove.push('authorization');
  return { status: { code: RPC.OK, message: '' }, ok_response: { headers, headers_to_remove: remove } };
}

const HTTP_NAMES: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 431: 'RequestHeaderFieldsTooLarge', 503: 'ServiceUnavailable' };

function denied(_deps: ExtAuthzDeps, httpCode: number, rpcCode: number, reason: string, requestId: string, extra: [string, string][] = []): object {
  const body = JSON.stringify({ decision: 'DENY', reason, ...(requestId === '' ? {} : { request_id: requestId }) });
  return {
    status: { code: rpcCode, message: reason },
    denied_response: {
      status: { code: HTTP_NAMES[httpCode] ?? 'Forbidden' },
      headers: [header('content-type', 'application/json'), ...extra.map(([k, v]) => header(k, v))],
      body,
    },
  };
}

function validId(id: string | undefined): string | undefined {
  return id !== undefined && id !== '' && id.length <= 128 && /^[A-Za-z0-9._:/-]+$/.test(id) ? id : undefined;
}

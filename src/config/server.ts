/**
 * The sections `arbiter serve` reads: `server`, `cache`, `metrics`,
 * `decision_log` and `log`, with their defaults.
 */
import type { LogLevel } from '../log/logger.js';
import type { Section } from './reader.js';

export interface TlsOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /**
   * CA bundle for client certificates: mTLS, where every client must present a
   * certificate from it. (grpc-js cannot ask for a certificate without requiring
   * it, so there is no "optional client certificate" mode.)
   */
  readonly clientCaFile?: string;
}

/** The `ext_authz` section: Envoy external authorization. */
export interface ExtAuthzOptions {
  /** Serve `envoy.service.auth.v3.Authorization` beside `arbiter.v1.Authorizer`. */
  readonly enabled: boolean;
  /** Headers set on the upstream request when allowed (and removed when there is nothing to set). */
  readonly upstreamHeaders: { readonly subject?: string; readonly rule?: string; readonly route?: string };
  /** Remove `authorization` from the upstream request when allowed. */
  readonly removeAuthorization: boolean;
  /** HTTP status when no route matches: 403 or 404. */
  readonly noRouteStatus: 403 | 404;
  /** Request headers (lower-case) available to policies as `context.headers.<name>`. */
  readonly contextHeaders: readonly string[];
  /** Largest header block accepted (names and values), in bytes. */
  readonly maxHeaderBytes: number;
  /** When not empty: the only callers (mTLS identities) allowed to call ext_authz. */
  readonly trustedCallers: readonly string[];
}

export interface ServeOptions {
  /** `host:port` of the gRPC server. */
  readonly address: string;
  /** TLS; absent only when `plaintext: true`. */
  readonly tls?: TlsOptions;
  /** Caller identities (certificate SAN URI or DNS name) allowed to send `subject` attributes instead of a token. */
  readonly trustedSubjectCallers: readonly string[];
  readonly maxMessageBytes: number;
  readonly maxBatchItems: number;
  /** Seconds in-flight calls get to finish on shutdown. */
  readonly shutdownGraceSeconds: number;
  /** Server processes; 0 means one per CPU. */
  readonly workers: number;
  readonly cache: { readonly maxEntries: number; readonly ttlSeconds: number };
  /** `host:port` of the HTTP server for /metrics, /healthz and /readyz; none when absent. */
  readonly metricsAddress?: string;
  readonly decisionLog: {
    /** `-` for stdout, a file path, or `off`. */
    readonly path: string;
    /** Share of ALLOW decisions logged (DENY decisions are always logged). */
    readonly allowSampleRate: number;
  };
  readonly logLevel: LogLevel;
  /** Seconds between polls of the policy directory (a backstop for file-system events). */
  readonly policyPollSeconds: number;
  readonly extAuthz: ExtAuthzOptions;
}

export const SERVE_DEFAULTS = {
  address: '127.0.0.1:50051',
  maxMessageBytes: 4 * 1024 * 1024,
  maxBatchItems: 1000,
  shutdownGraceSeconds: 10,
  cacheMaxEntries: 100_000,
  cacheTtlSeconds: 10,
  policyPollSeconds: 10,
} as const;

/** Overrides from flags and the environment, applied over the file. */
export interface ServeOverrides {
  readonly address?: string;
  readonly metricsAddress?: string;
  readonly workers?: number;
  readonly logLevel?: LogLevel;
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/**
 * Reads the server's sections.
 *
 * @throws {ConfigError} naming the key that is wrong
 */
export function readServeSections(root: Section, overrides: ServeOverrides = {}): ServeOptions {
  const server = root.section('server');
  server.allowOnly(['address', 'plaintext', 'tls', 'trusted_subject_callers', 'max_message_bytes', 'max_batch_items', 'shutdown_grace', 'workers', 'policy_poll']);
  const address = overrides.address ?? server.string('address') ?? SERVE_DEFAULTS.address;
  if (!isHostPort(address)) throw server.error('address', `must be host:port, such as 127.0.0.1:50051 or 0.0.0.0:50051 (got ${JSON.stringify(address)})`);
  const plaintext = server.boolean('plaintext', false);
  let tls: TlsOptions | undefined;
  if (server.has('tls')) {
    const t = server.section('tls');
    t.allowOnly(['cert_file', 'key_file', 'client_ca_file']);
    const certFile = t.filePath('cert_file');
    const keyFile = t.filePath('key_file');
    if (certFile === undefined) throw t.error('cert_file', 'is required with `tls`');
    if (keyFile === undefined) throw t.error('key_file', 'is required with `tls`');
    const clientCaFile = t.filePath('client_ca_file');
    tls = { certFile, keyFile, ...(clientCaFile === undefined ? {} : { clientCaFile }) };
    if (plaintext) throw server.error('plaintext', 'conflicts with `tls`: choose one');
  } else if (!plaintext) {
    throw server.error('tls', 'is required: configure `tls` (cert_file, key_file, and client_ca_file for mTLS), or set `plaintext: true` to serve without TLS on a trusted network');
  }
  const trustedSubjectCallers = server.stringList('trusted_subject_callers', []);
  if (trustedSubjectCallers.length > 0 && tls?.clientCaFile === undefined) {
    throw server.error('trusted_subject_callers', 'needs mTLS (`tls.client_ca_file`): callers are identified by their client certificate');
  }
  const workers = overrides.workers ?? parseWorkers(server);

  const cache = root.section('cache');
  cache.allowOnly(['max_entries', 'ttl']);
  const metrics = root.section('metrics');
  metrics.allowOnly(['address']);
  const metricsAddress = overrides.metricsAddress ?? metrics.string('address');
  if (metricsAddress !== undefined && !isHostPort(metricsAddress)) throw metrics.error('address', 'must be host:port, such as 127.0.0.1:9090');
  const dlog = root.section('decision_log');
  dlog.allowOnly(['path', 'allow_sample_rate']);
  const dlogPath = dlog.string('path') ?? '-';
  const log = root.section('log');
  log.allowOnly(['level']);
  const level = overrides.logLevel ?? log.string('level') ?? 'info';
  if (!(LEVELS as readonly string[]).includes(level)) throw log.error('level', `must be one of ${LEVELS.join(', ')}`);

  const extAuthz = readExtAuthz(root.section('ext_authz'), tls?.clientCaFile !== undefined);
  return {
    address,
    ...(tls === undefined ? {} : { tls }),
    extAuthz,
    trustedSubjectCallers,
    maxMessageBytes: server.integer('max_message_bytes', SERVE_DEFAULTS.maxMessageBytes, 1024, 64 * 1024 * 1024),
    maxBatchItems: server.integer('max_batch_items', SERVE_DEFAULTS.maxBatchItems, 1, 100_000),
    shutdownGraceSeconds: server.duration('shutdown_grace', SERVE_DEFAULTS.shutdownGraceSeconds),
    workers,
    cache: {
      maxEntries: cache.integer('max_entries', SERVE_DEFAULTS.cacheMaxEntries, 0, 100_000_000),
      ttlSeconds: cache.duration('ttl', SERVE_DEFAULTS.cacheTtlSeconds),
    },
    ...(metricsAddress === undefined ? {} : { metricsAddress }),
    decisionLog: {
      path: dlogPath === '-' || dlogPath === 'off' ? dlogPath : (dlog.filePath('path') ?? dlogPath),
      allowSampleRate: dlog.fraction('allow_sample_rate', 1),
    },
    logLevel: level as LogLevel,
    policyPollSeconds: server.duration('policy_poll', SERVE_DEFAULTS.policyPollSeconds),
  };
}

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

function readExtAuthz(s: Section, mtls: boolean): ExtAuthzOptions {
  s.allowOnly(['enabled', 'upstream_headers', 'remove_authorization', 'no_route_status', 'context_headers', 'max_header_bytes', 'trusted_callers']);
  const up = s.section('upstream_headers');
  up.allowOnly(['subject', 'rule', 'route']);
  const headerName = (sec: Section, key: string, fallback: string | undefined): string | undefined => {
    if (sec.raw(key) === false) return undefined;
    const v = sec.string(key) ?? fallback;
    if (v !== undefined && !HEADER_NAME.test(v)) throw sec.error(key, 'must be a lower-case HTTP header name, or false');
    return v;
  };
  const subject = headerName(up, 'subject', 'x-arbiter-subject');
  const rule = headerName(up, 'rule', 'x-arbiter-rule');
  const route = headerName(up, 'route', undefined);
  const noRoute = s.integer('no_route_status', 403, 403, 404);
  const contextHeaders = s.stringList('context_headers', []).map((h) => h.toLowerCase());
  for (const h of contextHeaders) {
    if (!HEADER_NAME.test(h)) throw s.error('context_headers', `names \`${h}\`, which is not an HTTP header name`);
    if (h === 'authorization' || h === 'cookie' || h === 'proxy-authorization') throw s.error('context_headers', `must not include \`${h}\`: credentials never reach policies or logs`);
  }
  const trustedCallers = s.stringList('trusted_callers', []);
  if (trustedCallers.length > 0 && !mtls) throw s.error('trusted_callers', 'needs mTLS (`server.tls.client_ca_file`): callers are identified by their client certificate');
  return {
    enabled: s.boolean('enabled', true),
    upstreamHeaders: { ...(subject === undefined ? {} : { subject }), ...(rule === undefined ? {} : { rule }), ...(route === undefined ? {} : { route }) },
    removeAuthorization: s.boolean('remove_authorization', false),
    noRouteStatus: noRoute === 404 ? 404 : 403,
    contextHeaders,
    maxHeaderBytes: s.integer('max_header_bytes', 64 * 1024, 1024, 1024 * 1024),
    trustedCallers,
  };
}

function parseWorkers(server: Section): number {
  const raw = server.raw('workers');
  if (raw === undefined || raw === null || raw === 'auto') return 0;
  return server.integer('workers', 0, 1, 1024);
}

/** `host:port` with a port from 0 to 65535; IPv6 hosts in brackets. */
export function isHostPort(s: string): boolean {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  return m !== null && Number(m[2]) <= 65_535;
}

/**
 * The gRPC server: credentials (TLS, mTLS, or explicitly plaintext), message
 * size bounds, the Authorizer service, standard health checking and server
 * reflection.
 */
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import { SERVE_DEFAULTS, type TlsOptions } from '../config/server.js';
import { RequestError } from '../errors.js';
import { encodeCheckBatchResponse, encodeCheckResponse, type CheckBatchResponseMsg, type CheckResponseMsg } from './encode.js';
import { MAX_ACTIONS_PER_ITEM } from './authorizer.js';
import { decodeCheckBatchRequest, decodeCheckRequest, type BatchLimits } from './decode.js';
import { loadAuthorizerProto, loadExtAuthzProto, protoDir, PROTO_LOADER_OPTIONS } from './proto.js';

/** The name health checks use for the Authorizer service. */
export const AUTHORIZER_SERVICE = 'arbiter.v1.Authorizer';
/** The name health checks use for Envoy's external authorization service. */
export const EXT_AUTHZ_SERVICE = 'envoy.service.auth.v3.Authorization';

export interface GrpcServerOptions {
  readonly address: string;
  readonly tls?: TlsOptions;
  readonly maxMessageBytes: number;
  /** Most CheckBatch items, refused while decoding (`server.max_batch_items`; the handler checks it too). */
  readonly maxBatchItems?: number;
  readonly handlers: grpc.UntypedServiceImplementation;
  /** Envoy ext_authz handlers, served as `envoy.service.auth.v3.Authorization` when given. */
  readonly extAuthz?: grpc.UntypedServiceImplementation;
}

export interface RunningGrpcServer {
  readonly server: grpc.Server;
  readonly port: number;
  readonly health: HealthImplementation;
  /** Marks the server SERVING or NOT_SERVING for health checks. */
  setServing(serving: boolean): void;
  /**
   * Stops accepting calls and waits for those in flight, up to `graceMs`;
   * then cancels what is left.
   */
  shutdown(graceMs: number): Promise<void>;
}

let standard: protoLoader.PackageDefinition | undefined;

/** The health and reflection protos, as their packages ship them, for server reflection. */
function standardDefinitions(): protoLoader.PackageDefinition {
  if (standard !== undefined) return standard;
  const require = createRequire(import.meta.url);
  const reflectionDir = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');
  standard = {
    ...protoLoader.loadSync(healthProtoPath, PROTO_LOADER_OPTIONS),
    ...protoLoader.loadSync(['grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'], { ...PROTO_LOADER_OPTIONS, includeDirs: [reflectionDir] }),
  };
  return standard;
}

/**
 * The Authorizer service as the server runs it: requests decoded by
 * decode.ts straight to JSON (bytes that do not decode become an
 * INVALID_ARGUMENT answer from the handler, counted and logged like any
 * other, not grpc-js's bare INTERNAL), answers encoded by encode.ts.
 */
export function authorizerService(authorizer: grpc.ServiceDefinition, limits: BatchLimits): grpc.ServiceDefinition {
  const check = authorizer['Check'];
  const checkBatch = authorizer['CheckBatch'];
  if (check === undefined || checkBatch === undefined) throw new Error('arbiter.v1.Authorizer without Check or CheckBatch');
  return {
    ...authorizer,
    Check: {
      ...check,
      requestDeserialize: (bytes: Buffer) => decodeOrRefuse(bytes, 'CheckRequest', decodeCheckRequest, { action: '', explain: false, request_id: '' }),
      responseSerialize: (value: CheckResponseMsg) => encodeCheckResponse(value, check.responseSerialize as (value: CheckResponseMsg) => Buffer),
    },
    CheckBatch: {
      ...checkBatch,
      requestDeserialize: (bytes: Buffer) => decodeOrRefuse(bytes, 'CheckBatchRequest', (b) => decodeCheckBatchRequest(b, limits), { items: [], request_id: '' }),
      responseSerialize: (value: CheckBatchResponseMsg) => encodeCheckBatchResponse(value),
    },
  };
}

/** Decodes, or gives an empty request that carries why the bytes were refused (the handler answers INVALID_ARGUMENT with it). */
function decodeOrRefuse<T extends { readonly invalid?: RequestError }>(bytes: Buffer, message: string, decode: (bytes: Buffer) => T, empty: Omit<T, 'invalid'>): T {
  try {
    return decode(bytes);
  } catch (e) {
    // protobufjs's messages name offsets and limits, never the payload.
    const why = e instanceof Error ? e.message.slice(0, 200) : 'undecodable';
    return { ...empty, invalid: new RequestError('REQUEST_INVALID', 'request', `the request is not a valid arbiter.v1.${message} message (${why})`) } as T;
  }
}

/** Server credentials from the TLS options (plaintext when there are none). */
export async function serverCredentials(tls: TlsOptions | undefined): Promise<grpc.ServerCredentials> {
  if (tls === undefined) return grpc.ServerCredentials.createInsecure();
  const [cert, key, ca] = await Promise.all([
    readFile(tls.certFile),
    readFile(tls.keyFile),
    tls.clientCaFile === undefined ? Promise.resolve(null) : readFile(tls.clientCaFile),
  ]);
  // With a client CA, every client must present a certificate it signed (mTLS).
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null);
}

/**
 * Starts the server, NOT_SERVING until {@link RunningGrpcServer.setServing}.
 *
 * @example
 * const s = await startGrpcServer({ address: '127.0.0.1:0', maxMessageBytes: 4 << 20, handlers });
 * s.setServing(true);
 */
export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const { definition, authorizer } = loadAuthorizerProto();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
    // Keep idle connections from piling up; clients reconnect transparently.
    'grpc.max_connection_idle_ms': 5 * 60_000,
  });
  server.addService(authorizerService(authorizer, { maxItems: options.maxBatchItems ?? SERVE_DEFAULTS.maxBatchItems, maxActionsPerItem: MAX_ACTIONS_PER_ITEM }), options.handlers);
  const services = [AUTHORIZER_SERVICE];
  let reflected = definition;
  if (options.extAuthz !== undefined) {
    const ext = loadExtAuthzProto();
    server.addService(ext.authorization, options.extAuthz);
    services.push(EXT_AUTHZ_SERVICE);
    // One load of both APIs, so reflection sees one consistent set of file descriptors
    // (separate loads each carry their own partial google.protobuf file).
    reflected = protoLoader.loadSync(['arbiter/v1/authorizer.proto', 'envoy/service/auth/v3/external_auth.proto'], { ...PROTO_LOADER_OPTIONS, includeDirs: [protoDir()] });
  }
  const health = new HealthImplementation(Object.fromEntries(['', ...services].map((s) => [s, 'NOT_SERVING' as const])));
  health.addToServer(server);
  // Reflection describes every service the server runs: ours, health, and reflection itself.
  new ReflectionService({ ...reflected, ...standardDefinitions() }).addToServer(server);
  const credentials = await serverCredentials(options.tls);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(options.address, credentials, (err, p) => (err === null ? resolve(p) : reject(err)));
  });
  const setServing = (serving: boolean): void => {
    const s = serving ? 'SERVING' : 'NOT_SERVING';
    for (const name of ['', ...services]) health.setStatus(name, s);
  };
  return {
    server,
    port,
    health,
    setServing,
    shutdown(graceMs: number): Promise<void> {
      setServing(false);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/**
 * The API's protobuf definitions, loaded once with proto-loader: Arbiter's
 * own service and the standard messages it uses.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { packageRoot } from '../paths.js';

/** Options every client and server of this API should load the protos with. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

/** Directory of the `.proto` files. */
export function protoDir(): string {
  return join(packageRoot(), 'proto');
}

let cached: { definition: protoLoader.PackageDefinition; authorizer: grpc.ServiceDefinition } | undefined;

/** The `arbiter.v1` package definition and the `Authorizer` service. */
export function loadAuthorizerProto(): { definition: protoLoader.PackageDefinition; authorizer: grpc.ServiceDefinition } {
  if (cached !== undefined) return cached;
  const definition = protoLoader.loadSync('arbiter/v1/authorizer.proto', { ...PROTO_LOADER_OPTIONS, includeDirs: [protoDir()] });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { arbiter: { v1: { Authorizer: grpc.ServiceClientConstructor } } };
  cached = { definition, authorizer: pkg.arbiter.v1.Authorizer.service };
  return cached;
}

/** A client constructor for `arbiter.v1.Authorizer` (for `arbiter call`, tests and the bench). */
export function authorizerClient(): grpc.ServiceClientConstructor {
  const { definition } = loadAuthorizerProto();
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { arbiter: { v1: { Authorizer: grpc.ServiceClientConstructor } } };
  return pkg.arbiter.v1.Authorizer;
}

let extAuthz: { definition: protoLoader.PackageDefinition; authorization: grpc.ServiceDefinition } | undefined;

/** Envoy's `envoy.service.auth.v3` package (our trimmed, wire-compatible definition) and its `Authorization` service. */
export function loadExtAuthzProto(): { definition: protoLoader.PackageDefinition; authorization: grpc.ServiceDefinition } {
  if (extAuthz !== undefined) return extAuthz;
  const definition = protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', { ...PROTO_LOADER_OPTIONS, includeDirs: [protoDir()] });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  extAuthz = { definition, authorization: pkg.envoy.service.auth.v3.Authorization.service };
  return extAuthz;
}

/** A client constructor for `envoy.service.auth.v3.Authorization` (tests and the bench play Envoy with it). */
export function extAuthzClient(): grpc.ServiceClientConstructor {
  const pkg = grpc.loadPackageDefinition(loadExtAuthzProto().definition) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  return pkg.envoy.service.auth.v3.Authorization;
}

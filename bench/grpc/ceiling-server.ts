/**
 * The transport's ceiling: a bare grpc-js server in its own process, serving
 * the same `arbiter.v1.Authorizer` definition as Arbiter (loadAuthorizerProto,
 * the same proto-loader options) with the same server options as Arbiter's
 * gRPC server, whose Check answers one constant ALLOW immediately. The
 * response has the fields and about the size of a real Arbiter answer, so the
 * ceiling pays the same (de)serialization as Arbiter does, and nothing else.
 *
 * It also serves Envoy's `envoy.service.auth.v3.Authorization` (loadExtAuthzProto,
 * as Arbiter does when ext_authz is on), whose Check answers one constant OK
 * shaped like Arbiter's allow under the bench config (dev/arbiter.yaml's
 * `upstream_headers`): status code 0 and an `ok_response` setting two headers.
 *
 * `node dist/bench/grpc/ceiling-server.js [HOST:PORT]` (default 127.0.0.1:0)
 * prints `{"port": N, "pid": P}` on stdout once listening; SIGTERM stops it.
 */
import * as grpc from '@grpc/grpc-js';
import { SERVE_DEFAULTS } from '../../src/config/server.js';
import { loadAuthorizerProto, loadExtAuthzProto } from '../../src/server/proto.js';

/** Shaped like Arbiter's answer to a cached permit. */
const CONSTANT_ALLOW = {
  decision: 'ALLOW',
  reason: 'RULE_PERMIT',
  rules: ['dept_editors'],
  policy_revision: '89ebbf499b0c046d',
  request_id: '0b0e8c6e-3f8a-4d43-9a55-7b3b6c1f2d10',
  cached: true,
};

/** Shaped like Arbiter's ext_authz answer to an allowed request (src/server/ext-authz.ts `allowed`, dev/arbiter.yaml's upstream headers). */
const CONSTANT_EXT_OK = {
  status: { code: 0, message: '' },
  ok_response: {
    headers: [
      { header: { key: 'x-arbiter-subject', value: 'carol' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-arbiter-rule', value: 'document.admins' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ],
    headers_to_remove: [],
  },
};

async function main(): Promise<void> {
  const address = process.argv[2] ?? '127.0.0.1:0';
  const { authorizer } = loadAuthorizerProto();
  // Arbiter's own server options (src/server/grpc.ts), so only the handler differs.
  const server = new grpc.Server({
    'grpc.max_receive_message_length': SERVE_DEFAULTS.maxMessageBytes,
    'grpc.max_send_message_length': SERVE_DEFAULTS.maxMessageBytes,
    'grpc.max_connection_idle_ms': 5 * 60_000,
  });
  server.addService(authorizer, {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, CONSTANT_ALLOW),
    CheckBatch: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'the ceiling server answers Check only' }),
  });
  server.addService(loadExtAuthzProto().authorization, {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, CONSTANT_EXT_OK),
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err)));
  });
  const stop = (): void => {
    server.forceShutdown();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`ceiling-server: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});

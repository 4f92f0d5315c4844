/**
 * A real Arbiter server in process, on 127.0.0.1 and a random port, with a
 * real grpc-js client: what the server tests share. Config is written as YAML
 * into a temp dir and read by the same code `arbiter serve` uses.
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { memoryDecisionLog } from '../../src/audit/decision-log.js';
import { SCHEMA_FILE } from '../../src/compile/schema.js';
import { parseConfig } from '../../src/config/config.js';
import { readServeSections } from '../../src/config/server.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/registry.js';
import { authorizerClient } from '../../src/server/proto.js';
import { startArbiter, type ArbiterServer } from '../../src/server/run.js';
import { jsonToStruct } from '../../src/server/struct.js';
import { AUDIENCE, ISSUER } from '../jwt/fixtures.js';

export const REPO = join(import.meta.dirname, '..', '..');
export const POLICIES = join(REPO, 'policies');

export interface Harness {
  readonly server: ArbiterServer;
  readonly address: string;
  readonly dir: string;
  readonly policies: string;
  readonly logger: ReturnType<typeof createMemoryLogger>;
  readonly decisionLog: ReturnType<typeof memoryDecisionLog>;
  readonly metrics: Metrics;
  /** A client (plaintext unless `credentials` is given); closed by `close()`. */
  client(credentials?: grpc.ChannelCredentials, options?: grpc.ChannelOptions): grpc.Client & Record<string, Function>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** YAML for everything but `policies` and `server.address` (given defaults: plaintext, metrics on a random port). */
  readonly yaml?: string;
  /** Copy the shipped policies/ into a temp dir (for reload tests) instead of serving them in place. */
  readonly copyPolicies?: boolean;
  /** A policy directory to serve. */
  readonly policies?: string;
  readonly clock?: () => number;
  readonly env?: Record<string, string>;
}

/**
 * Starts a server. The YAML in `options.yaml` is appended to
 * `policies: ...` and must include a `server:` section if it wants TLS; when it
 * has none, `server: {address: 127.0.0.1:0, plaintext: true}` is used.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'arbiter-server-'));
  let policies = options.policies ?? POLICIES;
  if (options.copyPolicies === true) {
    policies = join(dir, 'policies');
    // Without schema.yaml: reload tests add resource types, which the shipped
    // (strict) schema would make them declare in a second file in the same
    // instant. Reloads with a schema are tested in test/compile/schema.test.ts.
    cpSync(POLICIES, policies, { recursive: true, filter: (src) => src !== join(POLICIES, SCHEMA_FILE) });
  }
  const yaml = options.yaml ?? '';
  const text = `policies: ${JSON.stringify(policies)}\n${/^server:/m.test(yaml) ? '' : 'server:\n  address: 127.0.0.1:0\n  plaintext: true\n'}${/^metrics:/m.test(yaml) ? '' : 'metrics:\n  address: 127.0.0.1:0\n'}${yaml}\n`;
  writeFileSync(join(dir, 'arbiter.yaml'), text);
  const config = parseConfig(text, join(dir, 'arbiter.yaml'), dir, options.env ?? {});
  const serve = readServeSections(config.root);
  const logger = createMemoryLogger();
  const decisionLog = memoryDecisionLog();
  const metrics = new Metrics();
  const server = await startArbiter({ config, serve, policies, logger, decisionLog, metrics, ...(options.clock === undefined ? {} : { clock: options.clock }) });
  const address = `127.0.0.1:${server.port}`;
  const clients: grpc.Client[] = [];
  return {
    server,
    address,
    dir,
    policies,
    logger,
    decisionLog,
    metrics,
    client(credentials = grpc.credentials.createInsecure(), channelOptions = {}) {
      const Client = authorizerClient();
      const c = new Client(address, credentials, channelOptions);
      clients.push(c);
      return c as grpc.Client & Record<string, Function>;
    },
    async close() {
      for (const c of clients) c.close();
      await server.shutdown();
    },
  };
}

/** Calls a unary method and resolves with the response or rejects with the ServiceError. */
export function call<T = Record<string, unknown>>(client: grpc.Client & Record<string, Function>, method: 'Check' | 'CheckBatch', request: object, deadlineMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    (client[method] as Function)(request, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: T) => (err === null ? resolve(res) : reject(err)));
  });
}

/** A CheckRequest from the JSON shape `arbiter check` reads (subject → Struct, or a token). */
export function checkRequest(json: { subject?: Record<string, unknown>; token?: string; action?: string; resource?: { type?: string; id?: string; attributes?: Record<string, unknown> }; context?: Record<string, unknown>; explain?: boolean; request_id?: string }): object {
  return {
    ...(json.token !== undefined ? { token: json.token } : {}),
    ...(json.subject !== undefined ? { subject: jsonToStruct(json.subject) } : {}),
    ...(json.action === undefined ? {} : { action: json.action }),
    ...(json.resource === undefined
      ? {}
      : {
          resource: {
            ...(json.resource.type === undefined ? {} : { type: json.resource.type }),
            ...(json.resource.id === undefined ? {} : { id: json.resource.id }),
            ...(json.resource.attributes === undefined ? {} : { attributes: jsonToStruct(json.resource.attributes) }),
          },
        }),
    ...(json.context === undefined ? {} : { context: jsonToStruct(json.context) }),
    ...(json.explain === undefined ? {} : { explain: json.explain }),
    ...(json.request_id === undefined ? {} : { request_id: json.request_id }),
  };
}

/**
 * The `jwt:` section of a test config: one issuer named `test`, the fixtures'
 * issuer and audience, `keys` as its key source line (`jwks_file: "…"`), roles
 * from the `roles` claim and, unless `department: false`, `subject.department`
 * from the `department` claim. `issuerLines` are added to the issuer and
 * `sectionLines` to the `jwt` section, as written (indentation included).
 */
export function testIssuerYaml(
  keys: string,
  options: { algorithms?: string; department?: boolean; issuerLines?: readonly string[]; sectionLines?: readonly string[] } = {},
): string {
  return [
    'jwt:',
    '  issuers:',
    '    - name: test',
    `      issuer: ${JSON.stringify(ISSUER)}`,
    `      audiences: [${AUDIENCE}]`,
    `      ${keys}`,
    ...(options.algorithms === undefined ? [] : [`      algorithms: [${options.algorithms}]`]),
    ...(options.issuerLines ?? []).map((l) => `      ${l}`),
    '      claims:',
    '        roles: roles',
    ...(options.department === false ? [] : ['        attributes:', '          department: department']),
    ...(options.sectionLines ?? []),
    '',
  ].join('\n');
}

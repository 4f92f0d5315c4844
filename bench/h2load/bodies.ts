/**
 * The request bodies h2load sends, and the proof that each is answered as it
 * must be.
 *
 * h2load posts ONE body file for every request of a run: a gRPC frame
 * (1 byte compressed flag 0, 4 bytes big-endian length, the protobuf bytes)
 * encoded here with proto-loader's message types (the serializers grpc-js
 * itself uses for Arbiter's service definitions).
 *
 * h2load only sees HTTP statuses: a gRPC error is an HTTP 200 whose trailers
 * say `grpc-status` ≠ 0, which h2load counts as a success. So before timing,
 * {@link verifyBody} posts the very same bytes once (twice for a cached
 * target) over Node's HTTP/2 client, reads `grpc-status` from the trailers,
 * decodes the answer and compares it with the decision the in-process engine
 * gives the same request. That pre-check, not h2load's "2xx" count, is what
 * proves the timed answers are correct (the server is deterministic for a
 * repeated body).
 */
import http2 from 'node:http2';
import { readServeSections } from '../../src/config/server.js';
import { Engine } from '../../src/engine/engine.js';
import { PolicyStore } from '../../src/engine/policy-store.js';
import { parseRequest } from '../../src/engine/request.js';
import { TokenVerifier } from '../../src/jwt/verify.js';
import { loadAuthorizerProto, loadExtAuthzProto } from '../../src/server/proto.js';
import { jsonToStruct } from '../../src/server/struct.js';
import { benchConfig, checkMessage, envoyMessage, extAnswer, TEMPLATES, type ExtCheckResponseMsg, type MixFile, type RequestJson } from '../grpc/common.js';

/** The gRPC paths h2load posts to. */
export const CHECK_PATH = '/arbiter.v1.Authorizer/Check';
export const BATCH_PATH = '/arbiter.v1.Authorizer/CheckBatch';
export const EXT_PATH = '/envoy.service.auth.v3.Authorization/Check';

/** One decision as compared: decision, reason, deciding rules. */
export interface DecisionLine {
  readonly decision: string;
  readonly reason: string;
  readonly rules: readonly string[];
}

const line = (d: DecisionLine): string => `${d.decision} ${d.reason} [${[...d.rules].join(',')}]`;

/** A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function method(service: 'authorizer' | 'ext', name: string): { requestSerialize: (v: unknown) => Buffer; responseDeserialize: (b: Buffer) => unknown } {
  const def = service === 'authorizer' ? loadAuthorizerProto().authorizer : loadExtAuthzProto().authorization;
  const m = def[name];
  if (m === undefined) throw new Error(`no method ${name}`);
  return m as unknown as { requestSerialize: (v: unknown) => Buffer; responseDeserialize: (b: Buffer) => unknown };
}

/** The Check body: template `i` of the grpc bench's mix, with its token. */
export function checkBody(mix: MixFile, i = 0): { body: Buffer; expected: DecisionLine } {
  const t = mix.templates[i]!;
  return { body: grpcFrame(method('authorizer', 'Check').requestSerialize(checkMessage(t.token, t.request))), expected: t.expected };
}

/** The actions asked on every batch item ("which of these rows may I read, update, delete"). */
export const BATCH_ACTIONS = ['read', 'update', 'delete'] as const;

/** The document templates (the batch items cycle over their resources, each with its own id). */
const DOC_TEMPLATES = TEMPLATES.filter((t) => t.request.resource.type === 'document');

/** Item i of every batch: a document of the templates, id made distinct. */
function batchItem(i: number): RequestJson['resource'] {
  const r = DOC_TEMPLATES[i % DOC_TEMPLATES.length]!.request.resource;
  return { ...r, id: `${r.id}-${i}` };
}

/** The subject of every batch: template 0's token (an engineering editor); its context. */
const BATCH_TEMPLATE = 0;

/** The CheckBatch body of `n` items × BATCH_ACTIONS. */
export function batchBody(mix: MixFile, n: number): Buffer {
  const t = mix.templates[BATCH_TEMPLATE]!;
  const msg = {
    token: t.token,
    items: Array.from({ length: n }, (_, i) => {
      const r = batchItem(i);
      return { resource: { type: r.type, id: r.id, attributes: jsonToStruct(r.attributes) }, actions: [...BATCH_ACTIONS] };
    }),
    ...(t.request.context === undefined ? {} : { context: jsonToStruct(t.request.context) }),
  };
  return grpcFrame(method('authorizer', 'CheckBatch').requestSerialize(msg));
}

/**
 * The decisions of the first `n` batch items, per item per action, from the
 * in-process engine on the bench config (no decision cache): what CheckBatch
 * must answer.
 */
export async function batchExpected(mix: MixFile, n: number): Promise<DecisionLine[][]> {
  const config = benchConfig();
  if (config.jwt === undefined || config.policies === undefined) throw new Error('the bench config has no jwt section or no policies');
  const verifier = await TokenVerifier.create(config.jwt);
  try {
    const engine = new Engine(await PolicyStore.open(config.policies), { verifier });
    const t = mix.templates[BATCH_TEMPLATE]!;
    const out: DecisionLine[][] = [];
    for (let i = 0; i < n; i++) {
      const r = batchItem(i);
      const row: DecisionLine[] = [];
      for (const action of BATCH_ACTIONS) {
        const parsed = parseRequest({ action, resource: r, ...(t.request.context === undefined ? {} : { context: t.request.context }) }, { subjectFromToken: true });
        const d = await engine.decide({ principal: { token: t.token }, action: parsed.action, resource: parsed.resource, ...(t.request.context === undefined ? {} : { context: parsed.context }) });
        row.push({ decision: d.decision, reason: d.reason, rules: [...d.rules] });
      }
      out.push(row);
    }
    return out;
  } finally {
    verifier.close();
  }
}

/** The ext_authz body: ext template `i` of the mix (Envoy-shaped, as bench/grpc sends it), and its expected answer. */
export function extBody(mix: MixFile, i = 0): { body: Buffer; expected: string } {
  const t = mix.ext[i]!;
  const msg = envoyMessage(t.method, t.token, t.path + (t.id ?? ''), t.requestId, Math.floor(Date.now() / 1000));
  return { body: grpcFrame(method('ext', 'Check').requestSerialize(msg)), expected: t.answer };
}

/** One call's raw answer over HTTP/2. */
interface RawAnswer {
  readonly httpStatus: number;
  readonly grpcStatus: string | undefined;
  readonly grpcMessage: string | undefined;
  readonly message: Buffer | undefined;
}

/** Posts `body` to `path` once on `session`, as h2load does (same headers), and reads status, trailers and the first message. */
export function post(session: http2.ClientHttp2Session, path: string, body: Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    let httpStatus = 0;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      httpStatus = Number(h[':status']);
      // A trailers-only answer carries grpc-status in the headers.
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) grpcMessage = String(h['grpc-message']);
    });
    req.on('trailers', (h) => {
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) grpcMessage = decodeURIComponent(String(h['grpc-message']));
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('end', () => {
      const all = Buffer.concat(chunks);
      const message = all.length >= 5 ? all.subarray(5, 5 + all.readUInt32BE(1)) : undefined;
      resolve({ httpStatus, grpcStatus, grpcMessage, message });
    });
    req.end(body);
  });
}

/** What a target's body must get back. */
export type Expectation =
  | { readonly kind: 'check'; readonly expected: DecisionLine; readonly cached: boolean | 'any' }
  | { readonly kind: 'batch'; readonly expected: readonly (readonly DecisionLine[])[] }
  | { readonly kind: 'ext'; readonly expected: string };

/**
 * Posts the body twice (the second answer is the one a repeated body gets,
 * e.g. from the decision cache) and checks: HTTP 200, grpc-status 0, and the
 * decoded answer equals the expected one. Returns a one-line summary, or
 * throws with what differs.
 */
export async function verifyBody(port: number, path: string, body: Buffer, want: Expectation): Promise<string> {
  // One connection, so both calls reach the same worker (and its decision cache) in cluster mode.
  const session = http2.connect(`http://127.0.0.1:${port}`);
  let a: RawAnswer;
  try {
    await post(session, path, body);
    a = await post(session, path, body);
  } finally {
    session.close();
  }
  if (a.httpStatus !== 200 || a.grpcStatus !== '0' || a.message === undefined) {
    throw new Error(`${path}: HTTP ${a.httpStatus}, grpc-status ${a.grpcStatus ?? 'none'} ${a.grpcMessage ?? ''}`);
  }
  if (want.kind === 'check') {
    const r = method('authorizer', 'Check').responseDeserialize(a.message) as { decision?: string; reason?: string; rules?: string[]; cached?: boolean };
    const got = { decision: r.decision ?? 'DECISION_UNSPECIFIED', reason: r.reason ?? '', rules: r.rules ?? [] };
    if (line(got) !== line(want.expected)) throw new Error(`${path}: answered ${line(got)}, expected ${line(want.expected)}`);
    const cached = r.cached === true;
    if (want.cached !== 'any' && cached !== want.cached) throw new Error(`${path}: a repeat was ${cached ? '' : 'not '}answered from the decision cache`);
    return `${line(got)}, repeat cached: ${cached}`;
  }
  if (want.kind === 'batch') {
    const r = method('authorizer', 'CheckBatch').responseDeserialize(a.message) as { results?: { decisions?: { decision?: string; reason?: string; rules?: string[]; cached?: boolean }[] }[]; token_reason?: string };
    const results = r.results ?? [];
    if (results.length !== want.expected.length) throw new Error(`${path}: ${results.length} results for ${want.expected.length} items (token_reason ${r.token_reason ?? ''})`);
    let allow = 0;
    let deny = 0;
    let cached = 0;
    for (const [i, row] of want.expected.entries()) {
      const ds = results[i]?.decisions ?? [];
      if (ds.length !== row.length) throw new Error(`${path}: item ${i} has ${ds.length} decisions, expected ${row.length}`);
      for (const [j, e] of row.entries()) {
        const d = ds[j]!;
        const got = { decision: d.decision ?? 'DECISION_UNSPECIFIED', reason: d.reason ?? '', rules: d.rules ?? [] };
        if (line(got) !== line(e)) throw new Error(`${path}: item ${i} action ${j} answered ${line(got)}, expected ${line(e)}`);
        if (got.decision === 'ALLOW') allow++;
        else deny++;
        if (d.cached === true) cached++;
      }
    }
    return `${want.expected.length} items: ${allow} ALLOW, ${deny} DENY, ${cached} cached on repeat`;
  }
  const r = method('ext', 'Check').responseDeserialize(a.message) as ExtCheckResponseMsg;
  const got = extAnswer(r);
  if (got !== want.expected) throw new Error(`${path}: answered ${got}, expected ${want.expected}`);
  return got;
}

/** The served decision cache's entries (to say what the "cache on" targets use). */
export function servedCacheEntries(): number {
  return readServeSections(benchConfig().root).cache.maxEntries;
}

/**
 * A small, real OIDC provider for tests: a node:http server on 127.0.0.1 (an
 * ephemeral port) serving a discovery document at
 * `/.well-known/openid-configuration` and a JWKS at `/jwks`. Tests change its
 * answers while it runs (swap the key set, answer 503, garbage, hang) and read
 * how many requests each path received. Nothing is mocked: the verifier talks
 * to it with the real `fetch`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

export const DISCOVERY_PATH = '/.well-known/openid-configuration';
export const JWKS_PATH = '/jwks';

/** What one path answers. */
export type Answer =
  /** The normal document: the current key set (`/jwks`) or discovery document. */
  | { readonly type: 'ok' }
  /** An HTTP status with a short plain-text body. */
  | { readonly type: 'status'; readonly status: number }
  /** 200 with these exact bytes, served as `application/json`. */
  | { readonly type: 'body'; readonly body: string | Uint8Array }
  /** 200 with this value as JSON. */
  | { readonly type: 'json'; readonly value: unknown }
  /** Never answers (until the client gives up or the server closes). */
  | { readonly type: 'hang' }
  /** Sends the headers and the start of a body, then never finishes. */
  | { readonly type: 'hang-body' };

export type ServedPath = 'discovery' | 'jwks';

export interface JwksServer {
  /** `http://127.0.0.1:<port>`: also the issuer the discovery document names by default. */
  readonly base: string;
  readonly discoveryUrl: string;
  readonly jwksUrl: string;
  /** Replaces the key set `/jwks` serves (and makes `/jwks` answer normally again). */
  setKeys(jwks: { keys: JWK[] }): void;
  /** The `issuer` the discovery document names. */
  setIssuer(issuer: string): void;
  /** Changes what `path` answers from the next request on. */
  answer(path: ServedPath, answer: Answer): void;
  /** Shorthands for `answer`. */
  unavailable(path?: ServedPath): void;
  invalidJson(path?: ServedPath): void;
  notJwks(path?: ServedPath): void;
  hang(path?: ServedPath): void;
  /** Back to the normal answer. */
  restore(path?: ServedPath): void;
  /** Requests received on a URL path (`/jwks`, `/.well-known/openid-configuration`, anything else). */
  requests(path: ServedPath | string): number;
  /** Requests received on every path. */
  readonly totalRequests: number;
  /** Requests currently held open by a `hang` answer. */
  readonly hanging: number;
  /** Whether the server is still listening. */
  readonly listening: boolean;
  /** Stops listening and drops every connection (hanging ones too). Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts a provider serving `jwks`.
 *
 * @example
 * const server = await startJwksServer(jwksOf(key));
 * const verifier = await TokenVerifier.create(verifierOptions([issuerOptions({ kind: 'discovery', url: server.discoveryUrl }, { issuer: server.base })]));
 */
export async function startJwksServer(jwks: { keys: JWK[] }, options: { issuer?: string } = {}): Promise<JwksServer> {
  let keys = jwks;
  let issuer: string | undefined = options.issuer;
  const answers: Record<ServedPath, Answer> = { discovery: { type: 'ok' }, jwks: { type: 'ok' } };
  const counts = new Map<string, number>();
  const held = new Set<ServerResponse>();
  let total = 0;
  let closed = false;

  const pathOf = (p: ServedPath | string): string => (p === 'discovery' ? DISCOVERY_PATH : p === 'jwks' ? JWKS_PATH : p);

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    total += 1;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const served: ServedPath | undefined = path === DISCOVERY_PATH ? 'discovery' : path === JWKS_PATH ? 'jwks' : undefined;
    if (req.method !== 'GET' || served === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const a = answers[served];
    switch (a.type) {
      case 'ok': {
        const doc = served === 'jwks' ? keys : { issuer: issuer ?? base, jwks_uri: `${base}${JWKS_PATH}` };
        sendJson(res, JSON.stringify(doc));
        return;
      }
      case 'status':
        res.writeHead(a.status, { 'content-type': 'text/plain' }).end(`status ${a.status}`);
        return;
      case 'body':
        sendJson(res, a.body);
        return;
      case 'json':
        sendJson(res, JSON.stringify(a.value));
        return;
      case 'hang':
      case 'hang-body':
        held.add(res);
        res.on('close', () => held.delete(res));
        if (a.type === 'hang-body') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"keys":[');
        }
        return;
    }
  });
  // Keep-alive sockets from undici's pool must not hold `close()` up.
  server.keepAliveTimeout = 1000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;

  return {
    base,
    discoveryUrl: `${base}${DISCOVERY_PATH}`,
    jwksUrl: `${base}${JWKS_PATH}`,
    setKeys(next) {
      keys = next;
      answers.jwks = { type: 'ok' };
    },
    setIssuer(next) {
      issuer = next;
    },
    answer(path, answer) {
      answers[path] = answer;
    },
    unavailable(path = 'jwks') {
      answers[path] = { type: 'status', status: 503 };
    },
    invalidJson(path = 'jwks') {
      answers[path] = { type: 'body', body: '{"keys": [ {"kty": "EC", ' };
    },
    notJwks(path = 'jwks') {
      answers[path] = { type: 'json', value: { hello: 'world', keys_url: 'elsewhere' } };
    },
    hang(path = 'jwks') {
      answers[path] = { type: 'hang' };
    },
    restore(path = 'jwks') {
      answers[path] = { type: 'ok' };
    },
    requests(path) {
      return counts.get(pathOf(path)) ?? 0;
    },
    get totalRequests() {
      return total;
    },
    get hanging() {
      return held.size;
    },
    get listening() {
      return !closed;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const res of held) res.destroy();
      held.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function sendJson(res: ServerResponse, body: string | Uint8Array): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * `arbiter call`: make one Check against a running server, from the command
 * line — the request in the same JSON shape `arbiter check` reads.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { parseDuration } from '../../config/reader.js';
import { authorizerClient } from '../../server/proto.js';
import { jsonToStruct } from '../../server/struct.js';
import { EXIT, readInput, type CliIO } from '../io.js';

export const CALL_USAGE = `usage: arbiter call [--address HOST:PORT] [--plaintext | --ca FILE [--cert FILE --key FILE]]
                    [--token JWT | --token-file FILE] [--input FILE] [--explain]
                    [--request-id ID] [--deadline DURATION]

Sends one arbiter.v1.Authorizer/Check and prints the response as JSON. The
request is {"action", "resource": {"type", "id", "attributes"}, "context"}
(plus "subject" when no token is given: only trusted mTLS callers may send it).

  --address HOST:PORT  server (default 127.0.0.1:50051)
  --plaintext          no TLS (the server must be configured \`plaintext: true\`)
  --ca FILE            CA bundle to verify the server's certificate
  --cert, --key FILE   client certificate and key, for mTLS
  --token JWT          bearer token for the subject; --token-file FILE reads it
  --input FILE         request JSON ("-" or absent: standard input)
  --explain            ask for the evaluation trace
  --deadline DURATION  give up after this long (default 5s)

exit status: 0 a decision was printed, 1 the call failed (status printed), 2 bad usage`;

export async function runCall(argv: readonly string[], io: CliIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        address: { type: 'string', default: '127.0.0.1:50051' },
        plaintext: { type: 'boolean', default: false },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        input: { type: 'string' },
        explain: { type: 'boolean', default: false },
        'request-id': { type: 'string' },
        deadline: { type: 'string', default: '5s' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.stderr.write(`arbiter call: ${(e as Error).message}\n\n${CALL_USAGE}\n`);
    return EXIT.USAGE;
  }
  if (values.help) {
    io.stdout.write(`${CALL_USAGE}\n`);
    return EXIT.OK;
  }
  const usage = (m: string): number => {
    io.stderr.write(`arbiter call: ${m}\n`);
    return EXIT.USAGE;
  };
  const deadline = parseDuration(values.deadline);
  if (deadline === undefined || deadline <= 0) return usage('--deadline must be a duration such as 5s');
  if (values.plaintext && (values.ca !== undefined || values.cert !== undefined)) return usage('--plaintext conflicts with --ca/--cert');
  if ((values.cert === undefined) !== (values.key === undefined)) return usage('--cert and --key go together');

  let credentials: grpc.ChannelCredentials;
  let request: Record<string, unknown>;
  try {
    credentials = values.plaintext
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(
          values.ca === undefined ? null : await readFile(values.ca),
          values.key === undefined ? null : await readFile(values.key),
          values.cert === undefined ? null : await readFile(values.cert),
        );
    const token = values.token ?? (values['token-file'] === undefined ? undefined : (await readFile(values['token-file'], 'utf8')).trim());
    const input = JSON.parse(await readInput(values.input, io)) as Record<string, unknown>;
    if (input === null || typeof input !== 'object' || Array.isArray(input)) return usage('the request must be a JSON object');
    const resource = (input['resource'] ?? {}) as Record<string, unknown>;
    const subject = input['subject'];
    request = {
      ...(token !== undefined ? { token } : subject !== undefined ? { subject: jsonToStruct(subject as Record<string, unknown>) } : {}),
      action: input['action'],
      resource: {
        type: resource['type'],
        ...(resource['id'] === undefined ? {} : { id: resource['id'] }),
        ...(resource['attributes'] === undefined ? {} : { attributes: jsonToStruct(resource['attributes'] as Record<string, unknown>) }),
      },
      ...(input['context'] === undefined ? {} : { context: jsonToStruct(input['context'] as Record<string, unknown>) }),
      explain: values.explain,
      ...(values['request-id'] === undefined ? {} : { request_id: values['request-id'] }),
    };
  } catch (e) {
    return usage(`cannot read the input: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const Client = authorizerClient();
  const client = new Client(values.address, credentials);
  try {
    const response = await new Promise<unknown>((resolve, reject) => {
      client['Check']!(request, { deadline: Date.now() + deadline * 1000 }, (err: grpc.ServiceError | null, res: unknown) => (err === null ? resolve(res) : reject(err)));
    });
    io.stdout.write(`${JSON.stringify(response, null, 2)}\n`);
    return EXIT.OK;
  } catch (e) {
    const err = e as grpc.ServiceError;
    io.stderr.write(`arbiter call: ${grpc.status[err.code] ?? err.code}: ${err.details}\n`);
    return EXIT.POLICY_ERROR;
  } finally {
    client.close();
  }
}

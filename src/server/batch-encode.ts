/**
 * A CheckBatch response encoder. A batch of 1,000 items × 3 actions has a
 * handful of distinct (action, decision, reason, rules) answers, yet
 * proto-loader's generic serializer converts and encodes each of the 3,000
 * objects; this encoder encodes each distinct answer once per call and copies
 * its bytes. It writes with protobufjs's `Writer` (the same encoder
 * proto-loader uses), at the field numbers of `proto/arbiter/v1/authorizer.proto`;
 * a test checks its bytes decode to the same message as the generic path's.
 */
import protobuf from 'protobufjs';

/** An answer as the engine gives it: the same object for every identical answer of a call. */
export interface BatchAnswerMsg {
  readonly decision: 'ALLOW' | 'DENY';
  readonly reason: string;
  readonly rules: readonly string[];
  readonly cached: boolean;
}

/**
 * A `CheckBatchResponse` as the handler builds it: per item, the actions
 * asked and their answers in the same order (the wire's `ActionDecision` is
 * an action and its answer, joined here while encoding).
 */
export interface CheckBatchResponseMsg {
  readonly results: readonly { readonly actions: readonly string[]; readonly answers: readonly BatchAnswerMsg[] }[];
  readonly policy_revision: string;
  readonly request_id: string;
  readonly token_reason?: string;
  readonly message?: string;
}

/** `arbiter.v1.Decision` values. */
const DECISION = { ALLOW: 1, DENY: 2 } as const;

/** Wire type 2 (length-delimited) and 0 (varint) tags for field `n`. */
const bytesTag = (n: number): number => (n << 3) | 2;
const varintTag = (n: number): number => n << 3;

// Like protobufjs's generated encoders, a field is written whenever it is set (an empty string or
// `false` included), so the bytes decode to exactly what the generic serializer's do.
function encodeActionDecision(action: string, d: BatchAnswerMsg): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32(bytesTag(1)).string(action);
  w.uint32(varintTag(2)).int32(DECISION[d.decision]);
  w.uint32(bytesTag(3)).string(d.reason);
  for (const r of d.rules) w.uint32(bytesTag(4)).string(r);
  w.uint32(varintTag(5)).bool(d.cached);
  return w.finish();
}

/**
 * Encodes a `CheckBatchResponse` to bytes. Each distinct (answer object,
 * action) is encoded once per call: answers are keyed by identity, which is
 * what the engine shares (equal answers in distinct objects are simply
 * encoded twice).
 *
 * @example
 * grpcServiceDefinition.CheckBatch.responseSerialize = encodeCheckBatchResponse;
 */
export function encodeCheckBatchResponse(msg: CheckBatchResponseMsg): Buffer {
  const seen = new Map<BatchAnswerMsg, Map<string, Uint8Array>>();
  const w = protobuf.Writer.create();
  for (const result of msg.results) {
    w.uint32(bytesTag(1)).fork();
    const { actions, answers } = result;
    for (let i = 0; i < answers.length; i++) {
      const d = answers[i]!;
      const action = actions[i] ?? '';
      let byAction = seen.get(d);
      if (byAction === undefined) seen.set(d, (byAction = new Map()));
      let bytes = byAction.get(action);
      if (bytes === undefined) {
        bytes = encodeActionDecision(action, d);
        byAction.set(action, bytes);
      }
      w.uint32(bytesTag(1)).bytes(bytes);
    }
    w.ldelim();
  }
  w.uint32(bytesTag(2)).string(msg.policy_revision);
  w.uint32(bytesTag(3)).string(msg.request_id);
  if (msg.token_reason !== undefined) w.uint32(bytesTag(4)).string(msg.token_reason);
  if (msg.message !== undefined) w.uint32(bytesTag(5)).string(msg.message);
  const out = w.finish();
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

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
 * encoded twice). The results are then laid out in one buffer sized in a
 * first pass (protobufjs's Writer would queue an operation object per field
 * written: thousands per call).
 *
 * @example
 * grpcServiceDefinition.CheckBatch.responseSerialize = encodeCheckBatchResponse;
 */
export function encodeCheckBatchResponse(msg: CheckBatchResponseMsg): Buffer {
  const seen = new Map<BatchAnswerMsg, Map<string, Uint8Array>>();
  // Pass 1: every decision's bytes, in order, and each result's length.
  const parts: Uint8Array[] = [];
  const resultLengths: number[] = [];
  let total = 0;
  for (const { actions, answers } of msg.results) {
    let length = 0;
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
      parts.push(bytes);
      length += 1 + varintLength(bytes.length) + bytes.length;
    }
    resultLengths.push(length);
    total += 1 + varintLength(length) + length;
  }
  const tail = protobuf.Writer.create();
  tail.uint32(bytesTag(2)).string(msg.policy_revision);
  tail.uint32(bytesTag(3)).string(msg.request_id);
  if (msg.token_reason !== undefined) tail.uint32(bytesTag(4)).string(msg.token_reason);
  if (msg.message !== undefined) tail.uint32(bytesTag(5)).string(msg.message);
  const tailBytes = tail.finish();
  // Pass 2: write.
  const out = Buffer.allocUnsafe(total + tailBytes.length);
  let pos = 0;
  let part = 0;
  for (let r = 0; r < resultLengths.length; r++) {
    out[pos++] = bytesTag(1);
    pos = writeVarint(out, pos, resultLengths[r]!);
    const count = msg.results[r]!.answers.length;
    for (let i = 0; i < count; i++) {
      const bytes = parts[part++]!;
      out[pos++] = bytesTag(1);
      pos = writeVarint(out, pos, bytes.length);
      out.set(bytes, pos);
      pos += bytes.length;
    }
  }
  out.set(tailBytes, pos);
  return out;
}

/** Bytes of `n` as a varint (n < 2^32). */
function varintLength(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Writes `n` (< 2^32) as a varint at `pos`; returns the position after it. */
function writeVarint(out: Buffer, pos: number, n: number): number {
  let v = n >>> 0;
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
  return pos;
}

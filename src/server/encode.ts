/**
 * Response encoders for the Authorizer's hot paths, written with protobufjs's
 * `Writer` (the encoder proto-loader uses) at the field numbers of
 * `proto/arbiter/v1/authorizer.proto`; tests check their bytes decode to the
 * same message as the generic serializer's.
 *
 * - CheckBatch: a batch of 1,000 items × 3 actions has a handful of distinct
 *   (action, decision, reason, rules) answers, yet proto-loader's generic
 *   serializer converts and encodes each of the 3,000 objects; here each
 *   distinct answer is encoded once per call and its bytes copied.
 * - Check: every answer but the request id repeats (same decision, reason,
 *   rule, revision); its bytes are kept (a bounded memo) and only the request
 *   id is written per call.
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

/** A `CheckResponse` as the Check handler builds it (trace already in wire shape). */
export interface CheckResponseMsg {
  readonly decision: 'ALLOW' | 'DENY';
  readonly reason: string;
  readonly rules: readonly string[];
  readonly policy_revision: string;
  readonly message?: string;
  readonly trace?: object;
  readonly request_id: string;
  readonly cached: boolean;
}

/** Most answers whose bytes are kept; the memo starts again when full (answers come from a small set per revision). */
const CHECK_MEMO_MAX = 4096;
const checkMemo = new Map<string, Uint8Array>();

/**
 * Encodes a `CheckResponse`. Answers with a trace or a message (explain,
 * refused tokens) go to `generic`, the service's own serializer.
 *
 * @example
 * Check.responseSerialize = (m) => encodeCheckResponse(m, genericSerialize);
 */
export function encodeCheckResponse(msg: CheckResponseMsg, generic: (msg: CheckResponseMsg) => Buffer): Buffer {
  if (msg.trace !== undefined || msg.message !== undefined) return generic(msg);
  // Length-prefixed parts: no two answers share a key, whatever their strings hold.
  let key = `${msg.cached ? 1 : 0}${msg.decision}${msg.reason.length}:${msg.reason}${msg.policy_revision.length}:${msg.policy_revision}`;
  for (const r of msg.rules) key += `${r.length}:${r}`;
  let head = checkMemo.get(key);
  if (head === undefined) {
    const w = protobuf.Writer.create();
    w.uint32(varintTag(1)).int32(DECISION[msg.decision]);
    w.uint32(bytesTag(2)).string(msg.reason);
    for (const r of msg.rules) w.uint32(bytesTag(3)).string(r);
    w.uint32(bytesTag(4)).string(msg.policy_revision);
    w.uint32(varintTag(8)).bool(msg.cached);
    head = w.finish();
    if (checkMemo.size >= CHECK_MEMO_MAX) checkMemo.clear();
    checkMemo.set(key, head);
  }
  const idLength = Buffer.byteLength(msg.request_id, 'utf8');
  const out = Buffer.allocUnsafe(head.length + 1 + varintLength(idLength) + idLength);
  out.set(head, 0);
  let pos = head.length;
  out[pos++] = bytesTag(7);
  pos = writeVarint(out, pos, idLength);
  out.write(msg.request_id, pos, 'utf8');
  return out;
}

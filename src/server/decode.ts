/**
 * Request decoders for `arbiter.v1.CheckRequest` and `CheckBatchRequest`:
 * protobuf bytes straight to the JSON shape the handlers use.
 *
 * proto-loader's deserializer decodes to protobufjs message objects, copies
 * them with `toObject`, and the handler then copied every
 * `google.protobuf.Struct` again with `structToJson` (now the tests'
 * reference, test/server/struct-reference.ts): three object trees per
 * request, the largest allocation in the hot path (a CheckBatch of 1,000 items
 * is a 125 KB body). These decoders read the bytes once, with protobufjs's own
 * `Reader`, and build only the result.
 *
 * They are a drop-in for that path, protobufjs's quirks included, because a
 * request must mean the same whichever path reads it
 * (test/server/decode.test.ts checks them against it, on valid messages and
 * on mutated bytes):
 * - Every value is read with the `Reader` method protobufjs uses, so strings
 *   agree byte for byte (invalid UTF-8 becomes U+FFFD; a length past the end
 *   of the enclosing message is cut short there, not refused), and a bool is
 *   the low 32 bits of its varint, non-zero.
 * - The wire type of a known field is not checked: it is read as its declared
 *   type. Unknown fields are skipped with `skipType`, at the same depth.
 * - A sub-message that appears twice replaces the first (no merge); a
 *   repeated Struct key keeps its first position and its last value.
 * - Both `principal` members on the wire are both kept, and `principal` names
 *   the higher field number (`subject`). Likewise a Value's kind is its
 *   highest-numbered member on the wire, whatever the order.
 * - Nesting deeper than protobufjs's limit (`Reader.recursionLimit`: 100
 *   nested messages; a JSON level is two, Struct then Value, so about 50
 *   levels) throws, as protobufjs does, so the recursion is bounded there.
 *   Between {@link HARD_DEPTH} and that limit the bytes are still decoded in
 *   full, and the result dropped, because protobufjs refuses bad bytes
 *   anywhere inside.
 * - A Struct entry with no value throws (protobufjs decodes it as `null` and
 *   `toObject` then fails on it), unless a later entry with the same key, or
 *   a later copy of an enclosing message, replaces it.
 *
 * What `structToJson` refuses (nesting deeper than {@link HARD_DEPTH}, a Value
 * with no kind) is not thrown but returned in `invalid`, the same
 * `RequestError`: the first one the handler would meet, in its order.
 */
import protobuf, { type Reader } from 'protobufjs';
import { RequestError } from '../errors.js';
import type { Json } from './struct.js';

/** A JSON object: a decoded `google.protobuf.Struct`. */
export type JsonObject = { [k: string]: Json };

/** A decoded `arbiter.v1.Resource`: missing strings are `''`, missing attributes absent. */
export interface DecodedResource {
  readonly type: string;
  readonly id: string;
  readonly attributes?: JsonObject;
}

/**
 * A decoded `arbiter.v1.CheckRequest`: what proto-loader's object becomes after
 * the handler's conversion. Fields missing on the wire are absent (`principal`,
 * `token`, `subject`, `resource`, `context`) or their zero value.
 */
export interface DecodedCheckRequest {
  /** The member of the `principal` oneof on the wire; `subject` when both are (both are then kept). */
  readonly principal?: 'token' | 'subject';
  readonly token?: string;
  readonly subject?: JsonObject;
  /** `''` when absent. */
  readonly action: string;
  /** Absent when the field is not on the wire. */
  readonly resource?: DecodedResource;
  readonly context?: JsonObject;
  readonly explain: boolean;
  /** `''` when absent. */
  readonly request_id: string;
  /**
   * Set when a Struct cannot be read as JSON (nested deeper than the hard
   * bound, or a Value with no kind): the handler refuses the call with it.
   * The Structs that could not be read are then absent; the rest is decoded.
   */
  readonly invalid?: RequestError;
}

/** A decoded `arbiter.v1.BatchItem`. */
export interface DecodedBatchItem {
  readonly resource?: DecodedResource;
  readonly actions: readonly string[];
}

/** A decoded `arbiter.v1.CheckBatchRequest`, as {@link DecodedCheckRequest}. */
export interface DecodedCheckBatchRequest {
  readonly principal?: 'token' | 'subject';
  readonly token?: string;
  readonly subject?: JsonObject;
  readonly items: readonly DecodedBatchItem[];
  readonly context?: JsonObject;
  readonly request_id: string;
  /** As in {@link DecodedCheckRequest.invalid}. */
  readonly invalid?: RequestError;
}

/**
 * JSON nested deeper than this is refused outright (request validation then
 * allows 16). The reference conversion in test/server/struct-reference.ts
 * has the same bound; a test checks both refuse at the same depth.
 */
const HARD_DEPTH = 32;

/** {@link Bad.reason}: what `structToJson` throws for a part. */
const NO_ERROR = 0;
const NO_KIND = 1;
const TOO_DEEP = 2;

/**
 * A Struct, Value or ListValue that is not JSON, in place of its value while
 * decoding. Rare, so its path is built only on the way up.
 */
class Bad {
  constructor(
    /** An entry without a value survives inside it: protobufjs's `toObject` would throw. */
    readonly missing: boolean,
    /** `NO_KIND` or `TOO_DEEP` for the first error `structToJson` meets in it, else `NO_ERROR`. */
    readonly reason: number,
    /** From this part to the one in error (`.a[2].b`). */
    readonly path: string,
  ) {}
}

/** A Struct entry without a value (shared: never returned, only stored, never changed). */
const MISSING = new Bad(true, NO_ERROR, '');

type Slot = Json | Bad;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };
interface ResourceSlot {
  type: string;
  id: string;
  attributes?: JsonObject | Bad;
}

/**
 * Decodes a `CheckRequest` as grpc-js hands it over (the deserializer of the
 * `Check` method).
 *
 * @throws {Error} on bytes protobufjs refuses (truncated, a bad wire type, a
 * length past the end, nesting past its limit, a Struct entry with no value)
 *
 * @example
 * const service = { ...authorizer, Check: { ...authorizer['Check']!, requestDeserialize: decodeCheckRequest } };
 */
export function decodeCheckRequest(buf: Buffer): DecodedCheckRequest {
  const r = protobuf.Reader.create(asBuffer(buf));
  const end = r.len;
  let token: string | undefined;
  let subject: JsonObject | Bad | undefined;
  let action = '';
  let resource: ResourceSlot | undefined;
  let context: JsonObject | Bad | undefined;
  let explain = false;
  let requestId = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        token = readString(r);
        break;
      case 2:
        subject = readStruct(r, r.uint32(), 1, 1);
        break;
      case 3:
        action = readString(r);
        break;
      case 4:
        resource = readResource(r, r.uint32(), 1);
        break;
      case 5:
        context = readStruct(r, r.uint32(), 1, 1);
        break;
      case 6:
        explain = r.bool();
        break;
      case 7:
        requestId = readString(r);
        break;
      default:
        r.skipType(tag & 7, 0);
    }
  }
  const out: Mutable<DecodedCheckRequest> = { action, explain, request_id: requestId };
  setPrincipalAndContext(out, token, subject, context);
  const attributes = resource?.attributes;
  if (subject instanceof Bad || context instanceof Bad || attributes instanceof Bad) {
    if (isMissing(subject) || isMissing(attributes) || isMissing(context)) throw missingValue();
    // The handler's order: subject, resource.attributes, context.
    out.invalid = requestError(subject, 'subject') ?? requestError(attributes, 'resource.attributes') ?? requestError(context, 'context');
  }
  if (resource !== undefined) out.resource = resourceOf(resource);
  return out;
}

/**
 * Decodes a `CheckBatchRequest` as grpc-js hands it over (the deserializer
 * of the `CheckBatch` method). Past `limits` the result is only `invalid`
 * (see {@link BatchLimits}).
 *
 * @throws {Error} on bytes protobufjs refuses, as {@link decodeCheckRequest}
 *
 * @example
 * const service = { ...authorizer, CheckBatch: { ...authorizer['CheckBatch']!, requestDeserialize: (b: Buffer) => decodeCheckBatchRequest(b, { maxItems: 1000, maxActionsPerItem: 100 }) } };
 */
export function decodeCheckBatchRequest(buf: Buffer, limits: BatchLimits = NO_LIMITS): DecodedCheckBatchRequest {
  try {
    return decodeBatch(buf, limits);
  } catch (e) {
    if (!(e instanceof TooMany)) throw e;
    // Refused before the rest is decoded: the call's answer is this error, whatever follows.
    const field = e.what === 'items' ? 'items' : `items[${e.item}].actions`;
    const message =
      e.what === 'items'
        ? `\`items\` has more than ${limits.maxItems} items; at most ${limits.maxItems} are allowed per call`
        : `\`${field}\` lists more than ${limits.maxActionsPerItem} actions; at most ${limits.maxActionsPerItem} are allowed per item`;
    return { items: [], request_id: '', invalid: new RequestError('REQUEST_INVALID', field, message) };
  }
}

/**
 * Most items in a CheckBatch, and actions in an item, to decode: past them
 * the request is refused without decoding the rest, so that a message of
 * millions of tiny items cannot become millions of objects first.
 */
export interface BatchLimits {
  readonly maxItems: number;
  readonly maxActionsPerItem: number;
}

const NO_LIMITS: BatchLimits = { maxItems: Number.POSITIVE_INFINITY, maxActionsPerItem: Number.POSITIVE_INFINITY };

/** A batch over its limits (thrown inside the decoder, caught by decodeCheckBatchRequest). */
class TooMany extends Error {
  item = 0;
  constructor(readonly what: 'items' | 'actions') {
    super(what);
  }
}

function decodeBatch(buf: Buffer, limits: BatchLimits): DecodedCheckBatchRequest {
  const r = protobuf.Reader.create(asBuffer(buf));
  const end = r.len;
  let token: string | undefined;
  let subject: JsonObject | Bad | undefined;
  const items: { resource?: ResourceSlot; actions: string[] }[] = [];
  let badItems = 0;
  let context: JsonObject | Bad | undefined;
  let requestId = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        token = readString(r);
        break;
      case 2:
        subject = readStruct(r, r.uint32(), 1, 1);
        break;
      case 3: {
        if (items.length === limits.maxItems) throw new TooMany('items');
        let item;
        try {
          item = readItem(r, r.uint32(), 1, limits.maxActionsPerItem);
        } catch (e) {
          if (e instanceof TooMany) e.item = items.length;
          throw e;
        }
        if (item.resource?.attributes instanceof Bad) badItems++;
        items.push(item);
        break;
      }
      case 4:
        context = readStruct(r, r.uint32(), 1, 1);
        break;
      case 5:
        requestId = readString(r);
        break;
      default:
        r.skipType(tag & 7, 0);
    }
  }
  const out: Mutable<DecodedCheckBatchRequest> = { items: items as DecodedBatchItem[], request_id: requestId };
  setPrincipalAndContext(out, token, subject, context);
  if (subject instanceof Bad || context instanceof Bad || badItems > 0) {
    if (isMissing(subject) || isMissing(context) || items.some((item) => isMissing(item.resource?.attributes))) throw missingValue();
    // The handler's order: subject, context, then the items.
    let invalid = requestError(subject, 'subject') ?? requestError(context, 'context');
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const resource = item.resource;
      if (resource === undefined || !(resource.attributes instanceof Bad)) continue;
      invalid ??= requestError(resource.attributes, `items[${i}].resource.attributes`);
      item.resource = { type: resource.type, id: resource.id };
    }
    out.invalid = invalid;
  }
  return out;
}

/** Strings of at most this many bytes are interned (see {@link readString}). */
const INTERN_MAX_BYTES = 32;
/** Slots of the intern table (a power of two). */
const INTERN_SLOTS = 4096;
const interned: (string | undefined)[] = new Array<string | undefined>(INTERN_SLOTS).fill(undefined);

/**
 * Node's Buffer UTF-8 decoder without `toString`'s argument handling (the
 * one protobufjs's `BufferReader.string` calls; not in @types/node).
 */
interface SlicingBuffer extends Buffer {
  utf8Slice(start: number, end: number): string;
}

/** A Node Buffer over the same bytes (grpc-js hands over Buffers; a plain Uint8Array would get protobufjs's slower reader). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * `reader.string()`, with short ASCII strings interned. A request repeats a
 * few short strings many times (attribute names, resource types, enum-like
 * values: a 1,000-item batch says `department` a thousand times); decoding
 * each is a call into Node's UTF-8 decoder and a new string. Here a short
 * string's slot comes from its length and three of its bytes, and the string
 * last decoded into that slot is compared with the bytes, code unit for
 * byte: all equal, that string is returned; else the bytes are decoded and
 * take the slot. Only a string with one code unit per byte is kept, and
 * such a string equals its bytes only if they are ASCII (a non-ASCII byte
 * decodes to U+FFFD or to part of a longer sequence), so a hit is exact.
 * The table holds at most 4,096 strings of 32 bytes, shared by all requests
 * (strings are immutable: sharing cannot carry one request's data into
 * another's answer). The position moves exactly as with `reader.string()`
 * (a length past the end is cut at the end).
 */
function readString(r: Reader): string {
  const length = r.uint32();
  const start = r.pos;
  const end = Math.min(start + length, r.len);
  r.pos = end;
  const buf = r.buf as SlicingBuffer;
  const n = end - start;
  if (n === 0) return '';
  if (n > INTERN_MAX_BYTES) return buf.utf8Slice(start, end);
  const slot = (n * 0x9e3779b1 + buf[start]! * 0x85ebca6b + buf[end - 1]! * 0xc2b2ae35 + buf[start + (n >> 1)]! * 0x27d4eb2f) & (INTERN_SLOTS - 1);
  const seen = interned[slot];
  if (seen !== undefined && seen.length === n) {
    let i = 0;
    while (i < n && seen.charCodeAt(i) === buf[start + i]) i++;
    if (i === n) return seen;
  }
  const str = buf.utf8Slice(start, end);
  if (str.length === n) interned[slot] = str;
  return str;
}

/**
 * The `principal` oneof and the context onto a decoded request, as
 * proto-loader reports them: both members kept when both are on the wire,
 * `principal` naming the higher field number (`subject`); a Struct that is
 * not JSON left out (its error is the request's `invalid`).
 */
function setPrincipalAndContext(
  out: { principal?: 'token' | 'subject'; token?: string; subject?: JsonObject; context?: JsonObject },
  token: string | undefined,
  subject: JsonObject | Bad | undefined,
  context: JsonObject | Bad | undefined,
): void {
  if (token !== undefined) {
    out.principal = 'token';
    out.token = token;
  }
  if (subject !== undefined) {
    out.principal = 'subject';
    if (!(subject instanceof Bad)) out.subject = subject;
  }
  if (context !== undefined && !(context instanceof Bad)) out.context = context;
}

// The readers below follow protobufjs's generated decoders step for step
// (src/decoder.js): `n` is its nesting count, checked against the same limit,
// and `depth` is structToJson's.

/** Enters a sub-message of `length` bytes, as protobufjs does; returns the enclosing end. */
function enter(r: Reader, length: number, n: number): number {
  if (n > protobuf.Reader.recursionLimit) throw Error('maximum nesting depth exceeded');
  const end = r.pos + length;
  if (end > r.len) throw RangeError('index out of range');
  const outer = r.len;
  r.len = end;
  return outer;
}

/** Leaves a sub-message entered with {@link enter}. */
function leave(r: Reader, outer: number): void {
  if (r.pos !== r.len) throw RangeError('index out of range');
  r.len = outer;
}

function readItem(r: Reader, length: number, n: number, maxActions: number): { resource?: ResourceSlot; actions: string[] } {
  const outer = enter(r, length, n);
  let resource: ResourceSlot | undefined;
  const actions: string[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        resource = readResource(r, r.uint32(), n + 1);
        break;
      case 2:
        if (actions.length === maxActions) throw new TooMany('actions');
        actions.push(readString(r));
        break;
      default:
        r.skipType(tag & 7, n);
    }
  }
  leave(r, outer);
  return resource === undefined ? { actions } : { resource, actions };
}

function readResource(r: Reader, length: number, n: number): ResourceSlot {
  const outer = enter(r, length, n);
  let type = '';
  let id = '';
  let attributes: JsonObject | Bad | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        type = readString(r);
        break;
      case 2:
        id = readString(r);
        break;
      case 3:
        attributes = readStruct(r, r.uint32(), n + 1, 1);
        break;
      default:
        r.skipType(tag & 7, n);
    }
  }
  leave(r, outer);
  return attributes === undefined ? { type, id } : { type, id, attributes };
}

/** A `google.protobuf.Struct` at `depth` (1 for a request field). */
function readStruct(r: Reader, length: number, n: number, depth: number): JsonObject | Bad {
  const outer = enter(r, length, n);
  const end = r.len;
  const obj: { [k: string]: Slot } = {};
  let bad = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 !== 1) {
      r.skipType(tag & 7, n);
      continue;
    }
    // A `fields` map entry: key 1, value 2, read as protobufjs reads map entries.
    const entryEnd = r.uint32() + r.pos;
    if (entryEnd > end) throw RangeError('index out of range');
    const bodyStart = r.pos;
    let slot = -1;
    if (entryEnd - bodyStart <= ENTRY_MAX_BYTES && n + 1 <= protobuf.Reader.recursionLimit) {
      slot = entrySlot(r.buf, bodyStart, entryEnd);
      const seen = entryBytes[slot];
      if (seen !== undefined && sameBytes(seen, r.buf, bodyStart, entryEnd)) {
        r.pos = entryEnd;
        setKey(obj, entryKeys[slot]!, entryValues[slot]!);
        continue;
      }
    }
    r.len = entryEnd;
    let key = '';
    let value: Slot = MISSING;
    while (r.pos < entryEnd) {
      const t = r.uint32();
      switch (t >>> 3) {
        case 1:
          key = readString(r);
          break;
        case 2:
          value = readValue(r, r.uint32(), n + 1, depth + 1);
          break;
        default:
          r.skipType(t & 7, n);
      }
    }
    if (r.pos !== entryEnd) throw RangeError('index out of range');
    r.len = end;
    setKey(obj, key, value);
    if (value instanceof Bad) bad++;
    else if (slot >= 0 && (value === null || typeof value !== 'object') && plainScalarEntry(r.buf, bodyStart, entryEnd)) {
      entryBytes[slot] = Uint8Array.prototype.slice.call(r.buf, bodyStart, entryEnd);
      entryKeys[slot] = key;
      entryValues[slot] = value;
    }
  }
  leave(r, outer);
  const settled = bad === 0 ? obj : settleObject(obj);
  // structToJson refuses a Struct this deep before looking inside; the inside is still
  // decoded, because protobufjs decodes (and may refuse) all of it.
  if (depth > HARD_DEPTH) return new Bad(settled instanceof Bad && settled.missing, TOO_DEEP, '');
  return settled as JsonObject | Bad;
}

/** Sets a decoded entry: a plain assignment to `__proto__` would set the prototype; the key must stay a key. */
function setKey(obj: { [k: string]: Slot }, key: string, value: Slot): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** Struct entries of at most this many bytes are kept (see {@link entrySlot}). */
const ENTRY_MAX_BYTES = 64;
const ENTRY_SLOTS = 4096;
const entryBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(ENTRY_SLOTS).fill(undefined);
const entryKeys: string[] = new Array<string>(ENTRY_SLOTS).fill('');
const entryValues: Json[] = new Array<Json>(ENTRY_SLOTS).fill(null);

/**
 * The slot of a Struct entry's bytes in the entry table. Requests repeat
 * whole entries (`"department": "engineering"` in a thousand batch items);
 * an entry whose key is a short string and whose value is a scalar, written
 * plainly (key field, then a value field holding one scalar member, nothing
 * else; see {@link plainScalarEntry}), is kept with its decoded key and
 * value, and the same bytes later give them back without decoding: the same
 * bytes in that plain layout always decode to the same key and scalar
 * (strings and numbers are immutable, so they are shared safely). A slot
 * holds the last entry stored in it; bytes are compared in full before use.
 * At most 4,096 entries of 64 bytes are kept, shared by all requests.
 */
function entrySlot(buf: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n < 4) return 0;
  return (n * 0x9e3779b1 + buf[start + 2]! * 0x85ebca6b + buf[end - 1]! * 0xc2b2ae35 + buf[start + (n >> 1)]! * 0x27d4eb2f + buf[end - 3]! * 0x165667b1) & (ENTRY_SLOTS - 1);
}

function sameBytes(kept: Uint8Array, buf: Uint8Array, start: number, end: number): boolean {
  if (kept.length !== end - start) return false;
  for (let i = 0; i < kept.length; i++) if (kept[i] !== buf[start + i]) return false;
  return true;
}

/**
 * Whether an entry's bytes are exactly: key (field 1, a string shorter than
 * 128 bytes), then value (field 2, shorter than 128 bytes) holding exactly
 * one scalar member (null 1 / bool 4 as one varint of at most 10 bytes, number 2 as 8 bytes,
 * string 3 shorter than 128 bytes). Anything else (unknown fields, repeated
 * fields, nested values) is decoded every time.
 */
function plainScalarEntry(buf: Uint8Array, start: number, end: number): boolean {
  let p = start;
  if (buf[p++] !== 0x0a) return false;
  const keyLength = buf[p++]!;
  if (keyLength >= 0x80) return false;
  p += keyLength;
  if (p >= end || buf[p++] !== 0x12) return false;
  const valueLength = buf[p++]!;
  if (valueLength >= 0x80 || valueLength === 0 || p + valueLength !== end) return false;
  switch (buf[p++]) {
    case 0x08: // null_value, varint
    case 0x20: {
      // bool_value, varint. At most 10 bytes: protobufjs reads 5 and skips 5 more without looking, so
      // the bytes after a longer one would be read as more fields (whose decoding depends on depth).
      if (p >= end || end - p > 10) return false;
      for (let i = p; i < end - 1; i++) if (buf[i]! < 0x80) return false;
      return buf[end - 1]! < 0x80;
    }
    case 0x11: // number_value, 8 bytes
      return end - p === 8;
    case 0x1a: {
      // string_value
      const length = buf[p++]!;
      return length < 0x80 && p + length === end;
    }
    default:
      return false;
  }
}

/** A `google.protobuf.Value` at `depth`. Its kind is the highest-numbered member present. */
function readValue(r: Reader, length: number, n: number, depth: number): Slot {
  const outer = enter(r, length, n);
  let kind = 0;
  let num = 0;
  let str = '';
  let bool = false;
  let struct: JsonObject | Bad | undefined;
  let list: Json[] | Bad | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    switch (field) {
      case 1:
        r.int32(); // NullValue: any number is null
        break;
      case 2:
        num = r.double();
        break;
      case 3:
        str = readString(r);
        break;
      case 4:
        bool = r.bool();
        break;
      case 5:
        struct = readStruct(r, r.uint32(), n + 1, depth);
        break;
      case 6:
        list = readList(r, r.uint32(), n + 1, depth);
        break;
      default:
        r.skipType(tag & 7, n);
        continue;
    }
    if (field > kind) kind = field;
  }
  leave(r, outer);
  switch (kind) {
    case 1:
      return null;
    case 2:
      return num;
    case 3:
      return str;
    case 4:
      return bool;
    case 5:
      return struct!;
    case 6:
      // The struct member lost, but protobufjs's toObject still converts it.
      if (struct instanceof Bad && struct.missing) return list instanceof Bad ? new Bad(true, list.reason, list.path) : new Bad(true, NO_ERROR, '');
      return list!;
    default:
      return new Bad(false, NO_KIND, '');
  }
}

/** A `google.protobuf.ListValue` held by a Value at `depth`. */
function readList(r: Reader, length: number, n: number, depth: number): Json[] | Bad {
  const outer = enter(r, length, n);
  const values: Slot[] = [];
  let bad = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) {
      const v = readValue(r, r.uint32(), n + 1, depth + 1);
      if (v instanceof Bad) bad++;
      values.push(v);
    } else {
      r.skipType(tag & 7, n);
    }
  }
  leave(r, outer);
  let missing = false;
  let first = -1;
  for (let i = 0; bad > 0 && i < values.length; i++) {
    const v = values[i];
    if (!(v instanceof Bad)) continue;
    bad--;
    missing ||= v.missing;
    if (first < 0 && v.reason !== NO_ERROR) first = i;
  }
  if (depth > HARD_DEPTH) return new Bad(missing, TOO_DEEP, '');
  if (first >= 0) {
    const b = values[first] as Bad;
    return new Bad(missing, b.reason, `[${first}]${b.path}`);
  }
  return missing ? new Bad(true, NO_ERROR, '') : (values as Json[]);
}

/** A Struct that holds a Bad somewhere (perhaps replaced since): structToJson's first error, in key order. */
function settleObject(obj: { [k: string]: Slot }): JsonObject | Bad {
  let missing = false;
  let firstKey: string | undefined;
  let first: Bad | undefined;
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    if (!(v instanceof Bad)) continue;
    missing ||= v.missing;
    if (first === undefined && v.reason !== NO_ERROR) {
      first = v;
      firstKey = k;
    }
  }
  if (first !== undefined) return new Bad(missing, first.reason, `.${firstKey}${first.path}`);
  return missing ? new Bad(true, NO_ERROR, '') : (obj as JsonObject);
}

function isMissing(x: unknown): boolean {
  return x instanceof Bad && x.missing;
}

function missingValue(): Error {
  return new TypeError('a google.protobuf.Struct entry has no value');
}

/** The RequestError structToJson throws for a Bad request field `field`, word for word. */
function requestError(x: unknown, field: string): RequestError | undefined {
  if (!(x instanceof Bad) || x.reason === NO_ERROR) return undefined;
  const f = field + x.path;
  return x.reason === TOO_DEEP
    ? new RequestError('REQUEST_INVALID', f, `\`${f}\` is nested deeper than ${HARD_DEPTH} levels`)
    : new RequestError('REQUEST_INVALID', f, `\`${f}\` has a value with no kind set`);
}

function resourceOf(resource: ResourceSlot): DecodedResource {
  return resource.attributes instanceof Bad ? { type: resource.type, id: resource.id } : (resource as DecodedResource);
}

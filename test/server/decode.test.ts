/**
 * The request decoders against today's path: proto-loader's deserializer,
 * then the handler's conversion (structToJson for every Struct, '' / false /
 * [] for what is missing). On every byte string either both throw or both give
 * the same result, key order of the JSON included; where structToJson throws
 * a RequestError, the decoder returns an equal one in `invalid`.
 */
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestError } from '../../src/errors.js';
import {
  decodeCheckBatchRequest,
  decodeCheckRequest,
  type DecodedBatchItem,
  type DecodedCheckBatchRequest,
  type DecodedCheckRequest,
  type DecodedResource,
} from '../../src/server/decode.js';
import { loadAuthorizerProto } from '../../src/server/proto.js';
import { jsonToStruct, type Json, type ProtoStruct, type ProtoValue } from '../../src/server/struct.js';
import { structToJson } from './struct-reference.js';
import { startHarness, type Harness } from './harness.js';

const { authorizer } = loadAuthorizerProto();
const CHECK = authorizer['Check']!;
const BATCH = authorizer['CheckBatch']!;

// ---------------------------------------------------------------------------
// Today's path, as the reference.

interface ResourceMsg {
  type?: string;
  id?: string;
  attributes?: ProtoStruct;
}
interface CheckMsg {
  principal?: 'token' | 'subject';
  token?: string;
  subject?: ProtoStruct;
  action?: string;
  resource?: ResourceMsg;
  context?: ProtoStruct;
  explain?: boolean;
  request_id?: string;
}
interface BatchMsg {
  principal?: 'token' | 'subject';
  token?: string;
  subject?: ProtoStruct;
  items?: { resource?: ResourceMsg; actions?: string[] }[];
  context?: ProtoStruct;
  request_id?: string;
}

/** structToJson, keeping the first RequestError (the handler refuses with it) instead of throwing. */
function converter(): { convert: (s: ProtoStruct | undefined, field: string) => { [k: string]: Json } | undefined; invalid: () => RequestError | undefined } {
  let invalid: RequestError | undefined;
  return {
    convert(s, field) {
      try {
        return structToJson(s, field);
      } catch (e) {
        if (!(e instanceof RequestError)) throw e;
        invalid ??= e;
        return undefined;
      }
    },
    invalid: () => invalid,
  };
}

/** Drops keys whose value is undefined (absent fields). */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function referenceResource(r: ResourceMsg | undefined, convert: ReturnType<typeof converter>['convert'], field: string): DecodedResource | undefined {
  if (r === undefined) return undefined;
  return compact({ type: r.type ?? '', id: r.id ?? '', attributes: convert(r.attributes, `${field}.attributes`) });
}

function referenceCheck(buf: Buffer): DecodedCheckRequest {
  const m = CHECK.requestDeserialize(buf) as CheckMsg;
  const c = converter();
  // The handler's order: subject (principalOf), resource, context.
  const subject = c.convert(m.subject, 'subject');
  const resource = referenceResource(m.resource, c.convert, 'resource');
  const context = c.convert(m.context, 'context');
  return compact({
    principal: m.principal,
    token: m.token,
    subject,
    action: m.action ?? '',
    resource,
    context,
    explain: m.explain ?? false,
    request_id: m.request_id ?? '',
    invalid: c.invalid(),
  });
}

function referenceBatch(buf: Buffer): DecodedCheckBatchRequest {
  const m = BATCH.requestDeserialize(buf) as BatchMsg;
  const c = converter();
  // The handler's order: subject, context, then each item.
  const subject = c.convert(m.subject, 'subject');
  const context = c.convert(m.context, 'context');
  const items = (m.items ?? []).map((item, i) => compact({ resource: referenceResource(item.resource, c.convert, `items[${i}].resource`), actions: item.actions ?? [] }));
  return compact({ principal: m.principal, token: m.token, subject, items, context, request_id: m.request_id ?? '', invalid: c.invalid() });
}

// ---------------------------------------------------------------------------
// Comparing results. toStrictEqual alone would misjudge JSON objects with a key
// `constructor` (it compares `.constructor`), so JSON is compared as its list of
// own keys in order, with each object's prototype; errors by class, code, field
// and message.

function canonJson(v: unknown): unknown {
  if (Array.isArray(v)) return { array: v.map(canonJson) };
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return { plain: Object.getPrototypeOf(o) === Object.prototype, entries: Reflect.ownKeys(o).map((k) => [k, Object.getOwnPropertyDescriptor(o, k)?.enumerable, canonJson(o[k as string])]) };
  }
  return v;
}

function canonError(e: unknown): unknown {
  return e instanceof RequestError ? { RequestError: true, name: e.name, code: e.code, field: e.field, message: e.message } : { other: String(e) };
}

function canonResource(r: DecodedResource | undefined): unknown {
  return r === undefined ? undefined : Object.keys(r).sort().map((k) => [k, canonJson((r as unknown as Record<string, unknown>)[k])]);
}

function canonRequest(d: DecodedCheckRequest | DecodedCheckBatchRequest): unknown {
  const o = d as unknown as Record<string, unknown>;
  return Object.keys(o)
    .sort()
    .map((k) => {
      const v = o[k];
      if (k === 'invalid') return [k, canonError(v)];
      if (k === 'resource') return [k, canonResource(v as DecodedResource)];
      if (k === 'items') return [k, (v as DecodedBatchItem[]).map((item) => Object.keys(item).sort().map((ik) => [ik, ik === 'resource' ? canonResource(item.resource) : canonJson(item.actions)]))];
      return [k, canonJson(v)];
    });
}

type Outcome<T> = { threw: true; error: unknown } | { threw: false; value: T };

function attempt<T>(f: () => T): Outcome<T> {
  try {
    return { threw: false, value: f() };
  } catch (error) {
    return { threw: true, error };
  }
}

type Method = 'Check' | 'CheckBatch';

/** Decodes `bytes` both ways, asserts they agree, and returns ours (or the error it threw). */
function expectSame(method: Method, bytes: Uint8Array): Outcome<DecodedCheckRequest | DecodedCheckBatchRequest> {
  const buf = Buffer.from(bytes);
  const ours = attempt(() => (method === 'Check' ? decodeCheckRequest(buf) : decodeCheckBatchRequest(buf)));
  const theirs = attempt(() => (method === 'Check' ? referenceCheck(buf) : referenceBatch(buf)));
  if (ours.threw) expect(ours.error).toBeInstanceOf(Error);
  expect({ threw: ours.threw }, `${method} ${buf.toString('hex')}: ${ours.threw ? String(ours.error) : 'decoded'} / ${theirs.threw ? String(theirs.error) : 'decoded'}`).toEqual({ threw: theirs.threw });
  if (!ours.threw && !theirs.threw) expect(canonRequest(ours.value), `${method} ${buf.toString('hex')}`).toStrictEqual(canonRequest(theirs.value));
  return ours;
}

function decoded(method: Method, bytes: Uint8Array): DecodedCheckRequest & DecodedCheckBatchRequest {
  const out = expectSame(method, bytes);
  if (out.threw) throw out.error;
  return out.value as DecodedCheckRequest & DecodedCheckBatchRequest;
}

function refused(method: Method, bytes: Uint8Array): unknown {
  const out = expectSame(method, bytes);
  expect(out.threw).toBe(true);
  return out.threw ? out.error : undefined;
}

// ---------------------------------------------------------------------------
// Writing wire bytes by hand: what a serializer never writes is what the quirks are about.

function varintBytes(v: number | bigint): number[] {
  let x = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return out;
}
const cat = (...parts: (Uint8Array | number[])[]): Uint8Array => Buffer.concat(parts.map((p) => Uint8Array.from(p)));
const tag = (no: number, wt: number): number[] => varintBytes(no * 8 + wt);
const len = (no: number, payload: Uint8Array): Uint8Array => cat(tag(no, 2), varintBytes(payload.length), payload);
const str = (no: number, s: string | Uint8Array): Uint8Array => len(no, typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
const vint = (no: number, v: number | bigint): Uint8Array => cat(tag(no, 0), varintBytes(v));
const dbl = (no: number, x: number): Uint8Array => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return cat(tag(no, 1), b);
};

// google.protobuf.Struct / Value / ListValue.
const entry = (key: string | undefined, value?: Uint8Array, extra: Uint8Array = cat()): Uint8Array => len(1, cat(key === undefined ? [] : str(1, key), value === undefined ? [] : len(2, value), extra));
const struct = (...entries: Uint8Array[]): Uint8Array => cat(...entries);
const nul = (v: number | bigint = 0): Uint8Array => vint(1, v);
const num = (x: number): Uint8Array => dbl(2, x);
const s = (x: string): Uint8Array => str(3, x);
const bool = (v: number | bigint): Uint8Array => vint(4, v);
const sv = (st: Uint8Array): Uint8Array => len(5, st);
const lv = (...values: Uint8Array[]): Uint8Array => len(6, cat(...values.map((v) => len(1, v))));
const noKind = cat();

// CheckRequest fields.
const token = (t: string): Uint8Array => str(1, t);
const subject = (st: Uint8Array): Uint8Array => len(2, st);
const action = (a: string | Uint8Array): Uint8Array => str(3, a);
const resource = (fields: Uint8Array): Uint8Array => len(4, fields);
const context = (st: Uint8Array): Uint8Array => len(5, st);
const requestId = (id: string): Uint8Array => str(7, id);
// CheckBatchRequest fields (token and subject as above).
const item = (fields: Uint8Array): Uint8Array => len(3, fields);
const batchContext = (st: Uint8Array): Uint8Array => len(4, st);

/** One unknown field of each wire type (field 8 is declared by none of these messages). */
const UNKNOWN: Record<string, Uint8Array> = {
  varint: vint(8, 2n ** 64n - 1n),
  fixed64: dbl(8, 1.5),
  bytes: str(8, 'skip me'),
  group: cat(tag(8, 3), vint(9, 1), tag(10, 3), str(11, 'x'), tag(10, 4), tag(8, 4)),
  fixed32: cat(tag(8, 5), [1, 2, 3, 4]),
};

// ---------------------------------------------------------------------------
// Arbitraries: proto-loader's object shape.

const text = fc.oneof(fc.string({ maxLength: 8 }), fc.constant(''), fc.string({ unit: 'binary', maxLength: 6 }));
const key = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 3 }) },
  { weight: 2, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', '', '0', '7', '4294967295', '-1', 'ключ', '🔑', 'a.b', '[0]') },
);

function valueArb(depth: number): fc.Arbitrary<ProtoValue> {
  const scalar = fc.oneof(
    fc.constantFrom<ProtoValue>({ nullValue: 'NULL_VALUE' }, { nullValue: 0 }),
    fc.double().map((n): ProtoValue => ({ numberValue: n })), // NaN, ±0 and ±Infinity included
    text.map((x): ProtoValue => ({ stringValue: x })),
    fc.boolean().map((b): ProtoValue => ({ boolValue: b })),
  );
  // Rarely: no kind at all, or two kinds set (the serializer writes both).
  const odd = fc.oneof(fc.constant<ProtoValue>({}), fc.tuple(fc.double(), text).map(([n, x]): ProtoValue => ({ numberValue: n, stringValue: x })));
  if (depth <= 1) return fc.oneof({ weight: 12, arbitrary: scalar }, { weight: 1, arbitrary: odd });
  return fc.oneof(
    { weight: 12, arbitrary: scalar },
    { weight: 1, arbitrary: odd },
    { weight: 3, arbitrary: structArb(depth - 1).map((st): ProtoValue => ({ structValue: st })) },
    { weight: 2, arbitrary: fc.array(valueArb(depth - 1), { maxLength: 3 }).map((values): ProtoValue => ({ listValue: { values } })) },
  );
}

/** A Struct whose JSON is at most `depth` levels deep. Object.fromEntries keeps `__proto__` a key. */
function structArb(depth: number): fc.Arbitrary<ProtoStruct> {
  return fc.array(fc.tuple(key, valueArb(depth)), { maxLength: 4 }).map((entries) => ({ fields: Object.fromEntries(entries) }));
}

const resourceArb = (depth: number): fc.Arbitrary<ResourceMsg> => fc.record({ type: text, id: text, attributes: structArb(depth) }, { requiredKeys: [] });

const checkArb = (depth: number): fc.Arbitrary<CheckMsg> =>
  fc.record(
    { token: text, subject: structArb(depth), action: text, resource: resourceArb(depth), context: structArb(depth), explain: fc.boolean(), request_id: text },
    { requiredKeys: [] },
  );

const batchArb = (depth: number): fc.Arbitrary<BatchMsg> =>
  fc.record(
    {
      token: text,
      subject: structArb(depth),
      items: fc.array(fc.record({ resource: resourceArb(depth), actions: fc.array(text, { maxLength: 3 }) }, { requiredKeys: [] }), { maxLength: 4 }),
      context: structArb(depth),
      request_id: text,
    },
    { requiredKeys: [] },
  );

// ---------------------------------------------------------------------------
// A noisy encoder: the same messages, written field by field with what a
// serializer never writes: fields out of order, repeated, dropped (a map entry
// without its value), and unknown fields of every wire type at every level.

type Gen = fc.GeneratorValue;

function unknownField(g: Gen, depth = 0): Uint8Array {
  const no = g(fc.constantFrom, 8, 15, 100, 2047, 536870911);
  switch (g(fc.constantFrom, 0, 1, 2, 3, 5)) {
    case 0:
      return vint(no, g(fc.bigInt, { min: 0n, max: 2n ** 64n - 1n }));
    case 1:
      return cat(tag(no, 1), g(fc.uint8Array, { minLength: 8, maxLength: 8 }));
    case 2:
      return str(no, g(fc.uint8Array, { maxLength: 6 }));
    case 3:
      return cat(tag(no, 3), ...(depth < 2 ? Array.from({ length: g(fc.nat, 2) }, () => unknownField(g, depth + 1)) : []), tag(no, 4));
    default:
      return cat(tag(no, 5), g(fc.uint8Array, { minLength: 4, maxLength: 4 }));
  }
}

function noisy(g: Gen, parts: Uint8Array[]): Uint8Array {
  const out = [...parts];
  if (out.length > 1 && g(fc.nat, 5) === 0) {
    for (let i = out.length - 1; i > 0; i--) {
      const j = g(fc.nat, i);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
  }
  if (out.length > 0 && g(fc.nat, 7) === 0) out.splice(g(fc.nat, out.length), 0, out[g(fc.nat, out.length - 1)]!);
  if (out.length > 0 && g(fc.nat, 25) === 0) out.splice(g(fc.nat, out.length - 1), 1);
  for (let n = g(fc.nat, 4) === 0 ? g(fc.integer, { min: 1, max: 2 }) : 0; n > 0; n--) out.splice(g(fc.nat, out.length), 0, unknownField(g));
  return cat(...out);
}

function encValue(g: Gen, v: ProtoValue): Uint8Array {
  const parts: Uint8Array[] = [];
  if (v.nullValue !== undefined) parts.push(nul(0));
  if (v.numberValue !== undefined) parts.push(num(v.numberValue));
  if (v.stringValue !== undefined) parts.push(s(v.stringValue));
  if (v.boolValue !== undefined) parts.push(bool(v.boolValue ? 1 : 0));
  if (v.structValue !== undefined) parts.push(len(5, encStruct(g, v.structValue)));
  if (v.listValue !== undefined) parts.push(len(6, noisy(g, (v.listValue.values ?? []).map((x) => len(1, encValue(g, x))))));
  return noisy(g, parts);
}

function encStruct(g: Gen, st: ProtoStruct): Uint8Array {
  return noisy(
    g,
    Object.entries(st.fields ?? {}).map(([k, v]) => len(1, noisy(g, [str(1, k), len(2, encValue(g, v))]))),
  );
}

function encResource(g: Gen, r: ResourceMsg): Uint8Array {
  return noisy(g, [...(r.type === undefined ? [] : [str(1, r.type)]), ...(r.id === undefined ? [] : [str(2, r.id)]), ...(r.attributes === undefined ? [] : [len(3, encStruct(g, r.attributes))])]);
}

function encCheck(g: Gen, m: CheckMsg): Uint8Array {
  const parts: Uint8Array[] = [];
  if (m.token !== undefined) parts.push(token(m.token));
  if (m.subject !== undefined) parts.push(subject(encStruct(g, m.subject)));
  if (m.action !== undefined) parts.push(action(m.action));
  if (m.resource !== undefined) parts.push(resource(encResource(g, m.resource)));
  if (m.context !== undefined) parts.push(context(encStruct(g, m.context)));
  if (m.explain !== undefined) parts.push(vint(6, m.explain ? 1 : 0));
  if (m.request_id !== undefined) parts.push(requestId(m.request_id));
  return noisy(g, parts);
}

function encBatch(g: Gen, m: BatchMsg): Uint8Array {
  const parts: Uint8Array[] = [];
  if (m.token !== undefined) parts.push(token(m.token));
  if (m.subject !== undefined) parts.push(subject(encStruct(g, m.subject)));
  for (const it of m.items ?? []) parts.push(item(noisy(g, [...(it.resource === undefined ? [] : [len(1, encResource(g, it.resource))]), ...(it.actions ?? []).map((a) => str(2, a))])));
  if (m.context !== undefined) parts.push(batchContext(encStruct(g, m.context)));
  if (m.request_id !== undefined) parts.push(str(5, m.request_id));
  return noisy(g, parts);
}

type Mutation = { op: 'flip'; at: number; bit: number } | { op: 'insert'; at: number; byte: number } | { op: 'delete'; at: number } | { op: 'truncate'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  const b = [...bytes];
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    if (m.op === 'flip' && b.length > 0) b[at] = b[at]! ^ (1 << m.bit);
    else if (m.op === 'insert') b.splice(at, 0, m.byte);
    else if (m.op === 'delete') b.splice(at, 1);
    else if (m.op === 'truncate') b.length = at;
  }
  return Uint8Array.from(b);
}

// ---------------------------------------------------------------------------

describe('decoding what proto-loader encodes', () => {
  it('CheckRequest: the same as proto-loader decode + structToJson', () => {
    fc.assert(
      fc.property(checkArb(5), (msg) => {
        const out = expectSame('Check', CHECK.requestSerialize(msg));
        expect(out.threw).toBe(false);
      }),
      { numRuns: 400 },
    );
  });

  it('CheckBatchRequest: the same as proto-loader decode + structToJson', () => {
    fc.assert(
      fc.property(batchArb(4), (msg) => {
        const out = expectSame('CheckBatch', BATCH.requestSerialize(msg));
        expect(out.threw).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

describe('decoding any bytes', () => {
  it('random bytes: both refuse, or both give the same', () => {
    fc.assert(
      fc.property(fc.constantFrom<Method>('Check', 'CheckBatch'), fc.uint8Array({ maxLength: 48 }), (method, bytes) => {
        expectSame(method, bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it('noisy, then mutated, encodings of valid messages: both refuse, or both give the same', () => {
    const mutations = fc.oneof({ weight: 1, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) });
    fc.assert(
      fc.property(fc.oneof(checkArb(3).map((m) => ['Check', m] as const), batchArb(3).map((m) => ['CheckBatch', m] as const)), fc.gen(), mutations, ([method, msg], g, ms) => {
        const bytes = method === 'Check' ? encCheck(g, msg) : encBatch(g, msg as BatchMsg);
        expectSame(method, mutate(bytes, ms));
      }),
      { numRuns: 800 },
    );
  });
});

describe('protobufjs quirks, matched', () => {
  const S = (x: string): Uint8Array => struct(entry('a', s(x)));

  it.each([
    // protobufjs replaces a sub-message that appears twice; it does not merge them (proto3 would).
    { name: 'resource twice: the second replaces the first', method: 'Check' as Method, bytes: cat(resource(cat(str(1, 'a'), str(2, 'x'))), resource(str(1, 'b'))), want: { resource: { type: 'b', id: '' } } },
    { name: 'context twice: replaced, not merged', method: 'Check' as Method, bytes: cat(context(S('1')), context(struct(entry('b', num(2))))), want: { context: { b: 2 } } },
    { name: 'a structValue twice: replaced', method: 'Check' as Method, bytes: context(struct(entry('a', cat(sv(S('1')), sv(struct(entry('b', num(2)))))))), want: { context: { a: { b: 2 } } } },
    { name: 'a map entry value twice: replaced', method: 'Check' as Method, bytes: context(struct(entry('a', cat(sv(S('1'))), len(2, num(3))))), want: { context: { a: 3 } } },
    { name: 'an item resource twice: replaced', method: 'CheckBatch' as Method, bytes: item(cat(len(1, str(1, 'a')), str(2, 'read'), len(1, str(1, 'b')))), want: { items: [{ resource: { type: 'b', id: '' }, actions: ['read'] }] } },
    // Both oneof members on the wire: protobufjs keeps both; toObject names the higher field number.
    { name: 'token then subject: principal subject, token kept', method: 'Check' as Method, bytes: cat(token('t'), subject(S('x'))), want: { principal: 'subject', token: 't', subject: { a: 'x' } } },
    { name: 'subject then token: still subject (field order, not wire order)', method: 'Check' as Method, bytes: cat(subject(S('x')), token('t')), want: { principal: 'subject', token: 't', subject: { a: 'x' } } },
    { name: 'batch, both members', method: 'CheckBatch' as Method, bytes: cat(subject(struct()), token('t')), want: { principal: 'subject', token: 't', subject: {} } },
    // Present but empty is present.
    { name: 'an empty token is a token', method: 'Check' as Method, bytes: token(''), want: { principal: 'token', token: '' } },
    { name: 'an empty subject is a subject', method: 'Check' as Method, bytes: subject(struct()), want: { principal: 'subject', subject: {} } },
    { name: 'an empty resource is a resource', method: 'Check' as Method, bytes: resource(cat()), want: { resource: { type: '', id: '' } } },
    { name: 'empty strings on the wire read as absent ones', method: 'Check' as Method, bytes: cat(action(''), requestId(''), resource(str(2, ''))), want: { resource: { type: '', id: '' } } },
    { name: 'an empty item', method: 'CheckBatch' as Method, bytes: item(cat()), want: { items: [{ actions: [] }] } },
    // Struct maps: the last value of a key wins, at its first position.
    { name: 'duplicate Struct keys', method: 'Check' as Method, bytes: context(struct(entry('a', num(1)), entry('b', num(2)), entry('a', s('last')))), want: { context: { a: 'last', b: 2 } } },
    { name: 'an entry without a key is key ""', method: 'Check' as Method, bytes: context(struct(entry(undefined, num(1)))), want: { context: { '': 1 } } },
    { name: 'the key of an entry twice: the last', method: 'Check' as Method, bytes: context(struct(len(1, cat(str(1, 'x'), str(1, 'y'), len(2, num(1)))))), want: { context: { y: 1 } } },
    // A Value's kind is its highest-numbered member on the wire, whatever the order; each member keeps its last value.
    { name: 'kind set twice: string (3) over number (2)', method: 'Check' as Method, bytes: context(struct(entry('a', cat(s('s'), num(2))))), want: { context: { a: 's' } } },
    { name: 'kind set twice: list (6) over struct (5), written first', method: 'Check' as Method, bytes: context(struct(entry('a', cat(lv(num(1)), sv(S('x')))))), want: { context: { a: [1] } } },
    { name: 'the same member twice: the last', method: 'Check' as Method, bytes: context(struct(entry('a', cat(num(1), num(2))))), want: { context: { a: 2 } } },
    { name: 'null (1) loses to bool (4)', method: 'Check' as Method, bytes: context(struct(entry('a', cat(bool(1), nul())))), want: { context: { a: true } } },
    // NullValue is an enum read as int32; any number is null.
    { name: 'NullValue 0, 5 and -1 (a 10-byte varint)', method: 'Check' as Method, bytes: context(struct(entry('a', nul(0)), entry('b', nul(5)), entry('c', nul(-1)))), want: { context: { a: null, b: null, c: null } } },
    // Doubles as they are.
    { name: 'NaN, -0, Infinity, -Infinity', method: 'Check' as Method, bytes: context(struct(entry('n', num(NaN)), entry('z', num(-0)), entry('i', num(Infinity)), entry('j', num(-Infinity)))), want: { context: { n: NaN, z: -0, i: Infinity, j: -Infinity } } },
    // bool is the low 32 bits of the varint, non-zero.
    { name: 'a bool of 2^32 is false', method: 'Check' as Method, bytes: cat(vint(6, 2n ** 32n), context(struct(entry('a', bool(2n ** 32n)), entry('b', bool(3))))), want: { context: { a: false, b: true } } },
    // Strings: Node's UTF-8 decoding (what BufferReader uses): bad bytes become U+FFFD.
    { name: 'invalid UTF-8', method: 'Check' as Method, bytes: cat(action(Uint8Array.from([0xff, 0xc3, 0x28])), context(struct(len(1, cat(str(1, Uint8Array.from([0xed, 0xa0, 0x80])), len(2, str(3, Uint8Array.from([0xf0, 0x9f])))))))), want: { action: '\ufffd\ufffd(', context: { '\ufffd\ufffd\ufffd': '\ufffd' } } },
    // BufferReader clamps a string whose length runs past the end of its message, and the message goes on.
    { name: 'a string longer than the message: cut short', method: 'Check' as Method, bytes: Uint8Array.from([0x1a, 0x05, 0x61]), want: { action: 'a' } },
    { name: 'a string longer than its sub-message: cut at its end', method: 'Check' as Method, bytes: cat(len(4, Uint8Array.from([0x0a, 0x09, 0x61])), requestId('b')), want: { resource: { type: 'a', id: '' }, request_id: 'b' } },
    // The wire type of a known field is not checked: it is read as declared.
    { name: 'action tagged as a varint is read as a string', method: 'Check' as Method, bytes: Uint8Array.from([0x18, 0x01, 0x61]), want: { action: 'a' } },
    { name: 'numberValue tagged as fixed32 still reads 8 bytes', method: 'Check' as Method, bytes: context(struct(entry('a', cat(tag(2, 5), Buffer.alloc(8))))), want: { context: { a: 0 } } },
    // Packed vs unpacked: no field here is packable (strings and messages never are); a bool
    // sent length-delimited reads the length as its value and the payload as fields.
    { name: 'explain sent length-delimited', method: 'Check' as Method, bytes: Uint8Array.from([0x32, 0x02, 0x3a, 0x00]), want: { explain: true } },
    { name: 'actions, one field per string', method: 'CheckBatch' as Method, bytes: item(cat(str(2, 'read'), str(2, ''), str(2, 'share'))), want: { items: [{ actions: ['read', '', 'share'] }] } },
    // Field number 0 is skipped like any unknown field.
    { name: 'field 0', method: 'Check' as Method, bytes: Uint8Array.from([0x00, 0x01]), want: {} },
    // `__proto__` and `constructor` are keys.
    { name: '__proto__ is a key', method: 'Check' as Method, bytes: context(struct(entry('__proto__', sv(struct(entry('polluted', bool(1))))), entry('constructor', lv(nul())))), want: { context: Object.fromEntries([['__proto__', { polluted: true }], ['constructor', [null]]]) } },
  ])('$name', ({ method, bytes, want }) => {
    const out = decoded(method, bytes);
    const base = method === 'Check' ? { action: '', explain: false, request_id: '' } : { items: [], request_id: '' };
    expect(canonRequest(out)).toStrictEqual(canonRequest({ ...base, ...want } as DecodedCheckRequest));
  });

  it('key order is JavaScript\'s: integer-like keys first, then first-seen order', () => {
    const out = decoded('Check', context(struct(entry('b', num(1)), entry('10', num(2)), entry('a', num(3)), entry('2', num(4)), entry('b', num(5)))));
    expect(Object.keys(out.context!)).toEqual(['2', '10', 'b', 'a']);
    expect(out.context!['b']).toBe(5);
  });

  it('-0 stays -0', () => {
    expect(Object.is(decoded('Check', context(struct(entry('z', num(-0))))).context!['z'], -0)).toBe(true);
  });

  it.each(Object.entries(UNKNOWN))('skips an unknown %s field at every level', (_, u) => {
    const value = cat(u, s('v'), u);
    const st = struct(u, entry('a', value, u), u, entry('l', cat(len(6, cat(u, len(1, cat(u, num(1))), u)), u)));
    const check = decoded('Check', cat(u, token('t'), u, resource(cat(u, str(1, 'doc'), u, len(3, st), u)), context(st), u));
    expect(check).toMatchObject({ token: 't', resource: { type: 'doc', attributes: { a: 'v', l: [1] } }, context: { a: 'v', l: [1] } });
    const batch = decoded('CheckBatch', cat(u, item(cat(u, len(1, cat(str(1, 'doc'), len(3, st))), u, str(2, 'read'), u)), u, batchContext(st), u));
    expect(batch).toMatchObject({ items: [{ resource: { type: 'doc', attributes: { a: 'v', l: [1] } }, actions: ['read'] }], context: { a: 'v', l: [1] } });
  });

  it('an empty message', () => {
    expect(decoded('Check', cat())).toStrictEqual({ action: '', explain: false, request_id: '' });
    expect(decoded('CheckBatch', cat())).toStrictEqual({ items: [], request_id: '' });
  });

  // `ctx` writes the `context` field of the method under test (field 5 in Check, 4 in CheckBatch).
  it.each([
    { name: 'a truncated tag', bytes: () => Uint8Array.from([0x80]) },
    { name: 'a truncated string', bytes: () => Uint8Array.from([0x1a]) },
    { name: 'a sub-message longer than the message', bytes: () => Uint8Array.from([0x22, 0x05, 0x0a]) },
    { name: 'a Struct entry longer than its Struct', bytes: (ctx: (st: Uint8Array) => Uint8Array) => ctx(Uint8Array.from([0x0a, 0x09, 0x0a, 0x01, 0x61])) },
    { name: 'a Value longer than its entry', bytes: (ctx: (st: Uint8Array) => Uint8Array) => ctx(Uint8Array.from([0x0a, 0x05, 0x12, 0x09, 0x10, 0x01, 0x00])) },
    { name: 'a truncated double', bytes: (ctx: (st: Uint8Array) => Uint8Array) => ctx(struct(entry('a', Uint8Array.from([0x11, 0, 0, 0])))) },
    { name: 'an unknown field of wire type 4 (end group)', bytes: () => Uint8Array.from([0x44]) },
    { name: 'an unknown field of wire type 6', bytes: () => Uint8Array.from([0x46]) },
    { name: 'an unknown field of wire type 7, nested', bytes: (ctx: (st: Uint8Array) => Uint8Array) => ctx(struct(entry('a', cat(num(1), [0x47])))) },
    { name: 'an unterminated group', bytes: () => cat(tag(8, 3), vint(9, 1)) },
    { name: 'an unknown bytes field longer than the message', bytes: () => cat(tag(8, 2), [0x05, 0x00]) },
  ])('refuses $name, as protobufjs does', ({ bytes }) => {
    refused('Check', bytes(context));
    refused('CheckBatch', bytes(batchContext));
  });

  it('accepts an unknown varint of any length (skip reads to the last byte), as protobufjs does', () => {
    const long = cat(tag(8, 0), new Array<number>(20).fill(0xff), [0x01], action('a'));
    expect(decoded('Check', long).action).toBe('a');
  });

  it('refuses a Struct entry with no value, as toObject does (it decodes to null)', () => {
    refused('Check', context(struct(entry('a'))));
    refused('Check', cat(subject(struct(entry('a'))), token('t')));
    refused('Check', resource(len(3, struct(entry('ok', num(1)), entry('a')))));
    refused('CheckBatch', item(len(1, len(3, struct(entry('a'))))));
    // Inside a Value member that lost the kind: toObject converts every member.
    refused('Check', context(struct(entry('a', cat(sv(struct(entry('x'))), lv())))));
    // Next to a Value with no kind, or inside a Struct already too deep: the throw wins over `invalid`.
    refused('Check', context(struct(entry('no kind', noKind), entry('a'))));
    refused('Check', context(nestStruct(struct(entry('a')), 40)));
  });

  it('…unless something later replaces it', () => {
    expect(decoded('Check', context(struct(entry('a'), entry('a', num(1))))).context).toEqual({ a: 1 });
    expect(decoded('Check', cat(context(struct(entry('a'))), context(struct())))).toMatchObject({ context: {} });
    expect(decoded('Check', cat(resource(len(3, struct(entry('a')))), resource(str(1, 'doc')))).resource).toStrictEqual({ type: 'doc', id: '' });
    expect(decoded('Check', context(struct(entry('a', cat(sv(struct(entry('x'))), sv(struct()))))))).toMatchObject({ context: { a: {} } });
  });

  it.each([
    { name: 'a Value with no kind', bytes: context(struct(entry('a', noKind))), field: 'context.a', message: '`context.a` has a value with no kind set' },
    { name: 'only unknown fields in a Value', bytes: context(struct(entry('a', UNKNOWN['bytes']!))), field: 'context.a', message: '`context.a` has a value with no kind set' },
    { name: 'no kind, in a list in a struct', bytes: subject(struct(entry('x', sv(struct(entry('l', lv(num(1), noKind))))))), field: 'subject.x.l[1]', message: '`subject.x.l[1]` has a value with no kind set' },
    { name: 'the first in key order, integer keys first', bytes: context(struct(entry('b', noKind), entry('1', noKind))), field: 'context.1', message: '`context.1` has a value with no kind set' },
    { name: 'a replaced Value does not count', bytes: context(struct(entry('b', noKind), entry('a', noKind), entry('b', num(1)))), field: 'context.a', message: '`context.a` has a value with no kind set' },
    { name: 'a losing kind does not count', bytes: context(struct(entry('a', cat(sv(struct(entry('x', noKind))), lv())))), field: undefined, message: undefined },
    { name: 'subject before resource before context', bytes: cat(context(struct(entry('c', noKind))), resource(len(3, struct(entry('r', noKind)))), subject(struct(entry('s', noKind)))), field: 'subject.s', message: '`subject.s` has a value with no kind set' },
    { name: 'resource before context', bytes: cat(context(struct(entry('c', noKind))), resource(len(3, struct(entry('r', noKind))))), field: 'resource.attributes.r', message: '`resource.attributes.r` has a value with no kind set' },
  ])('invalid: $name', ({ bytes, field, message }) => {
    const out = decoded('Check', bytes);
    if (field === undefined) {
      expect(out.invalid).toBeUndefined();
    } else {
      expect(out.invalid).toBeInstanceOf(RequestError);
      expect(out.invalid).toMatchObject({ code: 'REQUEST_INVALID', field, message });
    }
  });

  it('invalid in a batch: subject, then context, then the items in order; the invalid Structs are left out', () => {
    const bad = len(3, struct(entry('x', noKind)));
    const items = cat(item(cat(len(1, str(1, 'ok')), str(2, 'read'))), item(cat(len(1, cat(str(1, 'doc'), bad)), str(2, 'read'))), item(len(1, bad)));
    const out = decoded('CheckBatch', items);
    expect(out.invalid).toMatchObject({ code: 'REQUEST_INVALID', field: 'items[1].resource.attributes.x', message: '`items[1].resource.attributes.x` has a value with no kind set' });
    expect(out.items.map((i) => i.resource)).toStrictEqual([{ type: 'ok', id: '' }, { type: 'doc', id: '' }, { type: '', id: '' }]);
    expect(decoded('CheckBatch', cat(items, batchContext(struct(entry('c', noKind))))).invalid).toMatchObject({ field: 'context.c' });
    expect(decoded('CheckBatch', cat(items, batchContext(struct(entry('c', noKind))), subject(struct(entry('s', noKind))))).invalid).toMatchObject({ field: 'subject.s' });
  });
});

// ---------------------------------------------------------------------------

/** `{a: {a: … {}}}`, `depth` objects deep. */
function nestedObject(depth: number): Record<string, unknown> {
  let o: Record<string, unknown> = {};
  for (let i = 1; i < depth; i++) o = { a: o };
  return o;
}

/** `{a: [[…[]]]}`: JSON `depth` levels deep through lists. */
function nestedList(depth: number): Record<string, unknown> {
  let v: unknown = [];
  for (let i = 2; i < depth; i++) v = [v];
  return { a: v };
}

/** `inner` (Struct bytes) nested `levels` Structs deep: `{a: {a: … inner}}`. */
function nestStruct(inner: Uint8Array, levels: number): Uint8Array {
  let st = inner;
  for (let i = 1; i < levels; i++) st = struct(entry('a', sv(st)));
  return st;
}

/**
 * A Struct nested `depth` levels (`{a: {a: …}}`) as wire bytes, written front
 * to back in one buffer: each level is a prefix of the one inside it.
 */
function deepStructBytes(depth: number): Buffer {
  // Per level: Struct = [0x0a, len(entry)] entry; entry = [0x0a, 0x01, 'a', 0x12, len(value)] value; value = [0x2a, len(struct)] struct.
  const structLen = new Array<number>(depth + 1).fill(0);
  const prefixes: number[][] = [];
  for (let d = depth - 1; d >= 1; d--) {
    const valueLen = 1 + varintBytes(structLen[d + 1]!).length + structLen[d + 1]!;
    const entryLen = 4 + varintBytes(valueLen).length + valueLen;
    structLen[d] = 1 + varintBytes(entryLen).length + entryLen;
    prefixes[d] = [0x0a, ...varintBytes(entryLen), 0x0a, 0x01, 0x61, 0x12, ...varintBytes(valueLen), 0x2a, ...varintBytes(structLen[d + 1]!)];
  }
  const out = Buffer.alloc(structLen[1]!);
  let at = 0;
  for (let d = 1; d < depth; d++) for (const b of prefixes[d]!) out[at++] = b;
  expect(at).toBe(out.length);
  return out;
}

describe('depth', () => {
  it.each([
    { shape: 'objects', make: nestedObject },
    { shape: 'lists', make: nestedList },
  ])('accepts 32 levels of $shape and refuses 33, as structToJson does (HARD_DEPTH agrees)', ({ make }) => {
    const encodings: [Method, (st: ProtoStruct) => object, string][] = [
      ['Check', (st) => ({ subject: st }), 'subject'],
      ['Check', (st) => ({ context: st }), 'context'],
      ['Check', (st) => ({ resource: { type: 'doc', attributes: st } }), 'resource.attributes'],
      ['CheckBatch', (st) => ({ items: [{ resource: { type: 'doc' } }, { resource: { type: 'doc', attributes: st } }] }), 'items[1].resource.attributes'],
    ];
    for (const [method, wrap, field] of encodings) {
      const serialize = method === 'Check' ? CHECK.requestSerialize : BATCH.requestSerialize;
      const st32 = jsonToStruct(make(32));
      const st33 = jsonToStruct(make(33));
      expect(() => structToJson(st32, field)).not.toThrow();
      expect(() => structToJson(st33, field)).toThrow(RequestError);
      expect(decoded(method, serialize(wrap(st32))).invalid).toBeUndefined();
      const invalid = decoded(method, serialize(wrap(st33))).invalid;
      expect(invalid).toBeInstanceOf(RequestError);
      expect(invalid?.message).toMatch(/is nested deeper than 32 levels$/);
    }
  });

  it('is invalid, not refused, between 33 levels and protobufjs\'s own limit (50 levels of Struct)', () => {
    for (const depth of [33, 40, 50]) {
      const out = decoded('Check', context(deepStructBytes(depth)));
      expect(out.invalid).toMatchObject({ code: 'REQUEST_INVALID', field: `context${'.a'.repeat(32)}` });
      expect(out.context).toBeUndefined();
    }
  });

  it('refuses what protobufjs refuses: past 100 nested messages, 100,000 levels included, without overflowing the stack', () => {
    // A Struct level is two messages (Struct, Value): in `context` (1 message down) level 51 is message 101.
    expect(decoded('Check', context(deepStructBytes(50))).invalid).toBeDefined();
    expect(String(refused('Check', context(deepStructBytes(51))))).toMatch(/maximum nesting depth exceeded/);
    expect(decoded('Check', resource(len(3, deepStructBytes(50)))).invalid).toBeDefined();
    expect(String(refused('CheckBatch', item(len(1, len(3, deepStructBytes(50))))))).toMatch(/maximum nesting depth exceeded/);
    const deep = context(deepStructBytes(100_000));
    expect(String(refused('Check', deep))).toMatch(/maximum nesting depth exceeded/);
    expect(() => decodeCheckRequest(Buffer.from(deep))).toThrow(/maximum nesting depth exceeded/);
  });

  const groups = (k: number): Uint8Array => cat(...Array.from({ length: k }, () => tag(8, 3)), vint(9, 1), ...Array.from({ length: k }, () => tag(8, 4)));
  it.each([
    { where: 'CheckRequest', method: 'Check' as Method, n: 0, wrap: (u: Uint8Array) => u },
    { where: 'Resource', method: 'Check' as Method, n: 1, wrap: (u: Uint8Array) => resource(u) },
    { where: 'Struct', method: 'Check' as Method, n: 1, wrap: (u: Uint8Array) => context(struct(u)) },
    { where: 'Struct entry (counted as its Struct)', method: 'Check' as Method, n: 1, wrap: (u: Uint8Array) => context(struct(entry('a', num(1), u))) },
    { where: 'Value', method: 'Check' as Method, n: 2, wrap: (u: Uint8Array) => context(struct(entry('a', cat(num(1), u)))) },
    { where: 'ListValue', method: 'Check' as Method, n: 3, wrap: (u: Uint8Array) => context(struct(entry('a', len(6, u)))) },
    { where: 'CheckBatchRequest', method: 'CheckBatch' as Method, n: 0, wrap: (u: Uint8Array) => u },
    { where: 'BatchItem', method: 'CheckBatch' as Method, n: 1, wrap: (u: Uint8Array) => item(u) },
    { where: 'BatchItem Resource', method: 'CheckBatch' as Method, n: 2, wrap: (u: Uint8Array) => item(len(1, u)) },
  ])('counts groups nested in an unknown field of a $where from that message\'s depth, as skipType does', ({ method, n, wrap }) => {
    // skipType refuses past Reader.recursionLimit (100), counting from the depth of the message the field is in.
    for (const k of [99 - n, 100 - n, 101 - n]) expect(expectSame(method, wrap(groups(k))).threw).toBe(k > 100 - n);
  });
});

// ---------------------------------------------------------------------------

describe('short ASCII strings are interned', () => {
  it('repeated strings are one string; many distinct strings (slot collisions) still decode exactly', () => {
    const rand = fc.sample(fc.string({ unit: 'binary-ascii', maxLength: 33 }), { numRuns: 6000, seed: 7 });
    // Same-length near-misses too: differ in one character from a string seen just before.
    const strings = rand.flatMap((x) => (x.length === 0 ? [x] : [x, `${x.slice(0, -1)}${x.at(-1) === 'a' ? 'b' : 'a'}`]));
    const ctx = Object.fromEntries(strings.map((x, i) => [`k${i}`, x]));
    const bytes = CHECK.requestSerialize({ action: 'read', context: jsonToStruct(ctx) });
    for (let pass = 0; pass < 2; pass++) {
      const out = decodeCheckRequest(bytes);
      expect(out).toEqual(referenceCheck(bytes));
      expect(Object.values(out.context ?? {})).toEqual(strings);
    }
    const repeated = CHECK.requestSerialize({ action: 'department', context: jsonToStruct({ department: 'department' }) });
    const a = decodeCheckRequest(repeated);
    const b = decodeCheckRequest(repeated);
    expect(a.action).toBe('department');
    expect(Object.keys(b.context ?? {})).toEqual(['department']);
    // Non-ASCII and long strings take protobufjs's path, and agree with it.
    const other = CHECK.requestSerialize({ action: 'ünïcödé', context: jsonToStruct({ long: 'x'.repeat(40), emoji: '🙂' }) });
    expect(decodeCheckRequest(other)).toEqual(referenceCheck(other));
  });
});

describe('plain scalar Struct entries are kept', () => {
  it('the same entry bytes give the same key and value; near-misses, other layouts and every scalar kind decode exactly', () => {
    const values = fc.sample(fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 20 }), fc.double(), fc.boolean(), fc.constant(null)), { numRuns: 3000, seed: 11 });
    const ctx = Object.fromEntries(values.map((v, i) => [`k${i % 50}_${i}`, v]));
    const bytes = CHECK.requestSerialize({ action: 'read', context: jsonToStruct(ctx) });
    for (let pass = 0; pass < 2; pass++) expect(decodeCheckRequest(bytes)).toEqual(referenceCheck(bytes));
    // Hand-written layouts: the plain one, then the same key and value with an unknown field, a repeated
    // member, and a null written with a long varint; each must decode as protobufjs does, before and after
    // the plain one is kept.
    const plain = entry('dept', s('eng'));
    const variants = [
      plain,
      entry('dept', s('eng'), vint(9, 1)),
      entry('dept', cat(s('eng'), vint(9, 1))),
      entry('dept', cat(s('xyz'), s('eng'))),
      entry('dept', s('enh')),
      entry('deqt', s('eng')),
      entry('dept', nul(2n ** 40n)),
      entry('dept', bool(2n ** 32n)),
      entry('dept', num(-0)),
    ];
    for (let pass = 0; pass < 2; pass++) for (const v of variants) expectSame('Check', context(struct(v)));
    expect(decoded('Check', context(struct(plain))).context).toEqual({ dept: 'eng' });
  });

  it('an entry whose varint runs past 10 bytes is never kept (protobufjs reads what follows as more fields, at a depth that matters)', () => {
    // Found in review: bool_value as a 10-byte varint, then bytes that protobufjs reads as unknown groups.
    const ten = (first: number, last = 0x80): number[] => [first, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, last];
    const value = Uint8Array.from([0x20, ...ten(0x80), ...ten(0xbb), ...ten(0xbb), ...ten(0xbc), ...ten(0xbc, 0x00)]);
    const odd = entry('k', value);
    expect(decoded('Check', context(struct(odd))).context).toEqual({ k: false });
    let deep: Uint8Array = struct(odd);
    for (let i = 1; i < 50; i++) deep = struct(entry('k', sv(deep)));
    // protobufjs refuses this nesting; so must the decoder, even with the shallow copy seen just before.
    expect(refused('Check', context(deep))).toBeInstanceOf(Error);
  });

  it('a kept entry nested past protobufjs\'s limit is still refused', () => {
    const plain = entry('a', s('b'));
    expect(decoded('Check', context(struct(plain))).context).toEqual({ a: 'b' });
    let deep: Uint8Array = struct(plain);
    // Each level is a Struct inside a Value inside an entry: past about 50 levels protobufjs refuses.
    for (let i = 0; i < 60; i++) deep = struct(entry('x', sv(deep)));
    expect(() => decodeCheckRequest(Buffer.from(context(deep)))).toThrow();
    expect(() => CHECK.requestDeserialize(Buffer.from(context(deep)))).toThrow();
  });
});

describe('__proto__ and constructor keys', () => {
  it('become own data properties and never touch a prototype', () => {
    const polluting = struct(entry('__proto__', sv(struct(entry('polluted', bool(1))))), entry('constructor', sv(struct(entry('prototype', sv(struct(entry('polluted', bool(1)))))))));
    const out = decoded('Check', cat(subject(polluting), context(struct(entry('l', lv(sv(polluting)))))));
    for (const obj of [out.subject!, (out.context!['l'] as Json[])[0] as Record<string, Json>]) {
      expect(Object.getPrototypeOf(obj)).toBe(Object.prototype);
      expect(Object.getOwnPropertyDescriptor(obj, '__proto__')).toEqual({ value: { polluted: true }, writable: true, enumerable: true, configurable: true });
      expect(Object.hasOwn(obj, 'constructor')).toBe(true);
      expect(Object.keys(obj)).toEqual(['__proto__', 'constructor']);
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect((Object.prototype as unknown as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------

describe('behind grpc-js', () => {
  let server: grpc.Server | undefined;
  let client: grpc.Client | undefined;
  let arbiter: Harness | undefined;

  beforeAll(async () => {
    server = new grpc.Server();
    const echo = (call: grpc.ServerUnaryCall<DecodedCheckRequest, unknown>, callback: grpc.sendUnaryData<unknown>): void => {
      callback(null, { request_id: call.request.request_id, reason: call.request.invalid?.field ?? 'valid' });
    };
    // Both methods answer with a CheckResponse (the client reads both with its deserializer): only the request side is under test.
    server.addService(
      { Check: { ...CHECK, requestDeserialize: decodeCheckRequest }, CheckBatch: { ...BATCH, requestDeserialize: decodeCheckBatchRequest, responseSerialize: CHECK.responseSerialize } },
      { Check: echo, CheckBatch: echo },
    );
    const s = server;
    const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e))));
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    // Arbiter's server (src/server/grpc.ts), whose deserializers are these decoders.
    arbiter = await startHarness();
  });

  afterAll(async () => {
    client?.close();
    const s = server;
    await new Promise<void>((resolve) => (s === undefined ? resolve() : s.tryShutdown(() => resolve())));
    await arbiter?.close();
  });

  /** Sends `bytes` as they are (the client's serializer is the identity). */
  function send(c: grpc.Client, method: Method, bytes: Uint8Array): Promise<{ error: grpc.ServiceError | null; response: Record<string, unknown> | undefined }> {
    return new Promise((resolve) => {
      c.makeUnaryRequest(
        `/arbiter.v1.Authorizer/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => CHECK.responseDeserialize(b) as Record<string, unknown>,
        Buffer.from(bytes),
        { deadline: Date.now() + 10_000 },
        (error, response) => resolve({ error, response }),
      );
    });
  }

  it('a bare decoder throw is INTERNAL "Error deserializing request" (grpc-js); Arbiter answers INVALID_ARGUMENT naming `request` instead, and stays up', async () => {
    const bad = Uint8Array.from([0x22, 0x05, 0x0a]);
    for (const method of ['Check', 'CheckBatch'] as const) {
      const bare = await send(client!, method, bad);
      expect(bare.error?.code).toBe(grpc.status.INTERNAL);
      expect(bare.error?.details).toBe('Error deserializing request');
      const served = await send(arbiter!.client(), method, bad);
      expect(served.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(served.error?.details).toMatch(new RegExp(`^request: the request is not a valid arbiter\\.v1\\.${method}Request message \\(.+\\)$`));
      expect(served.error?.metadata.get('arbiter-field')).toEqual(['request']);
    }
    // Nesting past protobufjs's limit is refused the same way, and the server answers the next call.
    let deep: Uint8Array = struct();
    for (let i = 0; i < 60; i++) deep = struct(entry('a', sv(deep)));
    expect((await send(arbiter!.client(), 'Check', context(deep))).error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const next = await send(arbiter!.client(), 'Check', cat(requestId('r-ok'), action('read'), resource(str(1, 'document'))));
    expect(next.error).toBeNull();
    expect(next.response).toMatchObject({ request_id: 'r-ok', decision: 'DENY' });
  });

  it('a caller not trusted to send `subject` is refused as such even when the subject is malformed (the order of the checks is kept)', async () => {
    const malformed = cat(subject(struct(entry('a', noKind))), action('read'), resource(str(1, 'document')));
    for (const method of ['Check', 'CheckBatch'] as const) {
      const bytes = method === 'Check' ? malformed : cat(subject(struct(entry('a', noKind))), item(cat(len(1, str(1, 'document')), str(2, 'read'))));
      expect((await send(arbiter!.client(), method, bytes)).error?.code).toBe(grpc.status.PERMISSION_DENIED);
    }
    // A malformed context from a token caller is the field's error.
    const served = await send(arbiter!.client(), 'Check', cat(token('t'), action('read'), resource(str(1, 'document')), context(struct(entry('a', noKind)))));
    expect(served.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(served.error?.metadata.get('arbiter-field')).toEqual(['context.a']);
  });

  it('hands the handler the decoded request, `invalid` included', async () => {
    expect((await send(client!, 'Check', requestId('r-1'))).response).toMatchObject({ request_id: 'r-1', reason: 'valid' });
    expect((await send(client!, 'Check', cat(requestId('r-2'), context(struct(entry('a', noKind)))))).response).toMatchObject({ request_id: 'r-2', reason: 'context.a' });
    expect((await send(client!, 'CheckBatch', cat(str(5, 'r-3'), item(len(1, len(3, struct(entry('a', noKind)))))))).response).toMatchObject({ request_id: 'r-3', reason: 'items[0].resource.attributes.a' });
  });
});

describe('CheckBatch limits, enforced while decoding', () => {
  const limits = { maxItems: 3, maxActionsPerItem: 2 };
  const batch = (items: number, actions: number): Buffer =>
    BATCH.requestSerialize({ request_id: 'r', items: Array.from({ length: items }, (_, i) => ({ resource: { type: 'doc', id: `d${i}` }, actions: Array.from({ length: actions }, (_, j) => `a${j}`) })) });

  it('at the limits, everything is decoded, exactly as without them', () => {
    const b = batch(3, 2);
    expect(decodeCheckBatchRequest(b, limits)).toEqual(decodeCheckBatchRequest(b));
    expect(decodeCheckBatchRequest(b, limits).invalid).toBeUndefined();
  });

  it('one item or one action over: refused, naming the field, without the rest decoded', () => {
    const items = decodeCheckBatchRequest(batch(4, 1), limits);
    expect(items.items).toEqual([]);
    expect(items.invalid).toMatchObject({ code: 'REQUEST_INVALID', field: 'items', message: '`items` has more than 3 items; at most 3 are allowed per call' });
    const actions = decodeCheckBatchRequest(batch(2, 3), limits);
    expect(actions.invalid).toMatchObject({ field: 'items[0].actions', message: '`items[0].actions` lists more than 2 actions; at most 2 are allowed per item' });
    // Millions of empty items stop at the limit (the whole 4 MiB would be about 2 million objects).
    const many = Buffer.alloc(2 * 2_000_000);
    for (let i = 0; i < many.length; i += 2) many[i] = 0x1a; // field 3, length 0: an empty BatchItem
    expect(decodeCheckBatchRequest(many, { maxItems: 1000, maxActionsPerItem: 100 }).invalid?.field).toBe('items');
  });
});

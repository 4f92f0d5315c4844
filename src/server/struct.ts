/**
 * google.protobuf.Struct / Value (as proto-loader decodes them with
 * `oneofs: true`) to plain JSON and back. Depth is bounded here so that no
 * message can make the conversion recurse without limit; finer bounds (depth
 * 16, value counts, string sizes) are checked by request validation after.
 */
import { RequestError } from '../errors.js';

/** A decoded `google.protobuf.Value`. */
export interface ProtoValue {
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue';
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
  listValue?: { values?: ProtoValue[] };
}

/** A decoded `google.protobuf.Struct`. */
export interface ProtoStruct {
  fields?: Record<string, ProtoValue>;
}

export type Json = null | number | string | boolean | Json[] | { [k: string]: Json };

/** Deeper than this is refused outright (request validation allows 16). */
const HARD_DEPTH = 32;

/**
 * A Struct as a JSON object. `field` names it in errors (`resource.attributes`).
 *
 * @throws {RequestError} `REQUEST_INVALID` when it nests too deep or holds a value with no kind
 */
export function structToJson(struct: ProtoStruct | null | undefined, field: string): { [k: string]: Json } | undefined {
  if (struct === null || struct === undefined) return undefined;
  return structFields(struct, field, 1);
}

function structFields(struct: ProtoStruct, field: string, depth: number): { [k: string]: Json } {
  if (depth > HARD_DEPTH) throw new RequestError('REQUEST_INVALID', field, `\`${field}\` is nested deeper than ${HARD_DEPTH} levels`);
  // fromEntries defines own properties: a key `__proto__` stays a key.
  return Object.fromEntries(Object.entries(struct.fields ?? {}).map(([k, v]) => [k, valueToJson(v, `${field}.${k}`, depth + 1)]));
}

function valueToJson(v: ProtoValue, field: string, depth: number): Json {
  switch (v.kind) {
    case 'nullValue':
      return null;
    case 'numberValue':
      return v.numberValue ?? 0;
    case 'stringValue':
      return v.stringValue ?? '';
    case 'boolValue':
      return v.boolValue ?? false;
    case 'structValue':
      return structFields(v.structValue ?? {}, field, depth);
    case 'listValue': {
      if (depth > HARD_DEPTH) throw new RequestError('REQUEST_INVALID', field, `\`${field}\` is nested deeper than ${HARD_DEPTH} levels`);
      return (v.listValue?.values ?? []).map((x, i) => valueToJson(x, `${field}[${i}]`, depth + 1));
    }
    default:
      throw new RequestError('REQUEST_INVALID', field, `\`${field}\` has a value with no kind set`);
  }
}

/** A JSON object as a Struct (for clients: `arbiter call`, tests, the bench). */
export function jsonToStruct(obj: Readonly<Record<string, unknown>>): ProtoStruct {
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, jsonToValue(v)])) };
}

function jsonToValue(v: unknown): ProtoValue {
  if (v === null || v === undefined) return { kind: 'nullValue', nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { kind: 'numberValue', numberValue: v };
  if (typeof v === 'string') return { kind: 'stringValue', stringValue: v };
  if (typeof v === 'boolean') return { kind: 'boolValue', boolValue: v };
  if (Array.isArray(v)) return { kind: 'listValue', listValue: { values: v.map(jsonToValue) } };
  return { kind: 'structValue', structValue: jsonToStruct(v as Record<string, unknown>) };
}

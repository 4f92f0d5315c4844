/**
 * google.protobuf.Struct / Value as proto-loader's objects (with `oneofs:
 * true`), and JSON to them: for clients (`arbiter call`, tests, the bench).
 * The server reads Structs straight from the bytes (decode.ts).
 */

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

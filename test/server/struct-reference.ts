/**
 * The reference conversion of proto-loader's Struct objects to JSON: what the
 * handlers did before they read requests with src/server/decode.ts, and what
 * the decoders are tested against (proto-loader decode, then this, must give
 * what the decoders give).
 */
import { RequestError } from '../../src/errors.js';
import type { Json, ProtoStruct, ProtoValue } from '../../src/server/struct.js';

/** Deeper than this is refused outright (request validation allows 16). */
export const HARD_DEPTH = 32;

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


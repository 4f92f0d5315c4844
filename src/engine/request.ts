/**
 * Validation of requests that arrive as untrusted JSON (CLI input now, the
 * gRPC server later): shape, types and size bounds, with the offending field
 * named in the error.
 */
import { RequestError } from '../errors.js';
import type { Attributes } from '../compile/index.js';
import type { Request } from '../eval/evaluate.js';

/** Bounds on what a caller may send. */
export const REQUEST_LIMITS = {
  /** Longest action name, resource type or id. */
  maxNameLength: 256,
  maxIdLength: 1024,
  /** Deepest nesting of attribute objects and lists. */
  maxDepth: 16,
  /** Most values (scalars, objects, lists) across all attributes of a request. */
  maxValues: 10_000,
  /** Longest string attribute value. */
  maxStringLength: 65_536,
} as const;

export interface ParseRequestOptions {
  /** The subject will come from a verified token: `subject` must be absent (the result's is empty). */
  readonly subjectFromToken?: boolean;
}

/**
 * Checks an untrusted value and returns it as a {@link Request}.
 *
 * @throws {RequestError} code `REQUEST_INVALID`, `field` naming the first offending field
 * @example
 * parseRequest(JSON.parse(text)) // { subject, action, resource, context }
 */
export function parseRequest(value: unknown, options: ParseRequestOptions = {}): Request {
  if (!isObject(value)) throw invalid('', 'request must be a JSON object');
  const budget = { values: 0 };
  const fromToken = options.subjectFromToken === true;
  if (fromToken && value['subject'] !== undefined) throw invalid('subject', 'the subject comes from the verified token: give `subject` or a token, not both');
  const subject = fromToken ? {} : attributes(value['subject'], 'subject', budget, true);
  const action = value['action'];
  if (typeof action !== 'string' || action.length === 0) throw invalid('action', '`action` is required and must be a non-empty string');
  if (action.length > REQUEST_LIMITS.maxNameLength) throw invalid('action', `\`action\` is longer than ${REQUEST_LIMITS.maxNameLength} characters`);
  const resource = resourceOf(value['resource'], budget);
  const context = attributes(value['context'], 'context', budget, false);
  for (const key of Object.keys(value)) {
    if (!['subject', 'action', 'resource', 'context'].includes(key)) throw invalid(key, `unknown field \`${key}\``);
  }
  return { subject, action, resource, context };
}

/**
 * Checks an untrusted resource on its own, as {@link parseRequest} checks
 * `request.resource` (the same fields in errors, `resource.type` and so on,
 * and its own value budget): for a batch, whose items are resources.
 *
 * @throws {RequestError} code `REQUEST_INVALID`, `field` naming the first offending field
 * @example
 * parseResource({ type: 'document', id: 'd1', attributes: { owner: 'alice' } })
 */
export function parseResource(value: unknown): Request['resource'] {
  return resourceOf(value, { values: 0 });
}

function resourceOf(resource: unknown, budget: { values: number }): Request['resource'] {
  if (!isObject(resource)) throw invalid('resource', '`resource` is required and must be an object');
  const type = resource['type'];
  if (typeof type !== 'string' || type.length === 0) throw invalid('resource.type', '`resource.type` is required and must be a non-empty string');
  if (type.length > REQUEST_LIMITS.maxNameLength) throw invalid('resource.type', `\`resource.type\` is longer than ${REQUEST_LIMITS.maxNameLength} characters`);
  const id = resource['id'];
  if (id !== undefined && typeof id !== 'string') throw invalid('resource.id', '`resource.id` must be a string');
  if (typeof id === 'string' && id.length > REQUEST_LIMITS.maxIdLength) throw invalid('resource.id', `\`resource.id\` is longer than ${REQUEST_LIMITS.maxIdLength} characters`);
  const given = resource['attributes'];
  const attrs = attributes(given, 'resource.attributes', budget, false);
  let keys = 0;
  for (const key in resource) {
    if (!Object.hasOwn(resource, key)) continue;
    keys++;
    if (key !== 'type' && key !== 'id' && key !== 'attributes') throw invalid(`resource.${key}`, `unknown field \`resource.${key}\`; resource attributes go under \`resource.attributes\``);
  }
  // Already exactly the result (a decoded batch item's resource): keep it rather than copy.
  if (keys === 3 && id !== undefined && given === attrs) return resource as Request['resource'];
  return id === undefined ? { type, attributes: attrs } : { type, id, attributes: attrs };
}

function invalid(field: string, message: string): RequestError {
  return new RequestError('REQUEST_INVALID', field, message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function attributes(v: unknown, field: string, budget: { values: number }, required: boolean): Attributes {
  if (v === undefined && !required) return {};
  if (!isObject(v)) throw invalid(field, `\`${field}\` ${required ? 'is required and ' : ''}must be an object`);
  const before = budget.values;
  if (!valid(v, 1, budget)) {
    // Found wanting: walk again, naming fields, to say where.
    budget.values = before;
    checkValue(v, field, 1, budget);
  }
  return v as Attributes;
}

/**
 * {@link checkValue}'s checks without naming fields: the path of every value
 * would otherwise be built as a string for a request that is almost always
 * valid. Counts into `budget` as checkValue does.
 */
function valid(v: unknown, depth: number, budget: { values: number }): boolean {
  if (++budget.values > REQUEST_LIMITS.maxValues) return false;
  if (v === null || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (typeof v === 'string') return v.length <= REQUEST_LIMITS.maxStringLength;
  if (depth > REQUEST_LIMITS.maxDepth) return false;
  if (Array.isArray(v)) {
    for (const item of v) if (!valid(item, depth + 1, budget)) return false;
    return true;
  }
  if (isObject(v)) {
    for (const k of Object.keys(v)) if (!valid(v[k], depth + 1, budget)) return false;
    return true;
  }
  return false;
}

function checkValue(v: unknown, field: string, depth: number, budget: { values: number }): void {
  if (++budget.values > REQUEST_LIMITS.maxValues) throw invalid(field, `request has more than ${REQUEST_LIMITS.maxValues} attribute values`);
  if (v === null || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw invalid(field, `\`${field}\` is not a finite number`);
    return;
  }
  if (typeof v === 'string') {
    if (v.length > REQUEST_LIMITS.maxStringLength) throw invalid(field, `\`${field}\` is longer than ${REQUEST_LIMITS.maxStringLength} characters`);
    return;
  }
  if (depth > REQUEST_LIMITS.maxDepth) throw invalid(field, `\`${field}\` is nested deeper than ${REQUEST_LIMITS.maxDepth} levels`);
  if (Array.isArray(v)) {
    v.forEach((item, i) => checkValue(item, `${field}[${i}]`, depth + 1, budget));
    return;
  }
  if (isObject(v)) {
    for (const [k, item] of Object.entries(v)) checkValue(item, `${field}.${k}`, depth + 1, budget);
    return;
  }
  throw invalid(field, `\`${field}\` is not a JSON value`);
}

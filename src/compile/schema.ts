/**
 * Schemas: the attributes that a policy set's requests carry, and their
 * types, as Cedar's validator has them.
 *
 * A policy directory may hold one `schema.yaml` at its root:
 *
 * ```yaml
 * subject:                       # attributes of every subject
 *   sub: string
 *   roles: set<string>?
 * resources:                     # per resource type
 *   document:
 *     owner: string
 *     classification: enum(public, internal, secret)
 * context:
 *   ip: ip?
 * ```
 *
 * With one, the compiler checks every condition against it (expr.ts: unknown
 * attributes, mismatched types, comparisons that can never hold), and the
 * engine can check requests against it at run time
 * ({@link validateAgainstSchema}). The schema is an input of compilation like
 * the policy text: this module parses text and never reads a file.
 *
 * Type checking never changes what a policy means: the compiled closures are
 * the same with a schema as without one; the schema only rejects policies.
 */
import { ConfigDocument, type YamlPosition } from '../config/reader.js';
import type { Diagnostic, SourceLocation } from '../errors.js';
import { isIpAddress, toTimestamp } from './ops.js';
import { closest, didYouMean } from './suggest.js';
import type { Attributes } from './tree.js';

/** The schema's file name, at the root of a policy directory. */
export const SCHEMA_FILE = 'schema.yaml';

/** Deepest nesting of object types in a schema. */
export const MAX_SCHEMA_DEPTH = 16;

/** What the engine does with a request that does not match the schema (`schema.validate_requests`). */
export const REQUEST_VALIDATION_MODES = ['off', 'warn', 'reject'] as const;
/** One of {@link REQUEST_VALIDATION_MODES}. */
export type RequestValidationMode = (typeof REQUEST_VALIDATION_MODES)[number];

/** Types written as one word. `record` is an object whose members are not checked. */
export type SimpleKind = 'string' | 'number' | 'bool' | 'ip' | 'timestamp' | 'record';

/** A type written as one word: `string`, `number`, `bool`, `ip`, `timestamp`, `record`. */
export interface SimpleType {
  readonly kind: SimpleKind;
}

/** `set<string>` or `set<number>`: a list of such values. */
export interface SetType {
  readonly kind: 'set';
  readonly of: 'string' | 'number';
}

/** `enum(a, b, c)`: a string that is one of these values. */
export interface EnumType {
  readonly kind: 'enum';
  readonly values: readonly string[];
}

/** A YAML mapping in the schema: an object with these attributes (others may be present, and cannot be read). */
export interface ObjectType {
  readonly kind: 'object';
  readonly attributes: ReadonlyMap<string, SchemaAttribute>;
}

/** A declared attribute type. */
export type SchemaType = SimpleType | SetType | EnumType | ObjectType;

/** One declared attribute. */
export interface SchemaAttribute {
  readonly type: SchemaType;
  /** Written with `?`: a request may leave it out. */
  readonly optional: boolean;
  /** Where it is declared in the schema file. */
  readonly location: SourceLocation;
}

/** The attributes of one resource type. */
export interface ResourceSchema {
  readonly attributes: ObjectType;
  /** The type's key in the schema file. */
  readonly location: SourceLocation;
}

/**
 * A parsed schema. A section that is absent is not checked (its attributes
 * stay dynamic, as without a schema); a section that is present is strict:
 * only the attributes it declares may be read.
 */
export interface Schema {
  /** The schema file's path in the policy set (`schema.yaml`). */
  readonly source: string;
  readonly subject?: ObjectType;
  /** When present, every resource type of the policies must be in it, and it may list no other. */
  readonly resources?: ReadonlyMap<string, ResourceSchema>;
  readonly context?: ObjectType;
}

/** The schema file as given to the compiler. */
export interface SchemaSource {
  readonly path: string;
  readonly text: string;
}

const SIMPLE_KINDS: readonly SimpleKind[] = ['string', 'number', 'bool', 'ip', 'timestamp', 'record'];
const TYPE_WORDS = [...SIMPLE_KINDS, 'set<string>', 'set<number>', 'enum(…)'];
/** Names from other languages, and what to write instead. */
const TYPE_ALIASES: Readonly<Record<string, string>> = {
  boolean: 'bool',
  int: 'number',
  integer: 'number',
  float: 'number',
  double: 'number',
  long: 'number',
  str: 'string',
  text: 'string',
  list: 'set<string>',
  array: 'set<string>',
  set: 'set<string>',
  object: 'record',
  map: 'record',
  dict: 'record',
  date: 'timestamp',
  datetime: 'timestamp',
  time: 'timestamp',
  address: 'ip',
  enum: 'enum(a, b, c)',
};
const SECTIONS = ['subject', 'resources', 'context'] as const;
const CODE = 'COMPILE_SCHEMA_INVALID';

type PathSegment = string | number;

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Map);
}

/**
 * How a type is written in the schema: `string`, `set<string>`,
 * `enum(a, b)`, `an object`.
 */
export function formatSchemaType(t: SchemaType): string {
  switch (t.kind) {
    case 'set':
      return `set<${t.of}>`;
    case 'enum':
      return `enum(${t.values.join(', ')})`;
    case 'object':
      return 'object';
    default:
      return t.kind;
  }
}

/**
 * Parses a schema file, reporting every problem it finds as a
 * `COMPILE_SCHEMA_INVALID` diagnostic located in the file.
 *
 * @returns the schema, or `undefined` when anything was reported
 * @example
 * const schema = parseSchema({ path: 'schema.yaml', text: 'subject:\n  sub: string\n' }, (d) => errors.push(d));
 * schema?.subject?.attributes.get('sub')?.type // { kind: 'string' }
 */
export function parseSchema(source: SchemaSource, report: (d: Diagnostic) => void): Schema | undefined {
  const parsed = ConfigDocument.tryParse(source.text, source.path, '.');
  if (!parsed.ok) {
    report({ code: CODE, message: `invalid YAML: ${lowerFirst(parsed.message)}`, location: { source: source.path, start: toPosition(parsed), end: toPosition(parsed) } });
    return undefined;
  }
  return new SchemaReader(parsed.doc, source.path, report).read();
}

/**
 * The values of `enum(...)`, between the parentheses: bare words, or JSON
 * strings for values with spaces, commas, parentheses or quotes. A message
 * when malformed.
 */
function splitEnum(body: string): string[] | string {
  const out: string[] = [];
  let i = 0;
  const skipSpaces = (): void => {
    while (i < body.length && /\s/.test(body[i] ?? '')) i++;
  };
  for (;;) {
    skipSpaces();
    let item: string;
    if (body[i] === '"') {
      let j = i + 1;
      while (j < body.length && body[j] !== '"') j += body[j] === '\\' ? 2 : 1;
      const quoted = body.slice(i, j + 1);
      try {
        item = JSON.parse(quoted) as string;
      } catch {
        return `${quoted} is not a valid quoted enum value`;
      }
      i = j + 1;
    } else {
      let j = i;
      while (j < body.length && body[j] !== ',') j++;
      item = body.slice(i, j).trim();
      if (item === '') return 'an enum value is empty';
      if (/[\s"()]/.test(item)) return `enum value \`${item}\` must be quoted`;
      i = j;
    }
    out.push(item);
    skipSpaces();
    if (i >= body.length) return out;
    if (body[i] !== ',') return `expected \`,\` after enum value \`${item}\``;
    i++;
  }
}

function toPosition(p: YamlPosition): SourceLocation['start'] {
  return { offset: p.offset, line: p.line, column: p.col };
}

function lowerFirst(s: string): string {
  return s.length > 0 && /^[A-Z][a-z]/.test(s) ? s[0]!.toLowerCase() + s.slice(1) : s;
}

class SchemaReader {
  #failed = false;

  constructor(
    private readonly doc: ConfigDocument,
    private readonly source: string,
    private readonly reportTo: (d: Diagnostic) => void,
  ) {}

  read(): Schema | undefined {
    let root: unknown;
    try {
      root = this.doc.toValue();
    } catch (e) {
      this.report([], 'key', `invalid YAML: ${(e as Error).message}`);
      return undefined;
    }
    if (root === null || root === undefined) return { source: this.source };
    if (!isMapping(root)) {
      this.report([], 'value', 'the schema must be a mapping with the sections `subject`, `resources` and `context`');
      return undefined;
    }
    for (const key of Object.keys(root)) {
      if ((SECTIONS as readonly string[]).includes(key)) continue;
      this.report([key], 'key', `\`${key}\` is not a schema section`, didYouMean(key, SECTIONS) ?? 'the sections are `subject`, `resources` and `context`');
    }
    const section = (name: (typeof SECTIONS)[number]): ObjectType | undefined => {
      if (!Object.hasOwn(root, name)) return undefined;
      return this.object(root[name], [name], name, 1);
    };
    const subject = section('subject');
    const context = section('context');
    let resources: Map<string, ResourceSchema> | undefined;
    if (Object.hasOwn(root, 'resources')) {
      const value = root['resources'];
      if (!isMapping(value)) {
        this.report(['resources'], 'value', '`resources` must be a mapping of resource types to their attributes', 'write `{}` for none');
      } else {
        resources = new Map();
        for (const [type, attrs] of Object.entries(value)) {
          const t = this.object(attrs, ['resources', type], `resources.${type}`, 2);
          for (const reserved of ['type', 'id']) {
            const a = t?.attributes.get(reserved);
            if (a !== undefined) {
              this.reportAt(a.location, `\`${reserved}\` cannot be a resource attribute: \`resource.${reserved}\` is the resource's ${reserved} (always a string)`, 'give the attribute another name');
            }
          }
          if (t !== undefined) resources.set(type, { attributes: t, location: this.locate(['resources', type], 'key') });
        }
      }
    }
    // Attributes with a meaning of their own must keep their type.
    const roles = subject?.attributes.get('roles');
    if (roles !== undefined && !(roles.type.kind === 'set' && roles.type.of === 'string')) {
      this.reportAt(roles.location, '`subject.roles` must be `set<string>`: role tests read the roles from it', 'write `roles: set<string>` (or `set<string>?`)');
    }
    const time = context?.attributes.get('time');
    if (time !== undefined && time.type.kind !== 'timestamp') {
      this.reportAt(time.location, '`context.time` must be `timestamp`: it is the request time', 'write `time: timestamp?`');
    }
    if (this.#failed) return undefined;
    return {
      source: this.source,
      ...(subject === undefined ? {} : { subject }),
      ...(resources === undefined ? {} : { resources }),
      ...(context === undefined ? {} : { context }),
    };
  }

  /** A mapping of attribute names to types. */
  private object(value: unknown, path: readonly PathSegment[], name: string, depth: number): ObjectType | undefined {
    if (!isMapping(value)) {
      this.report(path, 'value', `\`${name}\` must be a mapping of attribute names to types`, value === null || value === undefined ? 'write `{}` for none' : undefined);
      return undefined;
    }
    if (depth > MAX_SCHEMA_DEPTH) {
      this.report(path, 'key', `the schema nests objects deeper than ${MAX_SCHEMA_DEPTH} levels`);
      return undefined;
    }
    const attributes = new Map<string, SchemaAttribute>();
    for (const [key, v] of Object.entries(value)) {
      const at = [...path, key];
      let attrName = key;
      let optional = false;
      let type: SchemaType | undefined;
      if (isMapping(v)) {
        // An object attribute is marked optional on its key: `address?: { city: string }`.
        if (key.endsWith('?') && key.length > 1) {
          attrName = key.slice(0, -1);
          optional = true;
        }
        type = this.object(v, at, `${name}.${attrName}`, depth + 1);
      } else {
        if (key.endsWith('?') && key.length > 1) {
          const t = typeof v === 'string' ? v.trim() : 'string';
          this.report(at, 'key', `\`${key}\`: write the \`?\` of an optional attribute after its type`, `write \`${key.slice(0, -1)}: ${t.endsWith('?') ? t : `${t}?`}\``);
          continue;
        }
        const parsed = this.type(v, at, `${name}.${key}`);
        if (parsed !== undefined) {
          type = parsed.type;
          optional = parsed.optional;
        }
      }
      if (attributes.has(attrName)) {
        this.report(at, 'key', `attribute \`${name}.${attrName}\` is declared twice`);
        continue;
      }
      if (type !== undefined) attributes.set(attrName, { type, optional, location: this.locate(at, 'key') });
    }
    return { kind: 'object', attributes };
  }

  /** A type written as a string: `string`, `set<number>?`, `enum(a, b)`. */
  private type(value: unknown, path: readonly PathSegment[], name: string): { type: SchemaType; optional: boolean } | undefined {
    if (value === null || value === undefined) {
      this.report(path, 'key', `\`${name}\` needs a type`, 'write a type such as `string`, `set<string>` or `enum(a, b)`, or a mapping of attributes');
      return undefined;
    }
    if (typeof value !== 'string') {
      this.report(path, 'value', `\`${name}\` must be a type such as \`string\`, \`set<string>\` or \`enum(a, b)\`, or a mapping of attributes`, Array.isArray(value) ? 'a list of values is `set<string>`, a choice of strings `enum(a, b)`' : undefined);
      return undefined;
    }
    let text = value.trim();
    let optional = false;
    if (text.endsWith('?')) {
      optional = true;
      text = text.slice(0, -1).trim();
    }
    const fail = (message: string, help?: string): undefined => {
      this.report(path, 'value', message, help);
      return undefined;
    };
    if ((SIMPLE_KINDS as readonly string[]).includes(text)) return { type: { kind: text as SimpleKind }, optional };
    const set = /^set\s*<\s*([A-Za-z]*)\s*>$/.exec(text);
    if (set !== null) {
      const of = set[1] ?? '';
      if (of !== 'string' && of !== 'number') return fail(`\`${name}\`: a set holds strings or numbers, not \`${of}\``, 'write `set<string>` or `set<number>`');
      return { type: { kind: 'set', of }, optional };
    }
    if (/^enum\s*\(/.test(text) && text.endsWith(')')) {
      const items = splitEnum(text.slice(text.indexOf('(') + 1, -1));
      if (typeof items === 'string') return fail(`\`${name}\`: ${items}`, 'write `enum(a, b, c)`; quote values with spaces, commas or quotes: `enum("a b", c)`');
      const values: string[] = [];
      for (const item of items) {
        if (values.includes(item)) return fail(`\`${name}\`: enum value \`${item}\` is listed twice`);
        values.push(item);
      }
      return { type: { kind: 'enum', values }, optional };
    }
    const lower = text.toLowerCase();
    const alias = TYPE_ALIASES[lower] ?? (lower.startsWith('list<') || lower.startsWith('array<') ? `set${text.slice(text.indexOf('<'))}` : undefined);
    const suggestion = alias ?? ((SIMPLE_KINDS as readonly string[]).includes(lower) ? lower : closest(text, TYPE_WORDS));
    return fail(
      `unknown type \`${text}\` for \`${name}\``,
      suggestion === undefined ? `types are ${TYPE_WORDS.map((w) => `\`${w}\``).join(', ')}, or a mapping of attributes` : `did you mean \`${suggestion}\`?`,
    );
  }

  private locate(path: readonly PathSegment[], part: 'key' | 'value'): SourceLocation {
    let span = this.doc.span(path, part);
    if (span === undefined || span.start.offset === span.end.offset) span = this.doc.span(path, 'key') ?? span;
    if (span === undefined) {
      const start = { offset: 0, line: 1, column: 1 };
      return { source: this.source, start, end: start };
    }
    return { source: this.source, start: toPosition(span.start), end: toPosition(span.end) };
  }

  private report(path: readonly PathSegment[], part: 'key' | 'value', message: string, help?: string): void {
    this.reportAt(this.locate(path, part), message, help);
  }

  private reportAt(location: SourceLocation, message: string, help?: string): void {
    this.#failed = true;
    this.reportTo(help === undefined ? { code: CODE, message, location } : { code: CODE, message, location, help });
  }
}

// ---------------------------------------------------------------- requests

/** One way a request does not match the schema. */
export interface SchemaViolation {
  /** The offending field, as in request errors: `resource.attributes.amount`, `subject.roles[2]`. */
  readonly field: string;
  /** What is wrong, naming the field (never its value). */
  readonly message: string;
}

/** The parts of a request the schema describes (an evaluator `Request` is one). */
export interface SchemaRequest {
  readonly subject: Attributes;
  readonly resource: { readonly type: string; readonly attributes?: Attributes };
  readonly context?: Attributes;
}

/**
 * Checks a request against a schema: every declared attribute that is
 * present must have its type, and every required one must be present (JSON
 * `null` counts as absent, as it does for policies). Attributes the schema
 * does not declare are allowed: the compiler guarantees no policy reads
 * them. A resource type the schema does not list is not checked (the
 * evaluator denies it as `UNKNOWN_RESOURCE_TYPE`). Pure; never throws.
 *
 * @returns every violation, in schema order (empty when the request matches)
 * @example
 * validateAgainstSchema(schema, { subject: { sub: 7 }, resource: { type: 'document' } })
 * // [{ field: 'subject.sub', message: '`subject.sub` must be a string' }, ...]
 */
export function validateAgainstSchema(schema: Schema, request: SchemaRequest): SchemaViolation[] {
  const out: SchemaViolation[] = [];
  if (schema.subject !== undefined) checkObject(request.subject, schema.subject, 'subject', out);
  const resource = schema.resources?.get(request.resource.type);
  if (resource !== undefined) checkObject(request.resource.attributes ?? {}, resource.attributes, 'resource.attributes', out);
  if (schema.context !== undefined) checkObject(request.context ?? {}, schema.context, 'context', out);
  return out;
}

function memberField(field: string, name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? `${field}.${name}` : `${field}[${JSON.stringify(name)}]`;
}

function checkObject(value: unknown, type: ObjectType, field: string, out: SchemaViolation[]): void {
  if (!isMapping(value)) {
    out.push({ field, message: `\`${field}\` must be an object` });
    return;
  }
  for (const [name, attr] of type.attributes) {
    const f = memberField(field, name);
    const v = Object.hasOwn(value, name) ? value[name] : undefined;
    if (v === undefined || v === null) {
      if (!attr.optional) out.push({ field: f, message: `\`${f}\` is required` });
      continue;
    }
    checkValue(v, attr.type, f, out);
  }
}

function checkValue(v: unknown, type: SchemaType, field: string, out: SchemaViolation[]): void {
  const wrong = (what: string): void => void out.push({ field, message: `\`${field}\` must be ${what}` });
  switch (type.kind) {
    case 'string':
      if (typeof v !== 'string') wrong('a string');
      return;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) wrong('a number');
      return;
    case 'bool':
      if (typeof v !== 'boolean') wrong('true or false');
      return;
    case 'ip':
      if (!isIpAddress(v)) wrong('an IPv4 or IPv6 address');
      return;
    case 'timestamp':
      if (toTimestamp(v) === undefined) wrong('a timestamp (an RFC 3339 string with a zone, or seconds since the epoch)');
      return;
    case 'record':
      if (!isMapping(v)) wrong('an object');
      return;
    case 'enum':
      if (typeof v !== 'string' || !type.values.includes(v)) wrong(`one of ${type.values.map((x) => `\`${x}\``).join(', ')}`);
      return;
    case 'set': {
      if (!Array.isArray(v)) {
        wrong(`a list of ${type.of}s`);
        return;
      }
      const bad = (v as readonly unknown[]).findIndex((x) => (type.of === 'string' ? typeof x !== 'string' : typeof x !== 'number' || !Number.isFinite(x)));
      if (bad !== -1) out.push({ field: `${field}[${bad}]`, message: `\`${field}[${bad}]\` must be a ${type.of}` });
      return;
    }
    case 'object':
      checkObject(v, type, field, out);
      return;
  }
}

// ---------------------------------------------------------------- policies

/** A resource type the policies declare, and where. */
export interface DeclaredResource {
  readonly type: string;
  readonly location: SourceLocation;
}

/**
 * Checks that the schema's resource types and the policies' agree: a type in
 * the schema that no policy declares is `COMPILE_UNKNOWN_RESOURCE_TYPE`; when
 * the schema has a `resources` section, a policy type missing from it is
 * `COMPILE_SCHEMA_MISSING_TYPE`. Without a `resources` section nothing is
 * checked.
 */
export function checkSchemaResourceTypes(schema: Schema, declared: readonly DeclaredResource[], report: (d: Diagnostic) => void): void {
  const listed = schema.resources;
  if (listed === undefined) return;
  const names = new Set(declared.map((d) => d.type));
  for (const [type, r] of listed) {
    if (names.has(type)) continue;
    report({
      code: 'COMPILE_UNKNOWN_RESOURCE_TYPE',
      message: `resource type \`${type}\` in the schema is not declared by any policy`,
      location: r.location,
      help: didYouMean(type, names) ?? `declare it with \`resource ${type} { ... }\` or remove it from the schema`,
    });
  }
  for (const d of declared) {
    if (listed.has(d.type)) continue;
    const near = closest(d.type, listed.keys());
    report({
      code: 'COMPILE_SCHEMA_MISSING_TYPE',
      message: `resource type \`${d.type}\` is not in the schema`,
      location: d.location,
      help: near === undefined ? `add it under \`resources:\` in ${schema.source}` : `the schema lists \`${near}\`: is it misspelt there?`,
    });
  }
}

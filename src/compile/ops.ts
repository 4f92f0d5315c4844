/**
 * The run-time meaning of the language's operators, shared by the compiled
 * closures. Pure functions over JSON-like values. A test holds only when the
 * values it reads are present and of the right type; otherwise it is false
 * (see README, "Missing attributes").
 */
import { BlockList, isIP } from 'node:net';

export type Scalar = string | number | boolean;

/** A string, finite number or boolean. */
export function isScalar(v: unknown): v is Scalar {
  const t = typeof v;
  return t === 'string' || t === 'boolean' || (t === 'number' && Number.isFinite(v as number));
}

/** `==`: two present scalars of one type with the same value. Values of different types are never equal. */
export function equals(a: unknown, b: unknown): boolean {
  return a === b && isScalar(a);
}

/** `<` `<=` `>` `>=`: over two present, finite numbers only. */
export function order(op: '<' | '<=' | '>' | '>=', a: unknown, b: unknown): boolean {
  if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b)) return false;
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}

/** Membership: the list is present and an element `==` the value. */
export function member(value: unknown, list: unknown): boolean {
  if (!Array.isArray(list) || !isScalar(value)) return false;
  return (list as readonly unknown[]).includes(value);
}

/** Membership in a literal list, prepared as a Set (a Set keeps 1 and "1" apart, as `==` does). */
export function memberOfSet(value: unknown, set: ReadonlySet<Scalar>): boolean {
  return isScalar(value) && set.has(value);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * A timestamp as milliseconds since the epoch: an RFC 3339 string with a zone
 * (`2026-11-23T09:00:00Z`) or a number of seconds since the epoch (as JWT
 * `iat`/`exp`). `undefined` for anything else.
 */
export function toTimestamp(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v * 1000 : undefined;
  if (typeof v !== 'string' || v.length > 40 || !RFC3339.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
}

const TIME_OF_DAY = /^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$/;

/** `"09:30"` or `"09:30:15"` → seconds since midnight; `undefined` when malformed. */
export function parseTimeOfDay(s: string): number | undefined {
  const m = TIME_OF_DAY.exec(s);
  if (m === null) return undefined;
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0);
}

const OFFSET = /^([+-])(\d{2}):(\d{2})$/;

/** `"+02:00"` → minutes east of UTC; `undefined` when malformed. */
export function parseUtcOffset(s: string): number | undefined {
  const m = OFFSET.exec(s);
  if (m === null) return undefined;
  const h = Number(m[2]);
  const min = Number(m[3]);
  if (h > 14 || min > 59) return undefined;
  return (m[1] === '-' ? -1 : 1) * (h * 60 + min);
}

/** Seconds since midnight of a timestamp value, at a UTC offset in minutes. */
export function timeOfDay(v: unknown, offsetMinutes: number): number | undefined {
  const ms = toTimestamp(v);
  if (ms === undefined) return undefined;
  const local = Math.floor(ms / 1000) + offsetMinutes * 60;
  return ((local % 86400) + 86400) % 86400;
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** `"mon"`…`"sun"` of a timestamp value, at a UTC offset in minutes. */
export function dayOfWeek(v: unknown, offsetMinutes: number): string | undefined {
  const ms = toTimestamp(v);
  if (ms === undefined) return undefined;
  return DAYS[new Date(ms + offsetMinutes * 60_000).getUTCDay()];
}

/**
 * Glob match: `*` any run of characters, `?` one character, `\` escapes the
 * next one. No regular expressions: the classic two-pointer matcher runs in
 * O(pattern × text) at worst, so no pattern can make it blow up.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length) {
      const c = pattern[p];
      if (c === '*') {
        starP = p++;
        starT = t;
        continue;
      }
      if (c === '\\' && p + 1 < pattern.length) {
        if (pattern[p + 1] === text[t]) {
          p += 2;
          t++;
          continue;
        }
      } else if (c === '?' || c === text[t]) {
        p++;
        t++;
        continue;
      }
    }
    if (starP === -1) return false;
    p = starP + 1;
    t = ++starT;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** A parsed CIDR block, ready to test addresses. */
export interface Cidr {
  readonly text: string;
  contains(ip: unknown): boolean;
}

/** Parses `10.0.0.0/8` or `2001:db8::/32` (a bare address means a single host); `undefined` when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > max) return undefined;
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  list.addSubnet(addr, prefix, type);
  return {
    text,
    contains(ip: unknown): boolean {
      if (typeof ip !== 'string' || ip.length > 64) return false;
      const f = isIP(ip);
      if (f === 0) return false;
      // BlockList matches IPv4-mapped IPv6 addresses (::ffff:10.1.2.3) against IPv4 blocks.
      return list.check(ip, f === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/** Whether `v` is an IPv4 or IPv6 address in text (as `inCidr` reads one). */
export function isIpAddress(v: unknown): boolean {
  return typeof v === 'string' && v.length <= 64 && isIP(v) !== 0;
}

/** Size of a list or string (in UTF-16 code units); `undefined` for anything else. */
export function sizeOf(v: unknown): number | undefined {
  if (Array.isArray(v)) return v.length;
  if (typeof v === 'string') return v.length;
  return undefined;
}

/**
 * The decision log, for audit: one JSON line per decision, to stdout or a
 * file. Every DENY is logged; ALLOWs are sampled at a configured rate. Lines
 * hold who asked and what was decided, never a raw token, a secret or
 * attribute values.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

/** One logged decision. */
export interface DecisionRecord {
  readonly time: string;
  readonly request_id: string;
  /** The caller's certificate identity (SAN URI or DNS), when mTLS gave one. */
  readonly caller?: string;
  readonly method: 'Check' | 'CheckBatch' | 'ext_authz';
  /** For ext_authz: the route that matched (`GET /api/documents/{id}`). */
  readonly route?: string;
  readonly sub?: string;
  readonly issuer?: string;
  readonly action: string;
  readonly resource_type: string;
  readonly resource_id?: string;
  readonly decision: 'ALLOW' | 'DENY';
  readonly reason: string;
  readonly rules: readonly string[];
  readonly revision: string;
  readonly latency_ms: number;
  readonly cached: boolean;
}

export interface DecisionLog {
  /** False for `off`: callers may skip building records. */
  readonly enabled?: boolean;
  write(record: DecisionRecord): void;
  close(): Promise<void>;
}

/**
 * Opens the decision log. `path` is `-` (stdout), `off`, or a file appended to.
 *
 * @example
 * const log = openDecisionLog('-', 0.1); // every deny, one allow in ten
 */
export function openDecisionLog(path: string, allowSampleRate: number, random: () => number = Math.random): DecisionLog {
  if (path === 'off') return { enabled: false, write() {}, close: async () => {} };
  const stream: NodeJS.WritableStream | WriteStream = path === '-' ? process.stdout : createWriteStream(path, { flags: 'a' });
  return {
    write(record) {
      if (record.decision === 'ALLOW' && allowSampleRate < 1 && random() >= allowSampleRate) return;
      stream.write(`${JSON.stringify(record)}\n`);
    },
    close() {
      if (stream === process.stdout) return Promise.resolve();
      return new Promise((resolve) => (stream as WriteStream).end(resolve));
    },
  };
}

/** A decision log kept in memory (tests). */
export function memoryDecisionLog(): DecisionLog & { readonly records: DecisionRecord[] } {
  const records: DecisionRecord[] = [];
  return { records, write: (r) => void records.push(r), close: async () => {} };
}

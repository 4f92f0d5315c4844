/**
 * Operational log lines: one JSON object per line (time, level, msg, fields).
 * Callers pass only values that are safe to log: never a token, a secret or
 * a policy attribute value.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Logger {
  log(level: LogLevel, msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * A logger writing JSON lines to `stream` at `level` and above.
 *
 * @example
 * const logger = createJsonLogger(process.stderr, 'info');
 * logger.log('warn', 'jwks refresh failed', { issuer: 'keycloak' });
 */
export function createJsonLogger(stream: { write(s: string): unknown }, level: LogLevel = 'info', clock: () => number = Date.now): Logger {
  const min = RANK[level];
  return {
    log(l, msg, fields) {
      if (RANK[l] < min) return;
      stream.write(`${JSON.stringify({ time: new Date(clock()).toISOString(), level: l, msg, ...fields })}\n`);
    },
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = { log() {} };

/** A logger that keeps lines in memory (for tests and the CLI's summaries). */
export function createMemoryLogger(): Logger & { readonly lines: { level: LogLevel; msg: string; fields: LogFields }[] } {
  const lines: { level: LogLevel; msg: string; fields: LogFields }[] = [];
  return {
    lines,
    log(level, msg, fields = {}) {
      lines.push({ level, msg, fields });
    },
  };
}

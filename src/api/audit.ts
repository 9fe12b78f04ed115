/**
 * The audit log of the management API: one JSON line per request that reached an action — time,
 * client address, token name (never the token), action, deployment, result and status — appended
 * to `<home>/audit.log` (mode 0600).
 */
import fs from 'node:fs/promises';

/** One audited request. */
export interface AuditEntry {
  time: string;
  ip: string;
  /** The token's name, or `-` when none authenticated. */
  token: string;
  action: string;
  deployment?: string;
  result: 'ok' | 'error';
  status: number;
  /** The error code, when it failed. */
  code?: string;
}

/** Appends entries in order; `flush()` waits for what was written so far. */
export class AuditLog {
  readonly file: string;
  #tail: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.file = file;
  }

  /** Appends one entry (errors writing the log are reported to `onError`, not thrown to the request). */
  record(entry: Omit<AuditEntry, 'time'>, onError: (error: unknown) => void = () => {}): void {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`;
    this.#tail = this.#tail.then(() => fs.appendFile(this.file, line, { mode: 0o600 })).catch(onError);
  }

  /** Resolves once every recorded entry is written. */
  flush(): Promise<void> {
    return this.#tail;
  }
}

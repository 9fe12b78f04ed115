/**
 * The audit log of the management API: one JSON line per request that reached an action — time,
 * client address, token name (never the token), action, deployment, result and status — appended
 * to `<home>/audit.log` (mode 0600). When the file passes `maxBytes` (default 10 MiB) it becomes
 * `audit.log.1` (the previous `.1` becomes `.2`, and so on up to `keep` files) and a new one starts.
 */
import fs from 'node:fs/promises';
import { serialQueue } from '../serial.ts';

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

/** Appends entries in order, rotating by size; `flush()` waits for what was written so far. */
export class AuditLog {
  readonly file: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #queue = serialQueue();
  /** Bytes in the current file, once known. */
  #size: number | undefined;

  /** `maxBytes`: size at which the file is rotated; `keep`: rotated files kept. */
  constructor(file: string, options: { maxBytes?: number; keep?: number } = {}) {
    this.file = file;
    this.#maxBytes = options.maxBytes ?? 10 * 1024 * 1024;
    this.#keep = options.keep ?? 5;
  }

  /** Appends one entry (errors writing the log are reported to `onError`, not thrown to the request). */
  record(entry: Omit<AuditEntry, 'time'>, onError: (error: unknown) => void = () => {}): void {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`;
    this.#queue(() => this.#append(line)).catch(onError);
  }

  async #append(line: string): Promise<void> {
    this.#size ??= await fs.stat(this.file).then((s) => s.size, () => 0);
    const bytes = Buffer.byteLength(line);
    if (this.#size > 0 && this.#size + bytes > this.#maxBytes) {
      for (let i = this.#keep - 1; i >= 1; i--) await fs.rename(`${this.file}.${i}`, `${this.file}.${i + 1}`).catch(() => {});
      await fs.rename(this.file, `${this.file}.1`);
      this.#size = 0;
    }
    await fs.appendFile(this.file, line, { mode: 0o600 });
    this.#size += bytes;
  }

  /** Resolves once every recorded entry is written. */
  flush(): Promise<void> {
    return this.#queue(async () => {});
  }
}

/** Splits the engine's multiplexed log stream (8-byte frame headers) into lines. */

/** One line of a container's output. */
export interface LogLine {
  stream: 'stdout' | 'stderr';
  text: string;
}

/**
 * Incremental demuxer for the engine's stdout/stderr framing (non-TTY containers): feed chunks
 * with `push`, call `end` when the stream ends; whole lines go to the callback.
 */
export class LogDemuxer {
  #pending: Buffer = Buffer.alloc(0);
  readonly #partial: Record<LogLine['stream'], string> = { stdout: '', stderr: '' };
  readonly #onLine: (line: LogLine) => void;

  constructor(onLine: (line: LogLine) => void) {
    this.#onLine = onLine;
  }

  /** Feeds a chunk of the raw stream. */
  push(chunk: Buffer): void {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    while (this.#pending.length >= 8) {
      const kind = this.#pending[0];
      const size = this.#pending.readUInt32BE(4);
      if (kind !== 1 && kind !== 2) {
        // Not framed (a TTY container): treat everything as stdout.
        this.#text('stdout', this.#pending.toString('utf8'));
        this.#pending = Buffer.alloc(0);
        return;
      }
      if (this.#pending.length < 8 + size) return;
      this.#text(kind === 1 ? 'stdout' : 'stderr', this.#pending.subarray(8, 8 + size).toString('utf8'));
      this.#pending = this.#pending.subarray(8 + size);
    }
  }

  /** Flushes partial lines. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.#partial[stream]) this.#onLine({ stream, text: this.#partial[stream] });
      this.#partial[stream] = '';
    }
  }

  #text(stream: LogLine['stream'], text: string): void {
    const lines = (this.#partial[stream] + text).split('\n');
    this.#partial[stream] = lines.pop() ?? '';
    for (const line of lines) this.#onLine({ stream, text: line.replace(/\r$/, '') });
  }
}

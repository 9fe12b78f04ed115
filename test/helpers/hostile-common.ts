/**
 * What the hostile-client tests (test/proxy-hostile.test.ts) and bench/proxy-hostile.ts share:
 * an upstream's large response written with backpressure, a reader of pipelined responses, a
 * wait for a count to settle, and a timed normal request. Needs neither ava nor a running test.
 */
import http from 'node:http';
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Writes `chunks` to `res` in order, waiting for 'drain' whenever the client (the proxy) is
 * full, then ends it; `onChunk` is told each chunk's size as it is written.
 */
export function streamChunks(res: ServerResponse, chunks: readonly Buffer[], onChunk: (bytes: number) => void): void {
  let i = 0;
  const pump = (): void => {
    for (let c = chunks[i]; c !== undefined; c = chunks[i]) {
      i++;
      onChunk(c.length);
      if (!res.write(c)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

/** Reads a stream of Content-Length responses: their heads, statuses, `X-N` values and body bytes. */
export class ResponseReader {
  /** Each head, its blank line included (latin1). */
  readonly heads: string[] = [];
  readonly statuses: number[] = [];
  readonly tags: string[] = [];
  /** Body bytes read so far, all responses together. */
  bodyBytes = 0;
  #head = '';
  #bodyLeft = 0;
  readonly #onBody: ((piece: Buffer) => void) | undefined;

  /** `onBody` is given every piece of a body as it is read (e.g. to hash it). */
  constructor(onBody?: (piece: Buffer) => void) {
    this.#onBody = onBody;
  }

  /** Takes the next bytes received. */
  push(chunk: Buffer): void {
    for (let at = 0; at < chunk.length; ) {
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, chunk.length - at);
        this.#onBody?.(chunk.subarray(at, at + take));
        this.bodyBytes += take;
        this.#bodyLeft -= take;
        at += take;
        continue;
      }
      const seen = this.#head.length;
      this.#head += chunk.toString('latin1', at, Math.min(chunk.length, at + 16 * 1024));
      const end = this.#head.indexOf('\r\n\r\n');
      if (end < 0) break;
      const head = this.#head.slice(0, end);
      at += end + 4 - seen;
      this.#head = '';
      this.heads.push(`${head}\r\n\r\n`);
      this.statuses.push(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0));
      this.tags.push(/\r\nx-n: *([^\r]*)/i.exec(head)?.[1] ?? '');
      this.#bodyLeft = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    }
  }
}

/** Resolves once `count()` has not changed for `quietMs` (or after `maxMs`); returns its value. */
export async function settled(count: () => number, quietMs = 500, maxMs = 4000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = count();
  let since = Date.now();
  while (Date.now() < deadline && Date.now() - since < quietMs) {
    await sleep(50);
    const now = count();
    if (now !== last) [last, since] = [now, Date.now()];
  }
  return last;
}

/** Times one GET with `host` on a new connection (rejects without an answer in 5 s). */
export function probe(port: number, host: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/probe', headers: { host }, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('the probe got no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}

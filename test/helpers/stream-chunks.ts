/** Streaming a large response from a test or bench upstream, with backpressure. */
import type { ServerResponse } from 'node:http';

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

/** Reading the engine's streams (logs, events, exec output) to their end. */

/** A readable stream that can be destroyed (what dockerode hands out). */
export type EngineStream = NodeJS.ReadableStream & { destroy?(): void };

/**
 * Feeds each chunk of `stream` to `onData` until it ends or `signal` aborts (the stream is then
 * destroyed). A stream error rejects, unless `errors` is `end` (it then ends the reading).
 */
export function readToEnd(stream: EngineStream, onData: (chunk: Buffer) => void, options: { signal?: AbortSignal; errors?: 'reject' | 'end' } = {}): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const stop = () => {
      stream.destroy?.();
      resolve();
    };
    if (options.signal?.aborted) return stop();
    options.signal?.addEventListener('abort', stop, { once: true });
    stream.on('data', (chunk: Buffer) => onData(chunk));
    stream.on('end', () => resolve());
    stream.on('error', (error: Error) => (options.errors === 'end' ? resolve() : reject(error)));
  });
}

/**
 * A closed stdout ends a command quietly. When the reader of a pipe goes away (`depad inspect x |
 * head -1`, `depad logs -f x | grep -m1 ready`), the next write fails with EPIPE; instead of a
 * stack trace and exit 1, the command ends at once with exit 141, as a process killed by SIGPIPE
 * does. Results are written after an operation finished, so nothing is left half done. A closed
 * stderr only silences progress and diagnostics. The long-running servers (`depad agent`,
 * `depad proxy`) keep serving when their output is closed: what they would print is dropped.
 */
import { EXIT_OUTPUT_CLOSED } from '../errors.ts';

let serving = false;

/** Installs the handlers on the process's stdout and stderr (once, at the CLI's start). */
export function endQuietlyWhenOutputCloses(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (!closed(error)) throw error;
    if (!serving) process.exit(EXIT_OUTPUT_CLOSED);
  });
  process.stderr.on('error', (error: NodeJS.ErrnoException) => {
    if (!closed(error)) throw error;
  });
}

/** For servers: a closed stdout drops their output instead of ending them. */
export function keepServingWhenOutputCloses(): void {
  serving = true;
}

/** The errors of writing to a pipe or socket whose reader is gone. */
function closed(error: NodeJS.ErrnoException): boolean {
  return error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED' || error.code === 'ECONNRESET';
}

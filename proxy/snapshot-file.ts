/**
 * The one owner of the route snapshot file's format (`routes.json` in the proxy's state
 * directory): read at proxy start, rewritten atomically (temp file, fsync, rename; mode 0600) on
 * every change by the proxy, or by the CLI's client when no proxy runs.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { DepadError } from '../src/errors.ts';
import { writePrivateFile } from '../src/private-file.ts';
import { EMPTY_SNAPSHOT, parseSnapshot } from './routes.ts';
import type { RouteSnapshot } from './types.ts';

/** Mode of the proxy's state directory when depad creates it: the group may reach the 0660 control socket. */
export const STATE_DIR_MODE = 0o750;

/** The `format` field written into every snapshot file. */
export const SNAPSHOT_FORMAT = 'depad-proxy-routes/1';

/**
 * Reads the snapshot file. A missing file is the empty snapshot; an unreadable, malformed or
 * invalid one is DEPAD_STATE_CORRUPT (the proxy does not start rather than serve nothing).
 */
export async function readSnapshotFile(file: string): Promise<RouteSnapshot> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_SNAPSHOT;
    throw new DepadError('DEPAD_STATE_CORRUPT', `cannot read the proxy's routes file ${file}`, {
      cause: error,
      hint: 'check the file permissions',
    });
  }
  try {
    const value: unknown = JSON.parse(text);
    const format = (value as { format?: unknown } | null)?.format;
    if (format !== SNAPSHOT_FORMAT) throw new Error(`format is ${JSON.stringify(format)}, expected ${SNAPSHOT_FORMAT}`);
    return parseSnapshot(value);
  } catch (error) {
    throw new DepadError('DEPAD_STATE_CORRUPT', `the proxy's routes file ${file} is not valid: ${(error as Error).message}`, {
      cause: error,
      hint: 'move the file away and set the routes again (depad redeploys them), or restore it from a backup',
    });
  }
}

/** Writes `snapshot` to `file` atomically (mode 0600; see writePrivateFile). */
export async function writeSnapshotFile(file: string, snapshot: RouteSnapshot): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: STATE_DIR_MODE });
  await writePrivateFile(file, JSON.stringify({ format: SNAPSHOT_FORMAT, version: snapshot.version, routes: snapshot.routes }, null, 2) + '\n');
}

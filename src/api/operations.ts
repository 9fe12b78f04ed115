/**
 * Operations under way in this process's API, so that their clients can stop them. A streamed
 * state-changing request gets an ID (the `depad-operation` response header, sent at once) and an
 * AbortSignal the operation runs with. The signal fires when the client asks for it
 * (`POST /v1/operations/{id}/cancel`: the client goes on reading the stream, so it learns what was
 * undone) or when its connection closes before the answer ended (the client is gone). An
 * operation stops at its next step or wait and undoes what it did, as after Ctrl-C locally.
 */
import { randomBytes } from 'node:crypto';
import { DepadError } from '../errors.ts';
import type { TokenRecord } from '../store/records.ts';

/** The response header that carries an operation's ID. */
export const OPERATION_HEADER = 'depad-operation';

/** One operation under way. */
interface Running {
  tokenId: string;
  controller: AbortController;
  /** The deployment it is about, once known (for the audit log). */
  deployment: () => string | undefined;
}

const running = new Map<string, Running>();

/** Registers an operation started by `token`; `done()` forgets it once its answer has ended. */
export function startOperation(token: TokenRecord, controller: AbortController, deployment: () => string | undefined): { id: string; done: () => void } {
  const id = randomBytes(16).toString('hex');
  running.set(id, { tokenId: token.id, controller, deployment });
  return { id, done: () => void running.delete(id) };
}

/**
 * Asks operation `id` to stop; only the token that started it (or an administrator) may. Answers
 * the deployment it is about. An unknown, finished or foreign ID is one 404.
 */
export function cancelOperation(id: string, token: TokenRecord): { cancelled: string; deployment?: string } {
  const op = running.get(id);
  if (op === undefined || (op.tokenId !== token.id && token.scope.kind !== 'admin')) {
    throw new DepadError('DEPAD_NOT_FOUND', `no operation ${id.slice(0, 64)} under way`, { hint: 'it may have finished already: see depad ls' });
  }
  op.controller.abort();
  const deployment = op.deployment();
  return { cancelled: id, ...(deployment === undefined ? {} : { deployment }) };
}

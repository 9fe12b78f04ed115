/**
 * Engine failures as DepadErrors: an unreachable engine, a port taken, a conflict, and every other
 * engine error with what depad was doing and, where one is known, what to do.
 */
import { DepadError } from '../errors.ts';

/** Turns a dockerode failure into a DepadError that says what depad was doing (`address`: the engine's). */
export function engineError(error: unknown, doing: string, address: string): DepadError {
  if (error instanceof DepadError) return error;
  const code = (error as { code?: string }).code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'ETIMEDOUT' || code === 'ECONNRESET') {
    return new DepadError('DEPAD_ENGINE_UNAVAILABLE', `cannot reach the Docker Engine at ${address} (${code})`, {
      cause: error,
      hint:
        code === 'EACCES'
          ? 'run depad as root or as a member of the docker group'
          : 'start the engine (systemctl start docker, or bash scripts/setup) or set DOCKER_HOST',
    });
  }
  const message = messageOf(error);
  if (/port is already allocated|address already in use/i.test(message)) {
    return new DepadError('DEPAD_PORT_IN_USE', `could not ${doing}: ${message}`, {
      cause: error,
      hint: 'another program took the port after depad checked it; run the command again',
    });
  }
  if (statusOf(error) === 409) {
    return new DepadError('DEPAD_ENGINE_CONFLICT', `could not ${doing}: ${message}`, { cause: error });
  }
  const hint = /non-overlapping IPv4 address pool/.test(message)
    ? 'Docker has no address range left for another network (each deployment has one); give it more: "default-address-pools" in /etc/docker/daemon.json, see the README'
    : /[Pp]ool overlaps/.test(message)
      ? 'a network made at the same moment (by another depad home or docker) took that subnet; run the command again (depad then skips it)'
      : undefined;
  return new DepadError('DEPAD_ENGINE_ERROR', `could not ${doing}: ${message}`, { cause: error, ...(hint ? { hint } : {}) });
}

/** The HTTP status of an engine failure, if it has one. */
export function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}

/** The engine's own message of a failure. */
export function messageOf(error: unknown): string {
  const json = (error as { json?: { message?: string } }).json;
  return (json?.message ?? (error as Error).message ?? String(error)).trim();
}

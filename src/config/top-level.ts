/** Top-level keys of the Compose Specification read beside `services`: `name:` and the obsolete `version:`. */
import { DepadError } from '../errors.ts';
import { entryPos } from './nodes.ts';
import type { Collector, LEntry } from './nodes.ts';
import { readString } from './read.ts';
import { OBJECT_NAME } from './values.ts';

/** depad's deployment-name rule: a DNS label of lowercase letters, digits and `-` (`assertValidName` checks it). */
export const DEPLOYMENT_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** compose's project-name rule. */
const COMPOSE_PROJECT_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * The top-level `name:` (interpolated), checked against compose's project-name rule and depad's
 * deployment-name rule; warns that `version:` is obsolete. Undefined when there is no valid name.
 */
export function readTopLevelName(c: Collector, top: ReadonlyMap<string, LEntry>): string | undefined {
  const version = top.get('version');
  if (version) c.warning('version', version.keyPos, 'version is obsolete: the Compose Specification (and depad) ignore it; remove it');
  const entry = top.get('name');
  if (!entry) return undefined;
  const name = readString(c, entry.value, 'name', { what: 'a project name such as my-app' });
  if (name === undefined) return undefined;
  if (!COMPOSE_PROJECT_NAME.test(name)) {
    c.issue('name', entryPos(entry), `"${name}" is not a valid project name: use lowercase letters, digits, '-' and '_', starting with a letter or digit`);
    return undefined;
  }
  return name;
}

/**
 * The deployment name when `-n` is not given, as compose picks a project name: the variable
 * COMPOSE_PROJECT_NAME (from `env`: -e, the env files, .env; else the process environment), else
 * the file's `name:`. DEPAD_USAGE without either; DEPAD_NAME_INVALID, with the fix, for a name that
 * is not a deployment name (`my_app`).
 */
export function deploymentNameFromFile(spec: { readonly name?: string; readonly file: string }, env: Readonly<Record<string, string>> = {}): string {
  const fromEnv = Object.hasOwn(env, 'COMPOSE_PROJECT_NAME') ? env.COMPOSE_PROJECT_NAME : process.env.COMPOSE_PROJECT_NAME;
  const name = fromEnv || spec.name;
  if (name === undefined) {
    throw new DepadError('DEPAD_USAGE', `no deployment name: give -n NAME, or a top-level name: in ${spec.file}`, { hint: 'e.g. depad create -n shop -f compose.yaml' });
  }
  if (DEPLOYMENT_NAME.test(name)) return name;
  const fixed = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-{2,}/g, '-').replace(/^-+/, '').slice(0, 63).replace(/-+$/, '') || 'my-app';
  const where = fromEnv ? `COMPOSE_PROJECT_NAME "${name}"` : `the file's name: "${name}"`;
  throw new DepadError('DEPAD_NAME_INVALID', `${where} is not a depad deployment name (lowercase letters, digits and '-', at most 63, not starting or ending with '-')`, {
    hint: fromEnv ? `set COMPOSE_PROJECT_NAME=${fixed}, or give the name with -n ${fixed}` : `write name: ${fixed} in ${spec.file}, or give the name with -n ${fixed}`,
  });
}

/** Network and volume names as compose allows them (its schema's pattern, OBJECT_NAME), within a length docker object names take. */
const MAX_TOP_OBJECT_NAME = 128;

/** Undefined when `name` is a valid top-level network or volume name (letters, digits, '.', '_', '-'), else why not. */
export function topObjectNameProblem(name: string, what: 'network' | 'volume'): string | undefined {
  if (OBJECT_NAME.test(name) && name.length <= MAX_TOP_OBJECT_NAME) return undefined;
  const why = name.length > MAX_TOP_OBJECT_NAME ? `it is ${name.length} characters long` : 'it has characters other than letters, digits, \'.\', \'_\' and \'-\'';
  return `${what} name '${name}' is invalid (${why}): ${what} names are 1-${MAX_TOP_OBJECT_NAME} letters, digits, '.', '_' and '-', as in compose`;
}

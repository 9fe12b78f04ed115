/**
 * Pure parsers for the value formats compose files use: durations, memory sizes, CPUs, ports,
 * shell-style command strings, image references, object names, restart policies and paths.
 */
import { isIP } from 'node:net';
import { posix } from 'node:path';

/** A parsed value or the reason it could not be parsed (a sentence for the user). */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** A parsed value. */
export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
/** A parse error's message. */
export const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000,
};

/** A compose (Go) duration such as `1m30s`, `10s`, `500ms`, `1.5h` or `0` → milliseconds (rounded). */
export function parseDuration(text: string): Parsed<number> {
  const s = text.trim();
  const hint = `expected a duration such as "10s", "1m30s" or "500ms", found "${text}"`;
  if (s === '0') return ok(0);
  if (s === '' || !/^((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$/.test(s)) return fail(hint);
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? 0);
  }
  return ok(Math.round(total));
}

/** The smallest memory limit Docker accepts. */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

/** A byte size of any amount (`64m`, `1.5g`, `1024`, `20mb`, `1GiB`; binary units) → bytes; undefined when it is not one. */
export function parseBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(text.trim());
  if (!m) return undefined;
  const power = m[2] === undefined ? 0 : 'kmgtp'.indexOf(m[2].toLowerCase()) + 1;
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/** A Docker memory size (`512m`, `1.5g`, `1gb`, `1GiB`, `100000000`) → bytes, at least 6 MiB. */
export function parseMemory(value: string | number): Parsed<number> {
  let bytes: number;
  if (typeof value === 'number') {
    bytes = value;
  } else {
    const parsed = parseBytes(value);
    if (parsed === undefined) return fail(`expected a memory size such as "512m" or "2g" (units b, k, m, g, kb, mb, gb), found "${value}"`);
    bytes = parsed;
  }
  if (!Number.isFinite(bytes) || bytes < MIN_MEMORY_BYTES) {
    return fail(`memory must be at least 6m (${MIN_MEMORY_BYTES} bytes), Docker's minimum; found "${value}"`);
  }
  return ok(Math.floor(bytes));
}

/** A CPU count: a number or numeric string greater than 0, e.g. `0.5` or `"2"`. */
export function parseCpus(value: string | number): Parsed<number> {
  const n = typeof value === 'number' ? value : /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n) || n <= 0) return fail(`expected a number of CPUs greater than 0, such as 0.5 or 2, found "${value}"`);
  return ok(n);
}

/** `tcp` or `udp`. */
export function parseProtocol(text: string): Parsed<'tcp' | 'udp'> {
  const p = text.toLowerCase();
  return p === 'tcp' || p === 'udp' ? ok(p) : fail(`protocol must be tcp or udp, found "${text}"`);
}

/**
 * Splits a command string into words like a POSIX shell, as compose does: whitespace separates
 * words; single quotes are literal; double quotes allow `\"`, `\\`, `\$` and `` \` ``; a backslash
 * outside quotes escapes the next character. No variable expansion, globbing or operators.
 */
export function splitCommand(text: string): Parsed<string[]> {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charAt(i);
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && i + 1 < text.length && '"\\$`\n'.includes(text.charAt(i + 1))) {
        i++;
        if (text.charAt(i) !== '\n') word += text.charAt(i);
      } else word += ch;
    } else if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\') {
      if (i + 1 >= text.length) return fail('the command ends with a lone backslash');
      i++;
      if (text.charAt(i) !== '\n') {
        word += text.charAt(i);
        inWord = true;
      }
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote !== undefined) return fail(`the command has an unclosed ${quote === '"' ? 'double' : 'single'} quote; close it or use the list form`);
  if (inWord) words.push(word);
  return ok(words);
}

/** True for an IPv4 or IPv6 address literal. */
export function isIpLiteral(text: string): boolean {
  return isIP(text) !== 0;
}

const DOMAIN = String.raw`(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::\d+)?`;
const COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
const IMAGE_REF = new RegExp(
  String.raw`^(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,})?$`,
);

/** Undefined when `ref` looks like a docker image reference, else why not. */
export function imageReferenceProblem(ref: string): string | undefined {
  if (ref === '') return 'image must not be empty; give an image reference such as "nginx:1.27"';
  if (IMAGE_REF.test(ref)) return undefined;
  const lower = /[A-Z]/.test(ref.split('/').pop()?.split(/[:@]/)[0] ?? '') ? '; repository names must be lowercase' : '';
  return `"${ref}" is not a docker image reference such as "nginx:1.27" or "registry.example.com/team/app:v2"${lower}`;
}

/** Names of services, networks and volumes, as compose allows them; they become parts of docker object names. */
export const OBJECT_NAME = /^[a-zA-Z0-9._-]+$/;
/** The longest service, network or volume name: `depad-<deployment ≤ 63>_<name>` (and an anonymous volume's `<service>_anon_<8 hex>`) stay within the 255 bytes a volume's directory name may have. */
export const MAX_OBJECT_NAME = 170;

/** Undefined when `name` is a valid service/network/volume name, else why not. */
export function objectNameProblem(name: string, what: 'service' | 'network' | 'volume'): string | undefined {
  if (OBJECT_NAME.test(name) && name.length <= MAX_OBJECT_NAME) return undefined;
  const why =
    name.length > MAX_OBJECT_NAME
      ? `it is ${name.length} characters long`
      : name === ''
        ? 'it is empty'
        : 'it has characters other than letters, digits, \'.\', \'_\' and \'-\'';
  return `${what} name '${name}' is invalid (${why}): ${what} names must be 1-${MAX_OBJECT_NAME} characters of letters, digits, '.', '_' and '-', as in compose, because they become parts of docker object names`;
}

/** A restart policy. */
export interface RestartPolicy {
  readonly policy: 'no' | 'always' | 'on-failure' | 'unless-stopped';
  readonly maxRetries?: number;
}

/** `no`, `always`, `on-failure`, `on-failure:N` or `unless-stopped`. */
export function parseRestart(text: string): Parsed<RestartPolicy> {
  if (text === 'no' || text === 'always' || text === 'unless-stopped' || text === 'on-failure') return ok({ policy: text });
  const m = /^on-failure:(\d+)$/.exec(text);
  if (m) return ok({ policy: 'on-failure', maxRetries: Number(m[1]) });
  return fail(`restart must be one of no, always, on-failure, on-failure:N (N retries) or unless-stopped, found "${text}"`);
}

/**
 * A path relative to the deployment's root, normalised (`./data/` → `data`). Fails for absolute
 * paths, `~` and paths that leave the root through `..`.
 */
export function insideRoot(path: string): Parsed<string> {
  if (path === '') return fail('expected a relative path, found an empty string');
  if (posix.isAbsolute(path) || path.startsWith('~') || /^[A-Za-z]:[\\/]/.test(path)) return fail(`"${path}" is absolute`);
  const normal = posix.normalize(path).replace(/\/+$/, '') || '.';
  if (normal === '..' || normal.startsWith('../')) return fail(`"${path}" leaves the directory through ".."`);
  return ok(normal);
}

/** Stop signals: `SIGTERM`, `SIGRTMIN+3`, or a signal number. */
export function isSignal(text: string): boolean {
  return /^SIG[A-Z0-9]+([+-]\d+)?$/.test(text) || /^\d+$/.test(text);
}

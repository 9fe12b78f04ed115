/**
 * Variables for interpolation and container environments: `--env KEY=VALUE` items and
 * docker-compose `.env` files (`KEY=VALUE`, `#` comments, `export `, single and double quotes).
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, DepadError } from '../errors.ts';
import type { ConfigIssue } from '../errors.ts';
import { sortedRecord } from './freeze.ts';

/** Names accepted by `--env`: shell-style identifiers. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Names accepted in env files: identifiers, also allowing `.` and `-` as compose does. */
const ENV_FILE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * Parses `--env KEY=VALUE` items (the value may be empty and may contain '='). Later items win.
 * `origin` names where the items came from (e.g. `--env`) for the error message.
 * Throws DEPAD_USAGE naming the first bad item.
 */
export function parseEnvAssignments(list: readonly string[], origin: string): Record<string, string> {
  const entries: [string, string][] = [];
  for (const item of list) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (eq < 0 || !ENV_NAME.test(key)) {
      const why = eq < 0 ? 'it has no "="' : `"${key}" is not a valid variable name`;
      throw new DepadError('DEPAD_USAGE', `${origin} "${item}": expected KEY=VALUE, but ${why}`, {
        hint: `write ${origin} NAME=value, where NAME is letters, digits and '_' and does not start with a digit`,
      });
    }
    entries.push([key, item.slice(eq + 1)]);
  }
  return sortedRecord(entries);
}

/** What `parseEnvText` found: the variables (sorted) and one issue per bad line. */
export interface EnvTextResult {
  readonly values: Record<string, string>;
  readonly issues: readonly ConfigIssue[];
}

const DQ_ESCAPES: Readonly<Record<string, string>> = {
  n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"', "'": "'", $: '$', a: '\x07', b: '\b', f: '\f', v: '\v',
};

/**
 * Parses the text of a `.env` file; `file` is used in issues. Pure. Values are taken literally
 * (no `${VAR}` expansion); double-quoted values process backslash escapes such as `\n`; quoted
 * values may span lines; an unquoted value ends at ` #`.
 */
export function parseEnvText(text: string, file: string): EnvTextResult {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const entries: [string, string][] = [];
  const issues: ConfigIssue[] = [];
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n] ?? '';
    const lineNo = n + 1;
    const trimmed = line.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const indent = line.length - trimmed.length;
    const body = trimmed.replace(/^export[ \t]+/, '');
    const bodyStart = indent + (trimmed.length - body.length);
    const bad = (column: number, path: string, message: string) =>
      issues.push({ file, line: lineNo, column: column + 1, path, message });
    const eq = body.indexOf('=');
    const key = (eq < 0 ? body : body.slice(0, eq)).trimEnd();
    if (eq < 0) {
      bad(bodyStart, key || 'line', `expected KEY=VALUE, found "${body.trimEnd()}"`);
      continue;
    }
    if (!ENV_FILE_NAME.test(key)) {
      bad(bodyStart, key || 'line', `"${key}" is not a valid variable name; use letters, digits, '_', '.' and '-', not starting with a digit`);
      continue;
    }
    const afterEq = body.slice(eq + 1);
    let rest = afterEq.replace(/^[ \t]+/, '');
    const valueColumn = bodyStart + eq + 1 + (afterEq.length - rest.length);
    const quote = rest[0];
    if (quote !== "'" && quote !== '"') {
      const comment = /(^|[ \t])#/.exec(rest);
      if (comment) rest = rest.slice(0, comment.index);
      entries.push([key, rest.trimEnd()]);
      continue;
    }
    // Quoted: find the closing quote, possibly on a later line.
    let text2 = rest.slice(1);
    let closedAt = -1;
    let endLine = n;
    for (;;) {
      closedAt = findClosingQuote(text2, quote);
      if (closedAt >= 0 || endLine + 1 >= lines.length) break;
      text2 += '\n' + (lines[++endLine] ?? '');
    }
    if (closedAt < 0) {
      bad(valueColumn, key, `the ${quote === '"' ? 'double' : 'single'} quote opened here is never closed`);
      n = endLine;
      continue;
    }
    const raw = text2.slice(0, closedAt);
    const value = quote === '"' ? raw.replace(/\\(.)/gs, (m, c: string) => DQ_ESCAPES[c] ?? m) : raw;
    const after = text2.slice(closedAt + 1).trim();
    n = endLine;
    if (after !== '' && !after.startsWith('#')) {
      bad(valueColumn, key, `unexpected text after the closing quote: "${after}"`);
      continue;
    }
    entries.push([key, value]);
  }
  return { values: sortedRecord(entries), issues };
}

function findClosingQuote(text: string, quote: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === '"' && c === '\\') i++;
    else if (c === quote) return i;
  }
  return -1;
}

/**
 * Reads a `.env` file (see `parseEnvText`). A missing or unreadable file is DEPAD_CONFIG_UNREADABLE
 * naming the path; bad lines are a `ConfigError` with each line's file:line:column.
 */
export async function readEnvFile(path: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw unreadable(path, error, 'env file');
  }
  const { values, issues } = parseEnvText(text, path);
  if (issues.length > 0) throw new ConfigError(path, issues);
  return values;
}

/** DEPAD_CONFIG_UNREADABLE for `path`, with the system's reason. */
export function unreadable(path: string, error: unknown, what: string): DepadError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason =
    code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : String((error as Error | undefined)?.message ?? error);
  return new DepadError('DEPAD_CONFIG_UNREADABLE', `cannot read ${what} ${path}: ${reason}; check the path`, {
    hint: `check that ${path} exists and is a readable file`,
    cause: error,
    details: { path },
  });
}

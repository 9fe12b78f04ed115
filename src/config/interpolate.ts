/**
 * docker-compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}`, `${VAR?message}`, `${VAR:+replacement}`, `${VAR+replacement}` and `$$`.
 * Pure: variables come only from the lookup function it is given.
 */

/** The outcome of interpolating one string. */
export type InterpolationResult =
  | { readonly ok: true; readonly value: string; readonly unset: readonly string[] }
  | { readonly ok: false; readonly message: string };

const NAME_START = /[A-Za-z_]/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

class InterpolationFailure extends Error {}

/**
 * Substitutes variables in `template`. `lookup` returns a variable's value or undefined when it
 * is unset. Unset variables without a default become '' and are listed in `unset` (in order of
 * first use); a failed `?` check or a malformed reference gives `ok: false` with a message.
 */
export function interpolate(template: string, lookup: (name: string) => string | undefined): InterpolationResult {
  const unset: string[] = [];
  try {
    const value = substitute(template, lookup, unset);
    return { ok: true, value, unset };
  } catch (error) {
    if (error instanceof InterpolationFailure) return { ok: false, message: error.message };
    throw error;
  }
}

function substitute(text: string, lookup: (name: string) => string | undefined, unset: string[]): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
    } else if (next !== undefined && NAME_START.test(next)) {
      const name = NAME.exec(text.slice(dollar + 1))?.[0] ?? '';
      out += valueOf(name, lookup, unset);
      i = dollar + 1 + name.length;
    } else if (next === '{') {
      const end = closingBrace(text, dollar + 2);
      out += braced(text.slice(dollar + 2, end), lookup, unset);
      i = end + 1;
    } else {
      // A '$' before anything else ("$(seq 1 60)", "$2a$14$…", a trailing "$") is kept as it is, as compose keeps it.
      out += '$';
      i = dollar + 1;
    }
  }
  return out;
}

function valueOf(name: string, lookup: (name: string) => string | undefined, unset: string[]): string {
  const value = lookup(name);
  if (value !== undefined) return value;
  if (!unset.includes(name)) unset.push(name);
  return '';
}

/** Index of the `}` closing a `${` whose body starts at `start`, allowing nested `${…}`. */
function closingBrace(text: string, start: number): number {
  let depth = 1;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === '$' && (text[i + 1] === '{' || text[i + 1] === '$')) {
      if (text[i + 1] === '{') depth++;
      i++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  throw new InterpolationFailure(`unclosed '\${' in "${text}"; add the closing '}' or write '$$' for a literal '$'`);
}

function braced(body: string, lookup: (name: string) => string | undefined, unset: string[]): string {
  const name = NAME.exec(body)?.[0];
  if (name === undefined) {
    throw new InterpolationFailure(`invalid variable reference '\${${body}}'; names are letters, digits and '_'`);
  }
  const rest = body.slice(name.length);
  if (rest === '') return valueOf(name, lookup, unset);
  const value = lookup(name);
  const op = /^(:-|-|:\?|\?|:\+|\+)/.exec(rest)?.[0];
  if (op === undefined) {
    throw new InterpolationFailure(
      `invalid variable reference '\${${body}}'; supported forms: \${${name}}, \${${name}:-default}, \${${name}-default}, \${${name}:?message}, \${${name}?message}`,
    );
  }
  const arg = rest.slice(op.length);
  const emptyCounts = op.startsWith(':');
  const missing = value === undefined || (emptyCounts && value === '');
  switch (op) {
    case ':-':
    case '-':
      return missing ? substitute(arg, lookup, unset) : (value ?? '');
    case ':+':
    case '+':
      return missing ? '' : substitute(arg, lookup, unset);
    default: {
      if (!missing) return value ?? '';
      const state = value === undefined ? 'is not set' : 'is empty';
      const detail = arg === '' ? '' : `: ${arg}`;
      throw new InterpolationFailure(
        `required variable ${name} ${state}${detail} (pass --env ${name}=… or --env-file)`,
      );
    }
  }
}

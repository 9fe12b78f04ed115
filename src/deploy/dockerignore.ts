/**
 * `.dockerignore` as Docker reads it (moby/patternmatcher): one pattern a line, `#` comments,
 * surrounding spaces trimmed, a leading `/` dropped, paths cleaned; `*` and `?` match within one
 * path segment, `**` any number of segments, `[...]` a class, `\` escapes; `!` makes an exception.
 * The last pattern that matches a path decides; a pattern that matches a directory matches
 * everything below it.
 */
import { posix } from 'node:path';

/** One compiled pattern. */
interface Rule {
  readonly exclude: boolean;
  readonly re: RegExp;
}

/** A compiled `.dockerignore`. */
export interface IgnoreMatcher {
  /** True when `rel` (a slash-separated path relative to the context) is left out of the context. */
  ignored(rel: string): boolean;
  /** True when some `!` exception exists (then an ignored directory is still walked). */
  readonly hasExceptions: boolean;
}

/** Compiles the text of a `.dockerignore`. */
export function parseDockerignore(text: string): IgnoreMatcher {
  const rules: Rule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let exclude = true;
    if (line.startsWith('!')) {
      exclude = false;
      line = line.slice(1).trim();
    }
    let clean = posix.normalize(line);
    while (clean.startsWith('/')) clean = clean.slice(1);
    if (clean.endsWith('/') && clean.length > 1) clean = clean.slice(0, -1);
    if (clean === '' || clean === '.') continue;
    rules.push({ exclude, re: compile(clean) });
  }
  return {
    hasExceptions: rules.some((r) => !r.exclude),
    ignored(rel: string): boolean {
      const candidates = parentsAndSelf(rel);
      let out = false;
      for (const rule of rules) {
        if (candidates.some((p) => rule.re.test(p))) out = rule.exclude;
      }
      return out;
    },
  };
}

function parentsAndSelf(rel: string): string[] {
  const parts = rel.split('/');
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

function compile(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?'; // `**/`: zero or more directories
        } else re += '.*';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (ch === '\\' && i + 1 < pattern.length) {
      i++;
      re += escape(pattern[i]!);
    } else re += escape(ch);
  }
  return new RegExp(`${re}$`);
}

function escape(ch: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(ch) ? `\\${ch}` : ch;
}

/**
 * The located tree validators walk (YAML with aliases and merge keys resolved, every node with
 * its line and column), key-path helpers, and the `Collector` that gathers issues, warnings and
 * positions while a config is validated.
 */
import type { ConfigIssue, SourcePosition } from '../errors.ts';
import { interpolate } from './interpolate.ts';

/** 1-based line and column in the config file. */
export interface Pos {
  readonly line: number;
  readonly column: number;
  /** The file, when it is not the collector's (a file brought in by `include` or `extends.file`). */
  readonly file?: string;
}

/** A scalar: `value` as YAML typed it (strings not yet interpolated); `text` its source text. */
export interface LScalar {
  readonly kind: 'scalar';
  readonly value: string | number | boolean | null;
  /** The scalar's text: the string itself, or a number/boolean as written (`0x10`, `1.50`). */
  readonly text: string;
  readonly pos: Pos;
}

/** A sequence. */
export interface LSeq {
  readonly kind: 'seq';
  readonly items: readonly LNode[];
  readonly pos: Pos;
}

/** One key of a map, with where the key is written. */
export interface LEntry {
  readonly key: string;
  readonly keyPos: Pos;
  readonly value: LNode;
}

/** A map, entries in source order (merged `<<` entries after explicit ones). */
export interface LMap {
  readonly kind: 'map';
  readonly entries: readonly LEntry[];
  readonly pos: Pos;
}

/** Any node of the located tree. */
export type LNode = LScalar | LSeq | LMap;

/** A warning about the config that does not stop it from being used (same shape as an issue). */
export type ConfigWarning = ConfigIssue;

/** `parent.key`, or `parent["odd key"]` when the key has characters other than `[A-Za-z0-9_-]`. */
export function keyPath(parent: string, key: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${JSON.stringify(key)}]`;
}

/** `parent[index]`. */
export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/** Where issues about an entry's value go: the value if it is a non-empty scalar, else the key. */
export function entryPos(entry: LEntry): Pos {
  return entry.value.kind === 'scalar' && entry.value.value !== null ? entry.value.pos : entry.keyPos;
}

/** Words for a node's type in messages: "a list", "a map", "a string"… */
export function describe(node: LNode): string {
  if (node.kind === 'seq') return 'a list';
  if (node.kind === 'map') return 'a map';
  if (node.value === null) return 'nothing (null)';
  if (typeof node.value === 'string') return `the string "${node.text}"`;
  if (typeof node.value === 'number') return `the number ${node.text}`;
  return `the boolean ${node.text}`;
}

/** Gathers issues, interpolation warnings and key-path positions for one config file. */
export class Collector {
  readonly file: string;
  readonly issues: ConfigIssue[] = [];
  readonly positions = new Map<string, SourcePosition>();
  readonly #env: Readonly<Record<string, string>>;
  readonly #warn: ((warning: ConfigWarning) => void) | undefined;
  readonly #warned = new Set<string>();
  /** Key path → variables that were unset where its value was read (named in issues at that path). */
  readonly #unsetAt = new Map<string, { readonly names: readonly string[]; readonly empty: boolean }>();
  /** Supported-key lists already printed in an "unknown key" message (printed once per file). */
  readonly listedKeys = new Set<string>();

  constructor(file: string, env: Readonly<Record<string, string>>, warn?: (warning: ConfigWarning) => void) {
    this.file = file;
    this.#env = env;
    this.#warn = warn;
  }

  /** Records a problem at `pos`. */
  issue(path: string, pos: Pos, message: string): void {
    const unset = this.#unsetAt.get(path);
    const vars = unset === undefined ? '' : `${unset.names.length === 1 ? 'variable' : 'variables'} ${unset.names.join(', ')} ${unset.names.length === 1 ? 'is' : 'are'} not set`;
    const fix = unset === undefined ? '' : `pass --env ${unset.names[0]}=… or add it to .env`;
    const why = unset === undefined ? '' : unset.empty ? ` (the value is empty because ${vars}: ${fix})` : ` (${vars} and became '': ${fix})`;
    this.issues.push({ file: pos.file ?? this.file, line: pos.line, column: pos.column, path, message: message + why });
  }

  /** Reports a warning at `pos` (e.g. an obsolete key). */
  warning(path: string, pos: Pos, message: string): void {
    this.#warn?.({ file: pos.file ?? this.file, line: pos.line, column: pos.column, path, message });
  }

  /** Remembers where `path` is, for `DeploymentSpec.positions`. */
  record(path: string, pos: Pos): void {
    if (!this.positions.has(path)) this.positions.set(path, { file: pos.file ?? this.file, line: pos.line, column: pos.column });
  }

  /** A variable of the environment the config is read with (undefined when unset). */
  lookup(name: string): string | undefined {
    return Object.hasOwn(this.#env, name) ? this.#env[name] : undefined;
  }

  /**
   * The interpolated value of a string scalar (other scalars: their text). On a bad reference or
   * a missing required variable records an issue and returns undefined. Unset variables warn once
   * per name.
   */
  text(node: LScalar, path: string): string | undefined {
    if (typeof node.value !== 'string') return node.text;
    const result = interpolate(node.value, (name) => this.lookup(name));
    if (!result.ok) {
      this.issue(path, node.pos, result.message);
      return undefined;
    }
    if (result.unset.length > 0) this.#unsetAt.set(path, { names: result.unset, empty: result.value.trim() === '' });
    for (const name of result.unset) {
      if (this.#warned.has(name)) continue;
      this.#warned.add(name);
      this.#warn?.({
        file: node.pos.file ?? this.file,
        line: node.pos.line,
        column: node.pos.column,
        path,
        message: `variable ${name} is not set; using an empty string (pass --env ${name}=… or add it to the .env beside the file)`,
      });
    }
    return result.value;
  }
}

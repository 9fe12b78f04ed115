/**
 * YAML text → the located tree of `nodes.ts`. Syntax errors become DEPAD_CONFIG_SYNTAX with
 * `file:line:column`; aliases are expanded and `<<` merge keys applied; duplicate keys and
 * non-string keys are recorded as issues with their key path.
 */
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode, Scalar } from 'yaml';
import { DepadError } from '../errors.ts';
import type { ConfigIssue } from '../errors.ts';
import { indexPath, keyPath } from './nodes.ts';
import type { Collector, LEntry, LMap, LNode, LScalar, Pos } from './nodes.ts';

/** Limits against alias bombs and runaway nesting. */
const MAX_NODES = 100_000;
const MAX_DEPTH = 100;

/**
 * Parses `text` and returns its top-level map. Throws DEPAD_CONFIG_SYNTAX (message
 * `file:line:column: reason`) for malformed YAML, several documents, or a top level that is not a map.
 */
export function parseYamlTree(text: string, collector: Collector, otherFile?: string): LMap {
  const file = otherFile ?? collector.file;
  const inOther = otherFile !== undefined && otherFile !== collector.file;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, schema: 'core', merge: false });
  const at = (offset: number): Pos => {
    const { line, col } = lineCounter.linePos(offset);
    const pos = { line: Math.max(line, 1), column: Math.max(col, 1) };
    return inOther ? { ...pos, file } : pos;
  };
  // Only the first syntax error: yaml goes on parsing after it, and what it reports next follows
  // from it (one mis-indented line gave the same message at two and three places, and several
  // lines). Warnings (an unknown tag, a directive) are each a problem of their own.
  const problems = doc.errors.length > 0 ? doc.errors.slice(0, 1) : doc.warnings;
  if (problems.length > 0) {
    const issues = problems.map((e): ConfigIssue => {
      const pos = at(e.pos[0]);
      const message =
        e.code === 'MULTIPLE_DOCS'
          ? 'the file holds more than one YAML document (a --- line); depad reads exactly one'
          : e.code === 'TAG_RESOLVE_FAILED'
            ? `${e.message} (custom YAML tags such as !reset are not supported)`
            : e.message;
      return { file, line: pos.line, column: pos.column, path: '', message };
    });
    throw syntaxError(file, issues);
  }
  const contents = doc.contents;
  if (!isMap(contents)) {
    const pos = contents?.range ? at(contents.range[0]) : { line: 1, column: 1 };
    const found = contents === null || (isScalar(contents) && contents.value === null) ? 'the file is empty' : isSeq(contents) ? 'found a list' : 'found a single value';
    throw syntaxError(file, [
      { file, line: pos.line, column: pos.column, path: '', message: `the top level must be a map with a services: key; ${found}` },
    ]);
  }
  const builder = new TreeBuilder(doc, text, at, collector);
  const root = builder.convert(contents, '', 0, true);
  if (root.kind !== 'map') throw new Error('unreachable: top level converted to a non-map');
  return root;
}

function syntaxError(file: string, issues: readonly ConfigIssue[]): DepadError {
  const lines = issues.slice(0, 5).map((i) => `${i.file}:${i.line}:${i.column}: ${i.message}`);
  if (issues.length > 5) lines.push(`… and ${issues.length - 5} more`);
  const [only] = issues;
  const message = issues.length === 1 && only ? `${only.file}:${only.line}:${only.column}: not valid YAML: ${only.message}` : `${file} is not valid YAML:\n  ${lines.join('\n  ')}`;
  return new DepadError('DEPAD_CONFIG_SYNTAX', message, {
    hint: 'fix the YAML at the position shown (indent with spaces, not tabs) and run the command again',
    details: { issues },
  });
}

class TreeBuilder {
  readonly #doc: Document;
  readonly #text: string;
  readonly #at: (offset: number) => Pos;
  readonly #c: Collector;
  #count = 0;

  constructor(doc: Document, text: string, at: (offset: number) => Pos, collector: Collector) {
    this.#doc = doc;
    this.#text = text;
    this.#at = at;
    this.#c = collector;
  }

  #pos(node: YamlNode): Pos {
    return node.range ? this.#at(node.range[0]) : { line: 1, column: 1 };
  }

  #tooBig(node: YamlNode, what: string): DepadError {
    const pos = this.#pos(node);
    const file = pos.file ?? this.#c.file;
    return syntaxError(file, [{ file, line: pos.line, column: pos.column, path: '', message: what }]);
  }

  /** Converts `node` found at `path`; `record` says whether to remember positions under it. */
  convert(node: YamlNode, path: string, depth: number, record: boolean, posOverride?: Pos): LNode {
    if (++this.#count > MAX_NODES) throw this.#tooBig(node, `the file expands to more than ${MAX_NODES} nodes (check aliases)`);
    if (depth > MAX_DEPTH) throw this.#tooBig(node, `the file nests more than ${MAX_DEPTH} levels deep`);
    if (isAlias(node)) {
      const target = node.resolve(this.#doc);
      if (target === undefined) throw this.#tooBig(node, `alias *${node.source} refers to no anchor`);
      return this.convert(target, path, depth + 1, record, posOverride ?? this.#pos(node));
    }
    const pos = posOverride ?? this.#pos(node);
    if (isSeq(node)) {
      const items = node.items.map((item, i) => {
        const itemPath = indexPath(path, i);
        const valid = isScalar(item) || isMap(item) || isSeq(item) || isAlias(item);
        if (record) this.#c.record(itemPath, valid && item.range ? this.#pos(item) : pos);
        return valid ? this.convert(item, itemPath, depth + 1, record) : nullAt(pos);
      });
      return { kind: 'seq', items, pos };
    }
    if (isMap(node)) return this.#convertMap(node.items, path, depth, record, pos);
    return this.#scalar(node as Scalar, pos);
  }

  /** Where a map value is, for positions: a non-null scalar or an alias; undefined for collections. */
  #valuePos(node: YamlNode | null): Pos | undefined {
    if (isAlias(node)) return this.#pos(node);
    if (isScalar(node) && node.value !== null && node.value !== undefined) return this.#pos(node);
    return undefined;
  }

  /** A non-string scalar's text as written (`0x10`, `1.50`, `NULL`); '' for an empty node. */
  #sourceText(node: Scalar): string {
    return node.range ? this.#text.slice(node.range[0], node.range[1]) : String(node.value ?? '');
  }

  #scalar(node: Scalar, pos: Pos): LScalar {
    const v = node.value;
    if (typeof v === 'string') return { kind: 'scalar', value: v, text: v, pos };
    if (v === null || v === undefined) return { kind: 'scalar', value: null, text: '', pos };
    const text = this.#sourceText(node);
    if (typeof v === 'number' || typeof v === 'boolean') return { kind: 'scalar', value: v, text, pos };
    return { kind: 'scalar', value: text, text, pos };
  }

  #convertMap(items: readonly unknown[], path: string, depth: number, record: boolean, pos: Pos): LMap {
    const entries: LEntry[] = [];
    const seen = new Map<string, Pos>();
    const merges: YamlNode[] = [];
    for (const pair of items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as YamlNode | null;
      const keyPos = keyNode && typeof keyNode === 'object' ? this.#pos(keyNode) : pos;
      // Non-string keys keep their text as written (`1:`, `true:`, even `NULL:`), as compose reads them.
      const key = !isScalar(keyNode) ? '' : typeof keyNode.value === 'string' ? keyNode.value : this.#sourceText(keyNode);
      if (!isScalar(keyNode) || key === '') {
        this.#c.issue(path || '(top level)', keyPos, 'keys must be plain non-empty strings, not lists, maps or nothing');
        continue;
      }
      if (key === '<<' && keyNode.type === 'PLAIN' && pair.value) {
        merges.push(pair.value as YamlNode);
        continue;
      }
      const childPath = keyPath(path, key);
      const first = seen.get(key);
      if (first) {
        this.#c.issue(childPath, keyPos, `duplicate key '${key}' (first given at line ${first.line}, column ${first.column}); keep only one`);
        continue;
      }
      seen.set(key, keyPos);
      const childRecord = record && !(key.startsWith('x-') && !(key === 'x-depad' && (path === '' || /^services\.[^.]+$/.test(path))));
      const valueNode = pair.value as YamlNode | null;
      if (childRecord) this.#c.record(childPath, this.#valuePos(valueNode) ?? keyPos);
      const value = valueNode ? this.convert(valueNode, childPath, depth + 1, childRecord) : nullAt(keyPos);
      entries.push({ key, keyPos, value });
    }
    for (const source of merges) {
      for (const merged of this.#mergeSources(source, path, depth, record)) {
        if (seen.has(merged.key)) continue;
        seen.set(merged.key, merged.keyPos);
        entries.push(merged);
      }
    }
    return { kind: 'map', entries, pos };
  }

  /** Entries a `<<` value contributes: a map, an alias of one, or a list of those (earlier win). */
  #mergeSources(source: YamlNode, path: string, depth: number, record: boolean): LEntry[] {
    const list = isSeq(source) ? (source.items as YamlNode[]) : [source];
    const out: LEntry[] = [];
    for (const item of list) {
      const converted = this.convert(item, path, depth + 1, record);
      if (converted.kind !== 'map') {
        this.#c.issue(keyPath(path, '<<'), converted.pos, 'a << merge key takes a map, an alias of a map (<<: *name) or a list of them');
        continue;
      }
      out.push(...converted.entries);
    }
    return out;
  }
}

function nullAt(pos: Pos): LScalar {
  return { kind: 'scalar', value: null, text: '', pos };
}

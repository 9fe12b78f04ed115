/**
 * A build context as the engine receives it: the context directory's files (less what
 * `.dockerignore` leaves out) in a tar archive, with the Dockerfile in it. Entries are sorted and
 * have mtime 0, owner 0:0, so the same files make the same bytes: their hash names the build
 * (build.ts). Symbolic links are stored as links, never followed. The archive is made in memory.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DepadError } from '../errors.ts';
import { parseDockerignore, type IgnoreMatcher } from './dockerignore.ts';

/** Contexts above this are refused (the archive is held in memory). */
export const MAX_CONTEXT_BYTES = 512 * 1024 * 1024;

/** The name under which a Dockerfile from outside the context, or given inline, is added. */
export const EXTRA_DOCKERFILE = '.depad.Dockerfile';

/** A packed context. */
export interface PackedContext {
  tar: Buffer;
  /** The Dockerfile's path inside the archive. */
  dockerfile: string;
  /** The Dockerfile's text (for its FROM lines). */
  dockerfileText: string;
  /** sha256 of the archive. */
  sha256: string;
  files: number;
}

/** Packs `contextDir` with the Dockerfile at `dockerfile` (relative to the context, or absolute) or the `inline` text. */
export async function packContext(contextDir: string, dockerfile: string | undefined, inline: string | undefined): Promise<PackedContext> {
  const stat = await fs.stat(contextDir).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new DepadError('DEPAD_IMAGE_BUILD_FAILED', `the build context ${contextDir} is not a directory`, { hint: 'fix build.context (it is relative to the config file\'s directory)' });
  }
  const ignoreText = await fs.readFile(path.join(contextDir, '.dockerignore'), 'utf8').catch(() => '');
  const matcher = parseDockerignore(ignoreText);
  let dfName = 'Dockerfile';
  let dfText: string | undefined = inline;
  if (inline !== undefined) dfName = EXTRA_DOCKERFILE;
  else {
    const abs = path.resolve(contextDir, dockerfile ?? 'Dockerfile');
    const rel = path.relative(contextDir, abs);
    dfText = await fs.readFile(abs, 'utf8').catch(() => undefined);
    if (dfText === undefined) {
      throw new DepadError('DEPAD_IMAGE_BUILD_FAILED', `the Dockerfile ${abs} cannot be read`, { hint: 'create it, or fix build.dockerfile (it is relative to the build context)' });
    }
    dfName = rel.startsWith('..') || path.isAbsolute(rel) ? EXTRA_DOCKERFILE : rel.split(path.sep).join('/');
  }
  const entries: Entry[] = [];
  await walk(contextDir, '', matcher, entries, new Set([dfName, '.dockerignore']));
  if (dfName === EXTRA_DOCKERFILE) entries.push({ rel: EXTRA_DOCKERFILE, type: 'file', mode: 0o644, data: Buffer.from(dfText!) });
  entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const chunks: Buffer[] = [];
  let total = 0;
  for (const e of entries) {
    for (const b of tarEntry(e)) {
      chunks.push(b);
      total += b.length;
    }
    if (total > MAX_CONTEXT_BYTES) {
      throw new DepadError('DEPAD_IMAGE_BUILD_FAILED', `the build context ${contextDir} is over ${MAX_CONTEXT_BYTES / 1024 / 1024} MiB`, { hint: 'leave out what the build does not need with a .dockerignore (node_modules, .git, build output)' });
    }
  }
  chunks.push(Buffer.alloc(1024));
  const tar = Buffer.concat(chunks);
  return { tar, dockerfile: dfName, dockerfileText: dfText!, sha256: createHash('sha256').update(tar).digest('hex'), files: entries.filter((e) => e.type === 'file').length };
}

interface Entry {
  rel: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  data?: Buffer;
  link?: string;
}

async function walk(root: string, rel: string, matcher: IgnoreMatcher, out: Entry[], always: ReadonlySet<string>): Promise<void> {
  const dir = path.join(root, rel);
  const names = (await fs.readdir(dir)).sort();
  for (const name of names) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const full = path.join(dir, name);
    const st = await fs.lstat(full);
    const ignored = matcher.ignored(r) && !always.has(r);
    if (st.isDirectory()) {
      if (!ignored) out.push({ rel: r, type: 'dir', mode: st.mode & 0o7777 });
      // An ignored directory may still hold exceptions (`!dir/keep`): walk it then.
      if (!ignored || matcher.hasExceptions) await walk(root, r, matcher, out, always);
    } else if (ignored) {
      continue;
    } else if (st.isSymbolicLink()) {
      out.push({ rel: r, type: 'symlink', mode: 0o777, link: await fs.readlink(full) });
    } else if (st.isFile()) {
      out.push({ rel: r, type: 'file', mode: st.mode & 0o7777, data: await fs.readFile(full) });
    }
  }
}

function tarEntry(e: Entry): Buffer[] {
  const name = e.type === 'dir' ? `${e.rel}/` : e.rel;
  const out: Buffer[] = [];
  const long = Buffer.byteLength(name) > 99 || Buffer.byteLength(e.link ?? '') > 99;
  if (long) {
    const records = [`path=${name}`, ...(e.link !== undefined ? [`linkpath=${e.link}`] : [])].map(paxRecord).join('');
    const body = Buffer.from(records);
    out.push(header('PaxHeader', 0o644, body.length, 'x', ''), pad(body));
  }
  const size = e.type === 'file' ? e.data!.length : 0;
  out.push(header(long ? name.slice(0, 99) : name, e.mode, size, e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2', long ? '' : (e.link ?? '')));
  if (e.type === 'file') out.push(pad(e.data!));
  return out;
}

function paxRecord(kv: string): string {
  // The length counts itself: "<len> <kv>\n".
  let len = Buffer.byteLength(kv) + 3;
  while (String(len).length + 2 + Buffer.byteLength(kv) !== len) len = String(len).length + 2 + Buffer.byteLength(kv);
  return `${len} ${kv}\n`;
}

function header(name: string, mode: number, size: number, type: string, link: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 7), 100);
  h.write(octal(0, 7), 108);
  h.write(octal(0, 7), 116);
  h.write(octal(size, 11), 124);
  h.write(octal(0, 11), 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write(link, 157, 100, 'utf8');
  h.write('ustar\u000000', 257);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148);
  return h;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width, '0')}\u0000`;
}

function pad(data: Buffer): Buffer {
  const rest = data.length % 512;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(512 - rest)]);
}

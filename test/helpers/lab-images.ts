/**
 * Images for lab engines: a lab cannot pull, so images of the machine's engine are saved once per
 * image ID (cached under $TMPDIR/depad-lab-images) and loaded into each lab.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { must, run } from './lab-proc.ts';

const IMAGE_CACHE = path.join(os.tmpdir(), 'depad-lab-images');

/** A `docker save` of a machine's image, cached per image ID; older saves of the same name are dropped. */
export async function savedImage(image: string): Promise<string> {
  const id = (await run('docker', ['image', 'inspect', '--format', '{{.Id}}', image])).stdout.trim();
  if (!id) throw new Error(`image ${image} is not on the machine's engine (bash scripts/build-images builds depad's)`);
  const slug = image.replace(/[^a-zA-Z0-9.-]+/g, '_');
  const file = path.join(IMAGE_CACHE, `${slug}@${id.replace(/^sha256:/, '').slice(0, 16)}.tar`);
  if (await fs.stat(file).then(() => true, () => false)) return file;
  await fs.mkdir(IMAGE_CACHE, { recursive: true });
  const partial = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.part`;
  try {
    await must('docker', ['save', '-o', partial, image], { timeoutMs: 300_000 });
    await fs.rename(partial, file);
  } finally {
    await fs.rm(partial, { force: true });
  }
  for (const other of await fs.readdir(IMAGE_CACHE)) {
    if (other.startsWith(`${slug}@`) && other.endsWith('.tar') && path.join(IMAGE_CACHE, other) !== file) await fs.rm(path.join(IMAGE_CACHE, other), { force: true });
  }
  return file;
}

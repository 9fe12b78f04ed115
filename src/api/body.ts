/** Request bodies of the management API: JSON objects, size-limited, with no unknown fields. */
import { labelProblem } from '../labels.ts';
import type { IncomingMessage } from 'node:http';
import { DepadError } from '../errors.ts';

/** Largest request body accepted (configs travel inline, so not tiny). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Reads the body as a JSON object: 413 past `limit`; 400 for another content type or bad JSON. */
export async function readJsonObject(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new DepadError('DEPAD_USAGE', 'the body must be JSON (Content-Type: application/json)');
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new DepadError('DEPAD_USAGE', `malformed JSON: ${(error as Error).message}`, { cause: error });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new DepadError('DEPAD_USAGE', 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

/** Like `readJsonObject`, but an empty body (no Content-Length, or 0) is `{}`. */
export async function readOptionalJsonObject(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  if (req.headers['content-length'] === '0' || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined)) return {};
  return readJsonObject(req, limit);
}

function tooLarge(limit: number): DepadError {
  return new DepadError('DEPAD_BODY_TOO_LARGE', `the body is larger than ${limit} bytes`);
}

/** Refuses fields other than `allowed` (a typo must not be ignored silently). */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new DepadError('DEPAD_USAGE', `unknown field${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`, { hint: `allowed: ${allowed.join(', ')}` });
  }
}

/** A string field (required unless `optional`). */
export function stringField(body: Record<string, unknown>, key: string, optional = false): string | undefined {
  const v = body[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string') throw new DepadError('DEPAD_USAGE', `field ${key} must be a string`);
  return v;
}

/** A true/false field (optional; default false). */
export function booleanField(body: Record<string, unknown>, key: string): boolean {
  const v = body[key];
  if (v !== undefined && typeof v !== 'boolean') throw new DepadError('DEPAD_USAGE', `field ${key} must be true or false`);
  return v === true;
}

/** A true/false query parameter (optional; default false). */
export function booleanQuery(url: URL, key: string): boolean {
  const v = url.searchParams.get(key);
  if (v !== null && v !== 'true' && v !== 'false') throw new DepadError('DEPAD_USAGE', `${key} must be true or false`);
  return v === 'true';
}

/** A string-array field (optional; default empty). */
export function stringsField(body: Record<string, unknown>, key: string): string[] {
  const v = body[key];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new DepadError('DEPAD_USAGE', `field ${key} must be an array of strings`);
  return v as string[];
}

/** A string-to-string map field (optional; default empty). */
export function stringMapField(body: Record<string, unknown>, key: string): Record<string, string> {
  const v = body[key];
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    throw new DepadError('DEPAD_USAGE', `field ${key} must be an object of strings`);
  }
  return Object.fromEntries(Object.entries(v as Record<string, string>));
}

/** A map of labels (optional; default empty), each checked by the label rules; DEPAD_USAGE naming the field. */
export function labelsField(body: Record<string, unknown>, key: string): Record<string, string> {
  const labels = stringMapField(body, key);
  for (const [k, v] of Object.entries(labels)) {
    const problem = labelProblem(k, v);
    if (problem) throw new DepadError('DEPAD_USAGE', `${key}: ${problem}`);
  }
  return labels;
}

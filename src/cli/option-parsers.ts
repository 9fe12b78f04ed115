/** Parsers for command-line option values, shared by the commands. */
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../config/values.ts';

/** A TCP port number (0–65535). */
export function portNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError(`not a port number: ${JSON.stringify(value)}`);
  return n;
}

/** A repeatable option: each value appended to the list. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A whole number ≥ 1. */
export function positiveInt(value: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new InvalidArgumentError(`not a whole number ≥ 1: ${JSON.stringify(value)}`);
  return Number(value);
}

/** A duration such as `60s`, `1m30s` or `500ms` (greater than 0) → milliseconds. */
export function durationMs(value: string): number {
  const parsed = parseDuration(value);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error);
  if (parsed.value <= 0) throw new InvalidArgumentError(`must be longer than 0, found ${JSON.stringify(value)}`);
  return parsed.value;
}

/** A size in bytes: a whole number with an optional k, m or g (powers of 1024), e.g. `64k`. */
export function byteSize(value: string): number {
  const m = /^([1-9]\d*)([kmg]?)i?b?$/i.exec(value.trim());
  if (m === null) throw new InvalidArgumentError(`not a size such as 65536, 64k or 1m: ${JSON.stringify(value)}`);
  return Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase());
}

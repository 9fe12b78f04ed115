/** Parsers for command-line option values, shared by the commands. */
import { InvalidArgumentError } from 'commander';

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

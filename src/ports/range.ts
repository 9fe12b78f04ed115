/**
 * The host port range depad allocates from, cut into fixed-size blocks, and the arithmetic on
 * blocks the allocator and its persisted cursor use. A block is named by its first port.
 */
import { DepadError } from '../errors.ts';

/** An inclusive range of host ports, cut into blocks of `blockSize` consecutive ports. */
export interface PortRange {
  /** First port of the range; also the first port of its first block. */
  min: number;
  /** Last port of the range (inclusive); also the last port of its last block. */
  max: number;
  /** Ports per block; the range's length must be a multiple of it. */
  blockSize: number;
}

/** The range used unless told otherwise: 3000–65499, 625 blocks of 100. */
export const DEFAULT_PORT_RANGE: Readonly<PortRange> = Object.freeze({ min: 3000, max: 65499, blockSize: 100 });

/** Highest TCP/UDP port number. */
const MAX_PORT = 65535;

/**
 * Checks that `range` is usable: whole numbers, 1 ≤ min ≤ max ≤ 65535, blockSize ≥ 1 and the
 * range's length a multiple of blockSize (so every block is whole). Throws `DEPAD_USAGE`.
 */
export function validatePortRange(range: PortRange): void {
  const bad = (why: string): never => {
    throw new DepadError('DEPAD_USAGE', `invalid port range ${describeRange(range)}: ${why}`, {
      hint: `use whole numbers with 1 <= min <= max <= ${MAX_PORT} and (max - min + 1) a multiple of the block size`,
      details: { min: range?.min, max: range?.max, blockSize: range?.blockSize },
    });
  };
  if (typeof range !== 'object' || range === null) bad('not an object');
  const { min, max, blockSize } = range;
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || !Number.isSafeInteger(blockSize)) {
    bad('min, max and blockSize must be whole numbers');
  }
  if (min < 1) bad('min must be at least 1');
  if (max > MAX_PORT) bad(`max must be at most ${MAX_PORT}`);
  if (min > max) bad('min must not be above max');
  if (blockSize < 1) bad('blockSize must be at least 1');
  if ((max - min + 1) % blockSize !== 0) {
    bad(`its length ${max - min + 1} is not a multiple of the block size ${blockSize}`);
  }
}

/** Number of blocks in a (valid) range. */
export function blockCount(range: PortRange = DEFAULT_PORT_RANGE): number {
  validatePortRange(range);
  return (range.max - range.min + 1) / range.blockSize;
}

/**
 * First port of the block holding `port`. Throws `DEPAD_INTERNAL` when `port` is not a whole
 * number inside the range, `DEPAD_USAGE` when the range is invalid.
 */
export function blockOf(port: number, range: PortRange = DEFAULT_PORT_RANGE): number {
  validatePortRange(range);
  if (!Number.isSafeInteger(port) || port < range.min || port > range.max) {
    throw new DepadError('DEPAD_INTERNAL', `port ${String(port)} is not inside the port range ${describeRange(range)}`);
  }
  return port - ((port - range.min) % range.blockSize);
}

/**
 * The block after the one starting at `cursor`, wrapping from the last block back to the first
 * (65400 → 3000 with the default range). Throws `DEPAD_INTERNAL` when `cursor` is not the first
 * port of a block of the range, `DEPAD_USAGE` when the range is invalid.
 */
export function nextBlock(cursor: number, range: PortRange = DEFAULT_PORT_RANGE): number {
  assertBlockStart(cursor, range);
  const next = cursor + range.blockSize;
  return next > range.max ? range.min : next;
}

/**
 * Checks that `cursor` is the first port of a block of the (validated) range; throws
 * `DEPAD_INTERNAL` otherwise.
 */
export function assertBlockStart(cursor: number, range: PortRange = DEFAULT_PORT_RANGE): void {
  validatePortRange(range);
  if (
    !Number.isSafeInteger(cursor) ||
    cursor < range.min ||
    cursor > range.max ||
    (cursor - range.min) % range.blockSize !== 0
  ) {
    throw new DepadError(
      'DEPAD_INTERNAL',
      `port cursor ${String(cursor)} is not the first port of a block of the port range ${describeRange(range)}`,
      { details: { cursor, min: range.min, max: range.max, blockSize: range.blockSize } },
    );
  }
}

/** `3000–65499 (blocks of 100)`, for messages. */
export function describeRange(range: PortRange): string {
  if (typeof range !== 'object' || range === null) return String(range);
  return `${String(range.min)}–${String(range.max)} (blocks of ${String(range.blockSize)})`;
}

/**
 * The range from `DEPAD_PORT_RANGE` (`MIN-MAX`, e.g. `20000-29999`; blocks of 100), for hosts where
 * depad may use only part of 3000–65499; the default range when unset. Throws `DEPAD_USAGE`.
 */
export function portRangeFromEnv(env: NodeJS.ProcessEnv = process.env): PortRange {
  const raw = env.DEPAD_PORT_RANGE;
  if (!raw) return DEFAULT_PORT_RANGE;
  const match = /^(\d+)-(\d+)$/.exec(raw.trim());
  const range = { min: Number(match?.[1] ?? NaN), max: Number(match?.[2] ?? NaN), blockSize: DEFAULT_PORT_RANGE.blockSize };
  if (!match) {
    throw new DepadError('DEPAD_USAGE', `DEPAD_PORT_RANGE=${raw} is not MIN-MAX`, { hint: 'e.g. DEPAD_PORT_RANGE=20000-29999' });
  }
  validatePortRange(range);
  return range;
}

/** `cursor` if it is a block start inside `range`, else the range's first block (the range changed). */
export function cursorIn(cursor: number, range: PortRange): number {
  const inside = cursor >= range.min && cursor <= range.max && (cursor - range.min) % range.blockSize === 0;
  return inside ? cursor : range.min;
}

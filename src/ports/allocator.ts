/**
 * Host port allocation for a new deployment. Pure: it reads the registry and the host through
 * the functions it is given, decides, and returns the ports and the next cursor for the caller
 * to persist; it stores nothing and reserves nothing itself.
 *
 * The rule: start at the block the persisted cursor names; take each block's ports in ascending
 * order, skipping ports reserved in the registry (by any deployment, running or stopped) and
 * ports open on the host; when a block cannot yield enough, keep what it gave and go on to the
 * next block (wrapping from the last block to the first) until enough are found or every block
 * has been considered once. The next cursor is the block after the last block considered.
 */
import { DepadError } from '../errors.ts';
import { DEFAULT_PORT_RANGE, assertBlockStart, blockCount, describeRange, nextBlock } from './range.ts';
import type { PortRange } from './range.ts';

/** What a new deployment needs, and how to see what is taken. */
export interface AllocateRequest {
  /** Ports needed. 0 is allowed: no ports, but the cursor still advances one block. */
  count: number;
  /** The persisted cursor: the first port of the block to start at. */
  cursor: number;
  /** The range to allocate from; `DEFAULT_PORT_RANGE` (3000–65499, blocks of 100) if omitted. */
  range?: PortRange;
  /** True when the registry holds `port` for some deployment (even a stopped one). Synchronous. */
  isReserved: (port: number) => boolean;
  /** True when `port` is open or unusable on the host; `isPortOpenOnHost` in production. */
  isOpenOnHost: (port: number) => Promise<boolean>;
}

/** The allocator's decision, for the caller to persist. */
export interface Allocation {
  /** `count` distinct ports, in the order found: blocks in the order considered, ascending within each. */
  ports: number[];
  /** The cursor to persist: the block after the last block considered (wrapping). */
  nextCursor: number;
  /** First port of each block considered, in order; the first is the request's cursor. */
  blocks: number[];
}

/** Most host probes in flight at once (one block's worth with the default range). */
export const MAX_PROBES_IN_FLIGHT = 100;

/**
 * Chooses `count` host ports for a new deployment (see the module comment for the rule).
 * Deterministic for a given registry and host: probes run concurrently, but ports are taken in
 * the same order a one-at-a-time scan would take them, and reserved ports are never probed.
 * Throws `DEPAD_PORT_EXHAUSTED` when a full cycle over all blocks cannot yield `count` ports
 * (nothing is allocated then), `DEPAD_USAGE` for an invalid range and `DEPAD_INTERNAL` for an
 * invalid count, cursor or callback. Errors from the callbacks propagate unchanged.
 */
export async function allocatePorts(req: AllocateRequest): Promise<Allocation> {
  if (typeof req !== 'object' || req === null) {
    throw new DepadError('DEPAD_INTERNAL', 'allocatePorts needs a request object');
  }
  const range = req.range ?? DEFAULT_PORT_RANGE;
  const blocksInRange = blockCount(range); // validates the range
  const { count, cursor, isReserved, isOpenOnHost } = req;
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new DepadError('DEPAD_INTERNAL', `port count must be a whole number >= 0, got ${String(count)}`);
  }
  if (typeof isReserved !== 'function' || typeof isOpenOnHost !== 'function') {
    throw new DepadError('DEPAD_INTERNAL', 'allocatePorts needs isReserved and isOpenOnHost functions');
  }
  assertBlockStart(cursor, range);

  const portsInRange = range.max - range.min + 1;
  if (count > portsInRange) {
    throw exhausted(count, 0, range, `the port range ${describeRange(range)} holds only ${portsInRange}`);
  }

  const ports: number[] = [];
  const blocks: number[] = [];
  let block = cursor;
  for (let i = 0; i < blocksInRange; i++) {
    blocks.push(block);
    const need = count - ports.length;
    if (need > 0) {
      const last = block + range.blockSize - 1;
      for (const port of await freePortsInBlock(block, last, need, isReserved, isOpenOnHost)) ports.push(port);
    }
    if (ports.length >= count) {
      return { ports, nextCursor: nextBlock(block, range), blocks };
    }
    block = nextBlock(block, range);
  }
  throw exhausted(count, ports.length, range, `only ${ports.length} ${ports.length === 1 ? 'is' : 'are'} free in ${describeRange(range)}`);
}

/**
 * Up to `need` free ports of `first`..`last`, ascending: the lowest ones neither reserved nor
 * open on the host. Probes in windows of at most `need` unreserved candidates at once, so every
 * free port a window finds is taken and the result equals a one-at-a-time ascending scan.
 */
async function freePortsInBlock(
  first: number,
  last: number,
  need: number,
  isReserved: (port: number) => boolean,
  isOpenOnHost: (port: number) => Promise<boolean>,
): Promise<number[]> {
  const free: number[] = [];
  let port = first;
  while (free.length < need && port <= last) {
    const want = Math.min(need - free.length, MAX_PROBES_IN_FLIGHT);
    const window: number[] = [];
    for (; window.length < want && port <= last; port++) {
      if (!isReserved(port)) window.push(port);
    }
    if (window.length === 0) break;
    const open = await Promise.all(window.map((candidate) => isOpenOnHost(candidate)));
    for (let i = 0; i < window.length; i++) {
      const answer = open[i];
      if (typeof answer !== 'boolean') {
        throw new DepadError('DEPAD_INTERNAL', `host probe for port ${String(window[i])} answered ${String(answer)}, not a boolean`);
      }
      if (!answer) free.push(window[i]!);
    }
  }
  return free;
}

/** The error for "not enough free ports", with the figures in the message and in details. */
function exhausted(needed: number, found: number, range: PortRange, why: string): DepadError {
  return new DepadError(
    'DEPAD_PORT_EXHAUSTED',
    `not enough free host ports: this deployment needs ${needed} but ${why}`,
    {
      hint: 'destroy deployments you no longer use to release their ports (stopped deployments keep theirs), then try again',
      details: { needed, found, min: range.min, max: range.max, blockSize: range.blockSize },
    },
  );
}

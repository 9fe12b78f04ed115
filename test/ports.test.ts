import test from 'ava';
import type { ExecutionContext } from 'ava';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DepadError } from '../src/errors.ts';
import {
  DEFAULT_PORT_RANGE,
  MAX_PROBES_IN_FLIGHT,
  allocatePorts,
  blockCount,
  blockOf,
  isPortOpenOnHost,
  nextBlock,
} from '../src/ports/index.ts';
import type { AllocateRequest, Allocation, PortRange } from '../src/ports/index.ts';

// ---------------------------------------------------------------------------------------------
// Fakes: the registry is a Set, the host a Set of open ports; the fake probe records its calls.

interface FakeHost {
  probe: (port: number) => Promise<boolean>;
  calls: number[];
}

function fakeHost(open: Iterable<number> = [], delay?: (port: number) => number): FakeHost {
  const openSet = new Set(open);
  const calls: number[] = [];
  return {
    calls,
    probe: async (port) => {
      calls.push(port);
      if (delay !== undefined) await sleep(delay(port));
      return openSet.has(port);
    },
  };
}

function request(over: Partial<AllocateRequest> & { reserved?: Iterable<number> } = {}): AllocateRequest {
  const reserved = new Set(over.reserved ?? []);
  const { reserved: _ignored, ...rest } = over;
  return {
    count: 5,
    cursor: DEFAULT_PORT_RANGE.min,
    isReserved: (port) => reserved.has(port),
    isOpenOnHost: fakeHost().probe,
    ...rest,
  };
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let p = from; p <= to; p++) out.push(p);
  return out;
}

/** A tiny range for exhaustion tests: 5000–5029, three blocks of 10. */
const TINY: PortRange = { min: 5000, max: 5029, blockSize: 10 };

/** Simulates depad's create loop: allocate, then persist ports and cursor. */
async function createMany(
  n: number,
  count: number,
  probe: (port: number) => Promise<boolean>,
  opts: { range?: PortRange; reserved?: Set<number> } = {},
): Promise<{ allocations: Allocation[]; reserved: Set<number>; cursor: number }> {
  const reserved = opts.reserved ?? new Set<number>();
  let cursor = (opts.range ?? DEFAULT_PORT_RANGE).min;
  const allocations: Allocation[] = [];
  for (let i = 0; i < n; i++) {
    const a = await allocatePorts({
      count,
      cursor,
      ...(opts.range ? { range: opts.range } : {}),
      isReserved: (p) => reserved.has(p),
      isOpenOnHost: probe,
    });
    for (const p of a.ports) reserved.add(p);
    cursor = a.nextCursor;
    allocations.push(a);
  }
  return { allocations, reserved, cursor };
}

function listen(host: string, port = 0, ipv6Only = false): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, ipv6Only }, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Listens on `host`, closing it when the test ends; undefined when the host cannot (no IPv6). */
async function listenFor(t: ExecutionContext, host: string, ipv6Only = false): Promise<number | undefined> {
  let server: Server;
  try {
    server = await listen(host, 0, ipv6Only);
  } catch {
    return undefined;
  }
  t.teardown(() => close(server));
  return (server.address() as AddressInfo).port;
}

function tcpServerHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
}

// ---------------------------------------------------------------------------------------------
// Range and blocks

test('the default range is 3000–65499 in 625 blocks of 100', (t) => {
  t.deepEqual({ ...DEFAULT_PORT_RANGE }, { min: 3000, max: 65499, blockSize: 100 });
  t.is(blockCount(), 625);
  t.true(Object.isFrozen(DEFAULT_PORT_RANGE));
});

test('nextBlock steps one block and wraps from 65400 to 3000', (t) => {
  t.is(nextBlock(3000), 3100);
  t.is(nextBlock(65300), 65400);
  t.is(nextBlock(65400), 3000);
  t.is(nextBlock(5000, TINY), 5010);
  t.is(nextBlock(5020, TINY), 5000);
});

test('blockOf gives the first port of the block holding a port', (t) => {
  t.is(blockOf(3000), 3000);
  t.is(blockOf(3099), 3000);
  t.is(blockOf(3100), 3100);
  t.is(blockOf(65499), 65400);
  t.is(blockOf(5019, TINY), 5010);
  t.is(blockOf(7, { min: 3, max: 14, blockSize: 4 }), 7);
  t.is(blockOf(10, { min: 3, max: 14, blockSize: 4 }), 7);
});

// ---------------------------------------------------------------------------------------------
// Allocation rules

test('the first allocation uses 3000–3099 and moves the cursor to 3100', async (t) => {
  const a = await allocatePorts(request({ count: 5 }));
  t.deepEqual(a, { ports: [3000, 3001, 3002, 3003, 3004], nextCursor: 3100, blocks: [3000] });
});

test('the cursor advances one block per create', async (t) => {
  const { allocations, cursor } = await createMany(4, 3, fakeHost().probe);
  t.deepEqual(
    allocations.map((a) => [a.blocks, a.ports, a.nextCursor]),
    [
      [[3000], [3000, 3001, 3002], 3100],
      [[3100], [3100, 3101, 3102], 3200],
      [[3200], [3200, 3201, 3202], 3300],
      [[3300], [3300, 3301, 3302], 3400],
    ],
  );
  t.is(cursor, 3400);
});

test('the cursor wraps after 65400–65499 back to 3000', async (t) => {
  const a = await allocatePorts(request({ cursor: 65400, count: 2 }));
  t.deepEqual(a, { ports: [65400, 65401], nextCursor: 3000, blocks: [65400] });

  // 625 creates go round once; the 626th is back in 3000–3099, after the first create's ports.
  const { allocations, cursor } = await createMany(626, 2, fakeHost().probe);
  t.deepEqual(allocations[624], { ports: [65400, 65401], nextCursor: 3000, blocks: [65400] });
  t.deepEqual(allocations[625], { ports: [3002, 3003], nextCursor: 3100, blocks: [3000] });
  t.is(cursor, 3100);
});

test('reserved ports are skipped and never probed', async (t) => {
  const host = fakeHost();
  const a = await allocatePorts(request({ reserved: [3000, 3002, 3003, 3005], isOpenOnHost: host.probe }));
  t.deepEqual(a.ports, [3001, 3004, 3006, 3007, 3008]);
  t.is(a.nextCursor, 3100);
  for (const p of [3000, 3002, 3003, 3005]) t.false(host.calls.includes(p), `probed reserved port ${p}`);
});

test('ports open on the host are skipped', async (t) => {
  const host = fakeHost([3000, 3001, 3004, 3006]);
  const a = await allocatePorts(request({ isOpenOnHost: host.probe }));
  t.deepEqual(a.ports, [3002, 3003, 3005, 3007, 3008]);
  t.deepEqual(a.blocks, [3000]);
});

test('reserved and open ports together are skipped', async (t) => {
  const host = fakeHost([3001, 3003]);
  const a = await allocatePorts(request({ count: 3, reserved: [3000, 3002], isOpenOnHost: host.probe }));
  t.deepEqual(a.ports, [3004, 3005, 3006]);
});

test('an allocation spans blocks when a block cannot yield enough; the cursor lands after the last block used', async (t) => {
  // 3000–3099: only 3000–3002 are usable (3003–3049 reserved, 3050–3099 open on the host).
  const host = fakeHost(range(3050, 3099));
  const a = await allocatePorts(request({ count: 5, reserved: range(3003, 3049), isOpenOnHost: host.probe }));
  t.deepEqual(a, { ports: [3000, 3001, 3002, 3100, 3101], nextCursor: 3200, blocks: [3000, 3100] });

  // Across three blocks, the middle one full.
  const b = await allocatePorts(
    request({ count: 4, reserved: [...range(3001, 3099), ...range(3100, 3199)], isOpenOnHost: fakeHost().probe }),
  );
  t.deepEqual(b, { ports: [3000, 3200, 3201, 3202], nextCursor: 3300, blocks: [3000, 3100, 3200] });
});

test('an allocation that spans the wrap continues at 3000', async (t) => {
  const a = await allocatePorts(request({ cursor: 65400, count: 3, reserved: range(65401, 65499) }));
  t.deepEqual(a, { ports: [65400, 3000, 3001], nextCursor: 3100, blocks: [65400, 3000] });
});

test('a full cycle may end in the block before the cursor', async (t) => {
  // Cursor 5010: only 5000–5009 has room; the cycle is 5010, 5020, 5000 and the cursor returns to 5010.
  const a = await allocatePorts(request({ range: TINY, cursor: 5010, count: 2, reserved: range(5010, 5029) }));
  t.deepEqual(a, { ports: [5000, 5001], nextCursor: 5010, blocks: [5010, 5020, 5000] });
});

test('exhaustion throws DEPAD_PORT_EXHAUSTED with the figures and a hint, after one cycle, with no partial result', async (t) => {
  // 30 ports; 4 usable: 5003 and 5027 free, 5015 and 5016 free; the rest reserved or open.
  const usable = new Set([5003, 5015, 5016, 5027]);
  const reserved = range(5000, 5029).filter((p) => !usable.has(p) && p % 2 === 0);
  const open = range(5000, 5029).filter((p) => !usable.has(p) && p % 2 === 1);
  const host = fakeHost(open);
  const err = await t.throwsAsync(
    allocatePorts(request({ range: TINY, cursor: 5010, count: 5, reserved, isOpenOnHost: host.probe })),
    { instanceOf: DepadError },
  );
  t.is(err.code, 'DEPAD_PORT_EXHAUSTED');
  t.regex(err.message, /needs 5\b/);
  t.regex(err.message, /only 4 are free/);
  t.regex(err.hint ?? '', /destroy/);
  t.like(err.details, { needed: 5, found: 4 });
  // Every unreserved port probed exactly once: one cycle, no more.
  t.deepEqual([...host.calls].sort((x, y) => x - y), [...open, ...usable].sort((x, y) => x - y));
  t.is(new Set(host.calls).size, host.calls.length);
});

test('a count larger than the whole range is exhausted without probing', async (t) => {
  const host = fakeHost();
  const err = await t.throwsAsync(allocatePorts(request({ range: TINY, cursor: 5000, count: 31, isOpenOnHost: host.probe })), {
    instanceOf: DepadError,
  });
  t.is(err.code, 'DEPAD_PORT_EXHAUSTED');
  t.regex(err.message, /needs 31/);
  t.is(host.calls.length, 0);
});

test('exhaustion at the last port: the whole range fits exactly, one more does not', async (t) => {
  const all = await allocatePorts(request({ range: TINY, cursor: 5020, count: 30 }));
  t.deepEqual(all.ports, [...range(5020, 5029), ...range(5000, 5019)]);
  t.is(all.nextCursor, 5020);
  const err = await t.throwsAsync(
    allocatePorts(request({ range: TINY, cursor: 5020, count: 1, reserved: all.ports })),
    { instanceOf: DepadError },
  );
  t.is(err.code, 'DEPAD_PORT_EXHAUSTED');
  t.like(err.details, { needed: 1, found: 0 });
});

test('count 0 returns no ports, probes nothing and still advances the cursor one block', async (t) => {
  const host = fakeHost();
  t.deepEqual(await allocatePorts(request({ count: 0, cursor: 3700, isOpenOnHost: host.probe })), {
    ports: [],
    nextCursor: 3800,
    blocks: [3700],
  });
  t.deepEqual(await allocatePorts(request({ count: 0, cursor: 65400 })), { ports: [], nextCursor: 3000, blocks: [65400] });
  t.is(host.calls.length, 0);
});

test('bad arguments are rejected with DEPAD_INTERNAL or DEPAD_USAGE', async (t) => {
  const internal = { instanceOf: DepadError, code: 'DEPAD_INTERNAL' };
  const usage = { instanceOf: DepadError, code: 'DEPAD_USAGE' };
  for (const count of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
    await t.throwsAsync(allocatePorts(request({ count })), internal, `count ${String(count)}`);
  }
  for (const cursor of [3050, 2900, 65500, 0, Number.NaN, 3000.5]) {
    await t.throwsAsync(allocatePorts(request({ cursor })), internal, `cursor ${cursor}`);
  }
  const badRanges: PortRange[] = [
    { min: 4000, max: 3999, blockSize: 1 },
    { min: 3000, max: 3050, blockSize: 100 },
    { min: 3000, max: 3099, blockSize: 0 },
    { min: 0, max: 99, blockSize: 100 },
    { min: 65500, max: 65599, blockSize: 100 },
    { min: 3000.5, max: 3099, blockSize: 10 },
  ];
  for (const r of badRanges) {
    await t.throwsAsync(allocatePorts(request({ range: r, cursor: r.min })), usage, JSON.stringify(r));
    t.throws(() => nextBlock(r.min, r), usage);
    t.throws(() => blockOf(r.min, r), usage);
  }
  await t.throwsAsync(allocatePorts(request({ isReserved: undefined as unknown as () => boolean })), internal);
  await t.throwsAsync(allocatePorts(request({ isOpenOnHost: null as unknown as () => Promise<boolean> })), internal);
  await t.throwsAsync(allocatePorts(null as unknown as AllocateRequest), internal);
  await t.throwsAsync(
    allocatePorts(request({ isOpenOnHost: async () => undefined as unknown as boolean })),
    internal,
    'probe answering a non-boolean',
  );
  t.throws(() => nextBlock(3050), internal);
  t.throws(() => nextBlock(65500), internal);
  t.throws(() => blockOf(2999), internal);
  t.throws(() => blockOf(65500), internal);
  await t.throwsAsync(isPortOpenOnHost(0), internal);
  await t.throwsAsync(isPortOpenOnHost(65536), internal);
});

test('errors from the registry or the probe propagate unchanged', async (t) => {
  const boom = new Error('registry down');
  await t.throwsAsync(allocatePorts(request({ isReserved: () => { throw boom; } })), { is: boom });
  const down = new Error('probe failed');
  await t.throwsAsync(allocatePorts(request({ isOpenOnHost: async () => { throw down; } })), { is: down });
});

test('allocation is deterministic although probes run concurrently and finish out of order', async (t) => {
  const open = new Set(range(3000, 6000).filter((p) => (p * 7919) % 13 < 4)); // ~30% open
  const reserved = new Set(range(3000, 6000).filter((p) => (p * 104729) % 11 < 3)); // ~27% reserved
  let inFlight = 0;
  let maxInFlight = 0;
  const scrambled = async (port: number) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await sleep((port * 31) % 7); // later ports often answer first
    inFlight--;
    return open.has(port);
  };
  const reference = (count: number, cursor: number) => {
    // The rule, one port at a time.
    const ports: number[] = [];
    for (let b = cursor; ports.length < count; b += 100) {
      for (let p = b; p < b + 100 && ports.length < count; p++) if (!reserved.has(p) && !open.has(p)) ports.push(p);
    }
    return ports;
  };
  for (const [count, cursor] of [[5, 3000], [40, 3100], [150, 3300]] as const) {
    const req = { count, cursor, isReserved: (p: number) => reserved.has(p), isOpenOnHost: scrambled };
    const first = await allocatePorts(req);
    const second = await allocatePorts(req);
    t.deepEqual(first, second);
    t.deepEqual(first.ports, reference(count, cursor));
  }
  t.true(maxInFlight > 1, 'probes ran concurrently');
  t.true(maxInFlight <= MAX_PROBES_IN_FLIGHT, 'concurrency bounded');
});

test('600 deployments × 5 ports: no port handed out twice, none reserved or open', async (t) => {
  const open = new Set(range(3000, 65499).filter((p) => (p * 2654435761) % 97 < 10)); // ~10% open
  const host = fakeHost(open);
  const { allocations, reserved } = await createMany(600, 5, host.probe);
  const handed = allocations.flatMap((a) => a.ports);
  t.is(handed.length, 3000);
  t.is(new Set(handed).size, 3000, 'no port handed out twice');
  t.is(reserved.size, 3000);
  t.false(handed.some((p) => open.has(p)));
  allocations.forEach((a, i) => {
    t.is(a.blocks[0], 3000 + 100 * i);
    t.true(a.ports.every((p) => a.blocks.includes(blockOf(p))));
  });
});

// ---------------------------------------------------------------------------------------------
// The real host probe (serial: these bind real ports and count live handles)

test.serial('real probe: a listening port is open, a closed one is free (0.0.0.0, 127.0.0.1, [::])', async (t) => {
  const server = await listen('0.0.0.0');
  const port = (server.address() as AddressInfo).port;
  t.true(await isPortOpenOnHost(port));
  await close(server);
  t.false(await isPortOpenOnHost(port));

  const loopback = await listenFor(t, '127.0.0.1');
  if (loopback === undefined) t.fail('cannot listen on 127.0.0.1');
  else t.true(await isPortOpenOnHost(loopback), 'a loopback-only listener makes the port unusable');

  const v6 = await listenFor(t, '::', true);
  if (v6 === undefined) t.log('no IPv6 on this host: [::] check skipped');
  else t.true(await isPortOpenOnHost(v6), 'an IPv6-only listener makes the port unusable');
});

test.serial('real probe: the allocator skips a port open on the host', async (t) => {
  const port = await listenFor(t, '0.0.0.0');
  if (port === undefined) return t.fail('cannot listen');
  // A one-block range starting at the open port: the allocator must pass over it.
  const r: PortRange = { min: port, max: port + 9, blockSize: 10 };
  const a = await allocatePorts({ count: 1, cursor: port, range: r, isReserved: () => false, isOpenOnHost: isPortOpenOnHost });
  t.is(a.ports.length, 1);
  t.not(a.ports[0], port);
  t.true(a.ports[0]! > port && a.ports[0]! <= port + 9);
  t.is(a.nextCursor, port);
});

test.serial('real probe: never leaks a socket, on free or taken ports', async (t) => {
  const taken = await listenFor(t, '0.0.0.0');
  if (taken === undefined) return t.fail('cannot listen');
  await sleep(20);
  const before = tcpServerHandles();
  const ports = [taken, ...range(taken + 1, Math.min(taken + 40, 65535))];
  const answers = await Promise.all(ports.map((p) => isPortOpenOnHost(p)));
  t.true(answers[0]);
  // Closed handles leave Node's active list a tick after close() calls back.
  await sleep(20);
  t.is(tcpServerHandles(), before);
  // And each free port is bindable again straight away.
  const free = ports.find((_, i) => answers[i] === false);
  if (free !== undefined) await close(await listen('0.0.0.0', free));
});

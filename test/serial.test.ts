/** mapLimit: results in order, never more than the limit in flight, the first failure rejects. */
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { mapLimit } from '../src/serial.ts';

test('results come in the items\' order, with at most `limit` calls in flight', async (t) => {
  let inFlight = 0;
  let most = 0;
  const items = Array.from({ length: 50 }, (_, i) => i);
  const results = await mapLimit(items, 4, async (i) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await sleep(i % 3); // finish out of order
    inFlight--;
    return i * 2;
  });
  t.deepEqual(results, items.map((i) => i * 2));
  t.is(most, 4);
});

test('no items, a limit above the count, and a limit below one', async (t) => {
  t.deepEqual(await mapLimit([], 8, async (x: number) => x), []);
  t.deepEqual(await mapLimit([1, 2], 100, async (x) => x + 1), [2, 3]);
  t.deepEqual(await mapLimit([1, 2, 3], 0, async (x) => x), [1, 2, 3]);
});

test('the first failure rejects; no call starts after it', async (t) => {
  const started: number[] = [];
  const error = await t.throwsAsync(
    mapLimit([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      await sleep(1);
      if (i === 1) throw new Error('boom');
      return i;
    }),
  );
  t.is(error?.message, 'boom');
  await sleep(20);
  t.true(started.length <= 3, `started ${started.join(',')}`);
});

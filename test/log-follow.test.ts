/**
 * `followInstances` (src/deploy/log-follow.ts), pure: the instances at the start are followed,
 * one that appears later is followed from its first line, one that ran again after its stream
 * ended from where it stopped, and following ends once nothing is open and nothing runs. The
 * source is a fake (the engine's part, `depad logs -f` with a scale, is in services.test.ts).
 */
import test from 'ava';
import type { ContainerState } from '../src/engine/types.ts';
import { followInstances } from '../src/deploy/log-follow.ts';

const c = (id: string, running = true) => ({ id, name: id, running, labels: {} }) as unknown as ContainerState;

test('follows new instances from their first line, restarted ones from where they stopped, and ends when nothing runs', async (t) => {
  // Poll by poll, what the engine lists. Each read ends at once, as a stopped instance's does.
  const polls: ContainerState[][] = [[c('a', false), c('b')], [c('a'), c('b', false)], [c('a', false), c('b', false)]];
  const reads: string[] = [];
  let poll = 0;
  await followInstances({ list: async () => polls[Math.min(poll++, polls.length - 1)]!, read: async (x, from) => void reads.push(`${x.id}:${typeof from === 'number' ? 'since' : 'start'}`) }, [c('a')], undefined, 5);
  t.deepEqual(reads, ['a:start', 'b:start', 'a:since'], 'b appeared: from its start; a ran again after its stream ended: from then');
  t.is(poll, 3, 'ended at the poll where nothing ran and nothing was open');
});

test('an abort ends following at once, waiting for the open streams; a read that fails fails it', async (t) => {
  const stop = new AbortController();
  let closed = 0;
  const read = (_: ContainerState) => new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => void (closed++, resolve())));
  const following = followInstances({ list: async () => [c('a'), c('b')], read }, [c('a'), c('b')], stop.signal, 5);
  setTimeout(() => stop.abort(), 30);
  await following;
  t.is(closed, 2);
  const failing = followInstances({ list: async () => [c('a')], read: async () => { throw new Error('engine went away'); } }, [c('a')], undefined, 5);
  await t.throwsAsync(failing, { message: 'engine went away' });
});

/**
 * Differential fuzzing of the proxy's HTTP/1.1 engine against Node's strict llhttp (see
 * test/helpers/fuzz/): every named case of the seed corpus (each a request-smuggling finding or
 * a neighbour of one) must show no divergence, and so must a bounded random run (fixed seed,
 * FUZZ_SEED overrides; FUZZ_PROXY_DIR picks the proxy directory under test). Refusals are fine.
 * Everything started (proxies, upstreams, sockets, temporary directories) is closed in t.teardown.
 */
import test from 'ava';
import { formatResult, runCampaign, runTimed } from './helpers/fuzz/campaign.ts';
import { CORPUS } from './helpers/fuzz/corpus.ts';
import { startLane } from './helpers/fuzz/run-case.ts';
import type { Lane } from './helpers/fuzz/run-case.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 1_234_567);
/** The random run stops starting cases after this long (late answers may add about a second). */
const SECONDS = 15;
const MAX_CASES = 20_000;

test.serial(`a bounded random run shows no divergence (seed ${SEED})`, async (t) => {
  const lanes: Lane[] = [];
  t.teardown(() => Promise.all(lanes.map((lane) => lane.close())));
  t.log(`seed ${SEED} (set FUZZ_SEED to change it)`);
  const result = await runCampaign({ seed: SEED, seconds: SECONDS, maxCases: MAX_CASES, lanes: 24, side: 'both', onLane: (lane) => lanes.push(lane) });
  const seconds = result.elapsedMs / 1000;
  t.log(`${result.run} cases in ${seconds.toFixed(1)} s (${(result.run / seconds).toFixed(0)} cases/s), ${result.refusals} refusals, ${result.retimed} late once and on time again`);
  t.true(result.run > 300, `only ${result.run} cases ran`);
  if (result.divergentCases > 0) t.log(formatResult(result));
  t.deepEqual(Object.keys(result.kinds), [], 'divergences by kind (examples in the log above)');
});

/** At most this many corpus cases (each with its own proxy) run at once. */
let slots = 8;
const waiting: (() => void)[] = [];
async function slot(): Promise<() => void> {
  while (slots === 0) await new Promise<void>((resolve) => waiting.push(resolve));
  slots--;
  return () => {
    slots++;
    waiting.shift()?.();
  };
}

for (const c of CORPUS) {
  test(`corpus: ${c.name}`, async (t) => {
    const release = await slot();
    t.teardown(release);
    const lane = await startLane();
    t.teardown(() => lane.close());
    const { verdict } = await runTimed(lane, c);
    t.deepEqual(verdict.divergences, [], `${c.name} (${c.side}): ${JSON.stringify(c.bytes.toString('latin1'))}`);
  });
}

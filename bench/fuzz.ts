/**
 * Differential fuzzing of the proxy's HTTP/1.1 engine against Node's llhttp (see
 * test/helpers/fuzz/): random request and response cases, each run through a real proxy in
 * process, for as long as asked. Prints cases/s, cases run, refusals, and the divergences grouped
 * by kind with the shortest example of each (bytes JSON-escaped). Exits 1 if any divergence.
 * Work is spread over worker processes (one per core by default), each with several lanes
 * (proxy + upstreams), cases sequential within a lane; case i always comes from the seed and i.
 * Run: scripts/node bench/fuzz.ts [--seconds N] [--seed S] [--proxy-dir DIR] [--side request|response|both]
 *      [--workers N] [--lanes N] [--bound-ms N] [--max-cases N]
 * Replay one case (the JSON-escaped bytes of a report) and show what each side received:
 *      scripts/node bench/fuzz.ts --replay '"GET /x\r\n"' [--side response --method HEAD --http10 --close]
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatResult, mergeResults, runCampaign } from '../test/helpers/fuzz/campaign.ts';
import type { CampaignResult, Side } from '../test/helpers/fuzz/campaign.ts';
import { requestCase } from '../test/helpers/fuzz/requests.ts';
import { responseCase } from '../test/helpers/fuzz/responses.ts';
import { proxyDir, runCase, startLane } from '../test/helpers/fuzz/run-case.ts';

const SELF = fileURLToPath(import.meta.url);

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    seed: { type: 'string', default: String(process.env.FUZZ_SEED ?? Date.now() % 1_000_000) },
    'proxy-dir': { type: 'string' },
    side: { type: 'string', default: 'both' },
    workers: { type: 'string', default: String(Math.max(1, cpus().length)) },
    lanes: { type: 'string', default: '40' },
    'bound-ms': { type: 'string', default: '1000' },
    'max-cases': { type: 'string' },
    worker: { type: 'string' }, // internal: `<offset>/<stride>`
    replay: { type: 'string' },
    method: { type: 'string', default: 'GET' },
    http10: { type: 'boolean', default: false },
    close: { type: 'boolean', default: false },
  },
});

const seed = Number(values.seed);
const side = values.side as Side;
if (!['request', 'response', 'both'].includes(side)) throw new Error(`--side must be request, response or both (got ${side})`);
const dir = proxyDir(values['proxy-dir']);
const common = {
  seed,
  seconds: Number(values.seconds),
  lanes: Number(values.lanes),
  side,
  proxyDir: dir,
  boundMs: Number(values['bound-ms']),
};

function worker(offset: number, stride: number, maxCases: number | undefined): Promise<CampaignResult> {
  const args = [SELF, '--worker', `${offset}/${stride}`, '--seed', String(seed), '--seconds', values.seconds, '--side', side, '--proxy-dir', dir, '--lanes', values.lanes, '--bound-ms', values['bound-ms']];
  if (maxCases !== undefined) args.push('--max-cases', String(maxCases));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as CampaignResult);
      } catch {
        reject(new Error(`fuzz worker ${offset} exited ${code} without a result`));
      }
    });
  });
}

/** Runs one case from its JSON-escaped bytes and prints the verdict with what each side received. */
async function replay(json: string): Promise<void> {
  const bytes = Buffer.from(JSON.parse(json) as string, 'latin1');
  const c =
    side === 'response'
      ? responseCase(bytes, { method: values.method === 'HEAD' ? 'HEAD' : 'GET', version: values.http10 ? '1.0' : '1.1', close: values.close })
      : requestCase(bytes);
  const lane = await startLane({ proxyDir: dir, boundMs: common.boundMs });
  try {
    const verdict = await runCase(lane, c);
    for (const [i, up] of (verdict.seen?.upstream ?? []).entries()) console.log(`upstream connection ${i + 1} received: ${JSON.stringify(up.toString('latin1'))}`);
    console.log(`client received: ${JSON.stringify(verdict.seen?.client.toString('latin1') ?? '')}`);
    console.log(`refused: ${verdict.refused}`);
    for (const d of verdict.divergences) console.log(`divergence ${d.kind}: ${d.detail}`);
    process.exitCode = verdict.divergences.length > 0 ? 1 : 0;
  } finally {
    await lane.close();
  }
}

const maxCases = values['max-cases'] === undefined ? undefined : Number(values['max-cases']);
if (values.replay !== undefined) await replay(values.replay);
else if (values.worker !== undefined) {
  const [offset = 0, stride = 1] = values.worker.split('/').map(Number);
  const result = await runCampaign({ ...common, offset, stride, ...(maxCases === undefined ? {} : { maxCases: Math.ceil(maxCases / stride) }) });
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const workers = Math.max(1, Number(values.workers));
  console.log(`fuzzing ${dir} for ${values.seconds} s: seed ${seed}, side ${side}, ${workers} worker(s) × ${values.lanes} lanes, bound ${values['bound-ms']} ms`);
  const parts = await Promise.all(Array.from({ length: workers }, (_, k) => worker(k, workers, maxCases)));
  const result = mergeResults(seed, parts);
  console.log(formatResult(result));
  process.exitCode = Object.keys(result.kinds).length > 0 ? 1 : 0;
}

/**
 * A fuzzing campaign: random cases from a seed (case i always comes from `new Rng(seed, i)`, so
 * any case can be replayed), run on several lanes at once (cases sequential within a lane),
 * bounded by a count and a time. Divergences are grouped by kind with the shortest example of
 * each, its bytes JSON-escaped.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Rng } from './random.ts';
import { generateRequestCase } from './requests.ts';
import { generateResponseCase } from './responses.ts';
import { runCase, startLane } from './run-case.ts';
import type { FuzzCase, Lane } from './run-case.ts';
import type { Verdict } from './verdict.ts';

/** Which side(s) a campaign fuzzes. */
export type Side = 'request' | 'response' | 'both';

/** Case `index` of the campaign with `seed`. */
export function generateCase(seed: number, index: number, side: Side): FuzzCase {
  const rng = new Rng(seed, index);
  const s = side === 'both' ? (rng.chance(0.65) ? 'request' : 'response') : side;
  return s === 'request' ? generateRequestCase(rng) : generateResponseCase(rng);
}

/** The shortest case seen for a kind. */
export interface Example {
  side: 'request' | 'response';
  name?: string;
  index?: number;
  /** The case's bytes, JSON-escaped. */
  bytes: string;
  length: number;
  /** For a response case: the client's request and how the upstream sent it. */
  context: string;
  detail: string;
}

/** What a campaign found. */
export interface CampaignResult {
  seed: number;
  run: number;
  refusals: number;
  /**
   * Cases late once and on time when run again: timing is re-checked once, since a new loopback
   * connection can lose a second to a SYN retransmission when TIME_WAIT sockets crowd the ports.
   */
  retimed: number;
  divergentCases: number;
  elapsedMs: number;
  /** Event-loop delay during the run (p99 and max, ms): high values mean a starved machine. */
  loopDelayMs: { p99: number; max: number };
  kinds: Record<string, { count: number; example: Example }>;
}

/** An empty result. */
export function emptyResult(seed: number): CampaignResult {
  return { seed, run: 0, refusals: 0, retimed: 0, divergentCases: 0, elapsedMs: 0, loopDelayMs: { p99: 0, max: 0 }, kinds: {} };
}

function context(c: FuzzCase): string {
  const writes = c.splits.length === 0 ? 'one write' : `writes split at [${c.splits.join(',')}]${c.pauseMs > 0 ? ` ${c.pauseMs} ms apart` : ''}`;
  return c.side === 'response' ? `${c.method} from an HTTP/${c.version} client; upstream ${writes}${c.close ? ', then closes' : ''}` : `client ${writes}${c.finMs === 0 ? ', FIN at once if mid-message' : ''}`;
}

/** Adds a case's verdict to `result`. */
export function record(result: CampaignResult, c: FuzzCase, verdict: Verdict, index?: number): void {
  result.run++;
  if (verdict.refused) result.refusals++;
  if (verdict.divergences.length > 0) result.divergentCases++;
  const seen = new Set<string>();
  for (const d of verdict.divergences) {
    if (seen.has(d.kind)) continue;
    seen.add(d.kind);
    const entry = result.kinds[d.kind];
    const example: Example = {
      side: c.side,
      ...(c.name === undefined ? {} : { name: c.name }),
      ...(index === undefined ? {} : { index }),
      bytes: JSON.stringify(c.bytes.toString('latin1')),
      length: c.bytes.length,
      context: context(c),
      detail: d.detail,
    };
    if (entry === undefined) result.kinds[d.kind] = { count: 1, example };
    else {
      entry.count++;
      if (example.length < entry.example.length) entry.example = example;
    }
  }
}

/** Merges results of the same seed (worker processes). */
export function mergeResults(seed: number, parts: CampaignResult[]): CampaignResult {
  const out = emptyResult(seed);
  for (const p of parts) {
    out.run += p.run;
    out.refusals += p.refusals;
    out.retimed += p.retimed;
    out.divergentCases += p.divergentCases;
    out.elapsedMs = Math.max(out.elapsedMs, p.elapsedMs);
    out.loopDelayMs = { p99: Math.max(out.loopDelayMs.p99, p.loopDelayMs.p99), max: Math.max(out.loopDelayMs.max, p.loopDelayMs.max) };
    for (const [kind, k] of Object.entries(p.kinds)) {
      const entry = out.kinds[kind];
      if (entry === undefined) out.kinds[kind] = { count: k.count, example: k.example };
      else {
        entry.count += k.count;
        if (k.example.length < entry.example.length) entry.example = k.example;
      }
    }
  }
  return out;
}

/** Options of a campaign. */
export interface CampaignOptions {
  seed: number;
  /** Stops starting cases after this long. */
  seconds: number;
  /** Stops after this many cases (default: no limit). */
  maxCases?: number;
  lanes: number;
  side: Side;
  proxyDir?: string;
  boundMs?: number;
  /** Runs the case indexes `offset`, `offset + stride`, … (worker processes share a seed). */
  offset?: number;
  stride?: number;
  /** Called with every lane started, to close them on failure as well. */
  onLane?: (lane: Lane) => void;
}

/** Runs a random campaign; every lane it starts is closed before it returns. */
export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const result = emptyResult(options.seed);
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const max = options.maxCases ?? Infinity;
  const stride = options.stride ?? 1;
  let next = 0;
  const lanes: Lane[] = [];
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  try {
    for (let k = 0; k < options.lanes; k++) {
      const lane = await startLane({ ...(options.proxyDir === undefined ? {} : { proxyDir: options.proxyDir }), ...(options.boundMs === undefined ? {} : { boundMs: options.boundMs }) });
      lanes.push(lane);
      options.onLane?.(lane);
    }
    await Promise.all(
      lanes.map(async (lane) => {
        while (performance.now() < deadline && next < max) {
          const index = (options.offset ?? 0) + stride * next++;
          const c = generateCase(options.seed, index, options.side);
          const run = await runTimed(lane, c);
          if (run.retimed) result.retimed++;
          record(result, c, run.verdict, index);
        }
      }),
    );
  } finally {
    delay.disable();
    await Promise.all(lanes.map((l) => l.close()));
  }
  result.elapsedMs = performance.now() - started;
  result.loopDelayMs = { p99: Math.round(delay.percentile(99) / 1e6), max: Math.round(delay.max / 1e6) };
  return result;
}

async function runGuarded(lane: Lane, c: FuzzCase): Promise<Verdict> {
  try {
    return await runCase(lane, c);
  } catch (error) {
    return { divergences: [{ kind: 'harness-error', detail: String((error as Error).stack ?? error) }], refused: false };
  }
}

/**
 * Runs `c` on `lane`; a case whose only divergences are about timing (`late-…`) is run once more
 * and counts as on time (`retimed`) if it is then: a new loopback connection can lose a second
 * to a SYN retransmission when TIME_WAIT sockets crowd the ports.
 */
export async function runTimed(lane: Lane, c: FuzzCase): Promise<{ verdict: Verdict; retimed: boolean }> {
  const verdict = await runGuarded(lane, c);
  if (!onlyLate(verdict)) return { verdict, retimed: false };
  const again = await runGuarded(lane, c);
  return again.divergences.length === 0 ? { verdict: again, retimed: true } : { verdict, retimed: false };
}

/** True when every divergence of `verdict` is about timing (`late-…`). */
function onlyLate(verdict: Verdict): boolean {
  return verdict.divergences.length > 0 && verdict.divergences.every((d) => d.kind.startsWith('late-'));
}


/** A report: rate, counts, and each kind with its shortest example. */
export function formatResult(r: CampaignResult): string {
  const seconds = r.elapsedMs / 1000;
  const lines = [
    `seed ${r.seed}: ${r.run} cases in ${seconds.toFixed(1)} s (${(r.run / Math.max(seconds, 0.001)).toFixed(0)} cases/s), ${r.refusals} refusals, ${r.retimed} late once and on time again, ${r.divergentCases} divergent cases` +
      ` (event-loop delay p99 ${r.loopDelayMs.p99} ms, max ${r.loopDelayMs.max} ms)`,
  ];
  const kinds = Object.entries(r.kinds).sort((a, b) => b[1].count - a[1].count);
  if (kinds.length === 0) lines.push('no divergence');
  for (const [kind, { count, example }] of kinds) {
    lines.push(`  ${kind}: ${count} case(s); shortest (${example.side}${example.name === undefined ? '' : ` ${example.name}`}${example.index === undefined ? '' : ` #${example.index}`}, ${example.length} bytes, ${example.context}):`);
    lines.push(`    ${example.bytes}`);
    lines.push(`    -> ${example.detail}`);
  }
  return lines.join('\n');
}

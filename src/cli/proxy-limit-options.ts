/**
 * The proxy's limits on the command line, shared by `depad proxy` and `depad agent`: timeouts as
 * durations (`60s`, `1m`), buffers as sizes (`64k`). Each defaults to `DEFAULT_LIMITS` (proxy/limits.ts).
 */
import type { Command } from 'commander';
import { DEFAULT_LIMITS } from '../../proxy/limits.ts';
import type { ProxyLimits } from '../../proxy/limits.ts';
import { byteSize, durationMs, positiveInt } from './option-parsers.ts';

/** One option per limit: flag, parser, help. */
const FLAGS: readonly [keyof ProxyLimits, string, (value: string) => number, string][] = [
  ['requestHeadTimeoutMs', '--request-head-timeout <duration>', durationMs, 'longest time from the first byte of a request head to its end; then 408'],
  ['requestBodyTimeoutMs', '--request-body-timeout <duration>', durationMs, 'longest gap between two reads of a request body; then 408'],
  ['keepAliveTimeoutMs', '--keep-alive-timeout <duration>', durationMs, 'how long an idle client connection is kept'],
  ['headersTimeoutMs', '--headers-timeout <duration>', durationMs, 'how long a service may take to answer, from the end of the request; then 504'],
  ['sendTimeoutMs', '--send-timeout <duration>', durationMs, 'how long a client may leave a response untaken; then it is closed'],
  ['maxPipelinedRequests', '--max-pipelined <count>', positiveInt, 'pipelined requests read ahead per connection'],
  ['maxBufferedRequestBytes', '--max-request-buffer <size>', byteSize, 'bytes read ahead per connection'],
  ['maxBufferedResponseBytes', '--max-response-buffer <size>', byteSize, 'response bytes waiting for a client before the service is no longer read'],
];

function shown(key: keyof ProxyLimits): string {
  const v = DEFAULT_LIMITS[key];
  if (key.endsWith('Ms')) return `${v / 1000}s`;
  if (key.endsWith('Bytes')) return `${v / 1024}k`;
  return String(v);
}

/** Adds the limit options to `cmd`. */
export function addProxyLimitOptions(cmd: Command): Command {
  for (const [key, flag, parse, help] of FLAGS) cmd.option(flag, `proxy: ${help} (default ${shown(key)})`, parse);
  return cmd;
}

/** The limits given on the command line (`opts` as commander parsed them). */
export function proxyLimitOptions(opts: Record<string, unknown>): Partial<ProxyLimits> {
  const limits: Partial<ProxyLimits> = {};
  for (const [key, flag] of FLAGS) {
    const name = (flag.split(' ')[0] as string).slice(2).replace(/-(\w)/g, (_m, c: string) => c.toUpperCase());
    const value = opts[name];
    if (typeof value === 'number') limits[key] = value;
  }
  return limits;
}

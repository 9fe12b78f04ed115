/** `depad agent`'s cluster options: `--join`, `--join-token`, `--name`, `--label`, `--advertise-address`, `--capacity`. */
import type { Command } from 'commander';
import { parseMemory } from '../config/values.ts';
import type { JoinOptions } from '../cluster/membership.ts';
import { DepadError } from '../errors.ts';
import type { HostCapacity } from '../store/records.ts';
import { collect } from './option-parsers.ts';

/** Adds the cluster options to `depad agent`. */
export function addJoinOptions(cmd: Command): Command {
  return cmd
    .option('--join <url>', 'join the cluster whose manager answers at this https:// URL (once; the agent rejoins by itself at every start)')
    .option('--join-token <token>', 'the one-time token `depad manager join-token` printed (or DEPAD_JOIN_TOKEN)')
    .option('--name <host>', "this host's name in the cluster (default: the machine's host name)")
    .option('--label <key=value>', 'a label of this host for placement constraints and spread (repeatable)', collect, [])
    .option('--advertise-address <address>', 'where the manager and the other hosts reach this agent (default: the first non-loopback IPv4 address)')
    .option('--capacity <cpus=N,memory=SIZE>', 'what this host offers the cluster, when less than the machine has (e.g. cpus=2,memory=4g)');
}

/** The capacity `--capacity` declares. */
export function parseCapacity(text: string | undefined): Partial<HostCapacity> | undefined {
  if (text === undefined) return undefined;
  const out: { cpus?: number; memoryBytes?: number } = {};
  for (const part of text.split(',')) {
    const [key, value] = part.split('=', 2).map((s) => s.trim());
    const memory = key === 'memory' && value ? parseMemory(value) : undefined;
    if (key === 'cpus' && value && Number(value) > 0) out.cpus = Number(value);
    else if (memory?.ok) out.memoryBytes = memory.value;
    else throw new DepadError('DEPAD_USAGE', `--capacity ${text}: expected cpus=N and/or memory=SIZE (e.g. cpus=2,memory=4g), found ${JSON.stringify(part)}`);
  }
  return out;
}

/** The join options given, or undefined without `--join`. */
export function joinOptions(opts: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): JoinOptions | undefined {
  const url = opts.join as string | undefined;
  const token = (opts.joinToken as string | undefined) ?? env.DEPAD_JOIN_TOKEN;
  if (url === undefined) {
    if (opts.joinToken !== undefined) throw new DepadError('DEPAD_USAGE', '--join-token needs --join <manager URL>');
    return undefined;
  }
  if (!token) throw new DepadError('DEPAD_USAGE', '--join needs a join token', { hint: 'print one on the manager (depad manager join-token) and pass --join-token or DEPAD_JOIN_TOKEN' });
  const labels: Record<string, string> = {};
  for (const item of (opts.label as string[] | undefined) ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(item);
    if (!m) throw new DepadError('DEPAD_USAGE', `--label ${item}: expected key=value`);
    labels[m[1]!] = m[2]!;
  }
  return { url, token, labels, ...(opts.name ? { name: String(opts.name) } : {}), ...(opts.advertiseAddress ? { advertise: String(opts.advertiseAddress) } : {}) };
}

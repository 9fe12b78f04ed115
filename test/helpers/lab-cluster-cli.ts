/**
 * `scripts/lab`: the cluster lab from the command line (lab-cluster.ts does the work).
 *
 *   scripts/lab up N [--labels 'k=v,k=v;k=v;…'] [--images a,b]   N hosts, each its own engine and agent
 *   scripts/lab status [--json]                                 does each host's engine answer? its agent?
 *   scripts/lab token host-<i>|manager                          prints that host's (or the manager's) admin token
 *   scripts/lab manager [--capacity 'cpus=1,memory=1g;…']      a cluster manager on the bridge, every host joined
 *                                                               (host i offering the i-th capacity, where given)
 *   scripts/lab down                                            removes it all (also after a killed up)
 *
 * Cluster 0 (10.251.0.0/24) unless DEPAD_LAB_CLUSTER names another (the tests use 1…9).
 * Exit codes: 0 done; 1 failed, refused (a lab or its leftovers is there) or, for status, no lab is
 * up; 2 usage; 3 status: a host's engine or agent does not answer.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from './harness.ts';
import { labManagerFiles, startDetachedLabManager } from './lab-manager.ts';
import { clusterLayout, clusterStatus, downCluster, MAX_HOSTS, parseLabels, readState, upCluster, type ClusterState } from './lab-cluster.ts';

const USAGE = `usage: scripts/lab up N [--labels 'k=v,k=v;k=v;…'] [--images a,b] | manager [--capacity 'cpus=N,memory=SIZE;…'] | status [--json] | token host-<i>|manager | down`;

class Usage extends Error {}

/** Runs `parse`; what it throws is a usage error. */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw error instanceof Usage ? error : new Usage((error as Error).message);
  }
}

/** The cluster id of this command: DEPAD_LAB_CLUSTER, default 0. */
function clusterId(): number {
  const text = process.env.DEPAD_LAB_CLUSTER ?? '0';
  if (!/^[0-9]$/.test(text)) throw new Usage(`DEPAD_LAB_CLUSTER must be 0 to 9 (got "${text}")`);
  return Number(text);
}

/** A command path as the user would type it from where they are. */
function shown(file: string): string {
  const rel = path.relative(process.cwd(), path.join(ROOT, file));
  return rel.startsWith('..') ? path.join(ROOT, file) : rel;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  return rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ')).join('\n') + '\n';
}

const labelText = (labels: Record<string, string>) => Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') || '-';

function printUp(state: ClusterState, file: string): void {
  const rows = [['HOST', 'ADDRESS', 'LABELS', 'API'], ...state.hosts.map((h) => [h.name, h.address, labelText(h.labels), h.apiUrl])];
  const lab = shown('scripts/lab');
  const depad = shown('bin/depad');
  const env = state.id === 0 ? '' : `DEPAD_LAB_CLUSTER=${state.id} `;
  process.stdout.write(table(rows));
  process.stdout.write(`\nstate: ${file} (mode 0600: it holds each host's admin token)\n\nSave each host as a context (the token stays out of your shell history):\n`);
  for (const h of state.hosts) process.stdout.write(`  DEPAD_TOKEN=$(${env}${lab} token ${h.name}) ${depad} context add lab-${h.name} --agent ${h.apiUrl} --fingerprint ${h.fingerprint}\n`);
  const second = state.hosts[1] ?? state.hosts[0]!;
  process.stdout.write(`\nThen: ${depad} --context lab-${second.name} create -n shop -f examples/webapp/depad.yml\n      curl -H 'Host: web.shop.localhost' http://${second.address}/info    # host-${state.hosts.indexOf(second) + 1}'s proxy\n${env}${lab} down removes the lab.\n`);
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const id = clusterId();
  const file = clusterLayout(id).stateFile;
  if (verb === undefined || verb === '-h' || verb === '--help' || verb === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return verb === undefined ? 2 : 0;
  }
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces, a bridge, dockerd): run it as root');
  if (verb === 'up') {
    let n: number | undefined;
    let labels: Record<string, string>[] | undefined;
    let images: string[] | undefined;
    for (let k = 0; k < rest.length; k++) {
      const arg = rest[k]!;
      const value = () => {
        const v = rest[++k];
        if (v === undefined) throw new Usage(`${arg} needs a value`);
        return v;
      };
      if (arg === '--labels') labels = usage(() => parseLabels(value()));
      else if (arg === '--images') images = value().split(',').map((s) => s.trim()).filter(Boolean);
      else if (/^\d+$/.test(arg) && n === undefined) n = Number(arg);
      else throw new Usage(`unexpected "${arg}"`);
    }
    if (n === undefined) throw new Usage('up needs the number of hosts');
    if (n < 1 || n > MAX_HOSTS) throw new Usage(`the number of hosts must be 1 to ${MAX_HOSTS} (got ${n})`);
    if (labels && labels.length > n) throw new Usage(`--labels gives ${labels.length} hosts' labels for ${n} hosts`);
    const started = Date.now();
    // Ctrl-C or a kill: remove what was made (twice: a step in flight may add to it after the first pass).
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        process.stderr.write(`lab: ${signal}: removing what up made\n`);
        void downCluster(id)
          .catch(() => sleep(1000).then(() => downCluster(id)))
          .then(
            () => process.exit(130),
            (e: Error) => (process.stderr.write(`scripts/lab: ${e.message}\nrun scripts/lab down\n`), process.exit(130)),
          );
      });
    }
    const state = await upCluster(id, n, { labels, images, log: (line) => process.stderr.write(`lab: ${line}\n`) });
    process.stderr.write(`lab: ${n} hosts up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    printUp(state, file);
    return 0;
  }
  if (verb === 'status') {
    const json = rest.includes('--json');
    const unknown = rest.filter((a) => a !== '--json');
    if (unknown.length) throw new Usage(`unexpected "${unknown[0]}"`);
    const { state, hosts } = await clusterStatus(id);
    if (json) process.stdout.write(JSON.stringify({ up: state !== undefined, stateFile: file, createdAt: state?.createdAt, hosts }, null, 2) + '\n');
    else if (!state) process.stdout.write(`no lab is up (${file} does not exist)\n`);
    else process.stdout.write(table([['HOST', 'ADDRESS', 'LABELS', 'ENGINE', 'AGENT', 'API'], ...hosts.map((h) => [h.name, h.address, labelText(h.labels), h.engine ? 'up' : 'DOWN', h.agent ? 'up' : 'DOWN', h.apiUrl])]));
    return !state ? 1 : hosts.every((h) => h.engine && h.agent) ? 0 : 3;
  }
  if (verb === 'manager') {
    const capacity = usage(() => {
      if (rest.length === 0) return undefined;
      if (rest[0] !== '--capacity' || rest.length !== 2) throw new Usage(`unexpected "${rest[0] === '--capacity' ? rest.slice(2).join(' ') || '--capacity without a value' : rest[0]}"`);
      const list = rest[1]!.split(';').map((c) => c.trim() || undefined);
      for (const c of list) if (c !== undefined && !/^(cpus=[0-9.]+|memory=[0-9.]+[kmgt]?)(,(cpus=[0-9.]+|memory=[0-9.]+[kmgt]?))*$/i.test(c)) throw new Usage(`--capacity: "${c}" is not cpus=N,memory=SIZE`);
      return list;
    });
    const state = await readState(id);
    if (!state) throw new Error(`no lab is up (${file} does not exist): scripts/lab up N first`);
    if (await fs.stat(labManagerFiles(id).pid).catch(() => undefined)) throw new Error(`the lab has a manager already (${labManagerFiles(id).pid}); scripts/lab down removes it with the lab`);
    if (capacity && capacity.length > state.hosts.length) throw new Usage(`--capacity gives ${capacity.length} hosts' capacities; the lab has ${state.hosts.length}`);
    const m = await startDetachedLabManager(state, capacity);
    const lab = shown('scripts/lab');
    const depad = shown('bin/depad');
    const env = id === 0 ? '' : `DEPAD_LAB_CLUSTER=${id} `;
    process.stdout.write(`manager: ${m.url} (log ${labManagerFiles(id).log}), ${state.hosts.length} hosts joined\n\nSave it as a context:\n  DEPAD_TOKEN=$(${env}${lab} token manager) ${depad} context add cluster --agent ${m.url} --fingerprint ${m.fingerprint}\n\nThen: ${depad} --context cluster hosts\n      ${depad} --context cluster create -n shop -f examples/webapp/depad.yml\n      ${depad} --context cluster ls\n`);
    return 0;
  }
  if (verb === 'token') {
    if (rest.length !== 1) throw new Usage('token needs one host name (host-1, …) or manager');
    if (rest[0] === 'manager') {
      const token = await fs.readFile(labManagerFiles(id).token, 'utf8').catch(() => undefined);
      if (token === undefined) throw new Error('the lab has no manager: scripts/lab manager starts one');
      process.stdout.write(token);
      return 0;
    }
    const host = (await readState(id))?.hosts.find((h) => h.name === rest[0]);
    if (!host) throw new Error(`no host ${rest[0]} in ${file}`);
    process.stdout.write(`${host.token}\n`);
    return 0;
  }
  if (verb === 'down') {
    if (rest.length) throw new Usage(`unexpected "${rest[0]}"`);
    const removed = await downCluster(id);
    process.stdout.write(removed.length ? `removed: ${removed.join(', ')}\n` : 'nothing to remove\n');
    return 0;
  }
  throw new Usage(`unknown command "${verb}"`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`scripts/lab: ${error.message}\n${error instanceof Usage ? `${USAGE}\n` : ''}`);
    process.exit(error instanceof Usage ? 2 : 1);
  },
);

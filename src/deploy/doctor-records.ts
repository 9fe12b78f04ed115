/**
 * doctor's checks from the store's side: each ready deployment's plan against the engine
 * (missing and stray objects), the port registry against the records, the proxy's routes and the
 * root directories against the deployments that exist. Deployments the journal names are skipped.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { LABELS, type ContainerState, type EngineObject } from '../engine/types.ts';
import type { DeploymentRecord, PortRecord } from '../store/records.ts';
import type { OpContext } from './context.ts';
import type { DoctorOptions, Finding } from './doctor.ts';
import { readPlan } from './root-dir.ts';

/** What the store holds, as the checks need it. */
export interface Known {
  records: Map<string, DeploymentRecord>;
  /** Deployment IDs and names of operations in the journal. */
  busy: Set<string>;
  busyNames: Set<string>;
  /** Names of the volumes the deployments use. */
  usedVolumes: Set<string>;
}

/** The engine's depad objects of known deployments (and every depad volume's name). */
export interface KnownObjects {
  containers: ContainerState[];
  networks: EngineObject[];
  volumeNames: Set<string>;
}

const who = (r: DeploymentRecord) => ({ name: r.name, id: r.id });

/**
 * For each ready deployment not in the journal, its current revision's plan against the engine:
 * containers and networks it should have and has not, and ones labelled for it that it does not
 * plan (left by a crash: a workflow's one-off container, a half-made instance).
 */
export async function checkRecords(known: Known, objects: KnownObjects): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const record of known.records.values()) {
    if (known.busy.has(record.id) || record.phase !== 'ready') continue;
    let plan;
    try {
      plan = await readPlan(record.rootDir, record.revision);
    } catch (error) {
      findings.push({
        kind: 'record-damaged',
        key: `record-damaged:${record.id}`,
        object: path.join(record.rootDir, 'revisions', String(record.revision)),
        deployment: who(record),
        problem: `the plan of revision ${record.revision} cannot be read (${(error as Error).message}): its objects are not judged`,
        fix: { action: 'none', text: 'restore the root directory from a backup, or destroy the deployment', command: `depad destroy ${record.name}` },
      });
      continue;
    }
    const containers = objects.containers.filter((c) => c.labels[LABELS.deploymentId] === record.id);
    const networks = objects.networks.filter((n) => n.labels[LABELS.deploymentId] === record.id);
    const wanted = new Set(plan.containers.map((c) => c.name));
    for (const c of plan.containers) {
      if (containers.some((x) => x.name === c.name)) continue;
      const running = record.desired === 'running';
      findings.push({
        kind: 'missing-container',
        key: `missing-container:${record.id}/${c.name}`,
        object: c.name,
        deployment: who(record),
        problem: `the current instance of ${c.service} is gone from the engine`,
        fix: running
          ? { action: 'recreate', text: `re-create and start it (as depad start ${record.name} -s ${c.service} does)` }
          : { action: 'none', text: `the deployment is stopped: starting it re-creates the container`, command: `depad start ${record.name} -s ${c.service}` },
      });
    }
    for (const c of containers) {
      if (wanted.has(c.name)) continue;
      findings.push({
        kind: 'stray-container',
        key: `stray-container:${c.id}`,
        object: c.name,
        id: c.id,
        deployment: who(record),
        problem: `labelled for ${record.name} but not one of its current instances (left by an interrupted operation)`,
        fix: { action: 'remove', text: 'remove (forcefully)' },
      });
    }
    for (const n of plan.networks) {
      if (networks.some((x) => x.name === n.name)) continue;
      findings.push({ kind: 'missing-network', key: `missing-network:${record.id}/${n.name}`, object: n.name, deployment: who(record), problem: `network ${n.key} of ${record.name} is gone from the engine`, fix: { action: 'recreate', text: 're-create it (as depad start does)' } });
    }
    for (const n of networks) {
      if (plan.networks.some((x) => x.name === n.name)) continue;
      findings.push({ kind: 'stray-network', key: `stray-network:${n.id}`, object: n.name, id: n.id, deployment: who(record), problem: `labelled for ${record.name} but not in its current revision`, fix: { action: 'remove', text: 'remove' } });
    }
    for (const v of plan.volumes) {
      if (objects.volumeNames.has(v.name)) continue;
      findings.push({
        kind: 'missing-volume',
        key: `missing-volume:${record.id}/${v.name}`,
        object: v.name,
        deployment: who(record),
        problem: `volume ${v.key} of ${record.name} is gone from the engine (with its data)`,
        fix: { action: 'recreate', text: 're-create it, empty (as depad start does)' },
      });
    }
  }
  return findings;
}

/**
 * The registry against the records: ports held for no deployment or for one whose record does
 * not list them (leaks: no create can have them), ports a record lists that the registry does not
 * hold (another create could be given them), and ports the registry gives to another deployment.
 */
export function checkPorts(known: Known, registry: readonly PortRecord[]): Finding[] {
  const findings: Finding[] = [];
  const byPort = new Map(registry.map((p) => [p.host, p]));
  for (const p of registry) {
    if (known.busy.has(p.deploymentId)) continue;
    const record = known.records.get(p.deploymentId);
    if (record?.ports.some((x) => x.host === p.host)) continue;
    findings.push({
      kind: 'port-leak',
      key: `port-leak:${p.host}`,
      object: `port ${p.host}`,
      deployment: record ? who(record) : { id: p.deploymentId },
      problem: record ? `reserved for ${record.name} (${p.service}), which no longer uses it` : `reserved for deployment ${p.deploymentId.slice(0, 12)} (${p.service}), which does not exist`,
      fix: { action: 'release', text: 'release it from the registry' },
    });
  }
  for (const record of known.records.values()) {
    if (known.busy.has(record.id)) continue;
    for (const p of record.ports) {
      const held = byPort.get(p.host);
      if (held?.deploymentId === record.id) continue;
      const base = { object: `port ${p.host}`, deployment: who(record) };
      if (held === undefined) {
        findings.push({ ...base, kind: 'port-unregistered', key: `port-unregistered:${p.host}`, problem: `used by ${record.name} (${p.service}) but not reserved in the registry: a create could be given it`, fix: { action: 'register', text: `reserve it for ${record.name} again` } });
      } else {
        const other = known.records.get(held.deploymentId);
        findings.push({
          ...base,
          kind: 'port-conflict',
          key: `port-conflict:${p.host}`,
          problem: `used by ${record.name} (${p.service}) but reserved for ${other?.name ?? held.deploymentId.slice(0, 12)} (${held.service})`,
          fix: { action: 'none', text: 'two deployments share the port: re-create one of them (destroy, create)' },
        });
      }
    }
  }
  return findings;
}

/** Routes of deployments that do not exist (the proxy would send their hostnames to ports another create may be given). */
export async function checkRoutes(ctx: OpContext, known: Known): Promise<Finding[]> {
  if (ctx.routes.routes === undefined) return [];
  const names = new Set([...known.records.values()].map((r) => r.name));
  const gone = new Set((await ctx.routes.routes()).routes.map((r) => r.deployment).filter((d) => !names.has(d) && !known.busyNames.has(d)));
  return [...gone].sort().map((name) => ({
    kind: 'orphan-route' as const,
    key: `orphan-route:${name}`,
    object: `routes of ${name}`,
    deployment: { name },
    problem: `the proxy routes deployment ${name}, which this home's store does not know`,
    fix: { action: 'remove' as const, text: "remove them from the proxy's routes" },
  }));
}

/** Root directories (`<home>/deployments/<id>`) of deployments that do not exist. */
export async function checkRootDirs(ctx: OpContext, known: Known, options: DoctorOptions): Promise<Finding[]> {
  const dir = path.join(ctx.home, 'deployments');
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  return entries
    .filter((id) => /^[0-9a-f]{32}$/.test(id) && !known.records.has(id) && !known.busy.has(id))
    .sort()
    .map((id) => ({
      kind: 'orphan-root' as const,
      key: `orphan-root:${id}`,
      object: path.join(dir, id),
      deployment: { id },
      problem: `root directory of deployment ${id.slice(0, 12)}, which this home's store does not know`,
      fix: options.volumes
        ? { action: 'remove' as const, text: 'remove it (its config, revisions and bind-mount data are lost)' }
        : { action: 'keep' as const, text: 'keep: it may hold bind-mount data', command: 'depad doctor --fix --volumes' },
    }));
}

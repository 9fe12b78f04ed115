/**
 * doctor's check of the subnet registry against the records: subnets held for a deployment that
 * does not exist or no longer lists them (leaks: no create could be given them), and subnets a
 * record lists that the registry does not hold (another create could be given them); and the fix.
 */
import type { SubnetRecord } from '../store/records.ts';
import type { OpContext } from './context.ts';
import type { Finding } from './doctor.ts';
import type { Known } from './doctor-records.ts';

/** Subnet leaks and unregistered subnets. */
export function checkSubnets(known: Known, registry: readonly SubnetRecord[]): Finding[] {
  const findings: Finding[] = [];
  const held = new Map(registry.map((n) => [n.given, n]));
  for (const n of registry) {
    if (known.busy.has(n.deploymentId)) continue;
    const record = known.records.get(n.deploymentId);
    if (record?.subnets?.some((s) => s.given === n.given)) continue;
    findings.push({
      kind: 'subnet-leak',
      key: `subnet-leak:${n.given}`,
      object: `subnet ${n.given}`,
      deployment: record ? { name: record.name, id: record.id } : { id: n.deploymentId },
      problem: record ? `held for ${record.name} (networks.${n.network}), which no longer lists it` : `held for deployment ${n.deploymentId.slice(0, 12)} (networks.${n.network}), which does not exist`,
      fix: { action: 'release', text: 'release it from the registry' },
    });
  }
  for (const record of known.records.values()) {
    if (known.busy.has(record.id)) continue;
    for (const s of record.subnets ?? []) {
      const holder = held.get(s.given);
      if (holder?.deploymentId === record.id) continue;
      findings.push({
        kind: 'subnet-unregistered',
        key: `subnet-unregistered:${s.given}`,
        object: `subnet ${s.given}`,
        deployment: { name: record.name, id: record.id },
        problem: holder ? `used by ${record.name} (networks.${s.network}) but held for deployment ${holder.deploymentId.slice(0, 12)}` : `used by ${record.name} (networks.${s.network}) but not held in the registry: a create could be given it`,
        fix: holder ? { action: 'none', text: 'two deployments share the subnet: re-create one of them (destroy, create)' } : { action: 'register', text: `hold it for ${record.name} again` },
      });
    }
  }
  return findings;
}

/** Leaked subnets released and unregistered ones held again, in one batch. */
export async function repairSubnets(ctx: OpContext, findings: readonly Finding[], done: (f: Finding, result: 'fixed' | 'failed', note: string) => void): Promise<void> {
  if (findings.length === 0) return;
  const subnet = (f: Finding) => f.object.replace(/^subnet /, '');
  try {
    const batch = ctx.store.batch();
    const release = findings.filter((f) => f.kind === 'subnet-leak');
    batch.deleteSubnets(release.map((f) => ({ given: subnet(f) })));
    const register: SubnetRecord[] = [];
    for (const f of findings.filter((x) => x.kind === 'subnet-unregistered')) {
      const record = await ctx.store.getDeployment(f.deployment?.id as string);
      const assignment = record?.subnets?.find((s) => s.given === subnet(f));
      if (record && assignment) register.push({ ...assignment, deploymentId: record.id });
    }
    batch.putSubnets(register);
    ctx.progress({ step: 'subnets', message: `subnet registry: ${release.length} released, ${register.length} held again` });
    await batch.write();
    for (const f of findings) done(f, 'fixed', f.kind === 'subnet-leak' ? 'released' : 'held again');
  } catch (error) {
    for (const f of findings) done(f, 'failed', (error as Error).message);
  }
}

/** Image overrides from the command line (`depad update d -s web --image app:2`). */
import { DepadError } from '../errors.ts';
import { deepFreeze } from './freeze.ts';
import type { DeploymentSpec } from './spec.ts';
import { imageReferenceProblem } from './values.ts';
import { replicaProblem } from './service-deploy.ts';
import { checkBudget } from './budget.ts';
import { rollingSurge } from './service-rollout.ts';
import type { Pos } from './nodes.ts';

/** A copy of `spec` with the given services' images replaced (frozen), marked as given on the command line. */
export function withImages(spec: DeploymentSpec, overrides: Readonly<Record<string, string>>): DeploymentSpec {
  const services = { ...spec.services };
  for (const [service, image] of Object.entries(overrides)) {
    const current = services[service];
    if (!current) {
      throw new DepadError('DEPAD_SERVICE_NOT_FOUND', `the deployment has no service ${JSON.stringify(service)}`, {
        hint: `its services are: ${Object.keys(spec.services).join(', ')}`,
      });
    }
    const problem = imageReferenceProblem(image);
    if (problem) throw new DepadError('DEPAD_USAGE', `--image ${image}: ${problem}`);
    services[service] = { ...current, image };
  }
  // Marked, so that an error about such an image names the command line, not the file.
  const marked = Object.keys(overrides).length > 0 ? { imageOverrides: { ...spec.imageOverrides, ...overrides } } : {};
  return deepFreeze({ ...spec, services, positions: spec.positions, ...marked });
}

/**
 * `spec` with the replica counts `scale` gives (`depad scale web=3`). DEPAD_SERVICE_NOT_FOUND for
 * a service it lacks; DEPAD_USAGE for a count below 1, or for a service that cannot run several
 * replicas (the reason and the way out, as the file's own `replicas:` would get).
 */
export function withReplicas(spec: DeploymentSpec, scale: Readonly<Record<string, number>>): DeploymentSpec {
  const services = { ...spec.services };
  for (const [service, count] of Object.entries(scale)) {
    const current = services[service];
    if (!current) {
      throw new DepadError('DEPAD_SERVICE_NOT_FOUND', `the deployment has no service ${JSON.stringify(service)}`, { hint: `its services are: ${Object.keys(spec.services).join(', ')}` });
    }
    if (!Number.isInteger(count) || count < 0) throw new DepadError('DEPAD_USAGE', `${service}=${count}: a replica count is a whole number (0 runs no container)`);
    const joiner = Object.values(spec.services).find((o) => o.engine?.joins !== undefined && Object.values(o.engine.joins).includes(service));
    const problem = joiner && count !== 1 ? `${joiner.name} joins its namespaces, which one container only can share` : count <= 1 ? undefined : replicaProblem(current, current.engine);
    if (problem !== undefined) throw new DepadError('DEPAD_USAGE', `${service}: ${count} replicas: ${problem}`);
    const { replicas: _r, ...rest } = current;
    services[service] = count === 1 ? rest : { ...rest, replicas: count };
  }
  // The budget counts every replica (budget.ts): a scale must fit it as the file's replicas must.
  const over: string[] = [];
  // A spec read back from its revision has no positions: name the file and the key, not a made-up 1:1.
  const where = (path: string, pos: Pos) => (spec.positions.has(path) ? `${spec.file}:${pos.line}:${pos.column} ${path}` : `${spec.file} (as stored with the revision) ${path}`);
  const issues = { positions: spec.positions, issue: (path: string, pos: Pos, message: string) => void over.push(`${where(path, pos)}: ${message}`) };
  checkBudget(issues, spec.depad.resources, Object.values(services).map((s) => ({ name: s.name, limits: s.resources, replicas: s.replicas ?? 1, surge: rollingSurge(s) })));
  if (over.length > 0) throw new DepadError('DEPAD_USAGE', `the scale does not fit the deployment's budget: ${over.join('; ')}`, { hint: 'scale less, or raise x-depad.resources in the config (an update with -f)' });
  return deepFreeze({ ...spec, services, positions: spec.positions });
}

/** Image overrides from the command line (`depad update d -s web --image app:2`). */
import { DepadError } from '../errors.ts';
import { deepFreeze } from './freeze.ts';
import type { DeploymentSpec } from './spec.ts';
import { imageReferenceProblem } from './values.ts';

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

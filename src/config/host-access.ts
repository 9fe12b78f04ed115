/**
 * The one place that decides which service settings reach outside the deployment, onto the host
 * (privileged mode, devices, the host's namespaces, powerful capabilities, unconfined security
 * profiles…). Today every such request is refused; a host policy the operator sets (issue 13,
 * point 4) plugs in here through `HostPolicy`.
 */

/** A request for host access: the compose key and the value asking for it. */
export interface HostAccessRequest {
  /** The service key, e.g. `privileged`, `cap_add`, `security_opt`, `network_mode`. */
  readonly key: string;
  /** The value as written (a capability, an option, a mode…); `true` for boolean keys. */
  readonly value: string | true;
}

/** What the operator allows; none of it yet (the policy comes separately). */
export interface HostPolicy {
  /** True when the policy grants `request`. */
  readonly allows: (request: HostAccessRequest) => boolean;
}

/** The default policy: nothing reaching the host is allowed. */
export const NO_HOST_ACCESS: HostPolicy = Object.freeze({ allows: () => false });

const POWERFUL_CAPS = new Set(['SYS_ADMIN', 'NET_ADMIN', 'ALL']);
const HOST_MODES: Readonly<Record<string, string>> = {
  network_mode: "the host's network stack",
  pid: "the host's processes",
  ipc: "the host's shared memory",
  uts: "the host's hostname",
  userns_mode: "the host's user namespace (root in the container is root on the host)",
  cgroup: "the host's cgroup namespace",
};

/** Why `request` reaches the host (for the refusal message), or undefined when it does not. */
export function hostAccessReason(request: HostAccessRequest): string | undefined {
  const { key, value } = request;
  const text = value === true ? '' : value;
  switch (key) {
    case 'privileged':
      return 'privileged mode gives the container every device and capability of the host';
    case 'devices':
      return `device ${text} is a device of the host`;
    case 'gpus':
      return "GPUs are devices of the host";
    case 'device_cgroup_rules':
      return "device cgroup rules open the host's devices to the container";
    case 'cgroup_parent':
      return "cgroup_parent places the container in the host's cgroup tree";
    case 'use_api_socket':
      return "it mounts the host's Docker Engine socket";
    case 'cap_add': {
      const cap = text.toUpperCase().replace(/^CAP_/, '');
      return POWERFUL_CAPS.has(cap) ? `capability ${cap} lets the container change the host's ${cap === 'NET_ADMIN' ? 'networking' : 'kernel state'}` : undefined;
    }
    case 'security_opt':
      return /^[a-z_-]+[:=]unconfined$/i.test(text) ? `${text} lifts the confinement that keeps the container off the host` : undefined;
    case 'deploy.resources.reservations.devices':
      return 'device reservations hand devices of the host to the container';
    default: {
      const what = HOST_MODES[key];
      return what !== undefined && text === 'host' ? `${key}: host shares ${what}` : undefined;
    }
  }
}

/**
 * Checks a request against the policy: undefined when it does not reach the host or the policy
 * allows it, else the refusal message (the reason, and that a host policy to allow it comes separately).
 */
export function hostAccessProblem(request: HostAccessRequest, policy: HostPolicy = NO_HOST_ACCESS): string | undefined {
  const reason = hostAccessReason(request);
  if (reason === undefined || policy.allows(request)) return undefined;
  return `${reason}: this reaches the host, which depad refuses by default so that deployments stay isolated; a host policy to allow it comes separately — remove it for now`;
}

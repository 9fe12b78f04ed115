/**
 * The compose network keys depad cannot honour yet (IPv6, link-local addresses, newer
 * Engine API fields), with the reason and what to write instead; and those it accepts with no
 * effect. Used by the top-level `networks:` reader and a service's `networks:` reader.
 */

const FIXED = 'two deployments of one file would ask for the same addresses, and depad allocates and maps IPv4 subnets only (ipam, ipv4_address)';

/** Top-level network keys accepted with no effect on one engine (`attachable` is for Swarm overlays). */
export const NETWORK_IGNORED = ['attachable'] as const;

/** Messages for top-level network keys depad refuses. */
export const NETWORK_SPECIAL: Readonly<Record<string, string>> = {
  enable_ipv6: `IPv6 networks need an IPv6 subnet per deployment, which depad does not allocate (it maps IPv4 subnets only); remove enable_ipv6`,
  enable_ipv4: 'enable_ipv4 needs Engine API 1.47; Docker Engine 20.10 networks always have IPv4: remove it',
};

/** A service's per-network keys accepted with no effect (depad joins the networks in the order given). */
export const ENDPOINT_IGNORED = ['priority', 'gw_priority'] as const;

/** Messages for a service's per-network keys depad refuses. */
export const ENDPOINT_SPECIAL: Readonly<Record<string, string>> = {
  ipv6_address: 'IPv6 addresses are not supported: depad maps IPv4 subnets only (ipam with an IPv4 subnet and ipv4_address); remove it and reach the service by its name or an alias',
  link_local_ips: `fixed link-local addresses are not supported: ${FIXED}; remove them`,
  mac_address: 'a per-network mac_address needs Engine API 1.44; use the service-level mac_address: instead',
  driver_opts: 'per-network driver_opts are not supported yet; remove them',
  interface_name: 'interface_name needs Docker Engine 28.1 (API 1.49); remove it',
};

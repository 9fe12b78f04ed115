/**
 * The manager's peer tables (src/cluster/peers.ts), pure: a host's table lists the other hosts
 * that are not down and every hostname they reported; its own, a down host's, malformed hostnames
 * and hosts without an IP address are left out; a hostname two hosts report goes to the first by
 * name; the agent's heartbeat groups its proxy's HTTP hostnames by deployment; the peer key is
 * stable for one manager key and differs for another; the proxy accepts the table as made; the
 * cluster's hostname owners (a create through the manager may not take another deployment's).
 */
import test from 'ava';
import { parsePeerTable } from '../proxy/peer-routes.ts';
import type { RouteSnapshot } from '../proxy/types.ts';
import { clusterRouteOwners, deploymentHostnames, peerKey, peersFor } from '../src/cluster/peers.ts';
import { parseConfig } from '../src/config/index.ts';
import { assertHostsUnowned } from '../src/deploy/preflight.ts';
import type { DepadError } from '../src/errors.ts';
import type { HostRecord } from '../src/store/records.ts';

const NOW = Date.parse('2026-12-01T12:00:00Z');

function host(name: string, address: string, deployments: { name: string; hostnames?: unknown }[], lastSeen = NOW): HostRecord {
  return {
    name,
    apiUrl: `https://${address}:8443`,
    address,
    httpPort: 80,
    agentCa: '',
    certFingerprint: '',
    labels: {},
    capacity: { cpus: 1, memoryBytes: 1 },
    cordoned: false,
    joinedAt: '',
    lastSeen: new Date(lastSeen).toISOString(),
    deployments: deployments.map((d) => ({ name: d.name, id: d.name, labels: {}, status: 'running', hostnames: d.hostnames as string[] })),
  };
}

const registry = (hosts: HostRecord[]) => ({
  list: () => hosts,
  stateOf: (h: HostRecord, now = Date.now()) => (now - Date.parse(h.lastSeen) > 8000 ? ('down' as const) : h.cordoned ? ('cordoned' as const) : ('ready' as const)),
});

test('a host is given the other live hosts and their hostnames; down hosts, its own and malformed ones left out', (t) => {
  const hosts = registry([
    host('host-1', '10.0.0.1', [{ name: 'shop', hostnames: ['shop.test', 'web.shop.localhost'] }, { name: 'x', hostnames: ['Bad Host', 7, 'both.test'] }]),
    host('host-2', '10.0.0.2', [{ name: 'mine', hostnames: ['mine.test'] }]),
    { ...host('host-3', '10.0.0.3', [{ name: 'blog', hostnames: ['blog.test', 'both.test'] }]), cordoned: true },
    host('host-4', '10.0.0.4', [{ name: 'old', hostnames: ['old.test'] }], NOW - 60_000),
    host('host-5', 'host5.example', [{ name: 'named', hostnames: ['named.test'] }]),
    host('host-6', '10.0.0.6', [{ name: 'none' }, { name: 'odd', hostnames: 'odd.test' }]),
  ]);
  const key = 'k'.repeat(43);
  const table = peersFor(hosts, 'host-2', key, NOW);
  t.deepEqual(table.hosts.map((h) => h.name), ['host-1', 'host-3', 'host-6'], 'not itself, not down, not without an IP address');
  t.deepEqual(table.routes, { 'shop.test': 'host-1', 'web.shop.localhost': 'host-1', 'both.test': 'host-1', 'blog.test': 'host-3' });
  t.is(table.self, 'host-2');
  t.deepEqual(parsePeerTable(JSON.parse(JSON.stringify(table))), table, 'the proxy takes it as it is');
});

test("the heartbeat's hostnames by deployment: HTTP routes only", (t) => {
  const snapshot: RouteSnapshot = {
    version: 3,
    routes: [
      { id: 'a/web', deployment: 'a', service: 'web', kind: 'http', hosts: ['a.test', 'web.a.localhost'], upstreams: [] },
      { id: 'a/api', deployment: 'a', service: 'api', kind: 'http', hosts: ['api.a.localhost'], upstreams: [] },
      { id: 'a/db', deployment: 'a', service: 'db', kind: 'tcp', hosts: [], listenPort: 20001, upstreams: [] },
      { id: 'b/db', deployment: 'b', service: 'db', kind: 'tcp', hosts: [], listenPort: 20002, upstreams: [] },
    ],
  };
  t.deepEqual([...deploymentHostnames(snapshot)], [['a', ['a.test', 'web.a.localhost', 'api.a.localhost']]]);
});

test('the peer key: 43 base64url characters, the same for one manager key, another for another', (t) => {
  const one = peerKey({ cert: '', key: 'key one' });
  t.regex(one, /^[A-Za-z0-9_-]{43}$/);
  t.is(peerKey({ cert: 'other cert', key: 'key one' }), one);
  t.not(peerKey({ cert: '', key: 'key two' }), one);
});

test("the cluster's hostname owners: every host's report, down hosts too, and creates not reported yet", (t) => {
  const hosts = registry([
    host('host-1', '10.0.0.1', [{ name: 'shop', hostnames: ['shop.test'] }]),
    host('host-2', '10.0.0.2', [{ name: 'blog', hostnames: ['blog.test'] }], NOW - 60_000),
  ]);
  const placements = [
    { name: 'shop', host: 'host-1', hostnames: ['old.shop.test'] }, // reported: its host's report wins over what it asked at create
    { name: 'new', host: 'host-2', hostnames: ['new.test'] },
  ];
  const owners = clusterRouteOwners(hosts, placements);
  t.deepEqual(Object.fromEntries(owners), {
    'shop.test': { deployment: 'shop', host: 'host-1' },
    'blog.test': { deployment: 'blog', host: 'host-2' },
    'new.test': { deployment: 'new', host: 'host-2' },
  });
  const spec = (hostname: string) => parseConfig(`services:\n  web:\n    image: app:1\n    x-depad: {expose: http, port: 8080, hostnames: [${hostname}]}\n`, '/tmp/depad.yml', {});
  const refused = t.throws(() => assertHostsUnowned('other', spec('new.test'), owners));
  t.is((refused as DepadError).code, 'DEPAD_NAME_TAKEN');
  t.regex(refused!.message, /^\/tmp\/depad\.yml:4:\d+ services\.web\.x-depad\.hostnames\[0\]: host new\.test is already routed to deployment new on host host-2$/);
  t.notThrows(() => assertHostsUnowned('new', spec('new.test'), owners), 'its own hostnames are not a clash (a create again after a destroy)');
  t.notThrows(() => assertHostsUnowned('other', spec('free.test'), owners));
});

/** Placement (src/cluster/placement.ts, need.ts) and `x-depad.placement` as read (pure: no engine). */
import test from 'ava';
import { parseConfig } from '../src/config/index.ts';
import { normalizedCompose } from '../src/config/normalize.ts';
import { stringify } from 'yaml';
import { place, placementError } from '../src/cluster/placement.ts';
import type { HostView, PlacementRequest } from '../src/cluster/placement.ts';
import { DEFAULT_SERVICE_NEED, assertRoom, needOf, placementRequest } from '../src/cluster/need.ts';
import { ERROR_CODES, isDepadError } from '../src/errors.ts';
import { printHosts } from '../src/cli/manager-commands.ts';
import type { HostSummary } from '../src/cluster/hosts.ts';
import { problems } from './helpers/config-problems.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function host(name: string, over: Partial<HostView> = {}): HostView {
  return { name, state: 'ready', labels: {}, capacity: { cpus: 4, memoryBytes: 8 * GiB }, reserved: { cpus: 0, memoryBytes: 0 }, deployments: [], ...over };
}

function request(name: string, over: Partial<PlacementRequest> = {}): PlacementRequest {
  return { name, labels: {}, need: { cpus: 1, memoryBytes: 1 * GiB }, constraints: [], ...over };
}

/** Places `req` and records it on the chosen host (reserved and deployments), as the manager would. */
function commit(hosts: HostView[], req: PlacementRequest): string | undefined {
  const { chosen } = place(req, hosts);
  const i = hosts.findIndex((h) => h.name === chosen);
  const h = hosts[i];
  if (h === undefined) return undefined;
  hosts[i] = {
    ...h,
    reserved: { cpus: h.reserved.cpus + req.need.cpus, memoryBytes: h.reserved.memoryBytes + req.need.memoryBytes },
    deployments: [...h.deployments, { name: req.name, labels: req.labels, ...(req.class === undefined ? {} : { class: req.class }) }],
  };
  return chosen;
}

test('constraints: == and != on host labels; each excluded host says which label and what it has', (t) => {
  const hosts = [host('host-1', { labels: { region: 'us', disk: 'ssd' } }), host('host-2', { labels: { region: 'eu', disk: 'hdd' } }), host('host-3', { labels: { region: 'eu', disk: 'ssd' } }), host('host-4', { labels: { disk: 'ssd' } })];
  const result = place(request('mercy', { constraints: [{ label: 'region', op: '==', value: 'eu' }, { label: 'disk', op: '!=', value: 'hdd' }] }), hosts);
  t.is(result.chosen, 'host-3');
  const why = Object.fromEntries(result.candidates.map((c) => [c.host, c.excluded]));
  t.deepEqual(why, { 'host-3': undefined, 'host-1': 'region==eu: its region is us', 'host-2': 'disk!=hdd: its disk is hdd', 'host-4': 'region==eu: it has no region label' });
  t.is(place(request('x', { constraints: [{ label: 'disk', op: '!=', value: 'hdd' }] }), [host('a')]).chosen, 'a', '!= holds on a host without the label');
});

test('capacity: the fourth big deployment goes to the only host with room, the fifth is refused naming each host\'s reason', (t) => {
  const hosts = [host('host-1', { capacity: { cpus: 2, memoryBytes: 4 * GiB } }), host('host-2', { capacity: { cpus: 2, memoryBytes: 4 * GiB } }), host('host-3', { capacity: { cpus: 4, memoryBytes: 8 * GiB } })];
  const big = (n: number) => request(`big-${n}`, { class: 'big', need: { cpus: 2, memoryBytes: 3 * GiB } });
  const chosen = [1, 2, 3].map((n) => commit(hosts, big(n)));
  t.deepEqual([...chosen].sort(), ['host-1', 'host-2', 'host-3'], 'least loaded after placing: one each');
  t.is(commit(hosts, big(4)), 'host-3', 'only host-3 has 2 CPUs and 3 GiB left');
  const fifth = place(big(5), hosts);
  t.is(fifth.chosen, undefined);
  const error = placementError(big(5), fifth);
  t.true(isDepadError(error, 'DEPAD_NO_HOST'));
  t.is(error.exitCode, 18);
  t.is(error.status, 507);
  t.is(
    error.message,
    [
      'no host can take big-5 (it needs 2 CPUs, 3 GiB of memory):',
      '  host-1: needs 2 CPUs, 0 of 2 free; needs 3 GiB of memory, 1 GiB of 4 GiB free',
      '  host-2: needs 2 CPUs, 0 of 2 free; needs 3 GiB of memory, 1 GiB of 4 GiB free',
      '  host-3: needs 2 CPUs, 0 of 4 free; needs 3 GiB of memory, 2 GiB of 8 GiB free',
    ].join('\n'),
  );
  t.regex(error.hint ?? '', /join a host with room; nothing was created/);
  t.deepEqual(ERROR_CODES.DEPAD_NO_HOST, { exit: 18, status: 507 });
});

test('capacity: fractional CPUs add up exactly, and host ports count when both sides know them', (t) => {
  const h = host('a', { capacity: { cpus: 1, memoryBytes: GiB, freePorts: 2 }, reserved: { cpus: 0.7, memoryBytes: 0 } });
  t.is(place(request('x', { need: { cpus: 0.3, memoryBytes: MiB } }), [h]).chosen, 'a', '0.7 + 0.3 fits 1 CPU');
  const ports = place(request('x', { need: { cpus: 0.1, memoryBytes: MiB, ports: 3 } }), [h]);
  t.is(ports.candidates[0]?.excluded, 'needs 3 host ports, 2 free');
  t.is(place(request('x', { need: { cpus: 0.1, memoryBytes: MiB, ports: 3 } }), [host('b')]).chosen, 'b', 'free ports unknown: not checked');
  t.is(place(request('x', { need: { cpus: 0.5, memoryBytes: MiB } }), [h]).candidates[0]?.excluded, 'needs 0.5 CPUs, 0.3 of 1 free');
});

test('spread: deployments of one class go across the spread label\'s values first, then to the least loaded host', (t) => {
  const hosts = [host('host-1', { labels: { zone: 'a' } }), host('host-2', { labels: { zone: 'a' } }), host('host-3', { labels: { zone: 'b' }, capacity: { cpus: 2, memoryBytes: 4 * GiB } })];
  const clinic = (n: number) => request(`clinic-${n}`, { class: 'clinic', spread: 'zone', need: { cpus: 0.5, memoryBytes: 512 * MiB } });
  const first = place(clinic(1), hosts);
  t.is(first.chosen, 'host-1', 'all empty: least loaded after placing, then name (host-3 is smaller)');
  t.regex(first.candidates[0]?.detail ?? '', /^zone=a runs 0 of class clinic; load after 13% \(cpu 13%, memory 6%\)$/);
  commit(hosts, clinic(1));
  t.is(commit(hosts, clinic(2)), 'host-3', 'zone b has none of the class');
  t.is(commit(hosts, clinic(3)), 'host-2', 'one each: zone a\'s emptier host');
  t.is(commit(hosts, clinic(4)), 'host-3', 'zone a has 2, b has 1');
  t.is(commit(hosts, request('other-1', { class: 'other', spread: 'zone', need: { cpus: 0.5, memoryBytes: 512 * MiB } })), 'host-1', 'another class only looks at load (host-1 and host-2 tie at 25%: name)');
  const scores = place(clinic(5), hosts).candidates.map((c) => [c.host, c.score]);
  t.deepEqual(scores, [['host-2', 2.25], ['host-1', 2.375], ['host-3', 2.75]], 'both zones run 2: score = 2 + load after');
});

test('spread without a class groups by name prefix, only among deployments without a class; without spread, load alone', (t) => {
  const hosts = [host('host-1', { labels: { zone: 'a' }, deployments: [{ name: 'mercy-eu', labels: {} }, { name: 'shop-1', class: 'mercy', labels: {} }] }), host('host-2', { labels: { zone: 'b' }, reserved: { cpus: 1, memoryBytes: 0 } })];
  const r = place(request('mercy-us', { spread: 'zone' }), hosts);
  t.is(r.chosen, 'host-2', 'zone a runs mercy-eu, though host-2 is fuller');
  t.regex(r.candidates[1]?.detail ?? '', /^zone=a runs 1 of group mercy \(no class\); load after 25%/);
  t.is(place(request('mercy-us'), hosts).chosen, 'host-1', 'without spread: the least loaded');
  const shops = [host('host-1', { labels: { zone: 'a' }, deployments: [{ name: 'shop-1', labels: {} }] }), host('host-2', { labels: { zone: 'b' }, deployments: [{ name: 'shopping', labels: {} }] })];
  t.is(place(request('shop', { spread: 'zone' }), shops).chosen, 'host-2', '"shop" and shop-1 are group shop; shopping is not');
});

test('cordoned and down hosts are excluded with that reason; --host takes only that host', (t) => {
  const hosts = [host('host-1', { state: 'cordoned' }), host('host-2', { state: 'down' }), host('host-3', { capacity: { cpus: 1, memoryBytes: GiB } }), host('host-4')];
  const r = place(request('x'), hosts);
  t.is(r.chosen, 'host-4');
  t.deepEqual(r.candidates.map((c) => [c.host, c.excluded]), [['host-4', undefined], ['host-3', undefined], ['host-1', 'cordoned (depad hosts uncordon to take deployments again)'], ['host-2', 'down (missed its heartbeats)']]);
  const only = place(request('x', { host: 'host-3' }), hosts);
  t.is(only.chosen, 'host-3', 'the asked host, though fuller');
  t.is(only.candidates.find((c) => c.host === 'host-4')?.excluded, 'not the host asked for (--on-host host-3)');
  const cordoned = place(request('x', { host: 'host-1' }), hosts);
  t.is(cordoned.chosen, undefined);
  t.regex(placementError(request('x', { host: 'host-1' }), cordoned).message, /host-1: cordoned/);
  t.regex(placementError(request('x', { host: 'host-1' }), cordoned).hint ?? '', /uncordon a host/);
  const missing = placementError(request('x', { host: 'host-9' }), place(request('x', { host: 'host-9' }), hosts));
  t.is(missing.message, 'no host can take x: there is no host host-9 (--on-host); hosts: host-1, host-2, host-3, host-4');
  t.is(placementError(request('x'), place(request('x'), [])).message, 'no host can take x: the cluster has no hosts');
});

test('determinism: the same hosts in any order give the same choice and the same candidate list', (t) => {
  const hosts = Array.from({ length: 12 }, (_, i) => host(`host-${i + 1}`, { labels: { zone: 'abc'[i % 3] ?? 'a' }, reserved: { cpus: (i % 4) * 0.5, memoryBytes: (i % 2) * GiB } }));
  const req = request('clinic-9', { class: 'clinic', spread: 'zone' });
  const expected = place(req, hosts);
  for (let k = 0; k < 5; k++) {
    const shuffled = [...hosts].sort((a, b) => ((a.name.length * 31 + k) % 7) - ((b.name.length * 17 + k) % 5) || (k % 2 === 0 ? 1 : -1) * a.name.localeCompare(b.name));
    t.deepEqual(place(req, shuffled), expected);
  }
});

const file = (depad: string, services = '  web:\n    image: a:1\n') => `services:\n${services}x-depad:\n${depad}`;

test('needOf: the budget, else the services\' limits × replicas, else the default per service; per resource', (t) => {
  const limits = '  web:\n    image: a:1\n    deploy: {replicas: 3, update_config: {order: stop-first}, resources: {limits: {cpus: 0.5, memory: 256m}}}\n  db:\n    image: b:1\n    deploy: {resources: {limits: {cpus: 1, memory: 1g}}}\n    ports: ["5432"]\n';
  t.like(needOf(parseConfig(file('  class: x\n', limits), 'cfg.yml', {})), { cpus: 2.5, memoryBytes: 1792 * MiB, ports: 1, basis: { cpus: 'limits', memory: 'limits' } });
  t.like(needOf(parseConfig(file('  resources: {cpus: 4}\n', limits), 'cfg.yml', {})), { cpus: 4, memoryBytes: 1792 * MiB, basis: { cpus: 'budget', memory: 'limits' } }, 'a budget without memory takes the services\' memory');
  t.like(needOf(parseConfig(file('  resources: {cpus: 4, memory: 8g}\n', limits), 'cfg.yml', {})), { cpus: 4, memoryBytes: 8 * GiB, basis: { cpus: 'budget', memory: 'budget' } });
  t.like(needOf(parseConfig(file('  class: x\n', '  web:\n    image: a:1\n  db:\n    image: b:1\n'), 'cfg.yml', {})), { cpus: 2 * DEFAULT_SERVICE_NEED.cpus, memoryBytes: 2 * DEFAULT_SERVICE_NEED.memoryBytes, ports: 0, basis: { cpus: 'default', memory: 'default' } });
  t.like(needOf(parseConfig(file('  class: x\n', '  web:\n    image: a:1\n    deploy: {resources: {limits: {memory: 1g}}}\n  db:\n    image: b:1\n'), 'cfg.yml', {})), { cpus: 0.5, memoryBytes: GiB + 256 * MiB, basis: { cpus: 'default', memory: 'limits+default' } });
  t.like(needOf(parseConfig(file('  class: x\n', '  web:\n    image: a:1\n    x-depad: {expose: http, port: 8080}\n    deploy: {replicas: 2, update_config: {parallelism: 2}, resources: {limits: {cpus: 0.25}}}\n'), 'cfg.yml', {})), { cpus: 1, ports: 2 }, '2 replicas and a start-first batch of 2; an instance port per replica');
});

test('placementRequest: labels (create\'s win), class, the file\'s constraints and spread, --host', (t) => {
  const spec = parseConfig(file('  class: clinic\n  labels: {env: prod}\n  placement:\n    constraints: ["region==eu", "disk != hdd"]\n    spread: zone\n'), 'cfg.yml', {});
  t.deepEqual(placementRequest('mercy', spec, { labels: { env: 'test' }, host: 'host-2' }), {
    name: 'mercy',
    class: 'clinic',
    labels: { class: 'clinic', env: 'test' },
    need: { cpus: 0.25, memoryBytes: 256 * MiB, ports: 0 },
    constraints: [{ label: 'region', op: '==', value: 'eu' }, { label: 'disk', op: '!=', value: 'hdd' }],
    spread: 'zone',
    host: 'host-2',
  });
});

test('x-depad.placement is read, frozen, and round-trips through the normalized form', (t) => {
  const spec = parseConfig(file('  placement:\n    constraints: [region==eu, "disk!=hdd"]\n    spread: zone\n'), 'cfg.yml', {});
  t.deepEqual(spec.depad.placement, { constraints: [{ label: 'region', op: '==', value: 'eu' }, { label: 'disk', op: '!=', value: 'hdd' }], spread: 'zone' });
  t.true(Object.isFrozen(spec.depad.placement?.constraints[0]));
  const normalized = normalizedCompose(spec);
  t.deepEqual((normalized['x-depad'] as Record<string, unknown>).placement, { constraints: ['region==eu', 'disk!=hdd'], spread: 'zone' });
  t.deepEqual(parseConfig(stringify(normalized), 'cfg.yml', {}).depad.placement, spec.depad.placement);
  t.is(parseConfig(file('  class: x\n'), 'cfg.yml', {}).depad.placement, undefined);
  t.deepEqual(parseConfig(file('  placement: {spread: zone}\n'), 'cfg.yml', {}).depad.placement, { constraints: [], spread: 'zone' });
});

const refusals: Array<[string, string, RegExp]> = [
  ['one =', '  placement: {constraints: ["region=eu"]}\n', /^ {2}cfg\.yml:5:29 x-depad\.placement\.constraints\[0\]: "region=eu" is not a constraint: write label==value or label!=value, e.g\. region==eu$/m],
  ['a Swarm label path', '  placement:\n    constraints:\n      - node.labels.region == eu\n', /cfg\.yml:7:9 x-depad\.placement\.constraints\[0\]: "node\.labels\.region == eu": depad matches host labels by name; write region==eu/],
  ['a Swarm node attribute', '  placement: {constraints: ["node.role==manager"]}\n', /constraints\[0\]: "node\.role==manager": node\.role is a Swarm node attribute; .*--host/],
  ['an upper-case label', '  placement: {constraints: ["Region==eu"]}\n', /constraints\[0\]: "Region==eu": label name "Region" must be lowercase letters, digits, '\.', '_' and '-'/],
  ['a bad value', '  placement: {constraints: ["region==e u"]}\n', /constraints\[0\]: "region==e u": the value "e u" must be 1 to 63 letters/],
  ['no label', '  placement: {constraints: ["==eu"]}\n', /constraints\[0\]: "==eu" has no label name before ==: write label==value, e.g\. region==eu/],
  ['not a list', '  placement: {constraints: "region==eu"}\n', /cfg\.yml:5:28 x-depad\.placement\.constraints: expected a list of "label==value" or "label!=value" strings/],
  ['the second item, a number', '  placement:\n    constraints: [region==eu, 3]\n', /cfg\.yml:6:31 x-depad\.placement\.constraints\[1\]: expected a "label==value" or "label!=value" string, found the number 3/],
  ['contradictory', '  placement: {constraints: [region==eu, region==us]}\n', /constraints\[1\]: region==us and region==eu cannot both hold: no host could take this deployment; keep one/],
  ['spread, a Swarm path', '  placement: {spread: node.labels.zone}\n', /cfg\.yml:5:23 x-depad\.placement\.spread: spread names a host label by its name: write spread: zone/],
  ['spread, a bad name', '  placement: {spread: Zone}\n', /x-depad\.placement\.spread: spread: label name "Zone" must be .*, e\.g\. spread: zone/],
  ['an unknown key, close to one', '  placement: {constraint: [region==eu]}\n', /cfg\.yml:5:15 x-depad\.placement\.constraint: unknown key 'constraint' in x-depad\.placement; did you mean 'constraints'\?/],
  ['Swarm preferences', '  placement: {preferences: [{spread: node.labels.zone}]}\n', /x-depad\.placement\.preferences: preferences is Swarm's; write spread: LABEL/],
  ['not a map', '  placement: region==eu\n', /cfg\.yml:5:14 x-depad\.placement: expected a map such as \{constraints: \["region==eu"\], spread: zone\}/],
];
for (const [title, depad, pattern] of refusals) {
  test(`x-depad.placement refused: ${title}`, (t) => {
    t.regex(problems(file(depad)), pattern);
  });
}

test('x-depad.placement: a misspelt key at the top of x-depad gets a did-you-mean', (t) => {
  t.regex(problems(file('  placment: {spread: zone}\n')), /x-depad\.placment: unknown key 'placment' in x-depad; did you mean 'placement'\?/);
});

test('x-depad.placement: constraints are interpolated; an unset variable is named where it empties a value', (t) => {
  const text = file('  placement: {constraints: ["region==${REGION}"], spread: "${SPREAD:-zone}"}\n');
  t.deepEqual(parseConfig(text, 'cfg.yml', { REGION: 'eu' }).depad.placement, { constraints: [{ label: 'region', op: '==', value: 'eu' }], spread: 'zone' });
  t.regex(problems(text), /x-depad\.placement\.constraints\[0\]: "region==": the value "" must be 1 to 63 letters.* \(variable REGION is not set and became '': pass --env REGION=… or add it to \.env\)/);
});

test('a label named like an object property is only a host\'s own label', (t) => {
  const r = place(request('x', { constraints: [{ label: 'constructor', op: '!=', value: 'x' }, { label: 'tostring', op: '==', value: 'y' }], spread: 'constructor' }), [host('a', { labels: { tostring: 'y' } })]);
  t.is(r.chosen, 'a');
  t.regex(r.candidates[0]?.detail ?? '', /^constructor=\(unset\) runs 0 of group x/);
});

test('assertRoom: a change needing more than its host has room for is refused, per resource; one needing no more always passes', (t) => {
  const need = (cpus: number, gib: number) => ({ cpus, memoryBytes: gib * 2 ** 30, ports: 0, basis: { cpus: 'limits', memory: 'limits' } as const });
  const room = { host: 'h1', cpus: 1, memoryBytes: 2 * 2 ** 30 };
  t.notThrows(() => assertRoom('shop', need(0.5, 1), need(1, 2), room), 'up to the room exactly');
  t.notThrows(() => assertRoom('shop', need(0.5, 1), need(1.5, 3), undefined), 'no room given: not through a manager');
  const cpu = t.throws(() => assertRoom('shop', need(0.5, 1), need(1.5, 1), room));
  t.true(isDepadError(cpu) && cpu.code === 'DEPAD_NO_HOST');
  t.regex(cpu!.message, /^host h1 has no room for this change of shop: it would need 1\.5 CPUs \(0\.5 now\), 1 available to it$/);
  t.regex((cpu as { hint?: string }).hint ?? '', /nothing was changed/);
  const mem = t.throws(() => assertRoom('shop', need(0.5, 1), need(0.5, 3), room));
  t.regex(mem!.message, /3 GiB of memory \(1 GiB now\), 2 GiB available to it/);
  t.notRegex(mem!.message, /CPUs/, 'only the resource that does not fit');
  // An overcommitted host (its capacity lowered since) still takes a change that needs no more.
  t.notThrows(() => assertRoom('shop', need(2, 4), need(2, 4), room));
  t.notThrows(() => assertRoom('shop', need(2, 4), need(1, 3), room));
});

test('hosts table: RESERVED says (over) for a host reserved beyond its capacity, not for one full to the brim', (t) => {
  const host = (cpus: number, reserved: number): HostSummary => ({ name: `h${reserved}`, state: 'ready', cordoned: false, address: '10.0.0.1', apiUrl: 'https://10.0.0.1:8443', labels: {}, capacity: { cpus, memoryBytes: 2 ** 30 }, reserved: { cpus: reserved, memoryBytes: 2 ** 29 }, deployments: 1, joinedAt: '2026-12-02T00:00:00.000Z', lastSeen: '2026-12-02T00:00:01.000Z' });
  let text = '';
  printHosts({ json: false, out: (s) => (text += s), err: () => undefined }, [host(1, 1.9), host(1, 1), host(1, 0.3)]);
  t.regex(text, /^h1\.9\s.*190% CPU, 50% mem \(over\)/m);
  t.regex(text, /^h1\s.*100% CPU, 50% mem\s+1\s/m);
  t.notRegex(text, /^h0\.3\s.*\(over\)/m);
});

/**
 * `ipam` subnets and `ipv4_address` at load (no engine): what is accepted and normalised, every
 * refusal with its file:line:column and what to do; the subnet pool and the offset mapping
 * (src/subnets), and how render maps the file's addresses into an allocated subnet.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig, parseConfig } from '../src/config/index.ts';
import { normalizedCompose } from '../src/config/normalize.ts';
import { render } from '../src/render/render.ts';
import { firstFreeSubnet, subnetPoolFromEnv, DEFAULT_SUBNET_POOL } from '../src/subnets/pool.ts';
import { formatCidr, mapText, parseCidr, type Cidr } from '../src/subnets/ipv4.ts';
import { problems } from './helpers/config-problems.ts';

const file = (network: string, services = '') => `services:
  db:
    image: a:1
    networks:
      backend:
        ipv4_address: 172.28.5.10
  web:
    image: a:1
    networks:
      backend: {}
${services}networks:
  backend:
${network}`;

const IPAM = `    ipam:
      config:
        - subnet: 172.28.0.0/16
          ip_range: 172.28.5.0/24
          gateway: 172.28.0.1
          aux_addresses: {printer: 172.28.9.9}
`;

test('accepted: the subnet, range, gateway, aux addresses and a service address, normalised', (t) => {
  const spec = parseConfig(file(IPAM), 'cfg.yml', {});
  t.deepEqual(spec.networks.backend!.ipam, { subnet: '172.28.0.0/16', ipRange: '172.28.5.0/24', gateway: '172.28.0.1', auxAddresses: { printer: '172.28.9.9' }, options: {} });
  t.is(spec.services.db!.networks.backend!.ipv4Address, '172.28.5.10');
  t.is(spec.services.web!.networks.backend!.ipv4Address, undefined);
  t.is(spec.positions.get('networks.backend.ipam.config[0].subnet')?.line, 15);
});

test('ipam with no config asks for no subnet; driver: default is accepted', (t) => {
  const spec = parseConfig(file('    ipam: {driver: default}\n').replace('        ipv4_address: 172.28.5.10\n', '        aliases: [d]\n'), 'cfg.yml', {});
  t.is(spec.networks.backend!.ipam, undefined);
});

const refusals: [string, string, RegExp][] = [
  ['host bits set', '    ipam: {config: [{subnet: 172.28.0.1/16}]}\n', /cfg\.yml:13:\d+ networks\.backend\.ipam\.config\[0\]\.subnet: 172\.28\.0\.1\/16 has host bits set; the subnet is 172\.28\.0\.0\/16/],
  ['an IPv6 subnet', '    ipam: {config: [{subnet: "2001:db8::/64"}]}\n', /subnet: expected a subnet in CIDR form|is not an IPv4 address \(IPv6 subnets are not supported\)/],
  ['a /31', '    ipam: {config: [{subnet: 172.28.0.0/31}]}\n', /config\[0\]\.subnet: a \/31 subnet is not supported: depad allocates \/8 to \/30 subnets/],
  ['no subnet', '    ipam: {config: [{gateway: 172.28.0.1}]}\n', /config\[0\]: an ipam config needs subnet:/],
  ['two subnets', '    ipam: {config: [{subnet: 172.28.0.0/16}, {subnet: "fd00::/64"}]}\n', /config\[1\]: one subnet per network/],
  ['another driver', '    ipam: {driver: dhcp, config: [{subnet: 172.28.0.0/16}]}\n', /ipam\.driver: IPAM driver dhcp is not supported/],
  ['a range outside', '    ipam: {config: [{subnet: 172.28.0.0/16, ip_range: 172.29.0.0/24}]}\n', /ip_range: ip_range 172\.29\.0\.0\/24 is not inside the subnet 172\.28\.0\.0\/16/],
  ['the gateway is the network address', '    ipam: {config: [{subnet: 172.28.0.0/16, gateway: 172.28.0.0}]}\n', /gateway: gateway 172\.28\.0\.0 is the network address of 172\.28\.0\.0\/16; give a host address \(172\.28\.0\.1-172\.28\.255\.254\)/],
  ['an aux address is the broadcast address', '    ipam: {config: [{subnet: 172.28.0.0/16, aux_addresses: {a: 172.28.255.255}}]}\n', /aux_addresses\.a: aux address a 172\.28\.255\.255 is the broadcast address/],
  ['an aux address outside', '    ipam: {config: [{subnet: 172.28.0.0/16, aux_addresses: {a: 10.0.0.1}}]}\n', /aux_addresses\.a: aux address a 10\.0\.0\.1 is not inside the subnet/],
  ['a misspelt key', '    ipam: {config: [{subnet: 172.28.0.0/16, gatway: 172.28.0.1}]}\n', /config\[0\]\.gatway: unknown key 'gatway' .*did you mean 'gateway'\?/],
  ['a service address outside', '    ipam: {config: [{subnet: 172.29.0.0/16}]}\n', /cfg\.yml:6:23 services\.db\.networks\.backend\.ipv4_address: db's address 172\.28\.5\.10 is not inside the subnet 172\.29\.0\.0\/16/],
  ['a service on the gateway', '    ipam: {config: [{subnet: 172.28.0.0/16, gateway: 172.28.5.10}]}\n', /services\.db\.networks\.backend\.ipv4_address: db's address 172\.28\.5\.10 is already the gateway on this network/],
  ['a service on an aux address', '    ipam: {config: [{subnet: 172.28.0.0/16, aux_addresses: {x: 172.28.5.10}}]}\n', /ipv4_address: db's address 172\.28\.5\.10 is already aux address x on this network/],
  ['not an address', '    ipam: {config: [{subnet: 172.28.0.0/16}]}\n', /services\.db\.networks\.backend\.ipv4_address: 172\.28\.5\.300 is not an IPv4 address/],
];

for (const [title, network, pattern] of refusals) {
  test(`refused: ${title}`, (t) => {
    const text = title === 'not an address' ? file(network).replace('172.28.5.10', '172.28.5.300') : file(network);
    t.regex(problems(text), pattern);
  });
}

test('refused: two services with one address, the second named with its position', (t) => {
  const text = file('    ipam: {config: [{subnet: 172.28.0.0/16}]}\n').replace('      backend: {}\n', '      backend: {ipv4_address: 172.28.5.10}\n');
  t.regex(problems(text), /cfg\.yml:10:\d+ services\.web\.networks\.backend\.ipv4_address: web's address 172\.28\.5\.10 is already db's address on this network; give each its own address/);
});

test('the pool: default and DEPAD_SUBNET_POOL; first free subnet of the asked size skips taken ones', (t) => {
  t.is(subnetPoolFromEnv({}).map(formatCidr).join(','), DEFAULT_SUBNET_POOL);
  const pool = subnetPoolFromEnv({ DEPAD_SUBNET_POOL: '10.150.0.0/15, 10.160.0.0/24' });
  const c = (s: string) => parseCidr(s) as Cidr;
  const first = (prefix: number, taken: string[]) => {
    const got = firstFreeSubnet(pool, prefix, taken.map(c));
    return got && formatCidr(got);
  };
  t.is(first(16, []), '10.150.0.0/16');
  t.is(first(16, ['10.150.3.0/24']), '10.151.0.0/16', 'a small network on the engine inside the first /16 skips it');
  t.is(first(16, ['10.150.0.0/16', '10.151.0.0/16']), undefined, 'the /24 range holds no /16');
  t.is(first(24, ['10.150.0.0/16', '10.151.0.0/16']), '10.160.0.0/24');
  t.is(first(24, ['10.150.0.0/17']), '10.150.128.0/24');
  t.is(first(14, []), undefined, 'a /14 fits no range of the pool');
  t.throws(() => subnetPoolFromEnv({ DEPAD_SUBNET_POOL: '10.150.0.1/15' }), { code: 'DEPAD_USAGE', message: /DEPAD_SUBNET_POOL=10\.150\.0\.1\/15: .*host bits set/ });
});

test('addresses keep their offsets', (t) => {
  const from = parseCidr('172.28.0.0/16') as Cidr;
  const to = parseCidr('10.99.0.0/16') as Cidr;
  t.is(mapText('172.28.5.10', from, to), '10.99.5.10');
  t.is(mapText('172.28.255.254', from, to), '10.99.255.254');
  t.is(mapText('172.28.5.0/24', from, to), '10.99.5.0/24');
});

test('render: the network IPAM and the endpoints carry the mapped addresses; the compose file says the same', (t) => {
  const spec = parseConfig(file(IPAM), 'cfg.yml', {});
  const who = { id: 'a'.repeat(32), name: 'mercy', revision: 1, rootDir: '/r', domain: 'localhost', subnets: [{ network: 'backend', asked: '172.28.0.0/16', given: '10.99.0.0/16' }] };
  const r = render(spec, who, []);
  t.deepEqual(r.networks.find((n) => n.key === 'backend')!.ipam, { subnet: '10.99.0.0/16', ipRange: '10.99.5.0/24', gateway: '10.99.0.1', auxAddresses: { printer: '10.99.9.9' }, options: {} });
  t.deepEqual(r.containers.find((c) => c.service === 'db')!.endpoints, [{ network: 'depad-mercy_backend', aliases: ['db'], ipv4Address: '10.99.5.10' }]);
  t.deepEqual(r.containers.find((c) => c.service === 'web')!.endpoints, [{ network: 'depad-mercy_backend', aliases: ['web'] }]);
  t.true(r.services.find((s) => s.name === 'db')!.fixedAddress, 'an update replaces it stop-first');
  t.regex(r.compose, /ipv4_address: 10\.99\.5\.10/);
  t.regex(r.compose, /subnet: 10\.99\.0\.0\/16/);
  t.notRegex(r.compose, /172\.28/);
});

test('depad config prints the file\'s own ipam and ipv4_address (the normalized file, not the allocated subnet)', (t) => {
  const doc = normalizedCompose(parseConfig(file(IPAM), 'cfg.yml', {})) as { networks: Record<string, unknown>; services: Record<string, { networks: unknown }> };
  t.deepEqual(doc.networks.backend, { driver: 'bridge', ipam: { driver: 'default', config: [{ subnet: '172.28.0.0/16', ip_range: '172.28.5.0/24', gateway: '172.28.0.1', aux_addresses: { printer: '172.28.9.9' } }] } });
  t.deepEqual(doc.services.db!.networks, { backend: { ipv4_address: '172.28.5.10' } });
  t.deepEqual(doc.services.web!.networks, { backend: null });
});

test('an include path list (compose override files) merges ipam.config by subnet', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'depad-ipam-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'base.yaml'), file('    ipam:\n      config:\n        - subnet: 172.28.0.0/16\n          gateway: 172.28.0.1\n'));
  await writeFile(path.join(dir, 'override.yaml'), 'networks:\n  backend:\n    ipam:\n      config:\n        - subnet: 172.28.0.0/16\n          aux_addresses: {printer: 172.28.9.9}\n');
  await writeFile(path.join(dir, 'compose.yaml'), 'include:\n  - path: [base.yaml, override.yaml]\n');
  const spec = await loadConfig(path.join(dir, 'compose.yaml'), {});
  t.deepEqual(spec.networks.backend!.ipam, { subnet: '172.28.0.0/16', gateway: '172.28.0.1', auxAddresses: { printer: '172.28.9.9' }, options: {} });
});

test('refused: a fixed address on an external network (every deployment would ask for it)', (t) => {
  const text = 'services:\n  web:\n    image: a:1\n    networks:\n      shared: {ipv4_address: 172.28.5.10}\nnetworks:\n  shared:\n    external: true\n';
  t.regex(problems(text), /cfg\.yml:5:\d+ services\.web\.networks\.shared\.ipv4_address: a fixed address on an external network would be asked by every deployment of this file/);
});

test('render maps by network and asked subnet: a network held twice (removed, added again asking another) uses the one it asks', (t) => {
  const spec = parseConfig(file('    ipam: {config: [{subnet: 192.168.7.0/24}]}\n').replace('172.28.5.10', '192.168.7.10'), 'cfg.yml', {});
  const subnets = [
    { network: 'backend', asked: '172.28.0.0/16', given: '10.99.0.0/16' },
    { network: 'backend', asked: '192.168.7.0/24', given: '10.98.3.0/24' },
  ];
  const r = render(spec, { id: 'a'.repeat(32), name: 'mercy', revision: 2, rootDir: '/r', domain: 'localhost', subnets }, []);
  t.is(r.networks[0]!.ipam!.subnet, '10.98.3.0/24');
  t.is(r.containers.find((c) => c.service === 'db')!.endpoints[0]!.ipv4Address, '10.98.3.10');
});

test('refused at load: a subnet larger than the pool can hold (DEPAD_SUBNET_POOL of this host)', (t) => {
  const before = process.env.DEPAD_SUBNET_POOL;
  try {
    process.env.DEPAD_SUBNET_POOL = '10.150.0.0/20';
    t.regex(problems(file(IPAM)), /cfg\.yml:15:\d+ networks\.backend\.ipam\.config\[0\]\.subnet: a \/16 subnet does not fit in depad's subnet pool 10\.150\.0\.0\/20: .*widen the pool \(DEPAD_SUBNET_POOL\)/);
    process.env.DEPAD_SUBNET_POOL = '10.150.0.0/16';
    t.is(problems(file(IPAM)), '');
  } finally {
    if (before === undefined) delete process.env.DEPAD_SUBNET_POOL;
    else process.env.DEPAD_SUBNET_POOL = before;
  }
});

test('refused: start-first updates of a service with a fixed address (two instances cannot hold it)', (t) => {
  const text = file(IPAM).replace("        ipv4_address: 172.28.5.10\n", "        ipv4_address: 172.28.5.10\n    deploy: {update_config: {order: start-first}}\n");
  t.regex(problems(text), /cfg\.yml:7:\d+ services\.db\.deploy\.update_config\.order: order: start-first starts the new instance beside the old one, and the fixed address this service has \(ipv4_address\) can be held by one of them only; use stop-first/);
});

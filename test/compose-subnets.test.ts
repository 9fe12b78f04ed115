/**
 * A compose file with a fixed subnet (`ipam`), fixed addresses (`ipv4_address`), container_name and
 * `ports: ["80:80"]`, deployed twice on one engine (the sibling of compose-side-by-side.test.ts):
 * each deployment gets its own subnet of the same size, every address at its offset in it, and
 * the two stay isolated. The subnet stays across update, stop/start and rollback; destroy releases
 * it; an exhausted pool and a create killed midway leave nothing behind.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { Store } from '../src/store/store.ts';
import { startAgent } from './helpers/agent-process.ts';
import { alive, engineObjects, harness, httpGet, testPorts, type Harness } from './helpers/harness.ts';

const exec = promisify(execFile);

const file = `services:
  db:
    image: depad-example/app:1
    command: ["/app/bin/db"]
    container_name: legacy-db
    networks:
      backend:
        ipv4_address: 172.28.5.10
    healthcheck:
      test: ["CMD", "/app/bin/probe", "tcp", "5432"]
      interval: 1s
      retries: 20
  web:
    image: depad-example/app:1
    container_name: legacy-web
    ports: ["80:80"]
    environment:
      PORT: "80"
      DB_HOST: legacy-db
      LEGACY_DB_ADDR: 172.28.5.10
    networks:
      backend:
        ipv4_address: 172.28.5.20
    depends_on:
      db: { condition: service_healthy }
    healthcheck:
      test: ["CMD", "/app/bin/probe", "http", "80", "/cgi-bin/health"]
      interval: 1s
      retries: 20
networks:
  backend:
    ipam:
      config:
        - subnet: 172.28.0.0/16
          ip_range: 172.28.6.0/24
          gateway: 172.28.0.1
          aux_addresses:
            printer: 172.28.9.9
`;

/** The /16 subnets of the harness's /15 pool: 10.N.0.0/16 and 10.N+1.0.0/16. */
function poolSubnets(h: Harness): [string, string] {
  const second = Number(h.subnetPool.split('.')[1]);
  return [`10.${second}.0.0/16`, `10.${second + 1}.0.0/16`];
}

/** `172.28.x.y` moved into `subnet` (a /16) by its offset. */
function at(subnet: string, address: string): string {
  return subnet.split('.').slice(0, 2).concat(address.split('.').slice(2)).join('.');
}

async function dockerJson<T>(...args: string[]): Promise<T> {
  const { stdout } = await exec('docker', args);
  return JSON.parse(stdout) as T;
}

interface NetworkInfo {
  IPAM: { Driver: string; Config: { Subnet: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }[] };
}
interface ContainerInfo {
  HostConfig: { PortBindings: Record<string, { HostPort: string }[]> };
  NetworkSettings: { Networks: Record<string, { IPAddress: string; IPAMConfig: { IPv4Address?: string } | null }> };
}

async function container(name: string): Promise<ContainerInfo> {
  return (await dockerJson<ContainerInfo[]>('inspect', name))[0]!;
}

/** What `nc` in a container answers to PING at `address`:5432 (PONG from a db; '' when unreachable). */
async function ping(containerName: string, address: string): Promise<string> {
  const { stdout } = await exec('docker', ['exec', containerName, 'sh', '-c', `echo PING | nc -w 2 ${address} 5432 || true`]);
  return stdout.trim();
}

async function write(h: Harness, name: string, text: string): Promise<string> {
  const config = path.join(h.dir, name);
  await fs.writeFile(config, text);
  return config;
}

async function assertNothingOf(t: ExecutionContext, h: Harness, name: string): Promise<void> {
  const all = await engineObjects(h.engine, h.prefix);
  const of = (xs: string[]) => xs.filter((x) => x.startsWith(`depad-${h.name(name)}-`) || x.startsWith(`depad-${h.name(name)}_`));
  t.deepEqual({ containers: of(all.containers), networks: of(all.networks), volumes: of(all.volumes) }, { containers: [], networks: [], volumes: [] }, `nothing of ${name} on the engine`);
  t.false((await h.json<DeploymentView[]>(['ls'])).some((v) => v.name === h.name(name)), `${name} is not in the state`);
}

test('one file with a fixed subnet, ipv4_address, container_name and "80:80", deployed twice: own subnets, addresses at their offsets, isolated', async (t) => {
  const h = await harness(t);
  const config = await write(h, 'compose.yaml', file);
  const [a, b, c] = [h.name('na'), h.name('nb'), h.name('nc')];
  const [subA, subB] = poolSubnets(h);

  const ca = await h.run(['create', '-n', a, '-f', config]);
  t.is(ca.code, 0, ca.stderr);
  t.true(
    ca.stderr.includes(`networks.backend: subnet 172.28.0.0/16 → ${subA} (depad allocates subnets per deployment; addresses keep their offsets: db 172.28.5.10 → ${at(subA, '172.28.5.10')}, web 172.28.5.20 → ${at(subA, '172.28.5.20')}, gateway 172.28.0.1 → ${at(subA, '172.28.0.1')}`),
    ca.stderr,
  );
  t.regex(ca.stderr, /services\.web\.environment\.LEGACY_DB_ADDR: 172\.28\.5\.10 is an address of networks\.backend .*not rewritten/);
  t.regex(ca.stderr, /published 80 → \d+/);
  const cb = await h.run(['create', '-n', b, '-f', config]);
  t.is(cb.code, 0, cb.stderr);

  for (const [name, subnet] of [[a, subA], [b, subB]] as const) {
    const view = await h.json<DeploymentView>(['inspect', name]);
    t.deepEqual(view.subnets, [{ network: 'backend', asked: '172.28.0.0/16', given: subnet }]);
    const [network] = await dockerJson<NetworkInfo[]>('network', 'inspect', `depad-${name}_backend`);
    t.deepEqual(network!.IPAM.Config, [{ Subnet: subnet, IPRange: at(subnet, '172.28.6.0') + '/24', Gateway: at(subnet, '172.28.0.1'), AuxiliaryAddresses: { printer: at(subnet, '172.28.9.9') } }]);
    for (const [service, address] of [['db', '172.28.5.10'], ['web', '172.28.5.20']] as const) {
      const endpoint = (await container(`depad-${name}-${service}-1`)).NetworkSettings.Networks[`depad-${name}_backend`]!;
      t.is(endpoint.IPAMConfig?.IPv4Address, at(subnet, address), `${name} ${service}: the address asked of the engine`);
      t.is(endpoint.IPAddress, at(subnet, address), `${name} ${service}: the address it has`);
    }
    t.is(await ping(`depad-${name}-web-1`, at(subnet, '172.28.5.10')), 'PONG', `${name}'s web reaches its db by its mapped address`);
  }
  t.is(await ping(`depad-${a}-web-1`, at(subB, '172.28.5.10')), '', "a's web does not reach b's db");
  const hostPort = async (name: string) => Number((await container(`depad-${name}-web-1`)).HostConfig.PortBindings['80/tcp']![0]!.HostPort);
  const [pa, pb] = [await hostPort(a), await hostPort(b)];
  t.not(pa, pb);
  await httpGet(pa, '/cgi-bin/visits');
  t.regex((await httpGet(pa, '/cgi-bin/visits')).body, /"visits":2,/, 'a counts in its own db (legacy-db by name)');
  t.regex((await httpGet(pb, '/cgi-bin/visits')).body, /"visits":1,/);

  // The pool (a /15) holds two /16s: a third create is refused, with nothing made.
  const cc = await h.run(['create', '-n', c, '-f', config]);
  t.is(cc.code, 8, cc.stderr);
  t.regex(cc.stderr, new RegExp(`compose\\.yaml:\\d+:\\d+ networks\\.backend\\.ipam\\.config\\[0\\]\\.subnet: no /16 subnet of depad's subnet pool ${h.subnetPool.replace(/\./g, '\\.')} is free`));
  t.regex(cc.stderr, /hint: .*DEPAD_SUBNET_POOL/);
  const json = await h.run(['create', '-n', c, '-f', config, '--json']);
  t.is((JSON.parse(json.stderr.trim().split('\n').pop()!) as { error: { code: string } }).error.code, 'DEPAD_SUBNET_EXHAUSTED');
  await assertNothingOf(t, h, 'nc');

  // An update that keeps the ipam keeps the subnet (web, with a fixed address, is replaced stop-first).
  const updated = await write(h, 'updated.yaml', file.replace('LEGACY_DB_ADDR: 172.28.5.10', 'LEGACY_DB_ADDR: none'));
  const up = await h.run(['update', a, '-f', updated]);
  t.is(up.code, 0, up.stderr);
  t.regex(up.stderr, /replacing web stop-first \(its fixed address passes to the new instance\)/);
  t.is((await container(`depad-${a}-web-2`)).NetworkSettings.Networks[`depad-${a}_backend`]!.IPAddress, at(subA, '172.28.5.20'));
  t.is((await h.run(['stop', a])).code, 0);
  t.is((await h.run(['start', a])).code, 0);
  t.is(await ping(`depad-${a}-web-2`, at(subA, '172.28.5.10')), 'PONG', 'after stop/start, still at its address');
  t.is((await h.run(['rollback', a])).code, 0);
  t.deepEqual((await h.json<DeploymentView>(['inspect', a])).subnets, [{ network: 'backend', asked: '172.28.0.0/16', given: subA }]);

  // An update that changes the network's ipam is refused: the engine cannot re-address a network in place.
  const moved = await write(h, 'moved.yaml', file.replace('gateway: 172.28.0.1', 'gateway: 172.28.0.2'));
  const refused = await h.run(['update', a, '-f', moved]);
  t.is(refused.code, 3, refused.stderr);
  t.regex(refused.stderr, /moved\.yaml:\d+:\d+ networks\.backend\.ipam: the update changes its subnet settings: the engine cannot change a network's addresses in place/);
  t.regex(refused.stderr, /hint: keep networks\.backend\.ipam as it was; or give the network a new name/);

  // destroy releases the subnet: the next create gets it.
  t.is((await h.run(['destroy', a])).code, 0);
  const again = await h.run(['create', '-n', c, '-f', config, '--no-wait']);
  t.is(again.code, 0, again.stderr);
  t.deepEqual((await h.json<DeploymentView>(['inspect', c])).subnets, [{ network: 'backend', asked: '172.28.0.0/16', given: subA }]);
});

test('depad killed right after it registered the subnet: the next command undoes the create and the subnet is free again', async (t) => {
  const h = await harness(t);
  const config = await write(h, 'compose.yaml', file);
  const [first] = poolSubnets(h);
  const create = await h.startPaused(['create', '-n', h.name('killed'), '-f', config], 'networks');
  create.kill('SIGKILL');
  await create.exited;
  const next = await h.run(['ls']);
  t.is(next.code, 0, next.stderr);
  await assertNothingOf(t, h, 'killed');
  const doctor = await h.run(['doctor']);
  t.is(doctor.code, 0, doctor.stdout + doctor.stderr);
  const again = await h.run(['create', '-n', h.name('after'), '-f', config, '--no-wait']);
  t.is(again.code, 0, again.stderr);
  t.deepEqual((await h.json<DeploymentView>(['inspect', h.name('after')])).subnets, [{ network: 'backend', asked: '172.28.0.0/16', given: first }], 'the first subnet of the pool, handed out again');
});

test('a failed update puts the fixed-address services back at their addresses; doctor finds a leaked subnet and releases it', async (t) => {
  const h = await harness(t);
  const config = await write(h, 'compose.yaml', file);
  const name = h.name('back');
  const [subnet, other] = poolSubnets(h);
  t.is((await h.run(['create', '-n', name, '-f', config])).code, 0);
  // db is replaced (stop-first: its address passes on), then the new web fails: db's old instance must get its address back.
  const bad = await write(h, 'bad.yaml', file.replace('command: ["/app/bin/db"]', 'command: ["/app/bin/db"]\n    environment: {X: "2"}').replace('    container_name: legacy-web\n', '    container_name: legacy-web\n    command: ["/bin/false"]\n'));
  const failed = await h.run(['update', name, '-f', bad]);
  t.not(failed.code, 0);
  t.notRegex(failed.stderr, /undoing the update failed/, failed.stderr);
  t.regex(failed.stderr, /putting the old db back/);
  const db = (await container(`depad-${name}-db-1`)).NetworkSettings.Networks[`depad-${name}_backend`]!;
  t.is(db.IPAddress, at(subnet, '172.28.5.10'));
  t.is(await ping(`depad-${name}-web-1`, at(subnet, '172.28.5.10')), 'PONG');

  const store = await Store.open(h.home, { command: 'test' });
  await store.batch().putSubnets([{ network: 'ghost', asked: '172.30.0.0/16', given: other, deploymentId: 'f'.repeat(32) }]).write();
  await store.close();
  const found = await h.run(['doctor', '--json']);
  t.is(found.code, 14, found.stderr);
  const kinds = (JSON.parse(found.stdout) as { findings: { kind: string; object: string }[] }).findings.map((f) => `${f.kind} ${f.object}`);
  t.true(kinds.includes(`subnet-leak subnet ${other}`), kinds.join('; '));
  const fixed = await h.run(['doctor', '--fix', '--yes']);
  t.is(fixed.code, 0, fixed.stdout + fixed.stderr);
  const check = await Store.open(h.home, { command: 'test' });
  t.deepEqual((await check.listSubnets()).map((n) => n.given), [subnet]);
  await check.close();
});

test('through the agent: create gets the subnet, an agent restart and a restart of the deployment keep it, destroy releases it', async (t) => {
  const h = await harness(t);
  const config = await write(h, 'compose.yaml', file);
  const name = h.name('agent');
  const [subnet] = poolSubnets(h);
  await startAgent(t, h, await testPorts(t));
  const created = await h.run(['create', '-n', name, '-f', config]);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stderr, /networks\.backend: subnet 172\.28\.0\.0\/16 → /, 'the warning reaches the client');
  t.deepEqual((await h.json<DeploymentView>(['inspect', name])).subnets, [{ network: 'backend', asked: '172.28.0.0/16', given: subnet }]);
  const restarted = await h.run(['agent', 'restart', '--json']);
  t.is(restarted.code, 0, restarted.stderr);
  const newPid = (JSON.parse(restarted.stdout) as { newPid: number }).newPid;
  t.teardown(() => void (alive(newPid) && process.kill(newPid, 'SIGKILL')));
  t.is((await h.run(['restart', name])).code, 0);
  t.deepEqual((await h.json<DeploymentView>(['inspect', name])).subnets, [{ network: 'backend', asked: '172.28.0.0/16', given: subnet }]);
  t.is((await container(`depad-${name}-db-1`)).NetworkSettings.Networks[`depad-${name}_backend`]!.IPAddress, at(subnet, '172.28.5.10'));
  t.is((await h.run(['destroy', name])).code, 0);
  const again = await h.run(['create', '-n', h.name('again'), '-f', config, '--no-wait']);
  t.is(again.code, 0, again.stderr);
  t.deepEqual((await h.json<DeploymentView>(['inspect', h.name('again')])).subnets, [{ network: 'backend', asked: '172.28.0.0/16', given: subnet }], 'released by destroy, given again');
});

test('depad killed during an update that added a network with a subnet: the next command rolls it back and releases that subnet', async (t) => {
  const h = await harness(t);
  const config = await write(h, 'compose.yaml', file);
  const name = h.name('upkill');
  const [first, second] = poolSubnets(h);
  t.is((await h.run(['create', '-n', name, '-f', config])).code, 0);
  // The network renamed: a new network, asking a /24, gets a subnet of its own from the pool.
  const renamed = await write(h, 'renamed.yaml', file.replace(/backend/g, 'back2').replace(/172\.28\.0\.0\/16/, '172.28.0.0/24').replace('ip_range: 172.28.6.0/24', 'ip_range: 172.28.0.128/25').replace(/172\.28\.5\./g, '172.28.0.').replace('172.28.9.9', '172.28.0.99'));
  const update = await h.startPaused(['update', name, '-f', renamed], 'update:created:db');
  const [made] = await dockerJson<NetworkInfo[]>('network', 'inspect', `depad-${name}_back2`);
  t.is(made!.IPAM.Config[0]!.Subnet, `${second.split('/')[0]!.split('.').slice(0, 3).join('.')}.0/24`, 'the new network has the first free /24 of the pool');
  update.kill('SIGKILL');
  await update.exited;
  const next = await h.run(['ls']);
  t.is(next.code, 0, next.stderr);
  const check = await Store.open(h.home, { command: 'test' });
  t.deepEqual((await check.listSubnets()).map((n) => [n.network, n.given]), [['backend', first]], 'only the subnet of the committed revision is held');
  await check.close();
  t.deepEqual((await h.json<DeploymentView>(['inspect', name])).subnets, [{ network: 'backend', asked: '172.28.0.0/16', given: first }]);
  t.is((await h.run(['doctor'])).code, 0);
  t.deepEqual((await engineObjects(h.engine, h.prefix)).networks, [`depad-${name}_backend`], "the new network is gone");
});

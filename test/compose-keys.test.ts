/**
 * Compose conformance for service keys (issue 13, points 1 and 5): what each key depad honours
 * reaches the engine (asserted by inspecting the created containers, several keys per
 * deployment), and the keys it refuses, with their messages (pure config, no engine).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { parseConfig } from '../src/config/index.ts';
import { createHarness, type Harness } from './helpers/harness.ts';
import { problems } from './helpers/config-problems.ts';

const run = promisify(execFile);
let h: Harness;
let cleanup: () => Promise<void>;

test.before(async () => {
  ({ h, cleanup } = await createHarness('compose-keys', (m) => {
    throw new Error(m);
  }));
});
test.after.always(async () => cleanup?.());

interface Inspected {
  Name: string;
  Config: { Hostname: string; Domainname: string; Tty: boolean; OpenStdin: boolean; Env: string[] };
  HostConfig: Record<string, unknown> & { Ulimits: { Name: string; Soft: number; Hard: number }[]; LogConfig: { Type: string; Config: Record<string, string> } };
  Mounts: { Type: string; Destination: string; Mode: string; RW: boolean }[];
  NetworkSettings: { Networks: Record<string, { Aliases: string[] | null }> };
}

async function inspect(name: string): Promise<Inspected> {
  const { stdout } = await run('docker', ['inspect', name]);
  return (JSON.parse(stdout) as Inspected[])[0]!;
}

const ENGINE_FILE = `
x-common: &common
  image: depad-example/app:1
services:
  web:
    <<: *common
    hostname: web-host
    domainname: example.internal
    init: true
    shm_size: 32m
    ulimits:
      nproc: 512
      nofile: {soft: 1024, hard: 2048}
    sysctls:
      net.core.somaxconn: "1024"
      kernel.shmmax: "68719476736"
    pids_limit: 200
    mem_limit: 256m
    memswap_limit: 512m
    mem_reservation: 128m
    cpus: 0.5
    cpu_shares: 512
    cpuset: "0"
    oom_score_adj: 100
    stdin_open: true
    tty: true
    dns: [9.9.9.9]
    dns_search: search.example
    dns_opt: [ndots:2]
    group_add: ["1234"]
    security_opt: ["no-new-privileges:true"]
    ipc: shareable
    logging:
      driver: json-file
      options: {max-size: 1m, max-file: 2}
    deploy:
      restart_policy: {condition: on-failure, max_attempts: 3, delay: 5s}
      replicas: 1
      update_config: {parallelism: 1}
    healthcheck:
      disable: false
      interval: 5s
      start_interval: 1s
    pull_policy: never
    develop: {watch: [{path: ./src, action: sync, target: /app}]}
    attach: false
    x-note: ignored
  Idle.svc:
    image: depad-example/app:1
    command: ["sleep", "3600"]
    read_only: true
    container_name: legacy-idle
    links: ["web:webalias"]
    environment: [FROM_ENV, NOT_SET]
    volumes:
      - ./conf:/conf:ro,z
      - my.data:/data:nocopy
      - {type: bind, source: ./conf, target: /conf2, bind: {propagation: rprivate, create_host_path: true}}
      - /cache
      - {type: volume, target: /cache2, consistency: cached}
      - {type: tmpfs, target: /scratch, tmpfs: {size: 1m, mode: 1777}}
    deploy:
      resources: {reservations: {memory: 64m, cpus: 0.25}}
    depends_on:
      web: {condition: service_started, restart: true}
      ghost: {condition: service_started, required: false}
  loner:
    image: depad-example/app:1
    command: ["sleep", "3600"]
    network_mode: none
    platform: \${NO_PLATFORM:-}
networks:
  default:
    attachable: true
volumes:
  my.data:
    labels: {purpose: test}
`;

test.serial('engine keys reach the container as docker compose sends them', async (t) => {
  await fs.mkdir(path.join(h.dir, 'conf'), { recursive: true });
  await fs.writeFile(path.join(h.dir, 'conf', 'x'), 'x');
  const file = path.join(h.dir, 'engine.yml');
  await fs.writeFile(file, ENGINE_FILE);
  const name = h.name('keys');
  const r = await h.run(['create', '-n', name, '-f', file, '-e', 'FROM_ENV=given', '--no-wait']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /container_name legacy-idle: the container keeps depad's name/);
  t.regex(r.stderr, /links web:webalias: webalias becomes a network alias of web/);
  t.regex(r.stderr, /depends_on ghost \(required: false\): there is no such service/);

  const web = await inspect(`depad-${name}-web-1`);
  t.is(web.Config.Hostname, 'web-host');
  t.is(web.Config.Domainname, 'example.internal');
  t.true(web.Config.Tty);
  t.true(web.Config.OpenStdin);
  const hc = web.HostConfig;
  t.true(hc.Init as boolean);
  t.is(hc.ShmSize, 32 * 1024 * 1024);
  t.deepEqual(hc.Ulimits, [{ Name: 'nofile', Soft: 1024, Hard: 2048 }, { Name: 'nproc', Soft: 512, Hard: 512 }]);
  t.deepEqual(hc.Sysctls, { 'net.core.somaxconn': '1024', 'kernel.shmmax': '68719476736' });
  t.is(hc.PidsLimit, 200);
  t.is(hc.Memory, 256 * 1024 * 1024);
  t.is(hc.MemorySwap, 512 * 1024 * 1024);
  t.is(hc.MemoryReservation, 128 * 1024 * 1024);
  t.is(hc.NanoCpus, 5e8);
  t.is(hc.CpuShares, 512);
  t.is(hc.CpusetCpus, '0');
  t.is(hc.OomScoreAdj, 100);
  t.deepEqual(hc.Dns, ['9.9.9.9']);
  t.deepEqual(hc.DnsSearch, ['search.example']);
  t.deepEqual(hc.DnsOptions, ['ndots:2']);
  t.deepEqual(hc.GroupAdd, ['1234']);
  t.deepEqual(hc.SecurityOpt, ['no-new-privileges:true']);
  t.is(hc.IpcMode, 'shareable');
  t.deepEqual(hc.LogConfig, { Type: 'json-file', Config: { 'max-file': '2', 'max-size': '1m' } });
  t.deepEqual(hc.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
  const aliases = Object.values(web.NetworkSettings.Networks).flatMap((n) => n.Aliases ?? []);
  t.true(aliases.includes('webalias'), 'a links alias is an alias of the linked service');
  const { stdout: health } = await run('docker', ['inspect', '-f', '{{json .Config.Healthcheck}}', `depad-${name}-web-1`]);
  t.regex(health, /"Interval":5000000000/, 'timings without a test keep the image test');

  const idle = await inspect(`depad-${name}-Idle.svc-1`);
  t.true(idle.HostConfig.ReadonlyRootfs as boolean);
  t.is(idle.HostConfig.MemoryReservation, 64 * 1024 * 1024);
  t.true(idle.Config.Env.includes('FROM_ENV=given'), 'a variable without a value is taken from the environment');
  t.false(idle.Config.Env.some((e) => e.startsWith('NOT_SET')), 'and dropped when unset');
  const idleAliases = Object.values(idle.NetworkSettings.Networks).flatMap((n) => n.Aliases ?? []);
  t.true(idleAliases.includes('legacy-idle'), 'container_name is a network alias');
  const conf = idle.Mounts.find((m) => m.Destination === '/conf');
  t.is(conf?.Type, 'bind');
  t.false(conf?.RW);
  t.regex(conf?.Mode ?? '', /z/, 'the SELinux relabel option reaches the engine');
  t.is(idle.Mounts.find((m) => m.Destination === '/data')?.Type, 'volume');
  const { stdout: propagation } = await run('docker', ['inspect', '-f', '{{json .Mounts}}', `depad-${name}-Idle.svc-1`]);
  t.regex(propagation, /"Destination":"\/conf2"[^}]*"Propagation":"rprivate"/);
  const loner = await inspect(`depad-${name}-loner-1`);
  t.is(loner.HostConfig.NetworkMode, 'none');
  t.deepEqual(Object.keys(loner.NetworkSettings.Networks), ['none']);
  const { stdout: vols } = await run('docker', ['volume', 'ls', '-q', '--filter', `label=depad.deployment=${name}`]);
  t.true(vols.split('\n').includes(`depad-${name}_my.data`), 'a volume name with a dot');
  const anonymous = vols.split('\n').filter((v) => v.startsWith(`depad-${name}_Idle.svc_anon_`));
  t.is(anonymous.length, 2, 'each anonymous volume is a volume of the deployment, labelled with it');
  t.deepEqual(idle.HostConfig.Tmpfs, { '/scratch': 'size=1048576,mode=1777' });

  // The diff shows a changed engine field.
  const changed = ENGINE_FILE.replace('shm_size: 32m', 'shm_size: 64m');
  await fs.writeFile(file, changed);
  const diff = await h.run(['diff', name, '-f', file, '-e', 'FROM_ENV=given']);
  t.regex(diff.stdout + diff.stderr, /shm_size changed/);
  t.is((await h.run(['destroy', name])).code, 0);
  const { stdout: after } = await run('docker', ['volume', 'ls', '-q', '--filter', `label=depad.deployment=${name}`]);
  t.is(after.trim(), '', 'destroy removes the anonymous volumes too');
});

test('config: env_file format raw takes values as written', (t) => {
  const spec = parseConfig(svc('    env_file: [{path: ./raw.env, format: raw}]\n'), 'cfg.yml', {}, { envFiles: { 'raw.env': 'A="quoted" # not a comment\n# comment\nB=$HOME\n' } });
  t.deepEqual(spec.services['web']!.environment, { A: '"quoted" # not a comment', B: '$HOME' });
});

/** Parses `text` (a services: block), returning the problems' text, or '' when it is valid. */
const svc = (extra: string) => `services:\n  web:\n    image: a:1\n${extra}`;

test('config: engine fields that need no engine to check', (t) => {
  const spec = parseConfig(
    svc('    cpu_quota: 50000\n    cpu_period: 100000\n    mem_swappiness: 10\n    oom_kill_disable: true\n    storage_opt: {size: 1G}\n    blkio_config:\n      weight: 300\n      device_read_bps: [{path: /dev/sda, rate: 20mb}]\n    platform: linux/amd64\n    runtime: runc\n    isolation: default\n    sysctls: ["net.ipv4.ip_forward=1"]\n    annotations: {a: b}\n    scale: 1\n    deploy: {mode: replicated, labels: [a=b], rollback_config: {order: start-first}}\n'),
    'cfg.yml',
    {},
  );
  const e = spec.services['web']!.engine!;
  t.is(e.host.CpuQuota, 50000);
  t.is(e.host.CpuPeriod, 100000);
  t.is(e.host.MemorySwappiness, 10);
  t.true(e.host.OomKillDisable);
  t.deepEqual(e.host.StorageOpt, { size: '1G' });
  t.is(e.host.BlkioWeight, 300);
  t.deepEqual(e.host.BlkioDeviceReadBps, [{ Path: '/dev/sda', Rate: 20 * 1024 * 1024 }]);
  t.is(e.platform, 'linux/amd64');
  t.is(e.host.Runtime, 'runc');
  t.deepEqual(e.host.Sysctls, { 'net.ipv4.ip_forward': '1' });
  const hosts = parseConfig(svc('    extra_hosts: {multi: [10.0.0.1, 10.0.0.2]}\n  db:\n    image: a:1\n    extra_hosts: ["two=10.0.0.3,10.0.0.4"]\n'), 'cfg.yml', {});
  t.deepEqual(hosts.services['web']!.extraHosts, ['multi:10.0.0.1', 'multi:10.0.0.2'], 'a map entry with several addresses');
  t.deepEqual(hosts.services['db']!.extraHosts, ['two:10.0.0.3', 'two:10.0.0.4'], 'host=ip1,ip2');
});

const refusals: Array<[string, string, RegExp]> = [
  ['privileged', '    privileged: true\n', /cfg\.yml:4:17 services\.web\.privileged: privileged mode .*reaches the host.*depad agent --allow privileged, or "allow": \["privileged"\] in .*host-policy\.json/],
  ['devices', '    devices: ["/dev/fuse"]\n', /services\.web\.devices: device \/dev\/fuse is a device of the host.*reaches the host/],
  ['pid: host', '    pid: host\n', /services\.web\.pid: pid: host shares the host's processes.*reaches the host/],
  ['ipc: host', '    ipc: host\n', /services\.web\.ipc: ipc: host .*reaches the host/],
  ['network_mode: host', '    network_mode: host\n', /services\.web\.network_mode: network_mode: host shares the host's network stack/],
  ['network_mode: bridge', '    network_mode: bridge\n', /services\.web\.network_mode: network_mode: bridge is not supported: .*use networks: instead/],
  ['network_mode: service of no service', '    network_mode: "service:nope"\n', /services\.web\.network_mode: network_mode: service:nope: there is no service nope in this file; services: web/],
  ['network_mode: service of itself', '    network_mode: "service:web"\n', /network_mode: service:web names the service itself/],
  ['network_mode: service with ports', '    network_mode: "service:db"\n    ports: ["80"]\n  db:\n    image: a:1\n', /services\.web\.ports: network_mode: service:db shares db's network stack, so ports belongs on db/],
  ['network_mode: service with a route', '    network_mode: "service:db"\n    x-depad: {expose: http, port: 80}\n  db:\n    image: a:1\n', /services\.web\.x-depad: .*put x-depad\.expose on db/],
  ['network_mode: service cycle', '    network_mode: "service:db"\n  db:\n    image: a:1\n    network_mode: "service:web"\n', /dependency cycle: /],
  ['uts: service', '    uts: "service:db"\n', /uts: service:db: the engine shares only the network, IPC and PID namespaces of another container/],
  ['userns_mode: host', '    userns_mode: host\n', /services\.web\.userns_mode: .*user namespace.*reaches the host/],
  ['uts: host', '    uts: host\n', /services\.web\.uts: .*hostname.*reaches the host/],
  ['cap_add SYS_ADMIN', '    cap_add: [CAP_SYS_ADMIN]\n', /cfg\.yml:4:15 services\.web\.cap_add\[0\]: capability SYS_ADMIN .*reaches the host/],
  ['cap_add ALL', '    cap_add: [ALL]\n', /services\.web\.cap_add\[0\]: capability ALL/],
  ['security_opt unconfined', '    security_opt: ["seccomp:unconfined"]\n', /services\.web\.security_opt\[0\]: seccomp:unconfined lifts the confinement.*reaches the host/],
  ['security_opt profile file', '    security_opt: ["seccomp=./profile.json"]\n', /a seccomp profile file is not supported yet/],
  ['cgroup_parent', '    cgroup_parent: m-executor\n', /services\.web\.cgroup_parent: cgroup_parent places the container in the host's cgroup tree/],
  ['device_cgroup_rules', '    device_cgroup_rules: ["c 1:3 mr"]\n', /services\.web\.device_cgroup_rules: .*reaches the host/],
  ['gpus', '    gpus: all\n', /services\.web\.gpus: GPUs are devices of the host/],
  ['device reservations', '    deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}]}}}\n', /deploy\.resources\.reservations\.devices: device reservations .*reaches the host/],
  ['external_links', '    external_links: [redis]\n', /services\.web\.external_links: external_links reach containers outside the deployment/],
  ['volumes_from', '    volumes_from: [db]\n', /services\.web\.volumes_from: volumes_from is not supported.*same named volume/],
  ['ipc: service of a private owner', '    ipc: "service:db"\n  db:\n    image: a:1\n', /services\.web\.ipc: ipc: service:db joins db's IPC namespace, which the engine shares only when db says ipc: shareable/],
  ['credential_spec', '    credential_spec: {file: x.json}\n', /credential_spec is for Windows containers/],
  ['isolation hyperv', '    isolation: hyperv\n', /isolation "hyperv" is for Windows containers/],
  ['replicas with an asked host port', '    deploy: {replicas: 3}\n    ports: ["80:8080"]\n', /services\.web\.deploy\.replicas: 3 replicas: a host port the file asks for \(ports: 80:8080\) is one port, which one replica only can bind; write the container port alone \("8080": each replica gets a host port of its own\)/],
  ['replicas with a named volume', '    scale: 2\n    volumes: [data:/data]\nvolumes:\n  data: {}\n', /services\.web\.scale: 2 replicas: the named volume data would be shared by every replica/],
  ['scale and replicas disagree', '    scale: 2\n    deploy: {replicas: 3}\n', /services\.web\.deploy\.replicas: deploy\.replicas \(3\) differs from scale \(2\); give it once/],
  ['joining a service with replicas', '    deploy: {replicas: 2}\n  side:\n    image: a:1\n    network_mode: service:web\n', /services\.side\.network_mode: web runs 2 replicas, and side can join the namespaces of one container only/],
  ['global mode', '    deploy: {mode: global}\n', /deploy\.mode global is a Swarm mode/],
  ['host sysctl', '    sysctls: {vm.swappiness: "10"}\n', /services\.web\.sysctls\["vm\.swappiness"\]: sysctl vm\.swappiness is not namespaced: setting it would change the host's kernel/],
  ['ulimit soft above hard', '    ulimits: {nofile: {soft: 10, hard: 5}}\n', /ulimit nofile: soft \(10\) must not be above hard \(5\)/],
  ['mem_limit and deploy disagree', '    mem_limit: 1g\n    deploy: {resources: {limits: {memory: 512m}}}\n', /services\.web\.mem_limit \(1073741824\) differs from deploy\.resources\.limits/],
  ['volume.subpath', '    volumes: [{type: volume, source: d, target: /d, volume: {subpath: x}}]\nvolumes:\n  d:\n', /volume\.subpath needs Engine API 1\.45/],
  ['bad container_name', '    container_name: "-bad"\n', /container_name must be letters, digits/],
  ['link to no service', '    links: [nope]\n', /services\.web\.links\[0\]: links names 'nope', which is not a service/],
  ['memswap_limit below mem_limit', '    mem_limit: 512m\n    memswap_limit: 256m\n', /services\.web\.memswap_limit: memswap_limit \(268435456\) is memory plus swap, so it must be at least the memory limit/],
  ['memswap_limit without a memory limit', '    memswap_limit: 1g\n', /memswap_limit needs a memory limit/],
  ['bad pull_policy', '    pull_policy: sometimes\n', /pull_policy must be always, never, missing/],
  ['typo', '    hostnam: x\n', /services\.web\.hostnam: unknown key 'hostnam'/],
  ['container_name twice', '    container_name: one\n  db:\n    image: a:1\n    container_name: one\n', /services\.db\.container_name: container_name one is given to services web and db/],
  ['network_mode none with networks', '    network_mode: none\n    networks: [default]\n', /services\.web\.networks: network_mode: none gives the container no network, so it cannot have networks/],
  ['enable_ipv6', '    image: a:1\nnetworks:\n  default:\n    enable_ipv6: true\n', /networks\.default\.enable_ipv6: IPv6 networks need an IPv6 subnet per deployment, which depad does not allocate/],
  ['ipv4_address without a subnet', '    networks: {default: {ipv4_address: 172.28.0.5}}\n', /services\.web\.networks\.default\.ipv4_address: a fixed address needs a subnet on the network/],
  ['ipv6_address', '    networks: {default: {ipv6_address: "2001:db8::5"}}\n', /services\.web\.networks\.default\.ipv6_address: IPv6 addresses are not supported/],
];

for (const [title, extra, pattern] of refusals) {
  test(`refused: ${title}`, (t) => {
    t.regex(problems(svc(extra)), pattern);
  });
}

test('accepted as compose accepts them: null values, x- keys, develop, attach, dotted and uppercase names', (t) => {
  t.is(problems('services:\n  My.Web_1:\n    image: a:1\n    develop: {watch: []}\n    attach: true\n    x-anything: {a: 1}\n    hostname:\n    security_opt: [label=disable, "apparmor=docker-default"]\n    healthcheck: {disable: false}\n    depends_on: {db: {restart: true}}\n  db:\n    image: a:1\n'), '');
});

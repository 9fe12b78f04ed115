/** Rendering is pure and deterministic; names, labels, ports and mounts come out as designed. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { loadConfig } from '../src/config/index.ts';
import { render } from '../src/render/render.ts';
import { EXAMPLES } from './helpers/harness.ts';

const who = { id: 'a'.repeat(32), name: 'mercy', revision: 1, rootDir: '/var/lib/depad/deployments/' + 'a'.repeat(32), domain: 'localhost' };
const ports = [
  { service: 'db', target: 5432, protocol: 'tcp' as const, host: 3000, role: 'instance' as const, instance: 1 },
  { service: 'web', target: 8080, protocol: 'tcp' as const, host: 3001, role: 'instance' as const, instance: 1 },
];

test('the same config and env render byte-identical files', async (t) => {
  const file = path.join(EXAMPLES, 'clinic/depad.yml');
  const a = render(await loadConfig(file, { CLINIC: 'Mercy' }), who, ports);
  const b = render(await loadConfig(file, { CLINIC: 'Mercy' }), who, [...ports].reverse());
  t.is(a.compose, b.compose);
  t.deepEqual(a.containers, b.containers);
  const c = render(await loadConfig(file, { CLINIC: 'Other' }), who, ports);
  t.not(a.compose, c.compose, 'a different variable renders differently');
});

test('names, labels, ports, mounts and order in the plan and the compose file', async (t) => {
  const spec = await loadConfig(path.join(EXAMPLES, 'clinic/depad.yml'), {});
  const r = render(spec, who, ports);
  t.deepEqual(r.order, ['db', 'web', 'worker']);
  t.deepEqual(r.networks.map((n) => n.name), ['depad-mercy_default']);
  t.deepEqual(r.volumes.map((v) => v.name), ['depad-mercy_data']);
  const web = r.containers.find((c) => c.service === 'web')!;
  t.is(web.name, 'depad-mercy-web-1');
  t.like(web.body.Labels, { 'depad.deployment': 'mercy', 'depad.deployment.id': who.id, 'depad.service': 'web', 'depad.revision': '1' });
  t.deepEqual(web.body.HostConfig.PortBindings, { '8080/tcp': [{ HostIp: '0.0.0.0', HostPort: '3001' }] });
  t.deepEqual(web.endpoints, [{ network: 'depad-mercy_default', aliases: ['web'] }]);
  t.deepEqual(web.body.HostConfig.Mounts, [{ Type: 'bind', Source: `${who.rootDir}/static`, Target: '/app/www/static', ReadOnly: true }]);
  t.deepEqual(web.dependsOn, { db: { condition: 'service_healthy' } });
  const db = r.containers.find((c) => c.service === 'db')!;
  t.is(db.body.HostConfig.Memory, 64 * 1024 * 1024);
  t.is(db.body.HostConfig.NanoCpus, 5e8);
  t.deepEqual(db.body.Healthcheck, { Test: ['CMD', '/app/bin/probe', 'tcp', '5432'], Interval: 1e9, Timeout: 2e9, Retries: 10 });

  const compose = parse(r.compose) as { services: Record<string, Record<string, unknown>>; volumes: Record<string, { name: string }> };
  t.deepEqual(Object.keys(compose.services), ['db', 'web', 'worker']);
  t.deepEqual(compose.services.web!.ports, ['0.0.0.0:3001:8080/tcp']);
  t.is(compose.services.web!.container_name, 'depad-mercy-web-1');
  t.is(compose.volumes.data!.name, 'depad-mercy_data');
  t.regex(r.compose, /^# Rendered by depad for deployment mercy/);
});

test('restart policy: the file\'s when given, else unless-stopped, and no for a one-shot service (one others wait to complete)', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-render-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'depad.yml');
  await fs.writeFile(
    file,
    [
      'services:',
      '  migrate:',
      '    image: busybox',
      '  web:',
      '    image: busybox',
      '    depends_on:',
      '      migrate: {condition: service_completed_successfully}',
      '  worker:',
      '    image: busybox',
      '    restart: on-failure:3',
      '',
    ].join('\n'),
  );
  const r = render(await loadConfig(file, {}), who, []);
  const policy = (service: string) => r.containers.find((c) => c.service === service)!.body.HostConfig.RestartPolicy;
  t.deepEqual(policy('migrate'), { Name: 'no' });
  t.deepEqual(policy('web'), { Name: 'unless-stopped' });
  t.deepEqual(policy('worker'), { Name: 'on-failure', MaximumRetryCount: 3 });
  t.true(r.services.find((s) => s.name === 'migrate')!.oneShot);
  t.true(r.services.find((s) => s.name === 'worker')!.restartGiven);
  t.is(r.services.find((s) => s.name === 'web')!.restartGiven, undefined);
  const compose = parse(r.compose) as { services: Record<string, { restart: string }> };
  t.is(compose.services.web!.restart, 'unless-stopped');
  t.is(compose.services.worker!.restart, 'on-failure:3');
});

test('network_mode, ipc and pid: service:x join the current container of x, with no networks or ports of their own', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-render-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'compose.yaml');
  await fs.writeFile(file, 'services:\n  gate:\n    image: busybox\n    ipc: shareable\n    ports: ["80"]\n  side:\n    image: busybox\n    network_mode: service:gate\n    ipc: service:gate\n    pid: service:gate\n');
  const spec = await loadConfig(file, {});
  t.deepEqual(spec.services['side']!.dependsOn, { gate: { condition: 'service_started' } }, 'an implicit depends_on');
  const r = render(spec, { ...who, instances: { gate: 3, side: 1 } }, [{ service: 'gate', target: 80, protocol: 'tcp', host: 3000, role: 'published', instance: 3 }]);
  const side = r.containers.find((c) => c.service === 'side')!;
  t.is(side.body.HostConfig.NetworkMode, 'container:depad-mercy-gate-3');
  t.is(side.body.HostConfig.IpcMode, 'container:depad-mercy-gate-3');
  t.is(side.body.HostConfig.PidMode, 'container:depad-mercy-gate-3');
  t.deepEqual(side.endpoints, []);
  t.deepEqual(side.body.HostConfig.PortBindings, {});
  t.deepEqual(r.order, ['gate', 'side']);
  const compose = parse(r.compose) as { services: Record<string, Record<string, unknown>> };
  t.is(compose.services['side']!['network_mode'], 'service:gate');
  t.is(compose.services['side']!['networks'], undefined);
});

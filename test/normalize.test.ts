/** `depad config`'s normalized form is itself a valid file that means the same (no engine). */
import test from 'ava';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadConfig, parseConfig } from '../src/config/index.ts';
import type { DeploymentSpec } from '../src/config/index.ts';
import { normalizedCompose } from '../src/config/normalize.ts';
import { EXAMPLES } from './helpers/harness.ts';

const meaning = (spec: DeploymentSpec) => ({ services: spec.services, networks: spec.networks, volumes: spec.volumes, depad: spec.depad, name: spec.name });

/** Parses the normalized text of `spec` again (beside the original, so bind sources resolve the same). */
function again(spec: DeploymentSpec): DeploymentSpec {
  return parseConfig(stringify(normalizedCompose(spec), { version: '1.1' }), spec.file, {});
}

for (const example of ['hello', 'clinic', 'webapp']) {
  test(`the normalized ${example} example reads back to the same spec`, async (t) => {
    const spec = await loadConfig(path.join(EXAMPLES, example, 'depad.yml'), {});
    t.deepEqual(meaning(again(spec)), meaning(spec));
  });
}

test('short syntaxes come out long, defaults filled, and read back the same', (t) => {
  const spec = parseConfig(
    [
      'name: shop',
      'services:',
      '  web:',
      '    image: nginx',
      '    ports: ["8080", "127.0.0.1:80:81/udp"]',
      '    expose: ["9000"]',
      '    volumes: ["data:/data:ro", "./static:/srv"]',
      '    depends_on: [db]',
      '    environment: [A=1]',
      '    healthcheck: { test: "curl -f localhost", interval: 90s }',
      '    restart: on-failure:3',
      '    x-depad: { expose: http, port: 8080, health: { http: /health, interval: 5s } }',
      '  db:',
      '    image: postgres',
      '    x-depad: { health: { command: [pg_isready] } }',
      'volumes:',
      '  data: {}',
      'x-depad:',
      '  start_timeout: 90s',
      '',
    ].join('\n'),
    '/tmp/shop/compose.yaml',
    {},
  );
  const doc = normalizedCompose(spec) as { services: Record<string, Record<string, unknown>> };
  t.deepEqual(doc.services.web!.volumes, [
    { type: 'volume', source: 'data', target: '/data', read_only: true },
    { type: 'bind', source: './static', target: '/srv', read_only: false },
  ]);
  t.deepEqual(doc.services.web!.depends_on, { db: { condition: 'service_started', required: true } });
  t.deepEqual(meaning(again(spec)), meaning(spec));
});

test('engine keys, build, secrets, configs and shared namespaces come out as compose keys and read back the same', async (t) => {
  const fs = await import('node:fs/promises');
  const os = await import('node:os');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-normalize-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, 'app'));
  await fs.writeFile(path.join(dir, 'app', 'Dockerfile'), 'FROM depad-example/app:1\n');
  await fs.writeFile(path.join(dir, 'db-password.txt'), 'hunter2\n');
  await fs.mkdir(path.join(dir, 'conf'));
  const file = path.join(dir, 'compose.yaml');
  await fs.writeFile(
    file,
    [
      'services:',
      '  web:',
      '    build: {context: ./app, args: {A: "1"}, target: run, shm_size: 64m, cache_from: [depad-example/app:1]}',
      '    hostname: web-host',
      '    init: true',
      '    read_only: true',
      '    shm_size: 32m',
      '    ulimits: {nproc: 512, nofile: {soft: 1024, hard: 2048}}',
      '    sysctls: {net.core.somaxconn: "1024"}',
      '    memswap_limit: 512m',
      '    mem_limit: 256m',
      '    mem_reservation: 128m',
      '    cpu_shares: 512',
      '    cpu_rt_runtime: 400',
      '    dns: [9.9.9.9]',
      '    ipc: shareable',
      '    logging: {driver: json-file, options: {max-size: 1m}}',
      '    blkio_config: {weight: 300, device_read_bps: [{path: /dev/sda, rate: 20mb}]}',
      '    container_name: legacy-web',
      '    pull_policy: never',
      '    deploy: {update_config: {parallelism: 2, delay: 1500ms, order: start-first, monitor: 5s}, rollback_config: {failure_action: continue}}',
      '    volumes: ["./conf:/conf:ro,z", "data:/data:nocopy"]',
      '    secrets: [db_password]',
      '    configs: [{source: motd, target: /etc/motd, mode: 0444}]',
      '  side:',
      '    image: depad-example/app:1',
      '    network_mode: service:web',
      '    ipc: service:web',
      'volumes:',
      '  data: {}',
      'secrets:',
      '  db_password: {file: ./db-password.txt}',
      'configs:',
      '  motd: {environment: MOTD}',
      '',
    ].join('\n'),
  );
  const spec = await loadConfig(file, { MOTD: 'hello' });
  const doc = normalizedCompose(spec) as { services: Record<string, Record<string, unknown>>; secrets: unknown };
  const web = doc.services.web!;
  t.is(web.image, undefined, 'a build without image: has none');
  t.deepEqual(web.build, { context: './app', args: { A: '1' }, target: 'run', shm_size: `${64 * 1024 * 1024}b`, cache_from: ['depad-example/app:1'] });
  t.is(web.container_name, 'legacy-web');
  t.deepEqual(web.deploy, { resources: { limits: { memory: `${256 * 1024 * 1024}b` } }, update_config: { parallelism: 2, delay: '1500ms', order: 'start-first', monitor: '5000ms' }, rollback_config: { failure_action: 'continue' } });
  t.deepEqual(web.ulimits, { nproc: { soft: 512, hard: 512 }, nofile: { soft: 1024, hard: 2048 } });
  t.deepEqual(web.secrets, [{ source: 'db_password', target: '/run/secrets/db_password', mode: '0600' }]);
  t.deepEqual(doc.secrets, { db_password: { file: './db-password.txt' } });
  t.is(doc.services.side!.network_mode, 'service:web');
  t.is(doc.services.side!.networks, undefined);
  t.false(JSON.stringify(doc).includes('hunter2'), 'no secret value');
  const back = await (async () => {
    const again = path.join(dir, 'normalized.yaml');
    await fs.writeFile(again, stringify(doc, { version: '1.1' }));
    return loadConfig(again, { MOTD: 'hello' });
  })();
  t.deepEqual(meaning(back), meaning(spec));
});

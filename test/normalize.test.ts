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

/**
 * Two deployments of one compose file that uses container_name and a fixed host port ("80:8080"),
 * side by side on one engine: both run, each reaches its own database by the container_name (a
 * network alias inside its deployment), and their host ports differ (depad allocates them).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { harness, httpGet } from './helpers/harness.ts';

const file = `services:
  db:
    image: depad-example/app:1
    command: ["/app/bin/db"]
    container_name: legacy-db
    volumes: [data:/data]
    healthcheck:
      test: ["CMD", "/app/bin/probe", "tcp", "5432"]
      interval: 1s
      retries: 20
  web:
    image: depad-example/app:1
    container_name: legacy-web
    ports: ["80:8080"]
    environment:
      DB_HOST: legacy-db
    depends_on:
      db: { condition: service_healthy }
    healthcheck:
      test: ["CMD", "/app/bin/probe", "http", "8080", "/cgi-bin/health"]
      interval: 1s
      retries: 20
volumes:
  data: {}
`;

test('one file with container_name and "80:8080", deployed twice: isolated, each reaching its own db by that name', async (t) => {
  const h = await harness(t);
  const config = path.join(h.dir, 'compose.yaml');
  await fs.writeFile(config, file);
  const [a, b] = [h.name('sa'), h.name('sb')];
  const ca = await h.run(['create', '-n', a, '-f', config]);
  t.is(ca.code, 0, ca.stderr);
  t.regex(ca.stderr, /container_name/, 'a warning says what container_name became');
  t.regex(ca.stderr, /published 80 → \d+/);
  t.is((await h.run(['create', '-n', b, '-f', config])).code, 0);
  const port = async (name: string) => (await h.json<DeploymentView>(['inspect', name])).ports.find((p) => p.service === 'web' && p.target === 8080)!.host;
  const [pa, pb] = [await port(a), await port(b)];
  t.not(pa, pb);
  await httpGet(pa, '/cgi-bin/visits');
  t.regex((await httpGet(pa, '/cgi-bin/visits')).body, /"visits":2,/, 'a counts in its own db');
  t.regex((await httpGet(pb, '/cgi-bin/visits')).body, /"visits":1,/, 'b in its own: legacy-db resolves inside each deployment');
});

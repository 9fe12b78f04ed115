/** Every bundled example is created, answers, renders a compose file docker-compose accepts, and is destroyed. */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { existsSync } from 'node:fs';
import type { DeploymentView } from '../src/deploy/status.ts';
import { EXAMPLES, engineObjects, harness, httpGet } from './helpers/harness.ts';

const examples = (await fs.readdir(EXAMPLES, { withFileTypes: true }))
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .filter((d) => existsSync(path.join(EXAMPLES, d, 'depad.yml'))); // images/ and systemd/ are not deployments

test('there are examples to test', (t) => {
  t.true(examples.includes('hello') && examples.includes('clinic'), examples.join(', '));
});

for (const example of examples) {
  test(`example ${example} deploys and answers`, async (t) => {
    const h = await harness(t);
    const name = h.name(example);
    const created = await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, example, 'depad.yml')]);
    t.is(created.code, 0, created.stderr);
    const view = await h.json<DeploymentView>(['inspect', name]);
    t.is(view.status, 'running');
    await promisify(execFile)('docker-compose', ['-f', path.join(view.rootDir, 'docker-compose.yml'), 'config', '-q']);
    const web = view.ports.find((p) => p.service === 'web' && (p.role === 'instance' || p.role === 'published'));
    t.truthy(web, 'every example has a published web service');
    // The busybox app answers /cgi-bin/info, the Node app /info.
    const first = await httpGet(web!.host, '/info');
    const info = JSON.parse(first.status === 200 ? first.body : (await httpGet(web!.host, '/cgi-bin/info')).body) as { deployment: string };
    t.is(info.deployment, name);
    t.is((await h.run(['destroy', name])).code, 0);
    t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [], networks: [], volumes: [] });
  });
}

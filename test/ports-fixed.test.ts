/**
 * Host ports in the file (`"80:8080"`, `"127.0.0.1:5432:5432"`, ranges, the long syntax): read as
 * compose reads them; by default depad still allocates from the deployment's block (two
 * deployments of one file cannot both own a port) and says so; `x-depad.host_ports: fixed` keeps
 * the asked ports, reserved like any other and refused naming the holder when taken.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { parsePortText } from '../src/config/service-ports.ts';
import type { DeploymentView } from '../src/deploy/status.ts';
import { engineObjects, harness, httpGet, testPorts } from './helpers/harness.ts';

test('port syntaxes as compose reads them (pure)', (t) => {
  const ok = (text: string) => {
    const r = parsePortText(text, 'ports');
    if (!r.ok) throw new Error(r.error);
    return r.value.map((p) => `${p.hostIp ?? ''}|${p.published ? `${p.published.from}-${p.published.to}` : ''}|${p.target}/${p.protocol}`);
  };
  t.deepEqual(ok('8080'), ['||8080/tcp']);
  t.deepEqual(ok('80:8080'), ['|80-80|8080/tcp']);
  t.deepEqual(ok('127.0.0.1:5432:5432'), ['127.0.0.1|5432-5432|5432/tcp']);
  t.deepEqual(ok('127.0.0.1::5000'), ['127.0.0.1||5000/tcp']);
  t.deepEqual(ok(':443:443'), ['|443-443|443/tcp'], 'an empty host address is none');
  t.deepEqual(ok('[::1]:6001:6001/udp'), ['::1|6001-6001|6001/udp']);
  t.deepEqual(ok('9090-9091:8080-8081'), ['|9090-9090|8080/tcp', '|9091-9091|8081/tcp']);
  t.deepEqual(ok('8000-9000:80'), ['|8000-9000|80/tcp'], 'a host range for one container port');
  t.deepEqual(ok('3000-3002'), ['||3000/tcp', '||3001/tcp', '||3002/tcp']);
  const bad = (text: string) => {
    const r = parsePortText(text, 'ports');
    return r.ok ? 'accepted' : r.error;
  };
  t.regex(bad('9090-9092:8080-8081'), /maps 2 container ports onto 3 host ports/);
  t.regex(bad('localhost:80:80'), /must be an IPv4 or IPv6 address/);
  t.regex(bad('70000:80'), /from 1 to 65535/);
  t.regex(bad('80:80/sctp'), /tcp or udp/);
});

test('asked host ports: allocated from the block by default (two deployments of one file side by side), kept with x-depad.host_ports: fixed', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const asked = port();
  const hostOwned = port();
  const second = port();
  const web = 'image: depad-example/app:1\n    healthcheck:\n      test: ["CMD", "/app/bin/probe", "http", "8080", "/cgi-bin/health"]\n      interval: 1s\n      retries: 10\n';
  const shared = path.join(h.dir, 'shared.yml');
  await fs.writeFile(shared, `services:\n  web:\n    ${web}    ports:\n      - "${asked}:8080"\n      - target: 9000\n        published: ${second}\n        host_ip: 127.0.0.1\n`);
  const [a, b] = [h.name('pa'), h.name('pb')];
  const ca = await h.run(['create', '-n', a, '-f', shared]);
  t.is(ca.code, 0, ca.stderr);
  t.regex(ca.stderr, new RegExp(`warning: web: published ${asked} → \\d+ for 8080/tcp \\(depad allocates host ports; to keep the asked ones, x-depad.host_ports: fixed`));
  t.is((await h.run(['create', '-n', b, '-f', shared])).code, 0, 'the same file twice: no clash');
  const va = await h.json<DeploymentView>(['inspect', a]);
  const vb = await h.json<DeploymentView>(['inspect', b]);
  const given = (v: DeploymentView, target: number) => v.ports.find((p) => p.target === target)!;
  t.not(given(va, 8080).host, given(vb, 8080).host);
  t.is(given(va, 8080).asked, String(asked), 'inspect --json shows the asked port beside the given one');
  t.is(given(va, 9000).hostIp, '127.0.0.1');
  t.regex((await h.run(['ps', a])).stdout, new RegExp(`${given(va, 8080).host}->8080/tcp \\(asked ${asked}\\), 127\\.0\\.0\\.1:${given(va, 9000).host}->9000/tcp`));
  const bound = (await h.engine.inspectContainer(va.services[0]!.instances[0]!.container))!;
  t.truthy(bound, 'the instance runs');

  // fixed: the asked port itself, reserved; a second deployment is refused naming the holder, nothing made.
  const fixed = path.join(h.dir, 'fixed.yml');
  await fs.writeFile(fixed, `x-depad:\n  host_ports: fixed\nservices:\n  web:\n    ${web}    ports:\n      - "${asked}:8080"\n`);
  const c = h.name('pc');
  const cc = await h.run(['create', '-n', c, '-f', fixed]);
  t.is(cc.code, 0, cc.stderr);
  const vc = await h.json<DeploymentView>(['inspect', c]);
  t.is(given(vc, 8080).host, asked);
  t.regex((await httpGet(asked, '/cgi-bin/info')).body, new RegExp(`"deployment":"${c}"`));
  const d = h.name('pd');
  const refused = await h.run(['create', '-n', d, '-f', fixed]);
  t.is(refused.code, 8, refused.stderr);
  t.regex(refused.stderr, new RegExp(`web: host port ${asked} \\(asked for 8080/tcp with x-depad.host_ports: fixed\\) is not free: ${asked} is held by deployment ${c}`));
  t.deepEqual((await engineObjects(h.engine, `${h.prefix}`)).containers.filter((n) => n.includes(d)), [], 'nothing was made');
  t.is((await h.run(['inspect', d])).code, 4);

  // A port another program listens on is refused too.
  const other = net.createServer().listen(hostOwned, '0.0.0.0');
  t.teardown(() => void other.close());
  await new Promise((r) => other.once('listening', r));
  const taken = path.join(h.dir, 'taken.yml');
  await fs.writeFile(taken, (await fs.readFile(fixed, 'utf8')).replace(`"${asked}:8080"`, `"${hostOwned}:8080"`));
  const busy = await h.run(['create', '-n', d, '-f', taken]);
  t.is(busy.code, 8, busy.stderr);
  t.regex(busy.stderr, new RegExp(`${hostOwned} is in use on this host`));

  // An update keeps the fixed port (stop-first on it); destroy releases it for the next one.
  const up = await h.run(['update', c, '-s', 'web', '--image', 'depad-example/app:2']);
  t.is(up.code, 0, up.stderr);
  t.regex((await httpGet(asked, '/cgi-bin/info')).body, /"version":"2"/);
  t.is((await h.run(['destroy', c])).code, 0);
  const again = await h.run(['create', '-n', d, '-f', fixed]);
  t.is(again.code, 0, again.stderr);
  t.is(given(await h.json<DeploymentView>(['inspect', d]), 8080).host, asked);
});

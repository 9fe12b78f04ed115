/**
 * The lab engine helper (test/helpers/lab-engine.ts): a dockerd of its own in a network
 * namespace. Its containers' published ports answer at the lab's address; stop stops them as a
 * reboot does (restart policies bring them back on start), kill is a crash; remove leaves nothing
 * on the machine; a lab whose process was killed is swept; a depad agent run in the lab serves a
 * deployment through its proxy at the lab's address. The machine's engine is not touched: a
 * sentinel container on it keeps running, unrestarted, throughout.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { labEngine } from './helpers/lab-engine-ava.ts';
import { sweepLabEngines, type LabEngine } from './helpers/lab-engine.ts';
import { labMounts, labPaths, labProcesses, leftoverLabs, must, run } from './helpers/lab-host.ts';
import { DEPAD, ROOT, harness } from './helpers/harness.ts';

const APP = 'depad-example/app:1';

/** GET over node:http (fetch would not send a Host header of its own). */
function get(host: string, port: number, pathname = '/', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: pathname, headers: { connection: 'close', ...headers }, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET http://${host}:${port}${pathname}: timeout`)));
    req.on('error', reject);
  });
}

/** GET from inside the lab, as a process on that host (an agent, a probe) does: its 127.0.0.1. */
async function getInLab(lab: LabEngine, port: number): Promise<string> {
  const script = `const r = await fetch('http://127.0.0.1:${port}/', { signal: AbortSignal.timeout(10000) }); process.stdout.write(r.status + ' ' + (await r.text()));`;
  const r = await lab.exec(process.execPath, ['--input-type=module', '-e', script]);
  return r.code === 0 ? r.stdout : `exit ${r.code}: ${r.stderr}`;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const answers = (lab: LabEngine, port: number) => until(`${lab.address}:${port}`, async () => ((await get(lab.address, port)).status === 200 ? true : undefined));
const state = async (lab: LabEngine, name: string) => lab.docker(['inspect', '--format', '{{.State.Status}}', name]);

/** An address or address prefix as a whole in text: 10.223. matches 10.223.0.1, not 10.210.223.2. */
const mentions = (address: string) => new RegExp(`(^|[^0-9.])${address.replaceAll('.', '\\.')}${address.endsWith('.') ? '' : '(?![0-9])'}`, 'm');
/** The first two octets of the lab's address pool, as '10.223.'. */
const poolPrefix = (lab: Pick<LabEngine, 'pool'>) => lab.pool.replace(/^base=(\d+\.\d+)\..*$/, '$1.');

/** What a removed lab must not have left. */
async function leftovers(lab: LabEngine, shimSockets: string[]): Promise<string[]> {
  const p = labPaths(lab.name);
  const found: string[] = [];
  if ((await run('ip', ['netns', 'list'])).stdout.includes(lab.name)) found.push('netns');
  for (const file of [p.netns, p.run, p.data, ...shimSockets]) if (await fs.lstat(file).catch(() => undefined)) found.push(file);
  const processes = await labProcesses(lab.name);
  if (processes.length) found.push(`processes ${processes.join(' ')}`);
  const mounts = (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(lab.name));
  if (mounts.length) found.push(...mounts);
  if ((await labMounts(lab.name)).length) found.push('mounts');
  if (mentions(lab.rootAddress).test((await run('ip', ['-o', 'addr', 'show'])).stdout)) found.push(`address ${lab.rootAddress}`);
  const rules = (await must('iptables-save', [])).split('\n').filter((l) => [poolPrefix(lab), lab.address, lab.rootAddress].some((a) => mentions(a).test(l)));
  if (rules.length) found.push(...rules);
  for (const root of ['/sys/fs/cgroup/pids', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    if (await fs.stat(path.join(root, 'depad-lab', lab.name)).catch(() => undefined)) found.push(`cgroup ${root}`);
  }
  if ((await leftoverLabs()).includes(lab.name)) found.push('listed by leftoverLabs');
  return found;
}

test('a lab engine: its own dockerd, ports at its address, stop as a reboot, kill as a crash, remove leaves nothing', async (t) => {
  const sentinel = `depad-lab-sentinel-${process.pid}`;
  await must('docker', ['run', '-d', '--name', sentinel, '--label', 'depad.test=lab-engine', APP]);
  t.teardown(() => run('docker', ['rm', '-f', sentinel]).then(() => undefined));
  const sentinelStarted = (await must('docker', ['inspect', '--format', '{{.State.StartedAt}}', sentinel])).trim();
  const mainId = (await must('docker', ['info', '--format', '{{.ID}}'])).trim();

  let started = Date.now();
  const lab = await labEngine(t, { images: [APP] });
  t.log(`start with ${APP} loaded: ${Date.now() - started} ms (${lab.name}, ${lab.address}, ${lab.pool})`);
  t.regex(lab.name, new RegExp(`^depad-lab-${process.pid}-`));
  t.true(lab.socket.length < 108);
  t.not(await lab.docker(['info', '--format', '{{.ID}}']), mainId, 'an engine ID of its own');
  t.true((await lab.docker(['info', '--format', '{{.DockerRootDir}}'])).startsWith('/tmp/depad-lab/'));

  const web = await lab.docker(['run', '-d', '--name', 'web', '--restart', 'always', '-p', '8080:8080', APP]);
  const once = await lab.docker(['run', '-d', '--name', 'once', '-p', '8081:8080', APP]);
  await answers(lab, 8080);
  t.regex((await get(lab.address, 8080)).body, /depad demo/, 'published on 0.0.0.0 in the lab: reached at its address from the root namespace');
  t.regex(await getInLab(lab, 8081), /^200 .*depad demo/s, "and at 127.0.0.1 from inside the lab, as the lab's agent reaches it");
  t.regex((await lab.exec('iptables-save', [])).stdout, mentions(poolPrefix(lab)), "the lab's dockerd programs iptables in the lab's namespace");
  t.notRegex(await must('iptables-save', []), mentions(poolPrefix(lab)), "and not in the machine's");
  const mainIds = (await must('docker', ['ps', '-aq', '--no-trunc'])).split('\n');
  t.false(mainIds.includes(web) || mainIds.includes(once), "the lab's containers are not the machine's engine's");

  started = Date.now();
  await lab.stop();
  const stopMs = Date.now() - started;
  await t.throwsAsync(lab.docker(['ps']), undefined, 'stopped: the engine does not answer');
  t.deepEqual(await labProcesses(lab.name), [], 'no dockerd, containerd, shim or container process left running');

  started = Date.now();
  await lab.start();
  t.log(`stop: ${stopMs} ms (two containers), start again: ${Date.now() - started} ms`);
  t.is(await state(lab, 'once'), 'exited', 'a container without a restart policy stays stopped after the "reboot"');
  await until('web restarted', async () => ((await state(lab, 'web')) === 'running' ? true : undefined));
  await answers(lab, 8080);

  const pidBefore = await lab.docker(['inspect', '--format', '{{.State.Pid}}', 'web']);
  await lab.kill();
  t.true((await labProcesses(lab.name)).includes(Number(pidBefore)), 'after a dockerd crash its containers still run');
  started = Date.now();
  await lab.start();
  t.log(`start after kill: ${Date.now() - started} ms`);
  await until('web running again', async () => ((await state(lab, 'web')) === 'running' ? true : undefined));
  await answers(lab, 8080);

  const shimSockets = [web, once].map((id) => path.join('/run/containerd/s', createHash('sha256').update(path.join(labPaths(lab.name).containerdSocket, 'moby', id)).digest('hex')));
  t.true(await fs.stat(shimSockets[0]!).then(() => true, () => false), 'the shim socket name is computed as containerd does');
  started = Date.now();
  await lab.remove();
  t.log(`remove: ${Date.now() - started} ms`);
  t.deepEqual(await leftovers(lab, shimSockets), []);
  await lab.remove(); // idempotent
  t.is((await must('docker', ['inspect', '--format', '{{.State.Status}} {{.State.StartedAt}}', sentinel])).trim(), `running ${sentinelStarted}`, "the machine's engine and its containers were not touched");
});

test('sweepLabEngines removes the lab of a process that was killed, and nothing of live ones', async (t) => {
  const mine = await labEngine(t, { name: 'live' });
  const helper = path.join(ROOT, 'test/helpers/lab-engine.ts');
  const script = `const { startLabEngine } = await import(${JSON.stringify(helper)}); const lab = await startLabEngine({ images: [${JSON.stringify(APP)}] }); await lab.docker(['run', '-d', '--name', 'web', '${APP}']); console.log(JSON.stringify({ name: lab.name, address: lab.address, rootAddress: lab.rootAddress, pool: lab.pool })); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const facts = await new Promise<{ name: string; address: string; rootAddress: string; pool: string }>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
    });
    child.once('exit', (code) => reject(new Error(`lab process exited ${code}: ${err}`)));
  });
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
  t.true((await labProcesses(facts.name)).length > 0, "the killed process's dockerd and container run on");
  t.true((await labMounts(facts.name)).length > 0);

  const swept = await sweepLabEngines();
  // Another run's sweep (any test run on this machine) may have got there first.
  if (!swept.includes(facts.name)) t.log(`${facts.name} was swept by another process`);
  t.false(swept.includes(mine.name), "a live process's lab is not swept");
  t.false((await leftoverLabs()).includes(facts.name));
  t.deepEqual(await leftovers(facts as unknown as LabEngine, []), []);
  t.is(await mine.docker(['info', '--format', '{{.ServerVersion}}']).then(() => 'up'), 'up');
});

test('a depad agent run in the lab serves a deployment through its proxy at the lab address', async (t) => {
  const h = await harness(t);
  const lab = await labEngine(t, { images: [APP] });
  const env = { ...process.env, DOCKER_HOST: lab.dockerHost, DEPAD_HOME: h.home, DEPAD_PORT_RANGE: '20000-20099' };
  // Ports in the lab's namespace are its own: fixed ones cannot collide with other tests.
  const agent = lab.spawn(DEPAD, ['--json', 'agent', '--api-port', '8443', '--api-host', '127.0.0.1', '--http-port', '80', '--http-host', '0.0.0.0', '--tcp-host', '0.0.0.0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  agent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  agent.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => agent.once('exit', resolve));
  t.teardown(() => void agent.kill('SIGKILL'));
  await until('the agent listening', async () => (out.includes('"listening"') ? true : undefined), 30_000).catch(() => t.fail(`agent: ${out}`));

  const config = path.join(h.dir, 'depad.yml');
  await fs.writeFile(
    config,
    `services:\n  web:\n    image: ${APP}\n    x-depad:\n      expose: http\n      port: 8080\n      health: { http: /cgi-bin/health, status: 200 }\n`,
  );
  const name = h.name('lab');
  const created = await lab.exec(DEPAD, ['create', '-n', name, '-f', config], { env });
  t.is(created.code, 0, created.stderr);
  const routed = await until('the route', async () => {
    const r = await get(lab.address, 80, '/', { host: `web.${name}.localhost` });
    return r.status === 200 ? r : undefined;
  });
  t.regex(routed.body, /depad demo/, "the agent's proxy routes to 127.0.0.1:<host port> of the lab, reached at the lab's address");
  t.regex(await lab.docker(['ps', '--format', '{{.Names}}']), new RegExp(name), "the deployment's containers are in the lab's engine");

  t.is((await lab.exec(DEPAD, ['destroy', name], { env })).code, 0);
  agent.kill('SIGTERM');
  t.is(await exited, 0, out);
});

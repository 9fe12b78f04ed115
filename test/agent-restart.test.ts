/**
 * `depad agent restart` against the real engine and proxy: under HTTP load (keep-alive and
 * new-connection clients), TCP connections and WebSockets opened continuously and API requests on
 * the unix socket, three restarts fail nothing; the routes serve afterwards, the pid changed each time and the state moved (a
 * create through the new agent works). A new process that cannot start (its code broken on disk)
 * leaves the old one serving, and the command says why; one that fails after it took the
 * listeners is reported too. A restart waits for the operation under way, which completes in the
 * old agent. bench/agent-restart.ts measures 10.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeploymentView } from '../src/deploy/status.ts';
import { agentSocketPath, stateDir } from '../src/home.ts';
import { startAgent } from './helpers/agent-process.ts';
import { startApiProbes, startTcpProbes, startWebSocketProbes, tcpExchange } from './helpers/conn-probes.ts';
import { EXAMPLES, ROOT, alive, harness, testPorts } from './helpers/harness.ts';
import type { Harness } from './helpers/harness.ts';
import { getVia, startLoad } from './helpers/load.ts';

interface Restarted {
  oldPid: number;
  newPid: number;
  ms: number;
}

/** Kills `pid` in teardown if it still runs (a new agent is no child of the test). */
function reap(t: ExecutionContext, pid: number): void {
  t.teardown(() => void (alive(pid) && process.kill(pid, 'SIGKILL')));
}

/** `depad agent restart --json`, with the new pid reaped in teardown. */
async function restart(t: ExecutionContext, h: Harness): Promise<Restarted> {
  const r = await h.run(['agent', 'restart', '--json']);
  if (r.code !== 0) throw new Error(`depad agent restart exited ${r.code}: ${r.stderr}`);
  const result = JSON.parse(r.stdout) as Restarted;
  reap(t, result.newPid);
  return result;
}

test('three agent restarts under load: no failed request, TCP connection or WebSocket; the state moves', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('web');
  const agent = await startAgent(t, h, port);
  const created = await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'webapp/depad.yml')]);
  t.is(created.code, 0, created.stderr);
  const view = await h.json<DeploymentView>(['inspect', name]);
  const tcpPort = view.services.find((s) => s.name === 'db')?.route?.port as number;
  const host = `web.${name}.localhost`;
  const httpPort = agent.facts.httpPort;

  const load = startLoad({ port: httpPort, host, keepAliveClients: 4, newConnectionClients: 4 });
  const tcp = startTcpProbes({ port: tcpPort, clients: 2 });
  const ws = startWebSocketProbes({ port: httpPort, host, clients: 2 });
  const api = startApiProbes({ socketPath: agentSocketPath(h.home), timeoutMs: 30_000 });
  const pids = [agent.child.pid as number];
  try {
    await sleep(500);
    for (let i = 0; i < 3; i++) {
      const r = await restart(t, h);
      t.is(r.oldPid, pids.at(-1) as number);
      t.not(r.newPid, r.oldPid, 'a new process');
      t.is(Number(await fs.readFile(path.join(h.home, 'agent.pid'), 'utf8')), r.newPid, 'the pid file names the new agent');
      t.log(`restart ${i + 1}: pid ${r.oldPid} → ${r.newPid}, ready in ${r.ms} ms`);
      pids.push(r.newPid);
      await sleep(300);
    }
  } finally {
    const [http, tcpStats, wsStats, apiStats] = [await load.stop(), await tcp.stop(), await ws.stop(), await api.stop()];
    t.log(`HTTP ${http.ok} ok, slowest ${http.maxLatencyMs} ms; TCP ${tcpStats.ok} ok, slowest ${tcpStats.maxLatencyMs} ms; WebSocket ${wsStats.ok} ok, slowest ${wsStats.maxLatencyMs} ms; API ${apiStats.ok} ok, slowest ${apiStats.maxLatencyMs} ms`);
    t.is(http.failed, 0, http.failures.join('\n'));
    t.is(tcpStats.failed, 0, tcpStats.failures.join('\n'));
    t.is(wsStats.failed, 0, wsStats.failures.join('\n'));
    t.is(apiStats.failed, 0, `the API on the unix socket: ${apiStats.failures.join('\n')}`);
    t.true(http.ok > 100 && tcpStats.ok > 10 && wsStats.ok > 5, 'the load ran');
  }

  // The routes serve, from the new agent's proxy.
  t.is((await getVia(httpPort, host)).status, 200);
  t.is(await tcpExchange(tcpPort, 'VERSION'), '1');
  // The state moved: the new agent holds the lock and runs operations.
  const newest = pids.at(-1) as number;
  t.is((JSON.parse(await fs.readFile(path.join(stateDir(h.home), 'HOLDER.json'), 'utf8')) as { pid: number }).pid, newest);
  const other = h.name('more');
  const made = await h.run(['create', '-n', other, '-f', path.join(EXAMPLES, 'hello/depad.yml')]);
  t.is(made.code, 0, made.stderr);
  t.deepEqual((await h.json<{ name: string }[]>(['ls'])).map((d) => d.name).sort(), [other, name].sort());
  for (let i = 0; i < 50 && pids.slice(0, -1).some(alive); i++) await sleep(100);
  t.deepEqual(pids.slice(0, -1).filter(alive), [], 'the old agents ended once drained');
  process.kill(newest, 'SIGTERM');
  for (let i = 0; i < 100 && alive(newest); i++) await sleep(100);
  t.false(alive(newest), 'the last agent stops on SIGTERM');
});

test('restart with no agent says so; a new agent that cannot start leaves the old one serving', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const none = await h.run(['agent', 'restart']);
  t.is(none.code, 12, none.stderr);
  t.regex(none.stderr, /no agent is running/);

  // The agent runs from a copy of the code, which is then broken on disk (a failed upgrade).
  const copy = path.join(h.dir, 'depad');
  for (const dir of ['bin', 'scripts', 'src', 'proxy', 'certs']) await fs.cp(path.join(ROOT, dir), path.join(copy, dir), { recursive: true });
  await fs.copyFile(path.join(ROOT, 'package.json'), path.join(copy, 'package.json'));
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
  if (await fs.stat(path.join(ROOT, '.tools')).catch(() => undefined)) await fs.symlink(path.join(ROOT, '.tools'), path.join(copy, '.tools'));
  const agent = await startAgent(t, h, port, [], {}, path.join(copy, 'bin/depad'));
  const pid = agent.child.pid as number;
  const agentFile = path.join(copy, 'src/agent/agent.ts');
  const good = await fs.readFile(agentFile, 'utf8');
  await fs.writeFile(agentFile, `${good}\nexport const broken = ;\n`);

  const failed = await h.run(['agent', 'restart']);
  t.is(failed.code, 15, failed.stderr);
  t.regex(failed.stderr, new RegExp(`did not start, this one \\(pid ${pid}\\) keeps serving`));
  t.regex(failed.stderr, /SyntaxError|TYPESCRIPT_SYNTAX|Expression expected/i, 'with the new process\'s error');
  t.true(alive(pid));
  t.is(Number(await fs.readFile(path.join(h.home, 'agent.pid'), 'utf8')), pid);
  t.is((await getVia(agent.facts.httpPort, 'nobody.localhost')).status, 404, 'the proxy still answers');
  const name = h.name('after');
  const made = await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello/depad.yml'), '--no-wait']);
  t.is(made.code, 0, `operations run again: ${made.stderr}`);

  // Fixed on disk: the restart goes through.
  await fs.writeFile(agentFile, good);
  const r = await restart(t, h);
  t.is(r.oldPid, pid);
  t.deepEqual((await h.json<{ name: string }[]>(['ls'])).map((d) => d.name), [name]);

  // A new agent that fails after it took the listeners: the command says so, and the old one
  // exits non-zero (for a supervisor to start the agent again): the weak spot, documented.
  await fs.writeFile(agentFile, good.replace('await inherit.serving();', "await inherit.serving();\n      throw new Error('broken after the takeover');"));
  const late = await h.run(['agent', 'restart', '--json']);
  t.is(late.code, 15, late.stderr);
  const error = (JSON.parse(late.stderr) as { error: { message: string; newPid: number } }).error;
  t.regex(error.message, /took over the listeners but did not start: .*broken after the takeover/);
  reap(t, error.newPid);
  for (let i = 0; i < 100 && (alive(r.newPid) || alive(error.newPid)); i++) await sleep(100);
  t.false(alive(r.newPid), 'the old agent ends');
  t.false(alive(error.newPid), 'the failed one too');
  t.is((await h.run(['agent', 'restart'])).code, 12, 'no agent runs now');
});

test('a restart waits for the operation under way, which completes in the old agent', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const agent = await startAgent(t, h, port);
  let log = '';
  agent.child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const name = h.name('slow');
  // The hello example with its first health check 4 s after start: the create runs that long.
  const file = path.join(h.dir, 'slow.yml');
  await fs.writeFile(file, (await fs.readFile(path.join(EXAMPLES, 'hello/depad.yml'), 'utf8')).replace('interval: 1s', 'interval: 4s'));
  let createdAt = 0;
  const create = h.run(['create', '-n', name, '-f', file]).then((r) => ((createdAt = Date.now()), r));
  // Once the create is under way (its record exists), ask for the restart.
  for (let i = 0; i < 200 && !(await h.json<{ name: string }[]>(['ls'])).some((d) => d.name === name); i++) await sleep(50);
  const asked = Date.now();
  const r = await restart(t, h);
  const restartedAt = Date.now();
  t.true(createdAt === 0 || createdAt > asked, 'the create was still under way when the restart was asked for');
  const created = await create;
  t.is(created.code, 0, created.stderr);
  t.true(createdAt <= restartedAt, 'the create finished before the new agent took over');
  t.is((await h.json<{ status: string }>(['inspect', name])).status, 'running');
  t.notRegex(log, /recovered an interrupted operation/, 'nothing was left for the new agent to recover');
  process.kill(r.newPid, 'SIGTERM');
});

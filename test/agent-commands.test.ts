/**
 * The commands people reached for (issue 12), through the real CLI and a real agent: `agent
 * status|stop|fingerprint`, `version` (and `--version`), `context use` confirming what it did.
 * With no agent, status and stop exit 12 and fingerprint says there is no CA; with one, status
 * shows its pid, addresses, CA and engine (locally and over pinned HTTPS), stop is refused over
 * HTTPS and, on the socket, ends the agent gracefully and returns once it is gone. `depad events`
 * is in events.test.ts. The agent process is killed in t.teardown if a test leaves it running.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { AgentInfo } from '../src/agent/agent-info.ts';
import type { VersionReport } from '../src/cli/version-command.ts';
import { agentSocketPath } from '../src/home.ts';
import { startAgent } from './helpers/agent-process.ts';
import { ROOT, alive, harness, testPorts } from './helpers/harness.ts';

const VERSION = (JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('with no agent: status and stop exit 12 and say so, fingerprint finds no CA, version reports an engine that does not answer', async (t) => {
  const h = await harness(t);
  for (const verb of ['status', 'stop']) {
    const r = await h.run(['agent', verb]);
    t.is(r.code, 12, `agent ${verb}: ${r.stderr}`);
    t.regex(r.stderr, new RegExp(`no agent is running for ${h.home} \\(nothing answers on ${agentSocketPath(h.home)}\\)`));
    t.regex(r.stderr, /hint: start one: depad agent --daemon/);
  }
  // A pid file left by an agent that was killed is named.
  await fs.mkdir(h.home, { recursive: true });
  await fs.writeFile(path.join(h.home, 'agent.pid'), '999999999\n');
  t.regex((await h.run(['agent', 'status'])).stderr, /agent\.pid names pid 999999999, which is gone/);
  const json = await h.run(['--json', 'agent', 'status']);
  t.is(json.code, 12);
  t.is(JSON.parse(json.stderr).error.code, 'DEPAD_AGENT_UNAVAILABLE');

  const fp = await h.run(['agent', 'fingerprint']);
  t.is(fp.code, 4, fp.stderr);
  t.regex(fp.stderr, /has no agent CA yet/);

  t.is((await h.run(['--version'])).stdout.trim(), VERSION);
  const down = await h.run(['version', '--json'], { env: { DOCKER_HOST: `unix://${path.join(h.dir, 'no-engine.sock')}` } });
  t.is(down.code, 0, down.stderr);
  const report = JSON.parse(down.stdout) as VersionReport;
  t.is(report.depad, VERSION);
  t.is(report.node, process.version);
  t.regex(report.engine.error ?? '', /cannot reach the Docker Engine/);
  t.is(report.agent, undefined, 'no agent, none reported');
  const human = await h.run(['version'], { env: { DOCKER_HOST: `unix://${path.join(h.dir, 'no-engine.sock')}` } });
  t.is(human.code, 0);
  t.regex(human.stdout, new RegExp(`^depad   ${VERSION.replace(/\./g, '\\.')}\nnode    v\\d+\\.\\d+\\.\\d+\nengine  not reachable \\(.*\\) at unix://`));
  const up = JSON.parse((await h.run(['version', '--json'])).stdout) as VersionReport;
  t.regex(up.engine.apiVersion ?? '', /^\d+\.\d+$/, 'the engine API version when it answers');
});

test('agent status, fingerprint and version through a running agent (socket and pinned HTTPS); context use confirms; agent stop stops it and waits until it is gone', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const admin = (await h.run(['token', 'create', '--name', 'admin', '--scope', 'admin'])).stdout.trim();
  const agent = await startAgent(t, h, port);
  const pid = agent.child.pid as number;
  const url = `https://127.0.0.1:${agent.facts.apiPort}`;
  const remote = ['--host', url, '--ca-fingerprint', agent.facts.fingerprint, '--token', admin];

  const info = await h.json<AgentInfo>(['agent', 'status']);
  t.is(info.pid, pid);
  t.is(info.version, VERSION);
  t.is(info.home, h.home);
  t.deepEqual(info.api, { host: '127.0.0.1', port: agent.facts.apiPort });
  t.is(info.socket, agentSocketPath(h.home));
  t.is(info.proxy.httpPort, agent.facts.httpPort);
  t.is(info.fingerprint, agent.facts.fingerprint);
  t.is(info.engine.state, 'up');
  t.regex(info.engine.apiVersion ?? '', /^\d+\.\d+$/);
  t.true(Date.now() - Date.parse(info.startedAt) < 120_000);
  const human = await h.run(['agent', 'status']);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, new RegExp(`^depad agent: running at ${agentSocketPath(h.home)}: pid ${pid}, since \\S+ \\(up \\d+s\\), depad ${VERSION.replace(/\./g, '\\.')} on node v`));
  t.regex(human.stdout, new RegExp(`\n  API:     https://127\\.0\\.0\\.1:${agent.facts.apiPort}\n  socket:  ${agentSocketPath(h.home)}\n`));
  t.true(human.stdout.includes(`\n  CA:      ${agent.facts.fingerprint} (SHA-256)\n`));
  t.regex(human.stdout, /\n {2}engine: {2}up since .* \(Docker .*, API \d+\.\d+\)\n$/);
  const far = await h.json<AgentInfo>([...remote, 'agent', 'status']);
  t.is(far.pid, pid, 'the same agent over HTTPS');

  // The fingerprint clients pin: from the home's CA file (no agent needed), or asked of a remote agent.
  t.is((await h.run(['agent', 'fingerprint'])).stdout, `${agent.facts.fingerprint}\n`);
  t.deepEqual(await h.json(['agent', 'fingerprint']), { fingerprint: agent.facts.fingerprint, caFile: path.join(h.home, 'certs/agent/ca.crt') });
  t.is((await h.run(['--home', path.join(h.dir, 'elsewhere'), ...remote, 'agent', 'fingerprint'])).stdout, `${agent.facts.fingerprint}\n`);

  const version = await h.json<VersionReport>(['version']);
  t.like(version, { depad: VERSION, agent: { version: VERSION, pid, where: agentSocketPath(h.home) } });
  t.regex(version.engine.apiVersion ?? '', /^\d+\.\d+$/);

  // context use says what it did.
  const config = { XDG_CONFIG_HOME: path.join(h.dir, 'config') };
  t.is((await h.run(['context', 'add', 'prod', '--agent', url, '--fingerprint', agent.facts.fingerprint], { env: { ...config, DEPAD_TOKEN: admin } })).code, 0);
  const used = await h.run(['context', 'use', 'prod'], { env: config });
  t.is(used.code, 0, used.stderr);
  t.is(used.stdout, `using context prod (${url})\n`);
  t.is((await h.run(['agent', 'status', '--json'], { env: config })).code, 0, 'the context is in use');
  t.deepEqual(JSON.parse((await h.run(['--json', 'context', 'use', 'local'], { env: config })).stdout), { current: 'local', host: 'this host', previous: 'prod' });
  t.is((await h.run(['context', 'use', 'local'], { env: config })).stdout, 'using context local (this host)\n');
  t.is((await h.run(['context', 'use', 'nowhere'], { env: config })).code, 4);

  // Stop: never over HTTPS; on the socket it returns once the agent is gone.
  const refused = await h.run([...remote, 'agent', 'stop']);
  t.is(refused.code, 13, refused.stderr);
  t.regex(refused.stderr, /stops only on a request over its local socket/);
  t.true(alive(pid));
  const stopped = await h.run(['agent', 'stop', '--json']);
  t.is(stopped.code, 0, stopped.stderr);
  t.like(JSON.parse(stopped.stdout), { stopped: true, pid });
  t.regex(stopped.stderr, new RegExp(`stopping pid ${pid}`));
  t.false(alive(pid), 'gone when the command returns');
  t.is(await agent.exited, 0, 'a graceful stop');
  await t.throwsAsync(fs.access(path.join(h.home, 'agent.pid')), undefined, 'its pid file removed');
  const after = await h.run(['agent', 'status']);
  t.is(after.code, 12);
  t.is((await h.run(['agent', 'stop'])).code, 12, 'nothing left to stop');
});

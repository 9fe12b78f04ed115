/**
 * The CLI's output and exits with `depad agent`, all through real processes and the real engine:
 * at the default level the agent prints its announcements and no log lines (and no `undefined`
 * at any level); `ps` shows the health checks' status as `depad health` does, and routes with the
 * agent's proxy port; `logs -f` ends quietly when its stdout closes; updating a stopped deployment
 * exits 16; `agent --daemon` while another process holds the state says who, with exit 9.
 * Processes and deployments are removed in t.teardown.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startAgent } from './helpers/agent-process.ts';
import { closedStdout } from './helpers/closed-stdout.ts';
import { DEPAD, EXAMPLES, harness, testPorts, type Harness } from './helpers/harness.ts';

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Runs `depad agent` in the foreground (human output) until it listens, then SIGTERMs it; everything it printed. */
async function agentOutput(h: Harness, port: () => number, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(DEPAD, ['--home', h.home, 'agent', '--api-port', String(port()), '--api-host', '127.0.0.1', '--http-port', String(port()), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DEPAD_HOME: h.home, ...env },
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await until('the agent to listen', async () => (/CA fingerprint/.test(output) ? true : child.exitCode !== null ? Promise.reject(new Error(output)) : undefined));
  child.kill('SIGTERM');
  return { code: await exited, output };
}

test('the agent prints no log lines at the default level, and no undefined field at info', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const quiet = await agentOutput(h, port, { DEPAD_LOG_LEVEL: '' });
  t.is(quiet.code, 0, quiet.output);
  t.regex(quiet.output, /depad agent: API on https:\/\/127\.0\.0\.1:\d+/);
  t.regex(quiet.output, /depad agent: stopped/);
  t.notRegex(quiet.output, /depad (info|debug):/, quiet.output);
  const verbose = await agentOutput(h, port, { DEPAD_LOG_LEVEL: 'info' });
  t.regex(verbose.output, /depad info: proxy started/, 'info logs when asked for');
  t.notRegex(verbose.output, /=undefined/, verbose.output);
});

test('agent --daemon while a command holds the state: it names the holder, exit 9', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const holder = await h.startPaused(['create', '-n', h.name('holder'), '-f', path.join(EXAMPLES, 'hello/depad.yml'), '--no-wait'], 'files');
  const daemon = await h.run(['agent', '--daemon', '--api-port', String(port()), '--api-host', '127.0.0.1', '--http-port', String(port()), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1']);
  t.is(daemon.code, 9, daemon.stderr);
  t.regex(daemon.stderr, new RegExp(`^depad: depad's state at .* is in use by pid ${holder.pid} \\('depad create --name ${h.name('holder')}'`));
  t.notRegex(daemon.stderr, /\{"error"/, 'not the raw JSON');
  await holder.resume();
  t.is(await holder.exited, 0, holder.stderr());
  t.is((await h.run(['destroy', h.name('holder')])).code, 0);
});

test('through the agent: ps shows the health checks and the proxy port; logs -f ends on a closed stdout; a stopped update exits 16; a second agent exits 9', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('checked');
  const config = path.join(h.dir, 'checked.yml');
  await fs.writeFile(
    config,
    [
      'services:',
      '  web:',
      '    image: depad-example/app:1',
      '    x-depad: { expose: http, port: 8080, health: { http: /cgi-bin/health, interval: 1s, timeout: 1s, retries: 2 } }',
      '  tick:',
      '    image: depad-example/app:1',
      '    command: ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]',
      '',
    ].join('\n'),
  );
  const agent = await startAgent(t, h, port);
  t.teardown(async () => void (await h.run(['destroy', name])));
  const created = await h.run(['create', '-n', name, '-f', config]);
  t.is(created.code, 0, created.stderr);

  await until('depad health to say healthy', async () => {
    const r = await h.run(['health', name, '--json']);
    return (JSON.parse(r.stdout) as Array<{ service: string; status: string }>).some((x) => x.service === 'web' && x.status === 'healthy') ? true : undefined;
  });
  const instances = JSON.parse((await h.run(['ps', name, '--json'])).stdout) as Array<{ service: string; health?: string }>;
  t.is(instances.find((i) => i.service === 'web')?.health, 'healthy', 'ps --json says what depad health says');
  t.is(instances.find((i) => i.service === 'tick')?.health, undefined, 'nothing checks tick');
  const ps = (await h.run(['ps', name])).stdout;
  t.regex(ps, new RegExp(`web\\s+depad-${name}-web-1\\s+running\\s+healthy\\s+.*http://web\\.${name}\\.localhost:${agent.facts.httpPort}\\n`), ps);

  const logs = await closedStdout(h.home, ['logs', name, '-s', 'tick', '-f'], 'first-chunk');
  t.is(logs.code, 141, logs.stderr);
  t.notRegex(logs.stderr, /EPIPE|Error|\n\s+at /, 'no stack trace');

  const second = await h.run(['agent', '--daemon', '--api-port', String(port()), '--api-host', '127.0.0.1', '--http-port', String(port()), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1']);
  t.is(second.code, 9, second.stderr);
  t.regex(second.stderr, /^depad: another depad agent \(pid \d+\) is running \(it answers on .*agent\.sock\)/);
  t.notRegex(second.stderr, /\{"error"/);

  t.is((await h.run(['stop', name])).code, 0);
  const update = await h.run(['update', name, '-s', 'web', '--image', 'depad-example/app:2', '--json']);
  t.is(update.code, 16, update.stderr);
  t.is((JSON.parse(update.stderr) as { error: { code: string } }).error.code, 'DEPAD_NOT_RUNNING');
});

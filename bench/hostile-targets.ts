/**
 * The proxies that bench/proxy-hostile.ts compares, each started fresh as its own process in front
 * of one upstream: `depad proxy` of a tree (its bin/depad, route set over the control channel) and
 * nginx; and a sampler of their resident memory (read from /proc, see measure.ts).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProxyClient } from '../proxy/client.ts';
import { proxyPaths } from '../proxy/paths.ts';
import { proxyStateDir } from '../src/home.ts';
import { childPids, freePort, rss, waitForPort } from './measure.ts';

/** The Host every request of the bench carries. */
export const HOST = 'bench.local';

/** A proxy under test: its port and the processes whose memory counts. */
export interface Target {
  port: number;
  pids(): number[];
  stop(): Promise<void>;
}

/** A kind of proxy: how to start a fresh one in front of the upstream. */
export interface Kind {
  label: string;
  start(dir: string, upstreamPort: number): Promise<Target>;
}

const children = new Set<ChildProcess>();

/** Remembers a child process until it exits, for `stopAll`. */
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Stops a child process (SIGTERM, SIGKILL after 3 s) and waits for its exit. */
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  if ((await Promise.race([exited.then(() => true), sleep(3000).then(() => false)])) === false) child.kill('SIGKILL');
  await exited;
}

/** `bin proxy` (bin/depad of some tree) on a home under `dir`, routing HOST to the upstream. */
export function depadKind(label: string, bin: string): Kind {
  return {
    label,
    async start(dir, upstreamPort) {
      const home = await fs.mkdtemp(path.join(dir, 'home-'));
      const port = await freePort();
      const child = track(spawn(bin, ['--home', home, 'proxy', '--http-port', String(port), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] }));
      let log = '';
      child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
      await waitForPort(port).catch((error: unknown) => {
        throw new Error(`${bin} proxy did not listen: ${String(error)}\n${log}`);
      });
      const client = new ProxyClient(proxyPaths(proxyStateDir(home)));
      await client.setDeploymentRoutes('bench', [
        { id: 'bench/web', deployment: 'bench', service: 'web', kind: 'http', hosts: [HOST], upstreams: [{ host: '127.0.0.1', port: upstreamPort, instance: 'up' }] },
      ]);
      return { port, pids: () => [child.pid as number], stop: () => kill(child) };
    },
  };
}

/** nginx, one worker, as bench/proxy.ts runs it (worker_connections raised for 5,000 clients). */
export const nginxKind: Kind = {
  label: 'nginx (1 worker)',
  async start(dir, upstreamPort) {
    const port = await freePort();
    const d = await fs.mkdtemp(path.join(dir, 'nginx-'));
    await fs.chmod(d, 0o755); // nginx started as root runs its worker as nobody, which writes proxy_temp_path
    const conf = path.join(d, 'nginx.conf');
    await fs.writeFile(
      conf,
      `worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${d}/body; proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fcgi; uwsgi_temp_path ${d}/uwsgi; scgi_temp_path ${d}/scgi;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme; } }
}
`,
    );
    const master = track(spawn('nginx', ['-p', d, '-c', conf, '-e', path.join(d, 'error.log')], { stdio: 'inherit' }));
    await waitForPort(port);
    return { port, pids: () => childPids(master.pid as number), stop: () => kill(master) };
  },
};

/** Samples the target's RSS every 20 ms; `stop()` returns the peak. */
export function sampler(target: Target): { stop(): number } {
  let peak = rss(target.pids());
  const timer = setInterval(() => (peak = Math.max(peak, rss(target.pids()))), 20);
  return { stop: () => (clearInterval(timer), Math.max(peak, rss(target.pids()))) };
}

/** Stops every process started here. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map(kill));
}

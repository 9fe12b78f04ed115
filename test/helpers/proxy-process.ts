/** Runs the real `depad proxy` process for a test, on a free port; stopped in teardown. */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import { DEPAD, testPorts, type Harness } from './harness.ts';

/** A proxy process serving the harness's home. */
export interface ProxyProcess {
  port: number;
  /** Its process id (of the latest start). */
  pid(): number;
  /** Stops it (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and state. */
  start(): Promise<void>;
  output(): string;
}

/** Starts `depad proxy --http-port <port>` with the harness's DEPAD_HOME (or just a home); waits until it answers. */
export async function startProxyProcess(t: ExecutionContext, h: Pick<Harness, 'home'> & Partial<Pick<Harness, 'portRange'>>): Promise<ProxyProcess> {
  const port = (await testPorts(t))();
  let child: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    const from = log.length;
    child = spawn(DEPAD, ['proxy', '--http-port', String(port), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'], {
      env: { ...process.env, DEPAD_HOME: h.home, DEPAD_PORT_RANGE: h.portRange },
    });
    child.stdout?.on('data', (d) => (log += d));
    child.stderr?.on('data', (d) => (log += d));
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`depad proxy exited ${child.exitCode}:\n${log}`);
      if (/HTTP on/.test(log.slice(from))) return;
      await sleep(25);
    }
    throw new Error(`depad proxy did not start:\n${log}`);
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(15_000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  t.teardown(stop);
  await start();
  return { port, pid: () => child?.pid as number, stop, start, output: () => log };
}

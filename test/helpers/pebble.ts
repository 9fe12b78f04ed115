/**
 * Let's Encrypt's test ACME server, Pebble (Debian's `pebble`), on loopback for a test: its own
 * HTTPS certificate is made here (depad's local CA code), names resolve through
 * `pebble-challtestsrv`'s DNS (every A query → 127.0.0.1, no AAAA), and HTTP-01 validations go to
 * `httpPort` (the proxy under test). Both processes are killed in t.teardown. Pebble makes a new
 * issuing root at every start: `issuingRoot()` fetches it from the management port.
 */
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { ensureAgentTls } from '../../certs/local-ca.ts';

/** A running Pebble. */
export interface Pebble {
  directoryUrl: string;
  /** PEM file of the CA behind Pebble's own HTTPS (what `--acme-ca-file` takes). */
  serverCaFile: string;
  /** The root that signs the certificates Pebble issues (PEM). */
  issuingRoot(): Promise<string>;
}

function started(child: ChildProcess, what: string, ready: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`${what} did not start in 20 s: ${out}`)), 20_000).unref();
  });
}

function spawnKilledAtTeardown(t: ExecutionContext, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  t.teardown(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  return child;
}

/** Starts challtestsrv (DNS) and Pebble with ports from `port()`; validations go to 127.0.0.1:`httpPort`. */
export async function startPebble(t: ExecutionContext, dir: string, httpPort: number, port: () => number): Promise<Pebble> {
  const tls = await ensureAgentTls({ dir: path.join(dir, 'pebble-tls'), hostnames: ['localhost'], ips: ['127.0.0.1'] });
  const files = { cert: path.join(dir, 'pebble-cert.pem'), key: path.join(dir, 'pebble-key.pem'), ca: path.join(dir, 'pebble-ca.pem'), config: path.join(dir, 'pebble.json') };
  await fs.writeFile(files.cert, tls.certChain);
  await fs.writeFile(files.key, tls.serverKey, { mode: 0o600 });
  await fs.writeFile(files.ca, tls.caCert);
  const [dns, dnsManagement, api, management, tlsPort] = [port(), port(), port(), port(), port()];
  await fs.writeFile(
    files.config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${api}`,
        managementListenAddress: `127.0.0.1:${management}`,
        certificate: files.cert,
        privateKey: files.key,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const dnsServer = spawnKilledAtTeardown(t, 'pebble-challtestsrv', [
    '-dns01', `127.0.0.1:${dns}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${dnsManagement}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
  ]);
  await started(dnsServer, 'pebble-challtestsrv', /Starting challenge servers|DNS/);
  // No sleep before validating, no random nonce rejections, no reuse of earlier authorizations.
  const env = { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' };
  const pebble = spawnKilledAtTeardown(t, 'pebble', ['-config', files.config, '-dnsserver', `127.0.0.1:${dns}`], env);
  await started(pebble, 'pebble', /Listening on/);
  return {
    directoryUrl: `https://127.0.0.1:${api}/dir`,
    serverCaFile: files.ca,
    issuingRoot: () =>
      new Promise((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: management, path: '/roots/0', ca: tls.caCert, servername: 'localhost', agent: false }, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`pebble /roots/0: ${res.statusCode} ${text}`))));
          })
          .on('error', reject);
      }),
  };
}

/**
 * `depad agent`: runs the agent in the foreground (see src/agent/agent.ts): the state, the proxy,
 * the HTTPS management API and the local unix socket. On its first start it makes its CA and
 * prints the fingerprint remote clients pin. SIGINT/SIGTERM stop it gracefully.
 */
import { Command, InvalidArgumentError } from 'commander';
import { resolveHome } from '../home.ts';
import { processOutput } from './output.ts';
import { cliLogger, type CommandOptions } from './runtime.ts';

const portNumber = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`not a port number: ${JSON.stringify(v)}`);
  return n;
};
const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Adds `depad agent` to `parent`. */
export function addAgentCommand(parent: Command): void {
  parent
    .command('agent')
    .description('run the agent in the foreground: state, proxy, HTTPS management API, local socket')
    .option('--api-port <port>', 'HTTPS API port', portNumber, 8443)
    .option('--api-host <address>', 'HTTPS API address', '0.0.0.0')
    .option('--hostname <name>', 'a DNS name or IP address clients use for this host, put in the certificate (repeatable)', collect, [])
    .option('--http-port <port>', 'proxy HTTP port (default 80 as root, else 8080)', portNumber)
    .option('--http-host <address>', 'proxy HTTP address', '0.0.0.0')
    .option('--tcp-host <address>', 'address the stable TCP ports listen on', '0.0.0.0')
    .exitOverride()
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const home = g.home ?? resolveHome();
      const { startAgent } = await import('../agent/agent.ts');
      const agent = await startAgent({
        home,
        apiPort: opts.apiPort as number,
        apiHost: String(opts.apiHost),
        hostnames: opts.hostname as string[],
        ...(opts.httpPort === undefined ? {} : { httpPort: opts.httpPort as number }),
        httpHost: String(opts.httpHost),
        tcpHost: String(opts.tcpHost),
        log: cliLogger('info'),
      });
      const facts = { pid: process.pid, apiPort: agent.apiPort, httpPort: agent.httpPort, socket: agent.socketPath, fingerprint: agent.fingerprint, newCa: agent.newCa };
      if (output.json) output.out(`${JSON.stringify({ listening: facts })}\n`);
      else {
        output.out(`depad agent: API on https://${String(opts.apiHost)}:${agent.apiPort}, local socket ${agent.socketPath}, proxy on :${agent.httpPort}\n`);
        output.out(`CA fingerprint (SHA-256): ${agent.fingerprint}${agent.newCa ? '   (new CA: give this to the clients that will pin it)' : ''}\n`);
      }
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      output.err('depad agent: stopping (letting running operations finish)\n');
      await agent.close();
    });
}

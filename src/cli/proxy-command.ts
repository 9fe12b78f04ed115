/**
 * `depad proxy`: runs the built-in proxy in the foreground. It keeps its own route snapshot under
 * `<DEPAD_HOME>/proxy/` (it never opens depad's database) and takes route changes from depad
 * commands over the control socket there, so create, update, stop and destroy reach it at once.
 */
import { Command } from 'commander';
import { proxyStateDir, resolveHome } from '../home.ts';
import { cliLogger, type CommandOptions } from './runtime.ts';
import { keepServingWhenOutputCloses } from './closed-output.ts';
import { processOutput } from './output.ts';
import { portNumber } from './option-parsers.ts';
import { defaultHttpPort } from '../../proxy/listening.ts';
import { addProxyLimitOptions, proxyLimitOptions } from './proxy-limit-options.ts';

type Opts = CommandOptions;


/** Adds `depad proxy` to `parent`. */
export function addProxyCommand(parent: Command): void {
  const cmd = parent
    .command('proxy')
    .description('run the built-in proxy in the foreground (stable endpoints for every deployment)')
    .option('--http-port <port>', 'HTTP listener port (default 80 as root, else 8080)', portNumber)
    .option('--http-host <address>', 'HTTP listener address', '0.0.0.0')
    .option('--tcp-host <address>', 'address the stable TCP ports listen on', '0.0.0.0');
  addProxyLimitOptions(cmd).action(async (opts: Opts, cmd: Command) => {
      const g = cmd.optsWithGlobals<Opts>();
      const output = processOutput(Boolean(g.json));
      const home = g.home ?? resolveHome();
      keepServingWhenOutputCloses();
      const httpPort = (opts.httpPort as number | undefined) ?? defaultHttpPort();
      // Loaded here, so that other commands do not pay for loading the proxy server at start.
      const { startProxy } = await import('../../proxy/index.ts');
      const proxy = await startProxy({
        stateDir: proxyStateDir(home),
        httpPort,
        httpHost: String(opts.httpHost),
        tcpHost: String(opts.tcpHost),
        ...proxyLimitOptions(opts),
        logger: cliLogger(),
      });
      const facts = { pid: process.pid, httpPort: proxy.httpPort, stateDir: proxyStateDir(home) };
      if (output.json) output.out(JSON.stringify({ listening: facts }) + '\n');
      else output.err(`depad proxy: HTTP on ${String(opts.httpHost)}:${proxy.httpPort}, routes in ${facts.stateDir}; Ctrl-C to stop\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      output.err('depad proxy: stopping (draining open requests)\n');
      await proxy.close();
    });
}

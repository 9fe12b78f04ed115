/**
 * `depad agent`: runs the agent in the foreground (see src/agent/agent.ts): the state, the proxy,
 * the HTTPS management API and the local unix socket. On its first start it makes its CA and
 * prints the fingerprint remote clients pin. SIGINT/SIGTERM stop it gracefully.
 */
import { spawn } from 'node:child_process';
import { mergePolicies, policyFromFlags, setActivePolicy, type HostPolicy } from '../config/host-access.ts';
import { forgetAgentPolicy, readPolicyFile, recordAgentPolicy } from '../deploy/host-policy.ts';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { DepadError, ERROR_CODES, type ErrorCode } from '../errors.ts';
import { agentPidPath, resolveHome } from '../home.ts';
import { processOutput, type Output } from './output.ts';
import { cliLogger, type CommandOptions } from './runtime.ts';
import { keepServingWhenOutputCloses } from './closed-output.ts';
import { collect, portNumber, positiveInt } from './option-parsers.ts';
import { addProxyLimitOptions, proxyLimitOptions } from './proxy-limit-options.ts';
import { addAgentRestartCommand } from './agent-restart-command.ts';
import { addAgentInfoCommands } from './agent-info-commands.ts';
import { LETS_ENCRYPT, LETS_ENCRYPT_STAGING } from '../../certs/acme.ts';
import type { AgentAcmeOptions, AgentHandle } from '../agent/agent.ts';
import { addJoinOptions, joinOptions, parseCapacity } from './join-options.ts';


/** Adds `depad agent` to `parent`. */
export function addAgentCommand(parent: Command): void {
  const cmd = parent
    .command('agent')
    .description('run the agent in the foreground: state, proxy, HTTPS management API, local socket')
    .option('--api-port <port>', 'HTTPS API port', portNumber, 8443)
    .option('--api-host <address>', 'HTTPS API address', '0.0.0.0')
    .option('--hostname <name>', 'a DNS name or IP address clients use for this host, put in the certificate (repeatable)', collect, [])
    .option('--http-port <port>', 'proxy HTTP port (default 80 as root, else 8080)', portNumber)
    .option('--http-host <address>', 'proxy HTTP address', '0.0.0.0')
    .option('--tcp-host <address>', 'address the stable TCP ports listen on', '0.0.0.0')
    .option('--https-port <port>', 'proxy HTTPS port (default 443 as root, else 8444; listens when ACME is on or this is given)', portNumber)
    .option('--acme', "get certificates for public route hostnames from Let's Encrypt (HTTP-01 through the proxy's HTTP port, which must be reachable as port 80)")
    .option('--acme-directory <url>', 'ACME directory URL, or letsencrypt / letsencrypt-staging (implies --acme)')
    .option('--acme-email <address>', 'contact address for the ACME account')
    .option('--acme-ca-file <pem>', "CA of the ACME server's own HTTPS, when no public CA signs it (a private CA, Pebble)")
    .option('--acme-renew-days <days>', 'renew certificates with this many days or fewer left', positiveInt, 30)
    .option('--restart-limit <deaths>', 'give up restarting an instance after it died this many times in a row (a run of 5 min resets the count)', positiveInt, 10)
    .option('--restart-backoff <ms>', "first wait before the agent restarts an instance the engine does not; doubles per death, up to 5 min", positiveInt, 1000)
    .option('--allow-host-path <path[:ro]>', 'let configs bind-mount this host path and what is below it (:ro: read-only only; repeatable; README "Host access")', collect, [])
    .option('--allow <key>', 'let configs use a host-reaching key: privileged, devices, network_mode:host, pid:host, ipc:host, userns_mode:host, cap_add:SYS_ADMIN, cap_add:NET_ADMIN, cap_add:ALL, security_opt:unconfined, external-volume:NAME, external-network:NAME (NAME: the engine-side name, or * for any; repeatable)', collect, [])
    .option('--daemon', 'run in the background (log in <home>/agent.log, pid in <home>/agent.pid); returns once it listens');
  addProxyLimitOptions(addJoinOptions(cmd))
    .exitOverride()
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const home = g.home ?? resolveHome();
      const flags = agentPolicyFlags(opts);
      if (opts.daemon) return daemonize(home, output);
      setActivePolicy(mergePolicies(await readPolicyFile(home), flags));
      keepServingWhenOutputCloses();
      // DEPAD_LOG_LEVEL=info logs what the agent does (instances started, health changes, routes set).
      const log = cliLogger();
      // Started by `depad agent restart`: take over the old agent's listeners (src/agent/takeover.ts).
      const takeover = process.env.DEPAD_AGENT_HANDOVER ? (await import('../agent/takeover.ts')).startTakeover(log, home) : undefined;
      let agent: AgentHandle;
      const join = joinOptions(opts);
      const capacity = parseCapacity(opts.capacity as string | undefined);
      try {
        const { startAgent } = await import('../agent/agent.ts');
        takeover?.hello();
        const inherit = takeover ? await takeover.inheritance() : undefined;
        agent = await startAgent({
          home,
          apiPort: opts.apiPort as number,
          apiHost: String(opts.apiHost),
          hostnames: opts.hostname as string[],
          ...(opts.httpPort === undefined ? {} : { httpPort: opts.httpPort as number }),
          httpHost: String(opts.httpHost),
          tcpHost: String(opts.tcpHost),
          ...(opts.httpsPort === undefined ? {} : { httpsPort: opts.httpsPort as number }),
          ...acmeOptions(opts),
          proxyLimits: proxyLimitOptions(opts),
          crashLoop: { limit: opts.restartLimit as number, firstBackoffMs: opts.restartBackoff as number },
          ...(inherit ? { inherit } : {}),
          ...(join ? { join } : {}),
          ...(capacity ? { capacity } : {}),
          log,
        });
      } catch (error) {
        takeover?.failed(error);
        throw error;
      }
      await recordAgentPolicy(home, flags);
      // The pid file first: systemd (Type=forking) reads it once `--daemon` has seen the line below.
      await fs.writeFile(agentPidPath(home), `${process.pid}\n`);
      const facts = { pid: process.pid, apiPort: agent.apiPort, httpPort: agent.httpPort, httpsPort: agent.httpsPort, socket: agent.socketPath, fingerprint: agent.fingerprint, newCa: agent.newCa, ...(agent.cluster ? { cluster: agent.cluster } : {}) };
      if (output.json) output.out(`${JSON.stringify({ listening: facts })}\n`);
      else {
        output.out(`depad agent: API on https://${String(opts.apiHost)}:${agent.apiPort}, local socket ${agent.socketPath}, proxy on :${agent.httpPort}${agent.httpsPort ? ` and :${agent.httpsPort} (HTTPS)` : ''}\n`);
        output.out(`CA fingerprint (SHA-256): ${agent.fingerprint}${agent.newCa ? '   (new CA: give this to the clients that will pin it)' : ''}\n`);
        if (agent.cluster) output.out(`member of the cluster at ${agent.cluster.managerUrl} as host ${agent.cluster.host} (creates go through the manager)\n`);
      }
      takeover?.ready();
      const why = await new Promise<'signal' | 'retired' | 'lost'>((resolve) => {
        process.once('SIGINT', () => resolve('signal'));
        process.once('SIGTERM', () => resolve('signal'));
        void agent.retired.then((started) => resolve(started ? 'retired' : 'lost'));
        // depad agent stop: as SIGTERM.
        void agent.stopRequested.then(() => resolve('signal'));
      });
      if (why === 'retired') {
        output.err(`depad agent: handed over to a new agent; pid ${process.pid} ends\n`);
        // Nothing should be left running; if something is, it must not keep this process alive.
        setTimeout(() => process.exit(0), 5000).unref();
        return;
      }
      if (why === 'lost') {
        // Non-zero, so that a supervisor (systemd Restart=on-failure) starts the agent again.
        setTimeout(() => process.exit(ERROR_CODES.DEPAD_AGENT_RESTART_FAILED.exit), 5000).unref();
        throw new DepadError('DEPAD_AGENT_RESTART_FAILED', `the new agent took over the listeners and failed; this one (pid ${process.pid}) ends`, { hint: 'see the log above, then start the agent again' });
      }
      output.err('depad agent: stopping (letting running operations finish)\n');
      await agent.close();
      await forgetAgentPolicy(home);
      output.err('depad agent: stopped\n');
      // Unless a new agent took over meanwhile (its pid is in the file now).
      if ((await fs.readFile(agentPidPath(home), 'utf8').catch(() => '')).trim() === String(process.pid)) await fs.rm(agentPidPath(home), { force: true });
    });
  addAgentRestartCommand(cmd);
  addAgentInfoCommands(cmd);
}

/** The policy `--allow` and `--allow-host-path` give (DEPAD_USAGE for a bad value). */
function agentPolicyFlags(opts: CommandOptions): HostPolicy {
  try {
    return policyFromFlags(opts.allow as string[], opts.allowHostPath as string[]);
  } catch (error) {
    throw new DepadError('DEPAD_USAGE', (error as Error).message, { hint: 'see depad agent --help and README, "Host access"' });
  }
}

/** The agent's ACME settings from the options (none unless --acme or --acme-directory). */
function acmeOptions(opts: CommandOptions): { acme?: AgentAcmeOptions } {
  const named: Record<string, string> = { letsencrypt: LETS_ENCRYPT, 'letsencrypt-staging': LETS_ENCRYPT_STAGING };
  const directory = opts.acmeDirectory === undefined ? undefined : String(opts.acmeDirectory);
  if (!opts.acme && directory === undefined) return {};
  const directoryUrl = directory === undefined ? LETS_ENCRYPT : (named[directory] ?? directory);
  if (!/^https:\/\//.test(directoryUrl)) {
    throw new DepadError('DEPAD_USAGE', `--acme-directory: ${JSON.stringify(directory)} is not an https:// URL`, { hint: 'e.g. --acme-directory letsencrypt-staging' });
  }
  return {
    acme: {
      directoryUrl,
      renewDays: opts.acmeRenewDays as number,
      ...(opts.acmeEmail === undefined ? {} : { email: String(opts.acmeEmail) }),
      ...(opts.acmeCaFile === undefined ? {} : { serverCaFile: String(opts.acmeCaFile) }),
    },
  };
}

/**
 * Starts the agent again as a detached process (same arguments, without --daemon), its output
 * appended to <home>/agent.log, and returns once it listens, printing what it printed.
 */
async function daemonize(home: string, output: Output): Promise<void> {
  await fs.mkdir(home, { recursive: true, mode: 0o700 });
  const logFile = path.join(home, 'agent.log');
  const log = await fs.open(logFile, 'a', 0o600);
  const start = (await fs.stat(logFile)).size;
  const userArgs = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--') && a !== '--daemon');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, '--', '--json', ...userArgs], { detached: true, stdio: ['ignore', log.fd, log.fd] });
  child.unref();
  await log.close();
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const text = (await fs.readFile(logFile, 'utf8')).slice(start);
    const line = text.split('\n').find((l) => l.startsWith('{"listening"'));
    if (line) {
      const facts = (JSON.parse(line) as { listening: { pid: number; apiPort: number; fingerprint: string; socket: string } }).listening;
      if (output.json) output.out(`${line}\n`);
      else output.out(`depad agent: running in the background, pid ${facts.pid}; API on port ${facts.apiPort}, socket ${facts.socket}; log ${logFile}\nCA fingerprint (SHA-256): ${facts.fingerprint}\n`);
      return;
    }
    if (exited !== undefined) {
      // It reported why (--json: `{"error":…}`): the same error, as if it had run in the foreground.
      const reported = reportedError(text);
      if (reported) throw reported;
    }
    if (exited !== undefined || Date.now() > deadline) {
      throw new DepadError('DEPAD_AGENT_UNAVAILABLE', `the agent did not start${exited !== undefined ? ` (exit ${exited})` : ''}: ${text.trim().split('\n').slice(-3).join(' | ')}`, { hint: `see ${logFile}` });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The last `{"error":{code,message,hint}}` line of the agent's output, as the DepadError it was. */
function reportedError(text: string): DepadError | undefined {
  const line = text.split('\n').reverse().find((l) => l.startsWith('{"error"'));
  if (line === undefined) return undefined;
  try {
    const e = (JSON.parse(line) as { error?: { code?: unknown; message?: unknown; hint?: unknown } }).error;
    if (typeof e?.code !== 'string' || !(e.code in ERROR_CODES) || typeof e.message !== 'string') return undefined;
    return new DepadError(e.code as ErrorCode, e.message, typeof e.hint === 'string' ? { hint: e.hint } : {});
  } catch {
    return undefined;
  }
}

/**
 * `depad certs`: the proxy's HTTPS certificates. With an agent it shows what the agent's ACME
 * manager knows (pending, valid, due for renewal, failed with the CA's reason); with no agent it
 * lists the certificates stored under the home.
 */
import { Command } from 'commander';
import type { CertificateStatus } from '../../certs/acme.ts';
import { CertificateStore } from '../../certs/certificate-store.ts';
import { acmeDir, resolveHome } from '../home.ts';
import { agentFor } from './contexts.ts';
import { printJson, processOutput, table } from './output.ts';
import type { CommandOptions } from './runtime.ts';

/** Adds `depad certs` to `parent`. */
export function addCertCommands(parent: Command): void {
  parent
    .command('certs')
    .alias('certificates')
    .description("the proxy's HTTPS certificates: hostname, state, expiry, issuer, last error")
    .exitOverride()
    .action(async (_opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const agent = await agentFor(g);
      const list: CertificateStatus[] = agent
        ? await agent.request<CertificateStatus[]>({ method: 'GET', path: '/v1/certificates' })
        : (await CertificateStore.open(acmeDir(g.home ?? resolveHome()))).list().map((certificate) => ({ hostname: certificate.hostname, state: 'valid', certificate }));
      if (output.json) return printJson(output, list);
      if (list.length === 0) return output.err('depad: no certificates (the agent gets them by ACME for public route hostnames: depad agent --acme)\n');
      output.out(
        table(
          ['HOSTNAME', 'STATE', 'NOT AFTER', 'ISSUER', 'ERROR'],
          list.map((c) => [c.hostname, c.state, c.certificate ? String(c.certificate.notAfter).slice(0, 10) : '-', c.certificate?.issuer.replace(/^.*CN=/, '') ?? '-', c.error ?? '-']),
        ),
      );
    });
}

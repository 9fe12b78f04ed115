/**
 * A child process for test/proxy-handover.test.ts: takes over a proxy's listening sockets sent
 * over IPC (`{role, port?}` + handle, then `{done}`), starts a proxy on them, says `serving` with
 * its pid, adopts the routes it is sent (`{routes}`), and closes on `{stop}`.
 *   fork('test/helpers/proxy-heir.ts', [stateDir])
 */
import { silentLogger } from '../../src/logger.ts';
import { startProxy } from '../../proxy/index.ts';
import type { ListenHandle, ProxyHandle, RouteHandover } from '../../proxy/index.ts';

const handles = new Map<string, ListenHandle>();
let routes!: (value: RouteHandover) => void;
const routesP = new Promise<RouteHandover>((resolve) => (routes = resolve));
let proxy: ProxyHandle | undefined;
process.on('message', (message: { role?: string; port?: number; done?: boolean; routes?: RouteHandover; stop?: boolean }, handle: unknown) => {
  if (message.role !== undefined) handles.set(message.port === undefined ? message.role : `tcp:${message.port}`, handle as ListenHandle);
  else if (message.done) void start();
  else if (message.routes) routes(message.routes);
  else if (message.stop) void proxy?.close().then(() => process.disconnect());
});

async function start(): Promise<void> {
  const tcp = new Map<number, ListenHandle>();
  for (const [key, handle] of handles) if (key.startsWith('tcp:')) tcp.set(Number(key.slice(4)), handle);
  proxy = await startProxy({
    stateDir: process.argv[2] as string,
    tcpHost: '127.0.0.1',
    logger: silentLogger,
    inherit: { http: handles.get('http') as ListenHandle, control: handles.get('control') as ListenHandle, tcp, routes: routesP },
  });
  process.send?.({ serving: process.pid });
  await proxy.controlReady;
  process.send?.({ control: true });
}

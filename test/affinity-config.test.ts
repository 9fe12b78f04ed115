/**
 * `x-depad.affinity: cookie`: read with positions, refused where it cannot apply, written back by
 * `depad config`, and carried by render to the proxy route (which the proxy validates).
 */
import test from 'ava';
import { DepadError } from '../src/errors.ts';
import { parseConfig } from '../src/config/index.ts';
import { normalizedCompose } from '../src/config/normalize.ts';
import { render } from '../src/render/render.ts';
import { renderRoutes } from '../src/render/routes.ts';
import { parseRoute } from '../proxy/routes.ts';

const who = { id: 'a'.repeat(32), name: 'shop', revision: 1, rootDir: '/var/lib/depad/deployments/' + 'a'.repeat(32), domain: 'localhost' };

function fails(t: import('ava').ExecutionContext, text: string): string {
  const error = t.throws(() => parseConfig(text, 'cfg.yml', {}));
  if (!(error instanceof DepadError)) throw new Error(`expected a DepadError, got ${String(error)}`);
  return error.message;
}

test('x-depad.affinity: cookie on an http route reaches the route snapshot; none and unset give none', (t) => {
  const spec = parseConfig(
    [
      'services:',
      '  web:',
      '    image: app:1',
      '    x-depad: { expose: http, port: 8080, affinity: cookie }',
      '  api:',
      '    image: app:1',
      '    x-depad: { expose: http, port: 8080, affinity: none }',
      '',
    ].join('\n'),
    'cfg.yml',
    {},
  );
  t.deepEqual(spec.services.web!.depad.route, { kind: 'http', port: 8080, hostnames: [], affinity: 'cookie' });
  t.deepEqual(spec.services.api!.depad.route, { kind: 'http', port: 8080, hostnames: [] });
  const compose = normalizedCompose(spec) as { services: Record<string, { 'x-depad': Record<string, unknown> }> };
  t.is(compose.services.web!['x-depad'].affinity, 'cookie', 'depad config writes it back');
  t.is(compose.services.api!['x-depad'].affinity, undefined);
  const ports = [
    { service: 'web', target: 8080, protocol: 'tcp' as const, host: 3001, role: 'instance' as const, instance: 1 },
    { service: 'api', target: 8080, protocol: 'tcp' as const, host: 3002, role: 'instance' as const, instance: 1 },
  ];
  const r = render(spec, who, ports);
  const routes = renderRoutes(r.services, { name: 'shop', instances: {}, ports, live: () => true });
  const web = routes.find((route) => route.service === 'web')!;
  t.is(web.affinity, 'cookie');
  t.is(routes.find((route) => route.service === 'api')!.affinity, undefined);
  t.is(parseRoute(JSON.parse(JSON.stringify(web)), 'routes[0]').affinity, 'cookie', 'the proxy takes it');
});

test('x-depad.affinity problems are located: a bad value, a tcp route, an unrouted service', (t) => {
  const bad = (extra: string) => fails(t, `services:\n  web:\n    image: app:1\n    ports: ["80"]\n    x-depad:\n${extra}`);
  t.regex(bad('      expose: http\n      affinity: ip\n'), /cfg\.yml:7:17 services\.web\.x-depad\.affinity: affinity must be cookie or none, found "ip"/);
  t.regex(bad('      expose: tcp\n      affinity: cookie\n'), /cfg\.yml:7:17 services\.web\.x-depad\.affinity: affinity: cookie applies to expose: http/);
  t.regex(bad('      affinity: cookie\n'), /cfg\.yml:6:7 services\.web\.x-depad\.affinity: affinity only applies with expose/);
  t.regex(bad('      expose: http\n      afinity: cookie\n'), /services\.web\.x-depad\.afinity: unknown key.*affinity/s);
});

test('the proxy refuses an affinity it does not know, and affinity on a tcp route', (t) => {
  const route = { id: 'shop/web', deployment: 'shop', service: 'web', kind: 'http', hosts: ['a.test'], upstreams: [] };
  t.throws(() => parseRoute({ ...route, affinity: 'ip' }, 'routes[0]'), { message: /routes\[0\]\.affinity: must be "cookie"/ });
  t.throws(() => parseRoute({ ...route, kind: 'tcp', hosts: [], listenPort: 5000, affinity: 'cookie' }, 'routes[0]'), { message: /only http routes/ });
});

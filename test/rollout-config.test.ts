/** `deploy.update_config` and `deploy.rollback_config` as read (pure: no engine). */
import test from 'ava';
import { parseConfig } from '../src/config/index.ts';
import { rolloutDefaults } from '../src/config/service-rollout.ts';
import { problems } from './helpers/config-problems.ts';

const svc = (deploy: string, extra = '') => `services:\n  web:\n    image: a:1\n${extra}    deploy:\n${deploy}`;

test('update_config and rollback_config: every key read, defaults filled by rolloutDefaults', (t) => {
  const spec = parseConfig(
    svc('      update_config: {parallelism: 2, delay: 5s, order: start-first, failure_action: pause, monitor: 10s, max_failure_ratio: 0.25}\n      rollback_config: {parallelism: 0, order: stop-first, failure_action: continue}\n'),
    'cfg.yml',
    {},
  );
  t.deepEqual(spec.services['web']!.rollout, {
    update: { parallelism: 2, delayMs: 5000, order: 'start-first', failureAction: 'pause', monitorMs: 10_000, maxFailureRatio: 0.25 },
    rollback: { parallelism: 0, order: 'stop-first', failureAction: 'continue' },
  });
  t.deepEqual(rolloutDefaults(undefined, false), { parallelism: 1, delayMs: 0, order: 'start-first', failureAction: 'rollback', monitorMs: 0, maxFailureRatio: 0 });
  t.deepEqual(rolloutDefaults(undefined, true), { parallelism: 1, delayMs: 0, order: 'stop-first', failureAction: 'rollback', monitorMs: 0, maxFailureRatio: 0 });
  t.is(rolloutDefaults({ order: 'start-first' }, true).order, 'start-first', 'the file\'s order wins over the volumes default');
});

const refusals: Array<[string, string, RegExp]> = [
  ['bad order', '      update_config: {order: sideways}\n', /cfg\.yml:5:\d+ services\.web\.deploy\.update_config\.order: order must be start-first or stop-first, found "sideways"/],
  ['rollback cannot roll back', '      rollback_config: {failure_action: rollback}\n', /rollback_config\.failure_action: failure_action must be pause, continue \(a rollback cannot roll back\)/],
  ['ratio above 1', '      update_config: {max_failure_ratio: 2}\n', /max_failure_ratio must be a number from 0 to 1, found 2/],
  ['negative parallelism', '      update_config: {parallelism: -1}\n', /update_config\.parallelism/],
  ['delay without unit', '      update_config: {delay: 5}\n', /update_config\.delay: expected a duration with a unit/],
  ['unknown key, close to one', '      update_config: {paralelism: 2}\n', /did you mean 'parallelism'/],
];
for (const [title, deploy, pattern] of refusals) {
  test(`update_config refused: ${title}`, (t) => {
    t.regex(problems(svc(deploy)), pattern);
  });
}

test('update_config refused: start-first with published ports names the way out', (t) => {
  t.regex(problems(svc('      update_config: {order: start-first}\n', '    ports: ["8080"]\n')), /update_config\.order: order: start-first starts the new instance beside the old one, and the host ports this service publishes \(ports:\) can be bound by one of them only; use stop-first, or reach it through the proxy \(x-depad\.expose\)/);
});

test('budget: every replica counts, and the surge of a start-first rolling batch', (t) => {
  const text = (replicas: number, parallelism = 1) =>
    `services:\n  web:\n    image: a:1\n    x-depad: {expose: http, port: 8080}\n    deploy:\n      replicas: ${replicas}\n      update_config: {parallelism: ${parallelism}}\n      resources: {limits: {cpus: 0.25}}\nx-depad:\n  resources: {cpus: 1}\n`;
  t.is(problems(text(3)), '', '3 × 0.25 + a batch of 1 fits 1 CPU');
  t.regex(problems(text(3, 2)), /x-depad\.resources\.cpus: the services' cpus limits add up to 1\.25 CPUs \(web 3 × 0\.25 CPUs, and 2 × 0\.25 CPUs while web rolls start-first\), over the budget of 1 CPUs; .*run fewer replicas or roll fewer at a time/);
  t.regex(problems(text(5)), /add up to 1\.5 CPUs \(web 5 × 0\.25 CPUs/);
});

import test from 'ava';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ConfigError, DepadError } from '../src/errors.ts';
import {
  interpolate,
  loadConfig,
  parseConfig,
  parseEnvAssignments,
  parseEnvText,
  readEnvFile,
} from '../src/config/index.ts';
import type { ConfigWarning, DeploymentSpec, ServiceSpec } from '../src/config/index.ts';

const fixtures = fileURLToPath(new URL('./fixtures/config/', import.meta.url));

/** The defaults every service gets; tests spread their own fields over it. */
function service(name: string, image: string, extra: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name,
    image,
    environment: {},
    ports: [],
    expose: [],
    volumes: [],
    networks: { default: { aliases: [] } },
    dependsOn: {},
    resources: {},
    labels: {},
    tmpfs: [],
    capAdd: [],
    capDrop: [],
    extraHosts: [],
    depad: { drainTimeoutMs: 30_000, pauseTimeoutMs: 30_000 },
    ...extra,
  };
}

/** Parses `text` as cfg.yml, expecting it to fail; returns the error. */
function fails(t: import('ava').ExecutionContext, text: string, env: Record<string, string> = {}): DepadError {
  const error = t.throws(() => parseConfig(text, 'cfg.yml', env));
  if (!(error instanceof DepadError)) throw new Error(`expected a DepadError, got ${String(error)}`);
  return error;
}

// ---------------------------------------------------------------------------------------------
// Valid configs

test('loadConfig reads the full-featured fixture, its env_file and existing bind sources', async (t) => {
  const file = join(fixtures, 'full', 'depad.yml');
  const warnings: ConfigWarning[] = [];
  const spec = await loadConfig(file, { DB_PASSWORD: 's3cret' }, { warn: (w) => warnings.push(w) });
  t.deepEqual(warnings, []);
  t.is(spec.file, file);
  t.true(spec.source.startsWith('# A config using most of what depad supports.'));
  t.deepEqual(Object.keys(spec.services), ['db', 'web']);
  t.deepEqual(
    spec.services['web'],
    service('web', 'registry.example.com/shop/web:1.0', {
      command: ['/app/bin/web', '--port', '8080'],
      environment: { API_URL: 'http://api:8080', EMPTY: '', GREETING: 'hello', LOG_LEVEL: 'debug' },
      ports: [
        { target: 8080, protocol: 'tcp' },
        { target: 9090, protocol: 'udp' },
      ],
      volumes: [
        { type: 'bind', source: 'conf', target: '/etc/web', readOnly: true },
        { type: 'bind', source: 'missing', target: '/srv/missing', readOnly: false },
        { type: 'volume', source: 'sessions', target: '/var/lib/sessions', readOnly: false },
      ],
      networks: { back: { aliases: [] }, front: { aliases: ['www'] } },
      dependsOn: { db: { condition: 'service_healthy' } },
      healthcheck: {
        test: ['CMD', '/app/bin/probe', 'http://localhost:8080/health'],
        intervalMs: 5000,
        timeoutMs: 2000,
        retries: 3,
        startPeriodMs: 60_000,
      },
      restart: { policy: 'unless-stopped' },
      labels: { 'com.example.team': 'shop' },
    }),
  );
  t.deepEqual(
    spec.services['db'],
    service('db', 'postgres:16', {
      environment: { POSTGRES_PASSWORD: 's3cret' },
      networks: { back: { aliases: [] } },
      volumes: [{ type: 'volume', source: 'pgdata', target: '/var/lib/postgresql/data', readOnly: false }],
      healthcheck: { test: ['CMD-SHELL', 'pg_isready -U postgres'] },
      resources: { cpus: 0.5, memoryBytes: 256 * 1024 * 1024 },
    }),
  );
  t.deepEqual(spec.networks, {
    back: { name: 'back', driver: 'bridge', internal: true, driverOpts: {}, labels: {} },
    front: { name: 'front', driver: 'bridge', internal: false, driverOpts: {}, labels: {} },
  });
  t.deepEqual(spec.volumes, {
    pgdata: { name: 'pgdata', driver: 'local', driverOpts: {}, labels: {} },
    sessions: { name: 'sessions', driver: 'local', driverOpts: {}, labels: {} },
  });
  t.deepEqual(spec.depad, { hostIp: '0.0.0.0', startTimeoutMs: 90_000, labels: {}, workflows: {} });
  t.deepEqual(spec.files, ['conf']);
  t.deepEqual(spec.positions.get('services.web.image'), { file, line: 10, column: 12 });
  t.deepEqual(spec.positions.get('services.web.ports[0]'), { file, line: 17, column: 9 });
  t.deepEqual(spec.positions.get('services.web.restart'), { file, line: 3, column: 12 });
  t.deepEqual(spec.positions.get('services.db'), { file, line: 37, column: 3 });
});

test('a minimal config gets every default', (t) => {
  const spec = parseConfig('services:\n  app:\n    image: busybox\n', 'cfg.yml', {});
  t.deepEqual(spec.services, { app: service('app', 'busybox') });
  t.deepEqual(spec.networks, {
    default: { name: 'default', driver: 'bridge', internal: false, driverOpts: {}, labels: {} },
  });
  t.deepEqual(spec.volumes, {});
  t.deepEqual(spec.depad, { hostIp: '0.0.0.0', startTimeoutMs: 120_000, labels: {}, workflows: {} });
  t.deepEqual(spec.files, []);
  t.deepEqual(spec.positions.get('services.app'), { file: 'cfg.yml', line: 2, column: 3 });
  t.deepEqual(spec.positions.get('services.app.image'), { file: 'cfg.yml', line: 3, column: 12 });
});

test('the default network is only added when a service joins it', (t) => {
  const spec = parseConfig('services:\n  a:\n    image: x\n    networks: [n]\nnetworks:\n  n:\n', 'cfg.yml', {});
  t.deepEqual(Object.keys(spec.networks), ['n']);
  const declared = parseConfig(
    'services:\n  a:\n    image: x\n    networks: [n]\nnetworks:\n  n:\n  default:\n    driver_opts: {mtu: 1400}\n',
    'cfg.yml',
    {},
  );
  t.deepEqual(declared.networks['default'], { name: 'default', driver: 'bridge', internal: false, driverOpts: { mtu: '1400' }, labels: {} });
});

test('every supported service key is read', (t) => {
  const text = [
    'version: "3.9"',
    'services:',
    '  web:',
    '    image: nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    `    entrypoint: /bin/sh -c 'exec "$$0" "$$@"' "a b" c\\ d`,
    '    command: ""',
    '    expose: [3000, "3001/udp"]',
    '    restart: on-failure:5',
    '    labels: ["a.b=c", "flag"]',
    '    user: 1000',
    '    working_dir: /srv',
    '    tmpfs: /run',
    '    cap_add: [NET_RAW]',
    '    cap_drop: [ALL]',
    '    extra_hosts: ["db.local:10.0.0.5", "v6=::1", "gw:host-gateway"]',
    '    stop_grace_period: 1m30s',
    '    stop_signal: SIGQUIT',
    '    deploy: {resources: {limits: {cpus: "2", memory: 1g, pids: 64}}}',
    '    healthcheck: {disable: true}',
    '    x-anything: {ignored: [1, 2]}',
    'x-depad: {host_ip: "::1"}',
  ].join('\n');
  const spec = parseConfig(text, 'cfg.yml', {});
  t.deepEqual(
    spec.services['web'],
    service('web', 'nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', {
      entrypoint: ['/bin/sh', '-c', 'exec "$0" "$@"', 'a b', 'c d'],
      command: [],
      expose: [
        { target: 3000, protocol: 'tcp' },
        { target: 3001, protocol: 'udp' },
      ],
      restart: { policy: 'on-failure', maxRetries: 5 },
      labels: { 'a.b': 'c', flag: '' },
      user: '1000',
      workingDir: '/srv',
      tmpfs: ['/run'],
      capAdd: ['NET_RAW'],
      capDrop: ['ALL'],
      extraHosts: ['db.local:10.0.0.5', 'v6:::1', 'gw:host-gateway'],
      stopGracePeriodMs: 90_000,
      stopSignal: 'SIGQUIT',
      resources: { cpus: 2, memoryBytes: 1024 ** 3, pids: 64 },
      healthcheck: 'disabled',
    }),
  );
  t.is(spec.depad.hostIp, '::1');
});

test('environment: map values of every scalar type, list form, and env_file merged first', (t) => {
  const text = [
    'services:',
    '  app:',
    '    image: app:1',
    '    env_file: [base.env, {path: ./extra.env, required: false}, ./local.env]',
    '    environment:',
    '      NUM: 1.50',
    '      BOOL: true',
    '      NULL:',
    '      SHARED: from-environment',
  ].join('\n');
  const spec = parseConfig(text, 'cfg.yml', {}, {
    envFiles: { 'base.env': 'SHARED=base\nBASE=1\nLOCAL=base\n', 'local.env': 'LOCAL=local\n' },
  });
  t.deepEqual(spec.services['app']?.environment, {
    BASE: '1',
    BOOL: 'true',
    LOCAL: 'local',
    NUM: '1.50',
    SHARED: 'from-environment',
  });
  const list = parseConfig('services:\n  app:\n    image: a\n    environment: ["A=1=2", "B=", C]\n', 'cfg.yml', {});
  t.deepEqual(list.services['app']?.environment, { A: '1=2', B: '' }, 'C alone is taken from the environment, and dropped when unset (compose)');
  const inherited = parseConfig('services:\n  app:\n    image: a\n    environment: [C]\n', 'cfg.yml', { C: 'from-env' });
  t.deepEqual(inherited.services['app']?.environment, { C: 'from-env' });
});

test('interpolation follows docker-compose rules and uses only the env argument', (t) => {
  process.env['DEPAD_TEST_FROM_PROCESS'] = 'leak';
  const warnings: ConfigWarning[] = [];
  const text = [
    'services:',
    '  app:',
    '    image: "app:${TAG}"',
    '    environment:',
    '      PLAIN: $NAME-x',
    '      BRACED: ${NAME}',
    '      DEF_EMPTY: ${EMPTY:-fallback}',
    '      DEF_EMPTY_DASH: ${EMPTY-fallback}',
    '      DEF_UNSET: ${UNSET-fallback}',
    '      NESTED: ${UNSET:-${NAME}.${TAG}}',
    '      REQUIRED: ${NAME:?needed}',
    '      PLUS: ${NAME:+yes}',
    '      DOLLAR: $$HOME and $${NAME}',
    '      MISSING: "[${NOPE}]"',
    '      PROCESS: "${DEPAD_TEST_FROM_PROCESS}"',
    '      MISSING_AGAIN: $NOPE',
  ].join('\n');
  const spec = parseConfig(text, 'cfg.yml', { TAG: '2.1', NAME: 'shop', EMPTY: '' }, { warn: (w) => warnings.push(w) });
  t.is(spec.services['app']?.image, 'app:2.1');
  t.deepEqual(spec.services['app']?.environment, {
    BRACED: 'shop',
    DEF_EMPTY: 'fallback',
    DEF_EMPTY_DASH: '',
    DEF_UNSET: 'fallback',
    DOLLAR: '$HOME and ${NAME}',
    MISSING: '[]',
    MISSING_AGAIN: '',
    NESTED: 'shop.2.1',
    PLAIN: 'shop-x',
    PLUS: 'yes',
    PROCESS: '',
    REQUIRED: 'shop',
  });
  t.deepEqual(
    warnings.map((w) => `${w.line}:${w.column} ${w.path} ${w.message}`),
    [
      '14:16 services.app.environment.MISSING variable NOPE is not set; using an empty string (pass --env NOPE=… or add it to the .env beside the file)',
      '15:16 services.app.environment.PROCESS variable DEPAD_TEST_FROM_PROCESS is not set; using an empty string (pass --env DEPAD_TEST_FROM_PROCESS=… or add it to the .env beside the file)',
    ],
  );
  delete process.env['DEPAD_TEST_FROM_PROCESS'];
});

test('interpolate() on its own', (t) => {
  const env: Record<string, string> = { A: 'a', E: '' };
  const lookup = (n: string) => env[n];
  t.deepEqual(interpolate('${A}${B}$A$B', lookup), { ok: true, value: 'aa', unset: ['B'] });
  t.deepEqual(interpolate('${E?must}', lookup), { ok: true, value: '', unset: [] });
  t.like(interpolate('${E:?must}', lookup), { ok: false, message: 'required variable E is empty: must (pass --env E=… or --env-file)' });
  t.like(interpolate('${B?}', lookup), { ok: false, message: 'required variable B is not set (pass --env B=… or --env-file)' });
  t.deepEqual(interpolate('cost: $5, $(seq 1 3), $2a$14$.x, end$', lookup), { ok: true, value: 'cost: $5, $(seq 1 3), $2a$14$.x, end$', unset: [] }, "a '$' before no name is kept, as compose keeps it");
  t.like(interpolate('${1A}', lookup), { ok: false });
  t.like(interpolate('${A:x}', lookup), { ok: false });
});

test('keys are not interpolated, x- sections are ignored, merge keys apply', (t) => {
  const text = [
    'x-env: &env',
    '  ONE: "1"',
    '  TWO: "2"',
    'x-unused: "${NOT_CHECKED:?never read}"',
    'services:',
    '  app:',
    '    image: a',
    '    labels:',
    '      "${KEY}": v',
    '    environment:',
    '      <<: *env',
    '      TWO: two',
  ].join('\n');
  const spec = parseConfig(text, 'cfg.yml', { KEY: 'k' });
  t.deepEqual(spec.services['app']?.labels, { '${KEY}': 'v' });
  t.deepEqual(spec.services['app']?.environment, { ONE: '1', TWO: 'two' });
});

test('the same text and env give equal, frozen, sorted results', (t) => {
  const text = 'services:\n  zeta:\n    image: z\n    environment: {B: "2", A: "1"}\n  alpha:\n    image: a\n';
  const a = parseConfig(text, 'cfg.yml', { X: '1' });
  const b = parseConfig(text, 'cfg.yml', { X: '1' });
  t.deepEqual(a, b);
  t.deepEqual([...a.positions.entries()], [...b.positions.entries()]);
  t.deepEqual(Object.keys(a.services), ['alpha', 'zeta']);
  t.deepEqual(Object.keys(a.services['zeta']?.environment ?? {}), ['A', 'B']);
  t.true(Object.isFrozen(a));
  t.true(Object.isFrozen(a.services));
  t.true(Object.isFrozen(a.services['zeta']?.environment));
  t.true(Object.isFrozen(a.services['zeta']?.ports));
  t.true(Object.isFrozen(a.positions.get('services.zeta')));
  t.throws(() => (a.positions as Map<string, unknown>).set('x', 1), { instanceOf: TypeError });
  t.throws(() => {
    (a.services as Record<string, unknown>)['new'] = 1;
  });
});

test('env file keys that look like prototype properties stay ordinary keys', (t) => {
  const spec = parseConfig('services:\n  a:\n    image: a\n    environment: ["__proto__=x", "constructor=y"]\n', 'cfg.yml', {});
  const env = spec.services['a']?.environment ?? {};
  t.deepEqual(Object.keys(env), ['__proto__', 'constructor']);
  t.is(Object.getPrototypeOf(env), Object.prototype);
});

// ---------------------------------------------------------------------------------------------
// Malformed configs: each names file:line:column and the key path, with the fix.

const base = (lines: string[]) => ['services:', '  web:', '    image: nginx:1.27', ...lines].join('\n');

interface Bad {
  title: string;
  text: string;
  env?: Record<string, string>;
  code?: 'DEPAD_CONFIG_INVALID' | 'DEPAD_CONFIG_SYNTAX';
  /** `line:column path` (or `line:column:` for YAML syntax errors). */
  at: string;
  says: RegExp;
}

const BAD: Bad[] = [
  { title: 'tab indentation', text: 'services:\n  web:\n\timage: x\n', code: 'DEPAD_CONFIG_SYNTAX', at: '3:1:', says: /Tabs are not allowed/ },
  { title: 'bad indentation', text: 'services:\n  web:\n    image: x\n   ports: []\n', code: 'DEPAD_CONFIG_SYNTAX', at: '4:', says: /./ },
  { title: 'unclosed flow list', text: 'services:\n  web:\n    image: x\n    ports: ["80"\n', code: 'DEPAD_CONFIG_SYNTAX', at: '', says: /flow sequence|\]/ },
  { title: 'top level is a list', text: '- services\n', code: 'DEPAD_CONFIG_SYNTAX', at: '1:1:', says: /top level must be a map/ },
  { title: 'duplicate key', text: base(['    image: other']), at: '4:5 services.web.image', says: /duplicate key 'image' \(first given at line 3, column 5\)/ },
  { title: 'unknown top-level key', text: base(['foo: 1']), at: '4:1 foo', says: /unknown key 'foo' at the top level; supported: services, networks, volumes, version, x-depad/ },
  { title: 'name at top level that compose refuses', text: `name: Shop\n${base([])}`, at: '1:7 name', says: /"Shop" is not a valid project name: use lowercase letters/ },
  { title: 'no services', text: 'networks: {}\n', at: '1:1 services', says: /no services: key/ },
  { title: 'services empty', text: 'services: {}\n', at: '1:1 services', says: /services: is empty/ },
  { title: 'services is a list', text: 'services:\n  - web\n', at: '2:3 services', says: /expected a map of service name/ },
  { title: 'unknown service key', text: base(['    zzqx: web']), at: '4:5 services.web.zzqx', says: /unknown key 'zzqx' in services\.web; supported: image, command, entrypoint/ },
  { title: 'misspelt service key', text: base(['    hostnam: web']), at: '4:5 services.web.hostnam', says: /unknown key 'hostnam' in services\.web; did you mean 'hostname'\?/ },
  { title: 'build: network host', text: base(['    build:', '      network: host']), at: '5:16 services.web.build.network', says: /network: host gives the build the host's network.*network: default/ },
  { title: 'build: ssh refused', text: base(['    build:', '      ssh: [default]']), at: '5:7 services.web.build.ssh', says: /forwards an SSH agent/ },
  { title: 'build: remote context', text: base(['    build: https://github.com/x/y.git']), at: '4:12 services.web.build', says: /remote \(git\/URL\) context/ },
  { title: 'build: two Dockerfiles', text: base(['    build:', '      dockerfile: D', '      dockerfile_inline: FROM x']), at: '6:26 services.web.build.dockerfile_inline', says: /not both/ },
  { title: 'build: other platform', text: base(['    build:', '      platforms: [linux/s390x, linux/amd64]']), at: '5:7 services.web.build.platforms', says: /this host's platform only/ },
  { title: 'build: unknown key', text: base(['    build:', '      contxt: .']), at: '5:7 services.web.build.contxt', says: /unknown key 'contxt'/ },
  { title: 'missing image', text: 'services:\n  web:\n    command: [sh]\n', at: '2:3 services.web', says: /has no image/ },
  { title: 'bad image reference', text: 'services:\n  web:\n    image: "Nginx:latest"\n', at: '3:12 services.web.image', says: /must be lowercase/ },
  { title: 'service name with a space', text: 'services:\n  "my web":\n    image: x\n', at: '2:3 services["my web"]', says: /characters other than letters, digits, '\.', '_' and '-'.*as in compose/ },
  { title: 'service name too long', text: `services:\n  ${'a'.repeat(171)}:\n    image: x\n`, at: `2:3 services.${'a'.repeat(171)}`, says: /171 characters long.*1-170 characters/ },
  { title: 'host range longer than the container range', text: base(['    ports:', '      - "9090-9092:8080-8081"']), at: '5:9 services.web.ports[0]', says: /maps 2 container ports onto 3 host ports; the two ranges must be as long/ },
  { title: 'host address not an IP', text: base(['    ports: ["localhost:80:8080"]']), at: '4:13 services.web.ports[0]', says: /must be an IPv4 or IPv6 address/ },
  { title: 'published out of range in long syntax', text: base(['    ports:', '      - target: 80', '        published: 80800']), at: '6:20 services.web.ports[0].published', says: /a host port must be from 1 to 65535/ },
  { title: 'port out of range', text: base(['    ports: [70000]']), at: '4:13 services.web.ports[0]', says: /from 1 to 65535/ },
  { title: 'port zero in long syntax', text: base(['    ports: [{target: 0}]']), at: '4:22 services.web.ports[0].target', says: /from 1 to 65535/ },
  { title: 'bad port protocol', text: base(['    ports: ["53/sctp"]']), at: '4:13 services.web.ports[0]', says: /protocol must be tcp or udp, found "sctp"/ },
  { title: 'expose with a host port', text: base(['    expose: ["80:3000"]']), at: '4:14 services.web.expose[0]', says: /expose takes container ports only/ },
  { title: 'undeclared named volume', text: base(['    volumes: ["data:/data"]']), at: '4:15 services.web.volumes[0]', says: /volume 'data' is not declared; add it under the top-level volumes: key/ },
  { title: 'absolute bind mount', text: base(['    volumes:', '      - /etc/passwd:/etc/passwd:ro']), at: '5:9 services.web.volumes[0]', says: /bind mounts must stay inside the deployment's root directory/ },
  { title: '../ escape bind mount (a host path)', text: base(['    volumes:', '      - ./conf/../../secrets:/s']), at: '5:9 services.web.volumes[0]', says: /"\.\/conf\/\.\.\/\.\.\/secrets" leaves the config file's directory: it is \/\S*\/secrets, a path on the host.*depad agent --allow-host-path \/\S*\/secrets, or "hostPaths"/ },
  { title: 'escape in long-syntax bind', text: base(['    volumes:', '      - {type: bind, source: .., target: /up}']), at: '5:30 services.web.volumes[0].source', says: /bind mounts must stay inside/ },
  { title: 'anonymous volume with a bad option', text: base(['    volumes:', '      - /var/cache:q']), at: '5:9 services.web.volumes[0]', says: /mount target must be an absolute path inside the container, such as \/data; found "q"/ },
  { title: 'relative volume target', text: `${base(['    volumes:', '      - data:data'])}\nvolumes:\n  data:\n`, at: '5:9 services.web.volumes[0]', says: /mount target must be an absolute path/ },
  { title: 'bad volume mode', text: base(['    volumes: ["./c:/c:q"]']), at: '4:15 services.web.volumes[0]', says: /mount option "q" is not one of ro, rw, z, Z, nocopy/ },
  { title: 'unknown depends_on service', text: base(['    depends_on: [cache]']), at: '4:18 services.web.depends_on[0]', says: /'cache', which is not a service in this file; services: web/ },
  { title: 'depends on itself', text: base(['    depends_on: {web: {condition: service_started}}']), at: '4:18 services.web.depends_on.web', says: /depends on itself/ },
  {
    title: 'dependency cycle',
    text: ['services:', '  a:', '    image: x', '    depends_on: [b]', '  b:', '    image: x', '    depends_on:', '      c: {}', '  c:', '    image: x', '    depends_on: [a]'].join('\n'),
    at: '11:18 services.c.depends_on[0]',
    says: /dependency cycle: a -> b -> c -> a/,
  },
  { title: 'bad depends_on condition', text: `${base(['    depends_on:', '      db:', '        condition: healthy'])}\n  db:\n    image: pg\n`, at: '6:20 services.web.depends_on.db.condition', says: /condition must be service_started, service_healthy, service_completed_successfully/ },
  { title: 'required: not a boolean', text: `${base(['    depends_on: {db: {required: maybe}}'])}\n  db:\n    image: pg\n`, at: '4:33 services.web.depends_on.db.required', says: /expected true or false/ },
  { title: 'bad restart', text: base(['    restart: sometimes']), at: '4:14 services.web.restart', says: /restart must be one of no, always, on-failure, on-failure:N/ },
  { title: 'restart false (a boolean)', text: base(['    restart: false']), at: '4:14 services.web.restart', says: /expected a restart policy.*found the boolean false/ },
  { title: 'bad duration', text: base(['    stop_grace_period: 10 seconds']), at: '4:24 services.web.stop_grace_period', says: /expected a duration such as "10s"/ },
  { title: 'duration without unit', text: base(['    healthcheck: {test: "true", interval: 30}']), at: '4:43 services.web.healthcheck.interval', says: /duration with a unit, such as "30s"/ },
  { title: 'bad memory', text: base(['    deploy: {resources: {limits: {memory: 12 parsecs}}}']), at: '4:43 services.web.deploy.resources.limits.memory', says: /expected a memory size such as "512m"/ },
  { title: 'memory below 6 MiB', text: base(['    deploy: {resources: {limits: {memory: 4m}}}']), at: '4:43 services.web.deploy.resources.limits.memory', says: /at least 6m/ },
  { title: 'bad cpus', text: base(['    deploy: {resources: {limits: {cpus: "-1"}}}']), at: '4:41 services.web.deploy.resources.limits.cpus', says: /greater than 0/ },
  { title: 'unknown key under deploy', text: base(['    deploy:', '      zzqx: 3']), at: '5:7 services.web.deploy.zzqx', says: /unknown key 'zzqx' in services\.web\.deploy; supported: resources/ },
  { title: 'reserved depad. label', text: base(['    labels:', '      depad.project: mine']), at: '5:22 services.web.labels["depad.project"]', says: /reserved for depad's own labels/ },
  { title: 'reserved label in list form', text: base(['    labels: ["depad.x=1"]']), at: '4:14 services.web.labels[0]', says: /reserved/ },
  { title: 'undeclared network', text: base(['    networks: [backend]']), at: '4:16 services.web.networks[0]', says: /network 'backend' is not declared; add it under the top-level networks: key/ },
  { title: 'external network', text: `${base(['    networks: [shared]'])}\nnetworks:\n  shared:\n    external: true\n`, at: '7:5 networks.shared.external', says: /external network shared is not the deployment's own.*depad agent --allow external-network:shared, or "allow": \["external-network:shared"\]/ },
  { title: 'external volume', text: `${base([])}\nvolumes:\n  data:\n    external: true\n`, at: '6:5 volumes.data.external', says: /external volume data is not the deployment's own.*depad agent --allow external-volume:data, or "allow": \["external-volume:data"\]/ },
  { title: 'bad network name', text: `${base([])}\nnetworks:\n  front end:\n`, at: '5:3 networks["front end"]', says: /network name 'front end' is invalid.*letters, digits, '\.', '_' and '-', as in compose/ },
  { title: 'missing required variable', text: base(['    environment:', '      PASSWORD: ${DB_PASSWORD:?set it}']), at: '5:17 services.web.environment.PASSWORD', says: /required variable DB_PASSWORD is not set: set it \(pass --env DB_PASSWORD=… or --env-file\)/ },
  { title: 'unclosed ${', text: base(['    command: echo ${HOME']), at: '4:14 services.web.command', says: /unclosed '\$\{'/ },
  { title: 'env_file escaping the dir', text: base(['    env_file: ../secrets.env']), at: '4:15 services.web.env_file', says: /env_file must be inside the config file's directory/ },
  { title: 'absolute env_file', text: base(['    env_file: [ok.env, /etc/app.env]']), at: '4:24 services.web.env_file[1]', says: /is absolute/ },
  { title: 'unknown x-depad key', text: `${base([])}\nx-depad:\n  port_block: 100\n`, at: '5:3 x-depad.port_block', says: /unknown key 'port_block' in x-depad; supported: host_ip, host_ports, start_timeout/ },
  { title: 'bad host_ip', text: `${base([])}\nx-depad:\n  host_ip: localhost\n`, at: '5:12 x-depad.host_ip', says: /host_ip must be an IPv4 or IPv6 address/ },
  { title: 'x-depad below a service', text: base(['    deploy:', '      x-depad: {}']), at: '5:7 services.web.deploy.x-depad', says: /read at the top level and in a service/ },
  { title: 'unclosed quote in command', text: base(['    command: sh -c "echo hi']), at: '4:14 services.web.command', says: /unclosed double quote/ },
  { title: 'bad healthcheck test list', text: base(['    healthcheck:', '      test: [curl, localhost]']), at: '5:13 services.web.healthcheck.test', says: /\["CMD", program, args…\]/ },
  { title: 'relative working_dir', text: base(['    working_dir: srv']), at: '4:18 services.web.working_dir', says: /working_dir must be an absolute path/ },
  { title: 'environment is a string', text: base(['    environment: A=1']), at: '4:18 services.web.environment', says: /expected a map or a list of "KEY=VALUE"/ },
  { title: 'custom tag', text: base(['    ports: !reset []']), code: 'DEPAD_CONFIG_SYNTAX', at: '4:12:', says: /!reset/ },
];

for (const bad of BAD) {
  test(`malformed: ${bad.title}`, (t) => {
    const error = fails(t, bad.text, bad.env);
    t.is(error.code, bad.code ?? 'DEPAD_CONFIG_INVALID', error.message);
    t.true(error.message.includes(`cfg.yml:${bad.at}`), `expected "cfg.yml:${bad.at}" in:\n${error.message}`);
    t.regex(error.message, bad.says);
    if (error instanceof ConfigError) {
      const [line, column] = bad.at.split(' ')[0]?.split(':').map(Number) ?? [];
      t.true(error.issues.some((i) => i.file === 'cfg.yml' && i.line === line && i.column === column));
    }
  });
}

test('every issue of a file is reported at once, in file order', (t) => {
  const text = ['services:', '  web:', '    image: x', '    ports: ["80:80"]', '    restart: maybe', '    foo: 1', '  db:', '    build: {ssh: [default]}'].join('\n');
  const error = fails(t, text);
  t.true(error instanceof ConfigError);
  const issues = (error as ConfigError).issues;
  t.deepEqual(
    issues.map((i) => `${i.line}:${i.column} ${i.path}`),
    ['5:14 services.web.restart', '6:5 services.web.foo', '8:13 services.db.build.ssh'],
  );
  t.regex(error.message, /^cfg\.yml: 3 problems\n/);
});

test('alias bombs are stopped', (t) => {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 8; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
  lines.push('services:', '  web:', '    image: x', '    command: *a7');
  const error = fails(t, lines.join('\n'));
  t.is(error.code, 'DEPAD_CONFIG_SYNTAX');
  t.regex(error.message, /more than 100000 nodes/);
});

// ---------------------------------------------------------------------------------------------
// loadConfig and the file system

test('loadConfig: a missing config file is DEPAD_CONFIG_UNREADABLE naming the path', async (t) => {
  const file = join(fixtures, 'nope.yml');
  const error = await t.throwsAsync(loadConfig(file, {}));
  t.true(error instanceof DepadError);
  t.is((error as DepadError).code, 'DEPAD_CONFIG_UNREADABLE');
  t.true(error.message.includes(file));
  t.regex(error.message, /no such file; check the path/);
});

test('parseConfig: a missing env_file is an issue at its entry; optional ones are skipped', (t) => {
  const text = base(['    env_file:', '      - path: optional.env', '        required: false', '      - needed.env']);
  const error = fails(t, text);
  t.regex(error.message, /cfg\.yml:7:9 services\.web\.env_file\[1\]: env_file "needed\.env" is missing or unreadable/);
});

test('an env_file with a bad line is reported at its own file and line', (t) => {
  const error2 = t.throws(() =>
    parseConfig(base(['    env_file: app.env']), 'dir/cfg.yml', {}, { envFiles: { 'app.env': 'OK=1\n\nnot a pair\n' } }),
  );
  t.true(error2 instanceof ConfigError);
  t.regex(error2?.message ?? '', /dir\/app\.env:3:1 not a pair: expected KEY=VALUE/);
});

// ---------------------------------------------------------------------------------------------
// .env files and --env

test('parseEnvText handles comments, export, quotes, escapes and inline comments', (t) => {
  const text = [
    '# comment',
    '',
    'export A=1',
    'B = spaced value  ',
    "C='single $NOT ${EXPANDED} \\n'",
    'D="double\\nline \\"q\\" \\\\ end"',
    'E=value # a comment',
    'F=value#not-a-comment',
    'G=',
    'H="multi',
    'line"',
    "I='#hash' # trailing",
    'A=override',
  ].join('\r\n');
  const result = parseEnvText(text, 'x.env');
  t.deepEqual(result.issues, []);
  t.deepEqual(result.values, {
    A: 'override',
    B: 'spaced value',
    C: 'single $NOT ${EXPANDED} \\n',
    D: 'double\nline "q" \\ end',
    E: 'value',
    F: 'value#not-a-comment',
    G: '',
    H: 'multi\nline',
    I: '#hash',
  });
});

test('parseEnvText reports each bad line with file:line:column', (t) => {
  const result = parseEnvText('OK=1\n1BAD=x\njust words\nQ="open\n', 'x.env');
  t.deepEqual(
    result.issues.map((i) => `${i.file}:${i.line}:${i.column} ${i.path}`),
    ['x.env:2:1 1BAD', 'x.env:3:1 just words', 'x.env:4:3 Q'],
  );
  t.deepEqual(result.values, { OK: '1' });
  const trailing = parseEnvText("A='x' y\n", 'x.env');
  t.regex(trailing.issues[0]?.message ?? '', /unexpected text after the closing quote/);
});

test('readEnvFile reads a file, rejects bad lines and missing files', async (t) => {
  t.deepEqual(await readEnvFile(join(fixtures, 'vars.env')), { A: '1', B: 'line1\nline2' });
  const bad = await t.throwsAsync(readEnvFile(join(fixtures, 'bad.env')));
  t.true(bad instanceof ConfigError);
  t.true(bad.message.includes(`${join(fixtures, 'bad.env')}:2:1`));
  const missing = await t.throwsAsync(readEnvFile(join(fixtures, 'absent.env')));
  t.is((missing as DepadError).code, 'DEPAD_CONFIG_UNREADABLE');
  t.true(missing.message.includes(join(fixtures, 'absent.env')));
});

test('parseEnvAssignments parses --env items and names a bad one', (t) => {
  t.deepEqual(parseEnvAssignments(['B=2', 'A=x=y', 'EMPTY=', 'B=3'], '--env'), { A: 'x=y', B: '3', EMPTY: '' });
  for (const item of ['NOVALUE', '1X=2', '=v', 'A-B=1', 'A B=1']) {
    const error = t.throws(() => parseEnvAssignments(['OK=1', item], '--env'));
    t.is((error as DepadError).code, 'DEPAD_USAGE');
    t.true(error?.message.includes(`"${item}"`), error?.message);
  }
});

test('files run: steps name become files when they exist beside the config (never depad\'s own names, nothing outside)', (t) => {
  const text = [
    'services:',
    '  web:',
    '    image: app:1',
    'x-depad:',
    '  workflows:',
    '    seed:',
    '      steps:',
    '        - run: ./seed.sh && sh scripts/load.sh --file=db/seed.sql "data/a b" $$HOME/x ../up /etc/passwd revisions/1 *.sql',
    '',
  ].join('\n');
  const spec = parseConfig(text, '/srv/app/cfg.yml', {}, { existingFiles: ['db/seed.sql', 'scripts/load.sh', 'seed.sh', 'sh'] });
  t.deepEqual(spec.files, ['db/seed.sql', 'scripts/load.sh', 'seed.sh', 'sh'], 'what exists of what the step names');
  const none = parseConfig(text, '/srv/app/cfg.yml', {}, { existingFiles: ['revisions/1', 'x', 'up'] });
  t.deepEqual(none.files, [], 'depad\'s own names, variables and paths outside are never taken');
});

test('bind sources are normalised and only existing ones become files', (t) => {
  const text = base(['    volumes:', '      - ./conf/:/a', '      - ./data/./x:/b', '      - .:/c', '      - type: bind', '        source: conf', '        target: /d']);
  const spec = parseConfig(text, '/srv/app/cfg.yml', {}, { existingFiles: ['conf', 'unrelated'] });
  t.deepEqual(
    spec.services['web']?.volumes.map((v) => v.source),
    ['conf', 'data/x', '.', 'conf'],
  );
  t.deepEqual(spec.files, ['conf']);
  t.is(spec.file, '/srv/app/cfg.yml');
});

test('DeploymentSpec type is what parseConfig returns', (t) => {
  const spec: DeploymentSpec = parseConfig(base([]), 'cfg.yml', {});
  t.is(spec.services['web']?.image, 'nginx:1.27');
});

test('service x-depad: routes, health probes, timeouts; top-level domain', (t) => {
  const spec = parseConfig(
    [
      'x-depad:',
      '  domain: apps.example.com',
      'services:',
      '  web:',
      '    image: app:1',
      '    x-depad:',
      '      expose: http',
      '      port: 8080',
      '      hostnames: [Clinic.Example.com]',
      '      https: redirect',
      '      health: { http: /health, status: 204 }',
      '      drain_timeout: 5s',
      '  db:',
      '    image: db:1',
      '    ports: ["5432"]',
      '    x-depad: { expose: tcp, health: { tcp: true }, pause_timeout: 10s }',
      '',
    ].join('\n'),
    'cfg.yml',
    {},
  );
  t.is(spec.depad.domain, 'apps.example.com');
  t.deepEqual(spec.services.web!.depad, {
    route: { kind: 'http', port: 8080, hostnames: ['clinic.example.com'], https: 'redirect' },
    health: { kind: 'http', path: '/health', status: 204 },
    monitor: { intervalMs: 10_000, timeoutMs: 5_000, retries: 3, startPeriodMs: 0, restart: false },
    drainTimeoutMs: 5000,
    pauseTimeoutMs: 30_000,
  });
  t.deepEqual(spec.services.web!.ports, [{ target: 8080, protocol: 'tcp' }], 'the routed port is published');
  t.deepEqual(spec.services.db!.depad, {
    route: { kind: 'tcp', port: 5432, hostnames: [] },
    health: { kind: 'tcp' },
    monitor: { intervalMs: 10_000, timeoutMs: 5_000, retries: 3, startPeriodMs: 0, restart: false },
    drainTimeoutMs: 30_000,
    pauseTimeoutMs: 10_000,
  });
  t.is(spec.positions.get('services.web.x-depad.expose')?.line, 7);
});

test('service x-depad problems are located', (t) => {
  const bad = (extra: string) => fails(t, `services:\n  web:\n    image: app:1\n    ports: ["80", "81"]\n    x-depad:\n${extra}`).message;
  t.regex(bad('      expose: udp\n      port: 80\n'), /cfg\.yml:6:15 services\.web\.x-depad\.expose: expose must be http or tcp/);
  t.regex(bad('      expose: http\n'), /cfg\.yml:6:15 services\.web\.x-depad\.expose: say which container port/);
  t.regex(bad('      port: 80\n'), /cfg\.yml:6:7 services\.web\.x-depad\.port: port only applies with expose/);
  t.regex(bad('      expose: http\n      port: 80\n      https: always\n'), /cfg\.yml:8:14 services\.web\.x-depad\.https: https must be auto, redirect or off, found "always"/);
  t.regex(bad('      expose: tcp\n      port: 80\n      https: redirect\n'), /cfg\.yml:8:14 services\.web\.x-depad\.https: https applies to expose: http/);
  t.regex(bad('      https: off\n'), /cfg\.yml:6:7 services\.web\.x-depad\.https: https only applies with expose/);
  t.regex(bad('      expose: http\n      port: 80\n      health: { grpc: x }\n'), /services\.web\.x-depad\.health\.grpc: unknown key/);
  t.regex(bad('      expose: http\n      port: 80\n      drain_timeout: 5\n'), /cfg\.yml:8:22 services\.web\.x-depad\.drain_timeout/);
  t.regex(fails(t, 'services:\n  web:\n    image: a\n    deploy:\n      x-depad: {}\n').message, /services\.web\.deploy\.x-depad: x-depad is read at the top level and in a service/);
});

test('top-level x-depad class and labels: parsed into the labels, problems located', (t) => {
  const spec = parseConfig('x-depad:\n  class: plateaumed\n  labels: [env=prod, team=a]\nservices:\n  web:\n    image: app:1\n', 'cfg.yml', {});
  t.deepEqual(spec.depad.labels, { class: 'plateaumed', env: 'prod', team: 'a' });
  t.deepEqual(parseConfig('services:\n  web:\n    image: app:1\n', 'cfg.yml', {}).depad.labels, {});
  const bad = (depad: string) => fails(t, `x-depad:\n${depad}services:\n  web:\n    image: app:1\n`).message;
  t.regex(bad('  class: "two words"\n'), /cfg\.yml:2:10 x-depad\.class: class "two words"/);
  t.regex(bad('  labels: { Env: prod }\n'), /x-depad\.labels\.Env: label key "Env" must be lowercase/);
  t.regex(bad('  labels: { depad.x: y }\n'), /x-depad\.labels\["depad\.x"\]: label keys starting with "depad\." are reserved/);
  t.regex(bad('  class: a\n  labels: { class: b }\n'), /cfg\.yml:2:3 x-depad\.class: the class is given twice/);
});

test('x-depad.resources: a budget the services\' limits must fit, with every service limited', (t) => {
  const svc = (name: string, limits: string) => [`  ${name}:`, '    image: app:1', '    deploy:', '      resources:', `        limits: ${limits}`];
  const file = (budget: string, ...services: string[][]) => ['x-depad:', `  resources: ${budget}`, 'services:', ...services.flat(), ''].join('\n');
  const fits = parseConfig(file('{ cpus: 1.5, memory: 1g, pids: 200 }', svc('web', '{ cpus: "1", memory: 512m, pids: 100 }'), svc('db', '{ cpus: 0.5, memory: 512m, pids: 100 }')), 'cfg.yml', {});
  t.deepEqual(fits.depad.resources, { cpus: 1.5, memoryBytes: 1024 ** 3, pids: 200 });
  const over = fails(t, file('{ memory: 1g }', svc('web', '{ memory: 768m }'), svc('db', '{ memory: 512m }'))).message;
  t.regex(over, /cfg\.yml:2:\d+ x-depad\.resources\.memory: the services' memory limits add up to 1\.3 GiB \(web 768 MiB, db 512 MiB\), over the budget of 1 GiB; raise the budget or lower a limit/);
  const cpus = fails(t, file('{ cpus: 1 }', svc('web', '{ cpus: 0.75 }'), svc('db', '{ cpus: 0.5 }'))).message;
  t.regex(cpus, /x-depad\.resources\.cpus: the services' cpus limits add up to 1\.25 CPUs/);
  const unlimited = fails(t, file('{ memory: 1g }', svc('web', '{ memory: 256m }'), ['  db:', '    image: db:1'])).message;
  t.regex(unlimited, /x-depad\.resources\.memory: with a memory budget every service needs deploy\.resources\.limits\.memory; db has none/);
  t.regex(fails(t, file('{ memory: lots }', svc('web', '{ memory: 256m }'))).message, /x-depad\.resources\.memory/);
});

test('x-depad.health: probes (http, tcp, command, the container\'s own), timing and restart; problems located', (t) => {
  const spec = (health: string, extra = '') => parseConfig(`services:\n  web:\n    image: app:1\n    ports: ["80"]\n    x-depad:\n${extra}      health: ${health}\n`, 'cfg.yml', {});
  const cmd = spec('{ command: [pg_isready, -U, app], interval: 5s, timeout: 1s, retries: 4, start_period: 30s, restart: true }').services.web!.depad;
  t.deepEqual(cmd.health, { kind: 'command', command: ['pg_isready', '-U', 'app'] });
  t.deepEqual(cmd.monitor, { intervalMs: 5000, timeoutMs: 1000, retries: 4, startPeriodMs: 30_000, restart: true });
  const own = spec('{ restart: true }').services.web!.depad;
  t.is(own.health, undefined, 'no probe: the container\'s own health check');
  t.true(own.monitor?.restart);
  const bad = (health: string, extra = '') => fails(t, `services:\n  web:\n    image: app:1\n    ports: ["80"]\n    x-depad:\n${extra}      health: ${health}\n`).message;
  t.regex(bad('{ http: /h }'), /cfg\.yml:6:15 services\.web\.x-depad\.health: http and tcp checks go to the service's published port: expose it/);
  t.regex(bad('{ http: /h, command: [true] }', '      expose: http\n'), /give one probe \(http, tcp or command\), not http and command/);
  t.regex(bad('{ command: [] }'), /services\.web\.x-depad\.health\.command: the command is empty/);
  t.regex(bad('{ command: [true], interval: 500ms }'), /services\.web\.x-depad\.health\.interval: the interval must be at least 1s/);
  t.regex(bad('{ command: [true], status: 200 }'), /services\.web\.x-depad\.health\.status: status applies to an http check/);
  t.regex(bad('{ command: [true], retries: 0 }'), /services\.web\.x-depad\.health\.retries/);
});

test('x-depad.workflows: steps, hooks, timeout; problems located', (t) => {
  const file = (wf: string) => `services:\n  web:\n    image: app:1\n  db:\n    image: db:1\nx-depad:\n  workflows:\n${wf}`;
  const spec = parseConfig(file('    migrate:\n      hooks: [before-update, after-create]\n      timeout: 2m\n      steps:\n        - exec: [node, migrate.js]\n          service: web\n        - exec: echo hi\n          service: db\n        - run: ./seed.sh\n'), 'cfg.yml', {});
  t.deepEqual(spec.depad.workflows, {
    migrate: {
      name: 'migrate',
      hooks: ['before-update', 'after-create'],
      timeoutMs: 120_000,
      steps: [
        { kind: 'exec', command: ['node', 'migrate.js'], service: 'web' },
        { kind: 'exec', command: ['sh', '-c', 'echo hi'], service: 'db' },
        { kind: 'run', command: './seed.sh' },
      ],
    },
  });
  const bad = (wf: string) => fails(t, file(wf)).message;
  t.regex(bad('    m:\n      hooks: [before-deploy]\n      steps: [{ run: x }]\n'), /x-depad\.workflows\.m\.hooks\.0: unknown hook "before-deploy"; hooks are before-create, after-create/);
  t.regex(bad('    m:\n      steps: [{ exec: [x] }]\n'), /x-depad\.workflows\.m\.steps\.0: say whose image, network and environment the step runs with: service: <name>/);
  t.regex(bad('    m:\n      steps: [{ exec: [x], service: cache }]\n'), /x-depad\.workflows\.m\.steps\.0\.service: no service "cache" in this file \(services: db, web\)/);
  t.regex(bad('    m:\n      steps: [{ run: x, exec: [y], service: web }]\n'), /a step is either run: \(on the host\) or exec:/);
  t.regex(bad('    m:\n      hooks: [before-update]\n'), /cfg\.yml:8:5 x-depad\.workflows\.m: a workflow needs steps/);
  t.regex(bad('    Bad Name:\n      steps: [{ run: x }]\n'), /workflow name "Bad Name" must be lowercase/);
});

test('a fixed network or volume name keeps depad\'s name for the deployment, with a warning', (t) => {
  const warnings: string[] = [];
  const spec = parseConfig('services:\n  web:\n    image: x\n    volumes: [data:/d]\n    networks: [front]\nnetworks:\n  front:\n    name: global-net\nvolumes:\n  data:\n    name: global-data\n', 'cfg.yml', {}, { warn: (w) => warnings.push(`${w.path}: ${w.message}`) });
  t.truthy(spec.volumes.data);
  t.deepEqual(warnings, [
    "networks.front.name: the network keeps depad's name for this deployment (depad-<deployment>_front), not global-net: a fixed name would be shared by every deployment of this file",
    "volumes.data.name: the volume keeps depad's name for this deployment (depad-<deployment>_data), not global-data: a fixed name would be shared by every deployment of this file",
  ]);
});

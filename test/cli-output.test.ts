/**
 * What the CLI prints and how it ends, through the real CLI against the real engine (no agent;
 * test/cli-agent.test.ts has the same through one): a closed stdout ends any command quietly with
 * exit 141; usage errors are JSON with --json; a YAML syntax error is reported once; an image given
 * by --image is reported as the command line's; updating a stopped deployment is
 * DEPAD_NOT_RUNNING; stats shows no memory limit for an unlimited service; a route is shown with
 * the proxy's port. One harness for the file; it removes what the tests made.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { EXAMPLES, createHarness, type Harness } from './helpers/harness.ts';
import { closedStdout } from './helpers/closed-stdout.ts';
import { startProxyProcess } from './helpers/proxy-process.ts';

const hello = path.join(EXAMPLES, 'hello/depad.yml');
let h: Harness;
let cleanup: () => Promise<void>;
let existing: string;
let ticker: string;

/** A service that prints a line every 200 ms, so that `logs -f` keeps writing. */
const TICKER = 'services:\n  tick:\n    image: depad-example/app:1\n    command: ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]\n';

test.before(async () => {
  ({ h, cleanup } = await createHarness('cli-output', (m) => {
    throw new Error(m);
  }));
  existing = h.name('existing');
  ticker = h.name('ticker');
  await fs.writeFile(path.join(h.dir, 'ticker.yml'), TICKER);
  for (const r of [await h.run(['create', '-n', existing, '-f', hello]), await h.run(['create', '-n', ticker, '-f', path.join(h.dir, 'ticker.yml'), '--no-wait'])]) {
    if (r.code !== 0) throw new Error(r.stderr);
  }
});
test.after.always(async () => cleanup?.());

for (const [title, args, after] of [
  ['inspect', ['inspect', '{existing}'], 'start'],
  ['ls --json', ['ls', '--json'], 'start'],
  ['ps', ['ps', '{existing}'], 'start'],
  ['logs -f, after the first lines', ['logs', '{ticker}', '-f'], 'first-chunk'],
  ['logs -f --json, after the first lines', ['logs', '{ticker}', '-f', '--json'], 'first-chunk'],
] as const) {
  test.serial(`a closed stdout ends ${title} quietly with exit 141`, async (t) => {
    const r = await closedStdout(h.home, args.map((a) => a.replace('{existing}', existing).replace('{ticker}', ticker)), after);
    t.is(r.code, 141, r.stderr);
    t.notRegex(r.stderr, /EPIPE|Error|\n\s+at /, 'no stack trace');
  });
}

test.serial('usage errors are JSON on stderr with --json, exit 2', async (t) => {
  for (const args of [
    ['ls', '--everything', '--json'],
    ['--json', 'inspect'],
    ['logs', existing, '--tail', 'lots', '--json'],
    ['deploy', 'x', '--json'],
    ['service', 'update', existing, 'web', '--json'],
  ]) {
    const r = await h.run(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    t.is(lines.length, 1, `one line: ${r.stderr}`);
    const body = JSON.parse(lines[0] ?? '') as { error: { code: string; message: string; hint: string } };
    t.is(body.error.code, 'DEPAD_USAGE');
    t.regex(body.error.message, /unknown option|missing required argument|--tail takes a number|unknown command|required option '--image/);
    t.notRegex(body.error.message, /^error:/);
  }
  const plain = await h.run(['ls', '--everything']);
  t.is(plain.code, 2);
  t.regex(plain.stderr, /^error: unknown option '--everything'/, 'without --json it stays text');
});

test.serial('a YAML syntax error is reported once', async (t) => {
  // "  web" without its colon: yaml reported "Implicit keys need to be on a single line" twice and three more problems after it.
  const text = (await fs.readFile(hello, 'utf8')).replace('  web:\n', '  web\n');
  const file = path.join(h.dir, 'broken.yml');
  await fs.writeFile(file, text);
  const r = await h.run(['create', '-n', h.name('broken'), '-f', file]);
  t.is(r.code, 3, r.stderr);
  t.is(r.stderr.match(/broken\.yml:\d+:\d+/g)?.length, 1, r.stderr);
  t.is(r.stderr.match(/Implicit keys need to be on a single line/g)?.length, 1, r.stderr);
  t.regex(r.stderr, /broken\.yml:4:3: not valid YAML: /);
});

test.serial('a missing image given by --image is reported as given on the command line', async (t) => {
  for (const args of [['update', existing, '-s', 'web', '--image', 'depad-test/not-here:1'], ['update', existing, '-f', hello, '-s', 'web', '--image', 'depad-test/not-here:1']]) {
    const r = await h.run([...args, '--pull', 'never']);
    t.is(r.code, 6, r.stderr);
    t.regex(r.stderr, /--image depad-test\/not-here:1 \(given for services\.web on the command line\): not on this host/);
    t.notRegex(r.stderr, /depad\.yml:\d+:\d+/, 'not a position in the file');
  }
  const inFile = path.join(h.dir, 'missing-image.yml');
  await fs.writeFile(inFile, 'services:\n  web:\n    image: depad-test/not-here:2\n');
  const r = await h.run(['update', existing, '-f', inFile, '--pull', 'never']);
  t.is(r.code, 6, r.stderr);
  t.regex(r.stderr, /missing-image\.yml:3:12 services\.web\.image: image depad-test\/not-here:2 is not on this host/, 'from the file: its position');
});

test.serial('stats shows no memory limit for an unlimited service (- and null)', async (t) => {
  const json = await h.run(['stats', existing, '--json']);
  t.is(json.code, 0, json.stderr);
  const [usage] = JSON.parse(json.stdout) as Array<{ memoryBytes: number; memoryLimitBytes: number | null; cpuLimit: number | null }>;
  t.is(usage?.memoryLimitBytes, null);
  t.is(usage?.cpuLimit, null);
  t.true((usage?.memoryBytes ?? 0) > 0);
  const table = await h.run(['stats', existing]);
  t.regex(table.stdout, new RegExp(`${existing}\\s+web\\s+depad-${existing}-web-1\\s+[\\d.]+\\s+-\\s+[\\d.]+ [KM]iB\\s+-\\s+\\d+`));
});

test.serial('the ROUTE column gives the port the proxy listens on', async (t) => {
  const name = h.name('routed');
  const file = path.join(h.dir, 'routed.yml');
  await fs.writeFile(file, 'services:\n  web:\n    image: depad-example/app:1\n    x-depad: { expose: http, port: 8080 }\n');
  const proxy = await startProxyProcess(t, h);
  t.is((await h.run(['create', '-n', name, '-f', file, '--no-wait'])).code, 0);
  const url = `http://web.${name}.localhost:${proxy.port}`;
  t.regex((await h.run(['ps', name])).stdout, new RegExp(`${url}\\n`));
  t.regex((await h.run(['inspect', name])).stdout, new RegExp(url));
  const view = JSON.parse((await h.run(['inspect', name, '--json'])).stdout) as { services: Array<{ route?: { urls?: string[] } }> };
  t.deepEqual(view.services[0]?.route?.urls, [url]);
  await proxy.stop();
  t.regex((await h.run(['ps', name])).stdout, new RegExp(url), 'where the proxy listened, while it is stopped');
  t.notRegex(proxy.output(), /depad info:|undefined/, 'the proxy printed no log lines at the default level');
  t.is((await h.run(['destroy', name])).code, 0);
});

test.serial('update of a stopped deployment is DEPAD_NOT_RUNNING, exit 16', async (t) => {
  t.is((await h.run(['stop', existing])).code, 0);
  const r = await h.run(['update', existing, '-s', 'web', '--image', 'depad-example/app:2']);
  t.is(r.code, 16, r.stderr);
  t.regex(r.stderr, /is stopped[\s\S]*start it first/);
  const viaService = await h.run(['service', 'update', existing, 'web', '--image', 'depad-example/app:2', '--json']);
  t.is(viaService.code, 16, viaService.stderr);
  t.is((JSON.parse(viaService.stderr) as { error: { code: string } }).error.code, 'DEPAD_NOT_RUNNING');
  t.is((await h.run(['start', existing])).code, 0);
});

/** The pure parts of load balancing (proxy/balance.ts) and of cookie affinity (proxy/affinity.ts). */
import test from 'ava';
import { addField, cookieIndex, setCookieField } from '../proxy/affinity.ts';
import { leastLoaded, outstanding } from '../proxy/balance.ts';

/** Picks `rounds` times from `loads` (unchanged between picks), the cursor moving as pickUpstream moves it. */
function picks(loads: number[], rounds: number, skip: number[] = []): number[] {
  const out: number[] = [];
  let next = 0;
  for (let r = 0; r < rounds; r++) {
    const i = leastLoaded(loads.length, next % loads.length, (j) => loads[j] as number, (j) => skip.includes(j));
    out.push(i);
    next = i + 1;
  }
  return out;
}

test('equal loads take turns; the least loaded wins; ties around a busier one still alternate', (t) => {
  t.deepEqual(picks([0, 0, 0], 6), [0, 1, 2, 0, 1, 2]);
  t.deepEqual(picks([3, 1, 2], 3), [1, 1, 1]);
  t.deepEqual(picks([0, 0, 5], 4), [0, 1, 0, 1]);
  t.deepEqual(picks([5, 0, 0], 4), [1, 2, 1, 2]);
  t.is(leastLoaded(0, 0, () => 0, () => false), -1);
});

test('unhealthy ones are passed over while another exists; with all unhealthy, the least loaded of all', (t) => {
  t.deepEqual(picks([0, 0, 0], 4, [1]), [0, 2, 0, 2]);
  t.deepEqual(picks([0, 9, 0], 2, [0, 2]), [1, 1], 'a busy healthy one beats idle unhealthy ones');
  t.deepEqual(picks([2, 1, 3], 2, [0, 1, 2]), [1, 1]);
});

test('what counts as outstanding: requests; plus WebSockets for an upgrade; TCP connections', (t) => {
  const load = { requests: 2, websockets: 5, tcp: 7 };
  t.is(outstanding(load, 'request'), 2);
  t.is(outstanding(load, 'websocket'), 7);
  t.is(outstanding(load, 'tcp'), 7);
});

test('cookieIndex finds the affinity cookie among others, in any Cookie field, matching a token exactly', (t) => {
  const tokens = ['A'.repeat(22), 'B'.repeat(22)];
  const head = (fields: string) => `GET / HTTP/1.1\r\nHost: a.test\r\n${fields}`;
  t.is(cookieIndex(head(`Cookie: depad_affinity=${'B'.repeat(22)}`), tokens), 1);
  t.is(cookieIndex(head(`cookie:a=1;depad_affinity=${'A'.repeat(22)} ;b=2`), tokens), 0);
  t.is(cookieIndex(head(`COOKIE: x=1\r\nCookie: \tdepad_affinity=${'B'.repeat(22)}\t`), tokens), 1);
  t.is(cookieIndex(head(`Cookie: depad_affinity=${'C'.repeat(22)}; depad_affinity=${'A'.repeat(22)}`), tokens), 0, 'the first valid one');
  t.is(cookieIndex(head(`Cookie: depad_affinity="${'A'.repeat(22)}"`), tokens), -1, 'quoted: no match');
  t.is(cookieIndex(head(`Cookie: xdepad_affinity=${'A'.repeat(22)}`), tokens), -1);
  t.is(cookieIndex(head(`Depad_affinity: x\r\nX-Cookie: depad_affinity=${'A'.repeat(22)}`), tokens), -1, 'only Cookie fields');
  t.is(cookieIndex(`GET /?depad_affinity=${'A'.repeat(22)} HTTP/1.1\r\nHost: a.test`, tokens), -1, 'not in the target');
  t.is(cookieIndex(head('Cookie: depad_affinity='), tokens), -1);
  t.is(cookieIndex(head('Accept: */*'), tokens), -1);
});

test('the Set-Cookie field and where it goes in a response head', (t) => {
  t.is(setCookieField('T', false), 'Set-Cookie: depad_affinity=T; Path=/; HttpOnly; SameSite=Lax\r\n');
  t.is(setCookieField('T', true), 'Set-Cookie: depad_affinity=T; Path=/; HttpOnly; SameSite=Lax; Secure\r\n');
  t.is(addField('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'X: y\r\n'), 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: y\r\n\r\n');
});

/**
 * The agent's event log (`depad events`): what it noticed and did, oldest first, each event shown
 * to the tokens that may see its deployment (events about no deployment, such as the engine's
 * loss, to admin tokens). `follow=true` answers with JSON lines, `{event}` per event, the past
 * ones first and then each new one as it happens, until the client goes away.
 */
import type { AgentEvent } from '../agent/reconciler.ts';
import { DepadError } from '../errors.ts';
import { booleanQuery } from './body.ts';
import { visibleTo } from './call.ts';
import type { Call, Endpoint } from './call.ts';

/** The event endpoints, listed after the core ones in the OpenAPI document. */
export const EVENT_ENDPOINTS: Endpoint[] = [
  {
    method: 'GET',
    path: '/v1/events',
    action: 'ls',
    streamsWhen: (url) => url.searchParams.get('follow') === 'true',
    summary: 'What the agent noticed: instances that died or changed health, routes restored (oldest first); query: since (a time), follow=true (JSON lines {event}, new ones as they happen)',
    run: async (call) => {
      const follow = booleanQuery(call.url, 'follow');
      const since = sinceOf(call.url.searchParams.get('since'));
      let shown = await filterFor(call, since);
      if (!follow) return { body: call.events().filter(shown) };
      if (call.followEvents === undefined) throw new DepadError('DEPAD_AGENT_UNAVAILABLE', 'events are followed in the agent', { hint: 'start it: depad agent' });
      // Subscribed before the past events are read (in the same turn): none is missed or sent twice.
      const fresh: AgentEvent[] = [];
      let wake: () => void = () => {};
      const unsubscribe = call.followEvents((event) => (fresh.push(event), wake()));
      let sent = 0;
      const send = (event: AgentEvent) => void (call.emit({ event }), sent++);
      try {
        call.events().filter(shown).forEach(send);
        const ended = new Promise<void>((resolve) => call.signal.addEventListener('abort', () => resolve(), { once: true }));
        while (!call.signal.aborted) {
          if (fresh.length === 0) await Promise.race([ended, new Promise<void>((resolve) => (wake = resolve))]);
          const batch = fresh.splice(0);
          // A deployment made since the last look: its labels decide for a token that selects by label.
          if (batch.some((e) => e.deployment !== undefined)) shown = await filterFor(call, since);
          batch.filter(shown).forEach(send);
        }
      } finally {
        unsubscribe();
      }
      return { body: { events: sent } };
    },
  },
];

/** Which events the call's token may see, from `since` on. */
async function filterFor(call: Call, since: number | undefined): Promise<(event: AgentEvent) => boolean> {
  const visible = await visibleTo(call);
  const admin = call.token.scope.kind === 'admin';
  return (e) => (since === undefined || Date.parse(e.time) >= since) && (e.deployment === undefined ? admin : visible(e.deployment));
}

/** The `since` query: a time (ISO 8601), as ms since the epoch. */
function sinceOf(text: string | null): number | undefined {
  if (text === null) return undefined;
  const ms = Date.parse(text);
  if (!/^\d{4}-\d\d-\d\d/.test(text) || Number.isNaN(ms)) throw new DepadError('DEPAD_USAGE', `since must be a time such as 2025-01-31T12:00:00Z, not ${JSON.stringify(text.slice(0, 40))}`);
  return ms;
}

/** Certificate lifetimes: one renewal rule for the agent's own certificate and the ACME ones. */

/** Milliseconds in a day. */
export const DAY_MS = 86_400_000;
/** A certificate with this many days or fewer left is issued again. */
export const RENEW_DAYS = 30;

/** True when a certificate ending at `notAfter` should be renewed at `now` (ms since epoch). */
export function renewalDue(notAfter: Date, now: number, renewDays: number = RENEW_DAYS): boolean {
  return notAfter.getTime() - now <= renewDays * DAY_MS;
}

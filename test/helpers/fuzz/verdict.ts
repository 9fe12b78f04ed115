/**
 * The fuzzer's verdicts: what depad did with a case, against what the strict reference read.
 * A divergence is a behaviour that lets two parsers disagree (smuggling, desync, non-canonical
 * framing) or a silent hang; a refusal (depad answering an error where the reference accepts) is
 * allowed and only counted.
 */
import { checkForwardedRequests, fieldValue, readResponses } from './framing.ts';
import type { ClientResponse } from './framing.ts';
import type { ParsedRequest, RequestParse, ResponseParse } from './reference.ts';
import { SEQ_HEADER } from './upstreams.ts';

/** One way depad diverged from the reference, with a short kind string for grouping. */
export interface Divergence {
  kind: string;
  detail: string;
}

/** A case's verdict. */
export interface Verdict {
  divergences: Divergence[];
  /** Depad refused what the reference accepts (allowed). */
  refused: boolean;
  /** What the upstream connections and the client received (for replays). */
  seen?: { upstream: Buffer[]; client: Buffer };
}

/** What the client side of a request case waited for. */
export type Expectation = 'answers' | 'error' | 'fin';

/** Everything seen during a request case. */
export interface RequestObservation {
  ref: RequestParse;
  /** The case's bytes. */
  bytes: Buffer;
  /** What each upstream connection received, in order, with the sequence numbers of the upstream's answers. */
  forwarded: { parse: RequestParse; bytes: Buffer; seqs?: number[] }[];
  received: Buffer;
  closed: boolean;
  /** The proxy closed with a FIN (not a reset). */
  ended: boolean;
  /** The client's wait ended by its condition, not by the bound. */
  settled: boolean;
  expectation: Expectation;
  /** The client connection's own address: the last X-Forwarded-For hop of its forwarded requests. */
  clientAddress?: string;
}

/** A reference URL in origin form: `scheme://authority` stripped, nothing else changed. */
export function originForm(url: string): string {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(url);
  if (m === null) return url;
  const rest = url.slice(m[0].length);
  return rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}`;
}

const show = (b: Buffer, max = 60): string => JSON.stringify(b.toString('latin1', 0, max)) + (b.length > max ? '…' : '');
const isPrefix = (part: Buffer, whole: Buffer): boolean => part.length <= whole.length && whole.subarray(0, part.length).equals(part);

/** The final responses a client read, with the method of the request each answers. */
export function clientFinals(received: Buffer, methods: readonly string[], eof: boolean): { finals: ClientResponse[]; all: ReturnType<typeof readResponses> } {
  const all = readResponses(received, (n) => methods[n], eof);
  return { finals: all.responses.filter((r) => !r.interim), all };
}

/**
 * True when the reference refused bytes of a head that has not ended (no blank line after the
 * error, even a lenient one): a parser that checks whole heads is still waiting for its end.
 * A bare request line (HTTP/0.9) and an error in a body or after a complete head do not count.
 */
function unterminated(obs: RequestObservation): boolean {
  const { ref } = obs;
  const last = ref.messages[ref.messages.length - 1];
  if (ref.error === undefined || ref.error.offset < 0 || (last !== undefined && !last.complete)) return false;
  const rest = obs.bytes.toString('latin1', ref.error.offset);
  return !/\r?\n\r?\n|\r\r/.test(rest);
}

/** A request line with a method llhttp does not know (lower-case, extension methods): a policy, not a framing, difference. */
const UNKNOWN_METHOD_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ (?:\/|\*|https?:\/\/)[\x21-\x7e\x80-\xff]* HTTP\/1\.[01]\r?$/;

/** True when the bytes from `offset` are (the start of) a request line whose method is a token llhttp does not know. */
function unknownMethodPrefix(bytes: Buffer, offset: number): boolean {
  const text = bytes.toString('latin1', Math.max(0, offset), Math.max(0, offset) + 20_000);
  const lf = text.indexOf('\n');
  if (lf >= 0) return UNKNOWN_METHOD_LINE.test(text.slice(0, lf));
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?: ([\x21-\x7e\x80-\xff]*)(?: (\S*))?)?$/.exec(text);
  if (m === null) return false;
  const version = m[3];
  return version === undefined || 'HTTP/1.1\r'.startsWith(version) || 'HTTP/1.0\r'.startsWith(version);
}

function unknownMethod(bytes: Buffer, offset: number): boolean {
  const text = bytes.toString('latin1', Math.max(0, offset), Math.max(0, offset) + 20_000);
  return UNKNOWN_METHOD_LINE.test(text.slice(0, text.indexOf('\n') < 0 ? text.length : text.indexOf('\n')));
}

/**
 * Pairs the reference's requests with the forwarded ones (`[reference index, forwarded index]`):
 * the client's n-th final answer is for the n-th request. One from the upstream names the
 * forwarded request it answers; one from the proxy itself is either for the next forwarded
 * request (refused part-way, e.g. a bad chunk) when that one is the same request and got no
 * answer from the upstream, or a refusal.
 * Forwarded requests not answered (yet) pair with the next reference requests in order.
 */
function pairRequests(finals: ClientResponse[], ref: RequestParse, fwd: ParsedRequest[], bySeq: Map<number, number>): [number, number][] {
  const nr = ref.messages.length;
  const pairs: [number, number][] = [];
  const answered = new Set(bySeq.values());
  let lastFwd = -1;
  let j = 0;
  for (; j < finals.length && j < nr; j++) {
    const seq = fieldValue(finals[j] as ClientResponse, SEQ_HEADER);
    const r = ref.messages[j] as ParsedRequest;
    let k: number;
    if (seq !== undefined) k = bySeq.get(Number(seq)) ?? Number(seq);
    else {
      // Refused part-way only if that request got no answer from the upstream (else it is a later one).
      const next = fwd[lastFwd + 1];
      if (next === undefined || answered.has(lastFwd + 1) || next.method !== r.method || next.url !== originForm(r.url)) continue; // a refusal
      k = lastFwd + 1;
    }
    if (!(k > lastFwd && k < fwd.length)) break;
    pairs.push([j, k]);
    lastFwd = k;
  }
  for (let i = j, k = lastFwd + 1; i < nr && k < fwd.length; i++, k++) pairs.push([i, k]);
  return pairs;
}

/** The last X-Forwarded-For hop of a forwarded request (the address the proxy saw), if any. */
function lastHop(m: ParsedRequest): string | undefined {
  let value: string | undefined;
  for (let i = 0; i + 1 < m.rawHeaders.length; i += 2) if ((m.rawHeaders[i] as string).toLowerCase() === 'x-forwarded-for') value = m.rawHeaders[i + 1];
  return value?.split(',').pop()?.trim();
}

/** The verdict of a request case. */
export function requestVerdict(obs: RequestObservation): Verdict {
  const { ref } = obs;
  const out: Divergence[] = [];
  // A request from another client connection (an earlier case) reached the upstream now: the
  // proxy forwarded it after that connection was done with. Not this case's.
  const fwd: ParsedRequest[] = [];
  /** The index in `fwd` of the request each upstream answer (by sequence number) is for; -1 for another connection's. */
  const bySeq = new Map<number, number>();
  for (const s of obs.forwarded) {
    for (const [i, m] of s.parse.messages.entries()) {
      // Only an address the harness hands out counts: a smuggled request carries whatever its bytes say.
      const from = lastHop(m);
      const seq = s.seqs?.[i];
      if (obs.clientAddress === undefined || from === undefined || from === obs.clientAddress || !/^127\.(?:[1-9]|[1-5]\d|6[0-2])\.\d+\.\d+$/.test(from)) {
        if (seq !== undefined) bySeq.set(seq, fwd.length);
        fwd.push(m);
      } else {
        if (seq !== undefined) bySeq.set(seq, -1);
        out.push({ kind: 'late-forward', detail: `${m.method} ${JSON.stringify(m.url)} from client ${from} reached the upstream during a later connection's case` });
      }
    }
  }
  const foreign = obs.forwarded.reduce((n, s) => n + s.parse.messages.length, 0) - fwd.length;
  // Heads forwarded: those llhttp read, or more when it refused one (read canonically).
  let nf = 0;
  for (const s of obs.forwarded) {
    if (s.parse.end === 'error') {
      const code = s.parse.error?.code;
      const kind = code === 'HPE_INVALID_METHOD' && unknownMethod(s.bytes, s.parse.error?.offset ?? -1) ? 'unknown-method' : 'upstream-rejects';
      out.push({ kind, detail: `${code}: ${s.parse.error?.reason} in ${show(s.bytes, 200)}` });
    }
    const canonical = checkForwardedRequests(s.bytes);
    for (const p of canonical.problems) out.push({ kind: p.kind === 'client-unparseable' ? 'upstream-rejects' : p.kind, detail: p.detail });
    nf += Math.max(s.parse.messages.length, canonical.messages.length);
  }
  nf -= foreign;
  const nr = ref.messages.length;
  const refEnd = `${ref.end}${ref.error === undefined ? '' : ` ${ref.error.code}`}`;
  // After a CONNECT the bytes are not HTTP: depad refuses CONNECT, and may then read anything.
  if (nf > nr && ref.end !== 'tunnel') {
    const extra = fwd[nr];
    // Past a parse error the reference has no message boundaries to compare with.
    const kind = ref.end !== 'error' ? 'smuggled-request' : ref.error?.code === 'HPE_INVALID_METHOD' && unknownMethod(obs.bytes, ref.error.offset) ? 'unknown-method' : 'accepted-invalid';
    const what = extra === undefined ? 'a head the upstream refused' : `${extra.method} ${JSON.stringify(extra.url)}`;
    out.push({ kind, detail: `forwarded ${nf} request(s), the reference read ${nr} (${refEnd}); request ${nr + 1} forwarded: ${what}` });
  }
  const { finals, all } = clientFinals(obs.received, ref.messages.map((m) => m.method), obs.ended);
  for (const p of all.problems) out.push({ kind: p.kind === 'client-unparseable' ? 'client-unparseable' : `client-${p.kind}`, detail: p.detail });
  const pairs = pairRequests(finals, ref, fwd, bySeq);
  for (const [i, k] of pairs) {
    const r = ref.messages[i];
    const f = fwd[k];
    if (r === undefined || f === undefined) continue;
    if (f.method !== r.method) out.push({ kind: 'method-differs', detail: `request ${i + 1}: ${r.method} forwarded as ${f.method}` });
    const want = originForm(r.url);
    if (f.url !== want) out.push({ kind: 'target-differs', detail: `request ${i + 1}: ${JSON.stringify(r.url)} forwarded as ${JSON.stringify(f.url)}` });
    if (f.complete && !r.complete && ref.end === 'error' && i === nr - 1 && isPrefix(r.body, f.body)) {
      out.push({ kind: 'accepted-invalid', detail: `request ${i + 1}: forwarded complete, its body refused by the reference (${ref.error?.code}: ${ref.error?.reason})` });
    } else if (f.complete && r.complete ? !f.body.equals(r.body) : f.complete ? true : !isPrefix(f.body, r.body)) {
      out.push({ kind: 'body-differs', detail: `request ${i + 1}: reference ${show(r.body)}${r.complete ? '' : ' (incomplete)'}, forwarded ${show(f.body)}${f.complete ? '' : ' (incomplete)'}` });
    }
  }
  if (nf <= nr) {
    // The j-th answer from the upstream that reached this client is for the j-th request forwarded for it.
    let j = 0;
    for (const r of finals) {
      const seq = fieldValue(r, SEQ_HEADER);
      if (seq === undefined) continue;
      const k = bySeq.get(Number(seq)) ?? Number(seq);
      if (k !== j) {
        out.push({ kind: 'response-mismatch', detail: `the client's upstream response ${j + 1} answers ${k < 0 ? "another connection's request" : `forwarded request ${k + 1}`}` });
        break;
      }
      j++;
    }
  }
  const statuses = finals.map((r) => r.status).join(',');
  if (!obs.settled) {
    const what = obs.expectation === 'fin' ? 'no close within the bound after the client ended its side' : obs.expectation === 'error' ? 'neither a 4xx nor a close within the bound' : `${finals.length} of ${nr} answers within the bound`;
    const unknown = ref.error?.code === 'HPE_INVALID_METHOD' && unknownMethodPrefix(obs.bytes, ref.error.offset);
    const kind = obs.expectation === 'fin' ? 'late-close' : unknown ? 'unknown-method' : obs.expectation === 'error' && unterminated(obs) ? 'late-reject' : 'late-answer';
    out.push({ kind, detail: `reference ${refEnd}; ${what} (statuses [${statuses}], ${nf} forwarded)` });
  } else if (obs.closed) {
    // Every complete request forwarded (and read so by the reference) gets its answer.
    const owed = pairs.filter(([i, k]) => fwd[k]?.complete === true && ref.messages[i]?.complete === true && finals[i] === undefined);
    if (owed.length > 0) out.push({ kind: 'unanswered', detail: `${owed.length} complete request(s) forwarded and not answered before the close (statuses [${statuses}])` });
  }
  return { divergences: out, refused: pairs.length < nr, seen: { upstream: obs.forwarded.map((f) => f.bytes), client: obs.received } };
}

/** Everything seen during a response case. */
export interface ResponseObservation {
  ref: ResponseParse;
  method: string;
  version: '1.1' | '1.0';
  received: Buffer;
  closed: boolean;
  /** The proxy closed with a FIN (not a reset): only then is a close-delimited body complete. */
  ended: boolean;
  /** The wait ended by its condition, not by the bound. */
  settled: boolean;
  /** The upstream closed its side after the response. */
  upstreamClosed: boolean;
}

/** The verdict of a response case. */
export function responseVerdict(obs: ResponseObservation): Verdict {
  const { ref } = obs;
  const out: Divergence[] = [];
  const read = readResponses(obs.received, () => obs.method, obs.ended);
  for (const p of read.problems) out.push({ kind: p.kind, detail: p.detail });
  const finals = read.responses.filter((r) => !r.interim);
  const interim = read.responses.filter((r) => r.interim);
  if (obs.version === '1.0') {
    if (interim.length > 0) out.push({ kind: '1xx-to-http10', detail: `${interim.map((r) => r.status).join(',')} sent to an HTTP/1.0 client` });
    if (finals.some((r) => r.chunked || r.fields.some(([n]) => n.toLowerCase() === 'transfer-encoding'))) out.push({ kind: 'chunked-to-http10', detail: 'Transfer-Encoding sent to an HTTP/1.0 client' });
  } else if (interim.length > ref.interim.length) out.push({ kind: 'interim-differs', detail: `${interim.length} 1xx received, the reference read ${ref.interim.length}` });
  if (finals.length > 1) out.push({ kind: 'double-response', detail: `${finals.length} final responses (${finals.map((r) => r.status).join(',')}) to one request` });
  const f = finals[0];
  const rf = ref.final;
  const refEnd = `${ref.end}${ref.error === undefined ? '' : ` ${ref.error.code}`}`;
  let refused = false;
  const bodyDiffers = (): void => {
    if (f !== undefined && rf !== undefined) out.push({ kind: 'body-differs', detail: `reference ${show(rf.body)}${rf.complete ? '' : ' (incomplete)'}, client ${show(f.body)}${f.complete ? '' : ' (incomplete)'}` });
  };
  const proxyError = f !== undefined && f.status === 502 && rf?.status !== 502;
  if (ref.end === 'complete' && rf !== undefined) {
    if (f === undefined) {
      if (!obs.closed) out.push({ kind: 'late-answer', detail: `reference complete ${rf.status}; no response within the bound` });
      else refused = true;
    } else if (proxyError) refused = true;
    else if (f.status !== rf.status) out.push({ kind: 'status-differs', detail: `reference ${rf.status}, client ${f.status}` });
    else if (f.complete && !f.body.equals(rf.body)) bodyDiffers();
    else if (!f.complete) {
      if (!isPrefix(f.body, rf.body)) bodyDiffers();
      else if (!obs.closed) out.push({ kind: 'late-answer', detail: `reference complete ${rf.status}; the client's response is still incomplete after the bound` });
      else refused = true; // cut short
    }
  } else if (ref.end === 'error') {
    // A bad framing field on a response that has no body (HEAD, 204, 304) frames nothing: ignoring it is fine.
    const bodiless = f !== undefined && (obs.method === 'HEAD' || f.status === 204 || f.status === 304) && /^HPE_(?:INVALID_CONTENT_LENGTH|UNEXPECTED_CONTENT_LENGTH|INVALID_TRANSFER_ENCODING)$/.test(ref.error?.code ?? '');
    if (f !== undefined && !proxyError && f.complete && !bodiless) out.push({ kind: 'accepted-invalid-response', detail: `reference ${refEnd}; the client got a complete ${f.status}` });
    if (obs.upstreamClosed && !obs.settled && !(f !== undefined && f.complete)) out.push({ kind: 'late-answer', detail: `reference ${refEnd}; neither an answer nor a close within the bound` });
  } else {
    // incomplete or truncated: depad must not complete what the reference did not.
    if (f !== undefined && !proxyError && f.complete && f.status >= 200) out.push({ kind: 'framing-differs', detail: `reference ${refEnd} (${rf === undefined ? 'no head' : `${rf.status}, ${rf.body.length} body bytes`}); the client got a complete ${f.status} with ${f.body.length}` });
    else if (f !== undefined && rf !== undefined && !proxyError && !isPrefix(f.body, rf.body)) bodyDiffers();
    if (ref.end === 'truncated' && !obs.settled) out.push({ kind: 'late-answer', detail: `reference ${refEnd}; the client's connection is still open after the bound` });
  }
  return { divergences: out, refused, seen: { upstream: [], client: obs.received } };
}

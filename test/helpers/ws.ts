/**
 * A minimal WebSocket client over a raw socket, so tests can send the Host header the proxy routes
 * by (Node's built-in WebSocket cannot). Text frames only; enough for echo tests.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** An open WebSocket: messages arrive in order; `next()` waits for one. */
export interface TestSocket {
  send(text: string): void;
  next(timeoutMs?: number): Promise<string>;
  close(): void;
  closed: Promise<void>;
}

/** Opens `ws://127.0.0.1:port/path` with `Host: host`. Rejects unless the server answers 101. */
export function openWebSocket(port: number, host: string, pathname = '/ws'): Promise<TestSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const key = randomBytes(16).toString('base64');
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    const messages: string[] = [];
    const waiters: Array<(m: string) => void> = [];
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    const deliver = (text: string) => {
      const waiter = waiters.shift();
      if (waiter) waiter(text);
      else messages.push(text);
    };
    socket.once('connect', () => {
      socket.write(
        `GET ${pathname} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on('error', (e) => (upgraded ? undefined : reject(e)));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString();
        buffer = buffer.subarray(end + 4);
        if (!/^HTTP\/1\.1 101/.test(head)) {
          socket.destroy();
          reject(new Error(`no upgrade: ${head.split('\r\n')[0]}`));
          return;
        }
        upgraded = true;
        resolve(api);
      }
      for (;;) {
        if (buffer.length < 2) return;
        const opcode = buffer[0]! & 0x0f;
        let length = buffer[1]! & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffer.length < offset + length) return;
        const payload = buffer.subarray(offset, offset + length);
        buffer = buffer.subarray(offset + length);
        if (opcode === 1) deliver(payload.toString());
        else if (opcode === 8) socket.end();
      }
    });
    const frame = (opcode: number, payload: Buffer) => {
      const mask = randomBytes(4);
      const head = payload.length < 126 ? Buffer.from([0x80 | opcode, 0x80 | payload.length]) : Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
      const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
      socket.write(Buffer.concat([head, mask, body]));
    };
    const api: TestSocket = {
      send: (text) => frame(1, Buffer.from(text)),
      next: (timeoutMs = 10_000) => {
        const queued = messages.shift();
        if (queued !== undefined) return Promise.resolve(queued);
        return new Promise((res, rej) => {
          const timer = setTimeout(() => rej(new Error('no WebSocket message in time')), timeoutMs);
          waiters.push((m) => {
            clearTimeout(timer);
            res(m);
          });
        });
      },
      close: () => {
        frame(8, Buffer.from([0x03, 0xe8]));
        setTimeout(() => socket.destroy(), 200).unref();
      },
      closed,
    };
  });
}

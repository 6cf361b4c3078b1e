import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterAnswer } from './close-after-answer.js';

const MiB = 1024 * 1024;

/** A server that refuses every body with 413 as soon as the request's head arrives. */
async function refusingServer(close: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer((req, res) => {
    req.pause();
    close(req, res);
    res.writeHead(413, { 'content-length': '2' }).end('no');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * Announces 300 MiB, sends `sendBytes` of it, and reads nothing for `readAfterMs` — a client
 * whose event loop is busy — then reads what came. Resolves with what it read, or the error it got
 * first, and how many bytes it could send in all.
 */
function lateReader(port: number, sendBytes: number, readAfterMs: number): Promise<{ answer: string; error?: string; sent: number }> {
  return new Promise((resolve) => {
    // Half-open allowed: the server's FIN does not end this side, so it goes on sending as an attacker would.
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let answer = '';
    let sent = 0;
    let error: string | undefined;
    socket.pause();
    socket.on('data', (data: Buffer) => (answer += data.toString('latin1')));
    socket.on('error', (failure) => (error ??= failure.message));
    socket.on('close', () => resolve({ answer, sent, ...(error ? { error } : {}) }));
    // Once the server has closed its side and all is sent, this side closes too.
    let serverEnded = false;
    socket.on('end', () => {
      serverEnded = true;
      if (sent >= sendBytes) socket.end();
    });
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${300 * MiB}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const pump = () => {
      while (sent < sendBytes && !socket.destroyed) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
      if (serverEnded) socket.end();
    };
    pump();
    setTimeout(() => socket.resume(), readAfterMs);
  });
}

describe('closing a connection after refusing its body', () => {
  let stop: (() => void) | undefined;
  afterEach(() => stop?.());

  it('without lingering, a client that reads late loses the answer to a reset (the failure it prevents)', async () => {
    const { server, port } = await refusingServer((_req, res) => res.setHeader('connection', 'close'));
    stop = () => server.close();
    const got = await lateReader(port, 8 * MiB, 300);
    expect(got.answer).toBe('');
    expect(got.error).toMatch(/ECONNRESET|EPIPE/);
  });

  it('a client that reads late still gets the answer, and the connection ends', async () => {
    const { server, port } = await refusingServer((req, res) => closeAfterAnswer(req, res));
    stop = () => server.close();
    const got = await lateReader(port, 8 * MiB, 300);
    expect(got.answer).toMatch(/^HTTP\/1\.1 413 .*\r\nconnection: close\r\n/is);
    expect(got.answer.endsWith('\r\n\r\nno')).toBe(true);
  });

  it('reads no more than its bytes of a client that keeps sending, holds it back, and cuts it off when the time passes', async () => {
    const { server, port } = await refusingServer((req, res) => closeAfterAnswer(req, res, { bytes: 1 * MiB, ms: 500 }));
    stop = () => server.close();
    const started = performance.now();
    const got = await lateReader(port, 200 * MiB, 0);
    expect(got.answer).toMatch(/^HTTP\/1\.1 413 /);
    // What the kernels buffer on both sides comes on top of the 1 MiB read and dropped.
    expect(got.sent).toBeLessThan(40 * MiB);
    expect(performance.now() - started).toBeGreaterThan(400);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('cuts off a client that keeps the connection open once the time to linger passes', async () => {
    const { server, port } = await refusingServer((req, res) => closeAfterAnswer(req, res, { ms: 200 }));
    stop = () => server.close();
    const started = performance.now();
    const got = await lateReader(port, 1 * MiB, 0);
    expect(got.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

import { createHmac } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { limitWebhookBodies, webhookBusyRetryAfterSeconds } from './webhook-body-limit.js';

const MiB = 1024 * 1024;
const path = '/api/github/webhooks';

/**
 * A server whose webhook middleware (standing in for Probot's) records each body it is handed
 * and holds it until `release()`, so the bodies it holds keep their share of the budget.
 */
async function serve(limits: { budgetBytes: number; maxBytes: number; deadlineMs?: number; secret?: string }) {
  const handed: number[] = [];
  let open: (() => void)[] = [];
  const middleware = async (req: IncomingMessage & { body?: string }, res: import('node:http').ServerResponse) => {
    handed.push(req.body?.length ?? -1);
    await new Promise<void>((resolve) => open.push(resolve));
    res.writeHead(200).end('ok');
    return true;
  };
  const limited = limitWebhookBodies(middleware as never, { path, log: pino({ level: 'silent' }), ...limits });
  const server: Server = createServer((req, res) => void limited(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    handed,
    release: () => {
      for (const resolve of open) resolve();
      open = [];
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    server,
  };
}

type Answer = { status: number; retryAfter: string | undefined };

/** POSTs `bytes` bytes, with a Content-Length or chunked. */
function post(port: number, bytes: number, options: { chunked?: boolean; signature?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path, headers: { ...(options.chunked ? {} : { 'content-length': String(bytes) }), ...(options.signature ? { 'x-hub-signature-256': options.signature } : {}) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
    });
    // The app may answer and close while the body is still being sent.
    req.on('error', (error) => (error.message.includes('EPIPE') || error.message.includes('ECONNRESET') ? undefined : reject(error)));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
        sent += part.length;
        if (!req.write(part)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/** Waits until `check` holds (the server reads bodies on its own time). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
}

describe('the budget for webhook bodies across connections', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it.each([false, true])('refuses a body that would pass it with 503 and Retry-After, and takes bodies again once the held ones are done (chunked: %s)', async (chunked) => {
    const app = await serve({ budgetBytes: 10 * MiB, maxBytes: 4 * MiB });
    close = async () => {
      app.release();
      await app.close();
    };
    const held = [post(app.port, 4 * MiB, { chunked }), post(app.port, 4 * MiB, { chunked })];
    await until(() => app.handed.length === 2);
    // 8 MiB are held: a third body of 4 MiB would pass the 10 MiB budget.
    const refused = await post(app.port, 4 * MiB, { chunked });
    expect(refused).toEqual({ status: 503, retryAfter: String(webhookBusyRetryAfterSeconds) });
    expect(app.handed).toEqual([4 * MiB, 4 * MiB]);
    // A small body still fits beside them.
    const small = post(app.port, MiB, { chunked });
    await until(() => app.handed.length === 3);
    app.release();
    expect((await Promise.all([...held, small])).map((answer) => answer.status)).toEqual([200, 200, 200]);
    // Their shares came back: a body as large as the budget allows is taken again.
    const again = post(app.port, 4 * MiB, { chunked });
    await until(() => app.handed.length === 4);
    app.release();
    expect((await again).status).toBe(200);
  });

  it('counts bytes as they arrive: connections that announce bodies and send none hold no budget, and are cut at the deadline', async () => {
    const app = await serve({ budgetBytes: 10 * MiB, maxBytes: 4 * MiB, deadlineMs: 300 });
    const sockets: Socket[] = [];
    close = async () => {
      for (const socket of sockets) socket.destroy();
      app.release();
      await app.close();
    };
    const answers: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const socket = connect({ host: '127.0.0.1', port: app.port });
      socket.on('data', (data: Buffer) => answers.push(data.toString('latin1').split('\r\n')[0]!));
      socket.on('error', () => undefined);
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${4 * MiB}\r\n\r\n`);
      sockets.push(socket);
    }
    // 20 MiB announced, none sent: a real body is taken at once.
    const real = post(app.port, 4 * MiB);
    await until(() => app.handed.length === 1);
    app.release();
    expect((await real).status).toBe(200);
    // …and the silent ones are answered 408 once the deadline passes.
    await until(() => answers.length === 5);
    expect(answers).toEqual(Array(5).fill('HTTP/1.1 408 Request Timeout'));
  });

  it('still refuses a body over the cap with 413, whatever the budget', async () => {
    const app = await serve({ budgetBytes: 10 * MiB, maxBytes: 4 * MiB });
    close = app.close;
    expect((await post(app.port, 5 * MiB)).status).toBe(413);
    expect((await post(app.port, 5 * MiB, { chunked: true })).status).toBe(413);
    expect(app.handed).toEqual([]);
  });

  it('checks the signature as the body arrives: a wrong one is refused with 400 and never handed on, a right one is', async () => {
    const app = await serve({ budgetBytes: 10 * MiB, maxBytes: 4 * MiB, secret: 'the-secret' });
    close = async () => {
      app.release();
      await app.close();
    };
    const body = Buffer.alloc(3 * MiB, 'x');
    const sign = (secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    expect((await post(app.port, body.length, { signature: sign('not-the-secret') })).status).toBe(400);
    expect((await post(app.port, body.length, { signature: sign('not-the-secret'), chunked: true })).status).toBe(400);
    expect(app.handed).toEqual([]);
    const right = post(app.port, body.length, { signature: sign('the-secret'), chunked: true });
    await until(() => app.handed.length === 1);
    app.release();
    expect((await right).status).toBe(200);
    expect(app.handed).toEqual([body.length]);
  });
});

import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { request as httpRequest, type Server as HttpServer } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Probot, Server } from 'probot';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/support/app-process.js';
import { logRequests, maxLoggedHeaderChars, maxLoggedPathChars, withoutProbotRequestLog } from './request-log.js';

const secret = 'request-log-secret';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
/** Whatever a stranger put in a header: if it shows up in the log, a header value was logged. */
const junk = 'junk-header-value-';

/** Probot's Server as `task-mgmt serve` builds it, logging into `lines`. */
async function startServer(lines: string[]): Promise<{ url: string; http: HttpServer; stop: () => Promise<void> }> {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      callback();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const port = await freePort();
  const server = new Server({
    Probot: Probot.defaults({ appId: 1, privateKey, secret, log }),
    port,
    host: '127.0.0.1',
    log: withoutProbotRequestLog(log),
  });
  await server.load(() => undefined);
  const http = await server.start();
  logRequests(http, log.child({ name: 'http' }));
  return { url: `http://127.0.0.1:${port}`, http, stop: () => server.stop() };
}

/** A request with `headers` as given (node's fetch would refuse some): resolves to the status. */
function send(url: string, options: { method: string; path: string; headers: Record<string, string>; body?: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${options.path}`, { method: options.method, headers: options.headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** About 16 KB of headers a stranger chose, under node's 16 KiB cap on a request's head. */
function junkHeaders(): Record<string, string> {
  const headers: Record<string, string> = { 'x-request-id': `${junk}${'r'.repeat(1500)}` };
  for (let i = 0; i < 90; i += 1) headers[`x-junk-${i}`] = `${junk}${i}-${'j'.repeat(130)}`;
  return headers;
}

describe('the request log', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  it('logs a webhook sent with 16 KB of junk headers in one short line without a header value', async () => {
    const lines: string[] = [];
    const server = await startServer(lines);
    stop = server.stop;
    const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    const delivery = randomUUID();
    const headers = {
      ...junkHeaders(),
      'content-type': 'application/json',
      'x-github-event': 'ping',
      'x-github-delivery': delivery,
      'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
    };
    expect(Object.entries(headers).reduce((sum, [name, value]) => sum + name.length + value.length + 4, 0)).toBeGreaterThan(14_000);
    expect(await send(server.url, { method: 'POST', path: '/api/github/webhooks?token=secret-in-query', headers, body })).toBe(200);
    // A path as long as node lets one be, with junk in it, gets a short line too.
    expect(await send(server.url, { method: 'GET', path: `/${junk}${'p'.repeat(8000)}`, headers: { 'x-request-id': `${junk}${'r'.repeat(6000)}` } })).toBe(404);
    await new Promise((resolve) => setTimeout(resolve, 50));

    const log = lines.join('\n');
    for (const line of lines) expect(line.length, line.slice(0, 300)).toBeLessThan(1024);
    expect(log).not.toContain(`${junk}0`);
    expect(log).not.toContain('r'.repeat(100));
    expect(log).not.toContain('secret-in-query');
    const requests = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.name === 'http');
    expect(requests).toEqual([
      expect.objectContaining({ method: 'POST', path: '/api/github/webhooks', status: 200, deliveryId: delivery, event: 'ping', durationMs: expect.any(Number) }),
      expect.objectContaining({ method: 'GET', path: expect.stringMatching(new RegExp(`^/${junk}p+…$`)), status: 404 }),
    ]);
    expect((requests[1]!.path as string).length).toBe(maxLoggedPathChars + 1);
    expect(requests.map((entry) => Object.keys(entry).filter((key) => !['level', 'time', 'pid', 'hostname', 'name', 'msg'].includes(key)).sort())).toEqual([
      ['deliveryId', 'durationMs', 'event', 'method', 'path', 'status'],
      ['durationMs', 'method', 'path', 'status'],
    ]);
  });

  it('cuts a delivery id or event a stranger made long', async () => {
    const lines: string[] = [];
    const server = await startServer(lines);
    stop = server.stop;
    const long = `${junk}${'d'.repeat(5000)}`;
    expect(await send(server.url, { method: 'POST', path: '/api/github/webhooks', headers: { 'x-github-delivery': long, 'x-github-event': long, 'content-type': 'application/json' }, body: '{}' })).toBe(400);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const [entry] = lines.map((line) => JSON.parse(line) as Record<string, string>).filter((e) => e.name === 'http');
    expect(entry).toMatchObject({ deliveryId: `${long.slice(0, maxLoggedHeaderChars)}…`, event: `${long.slice(0, maxLoggedHeaderChars)}…`, status: 400 });
    for (const line of lines) expect(line.length).toBeLessThan(1024);
  });
});

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WARCParser } from 'warcio';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskContext, TaskProgress } from '../../../src/ports/task-type.js';
import { FetchGuard } from '../../shared/safe-fetch.js';
import { addUrl, addUrlParams, nameFromUrl } from './index.js';

const MiB = 1024 * 1024;
const BIG = 64 * MiB;

/**
 * Deterministic bytes: seven distinct 1 MiB chunks, cycled. Made once, so the server in this
 * process allocates nothing while it sends and the memory measured is the download's own; a
 * dropped, repeated or reordered chunk still changes the SHA-256.
 */
function chunkAt(index: number, size: number): Buffer {
  const chunk = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) chunk.writeUInt32LE((index * 2654435761 + i) >>> 0, i);
  return chunk;
}
const CHUNKS = Array.from({ length: 7 }, (_, index) => chunkAt(index, MiB));
const bigChunk = (index: number) => CHUNKS[index % CHUNKS.length]!;

function bigDigest(): string {
  const hash = createHash('sha256');
  for (let i = 0; i < BIG / MiB; i++) hash.update(bigChunk(i));
  return hash.digest('hex');
}

function streamBig(res: ServerResponse, withLength: boolean) {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', ...(withLength ? { 'Content-Length': String(BIG) } : {}) });
  let index = 0;
  const pump = () => {
    while (index < BIG / MiB) {
      if (!res.write(bigChunk(index++))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

function handler(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  const hops = Number(url.searchParams.get('hops') ?? '0');
  switch (url.pathname) {
    case '/files/hello.txt':
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Custom': 'kept' }).end('hello, archive\n');
      return;
    case '/big.bin':
      streamBig(res, url.searchParams.get('length') !== 'no');
      return;
    case '/chunked':
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.write(Buffer.alloc(3000, 1));
      res.end(Buffer.alloc(3000, 2));
      return;
    case '/redirect':
      res.writeHead(302, { Location: hops > 1 ? `/redirect?hops=${hops - 1}` : '/files/hello.txt' }).end('see elsewhere');
      return;
    case '/slow': {
      res.writeHead(200, { 'Content-Length': String(100 * MiB) });
      const timer = setInterval(() => res.write(Buffer.alloc(64 * 1024)), 5);
      res.on('close', () => clearInterval(timer));
      return;
    }
    case '/':
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<p>root</p>');
      return;
    default:
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('no such file');
  }
}

let server: Server;
let base: string;
let dir: string;
let outDir: string;
let progress: TaskProgress[];
let logs: string[];

function context(overrides: Partial<TaskContext> = {}): TaskContext {
  const unused = () => {
    throw new Error('not used by ipfs/add-url');
  };
  return {
    runId: 'run-1',
    signal: new AbortController().signal,
    log: (line) => logs.push(line),
    progress: (value) => progress.push(value),
    ipfs: { addPath: unused, close: unused },
    executor: { execute: unused },
    outDir,
    scratchDir: join(dir, 'scratch'),
    sourceDir: join(dir, 'source'),
    inputs: {},
    limits: { memoryBytes: 0, nanoCpus: 0, pidsLimit: 0, timeoutMs: 0 },
    env: {},
    settings: { allowPrivateAddresses: true, gatewayUrl: 'https://ipfs.io' },
    // The worker's fetch, as it builds it for a deployment that allows private addresses (tests do).
    fetch: new FetchGuard({ allowPrivateAddresses: true }),
    ...overrides,
  };
}

async function runWith(raw: Record<string, unknown>, overrides: Partial<TaskContext> = {}) {
  return addUrl.run(context(overrides), addUrlParams.parse(raw));
}

beforeAll(async () => {
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'add-url-'));
  outDir = join(dir, 'out');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(outDir);
  await mkdir(join(dir, 'scratch'));
  progress = [];
  logs = [];
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ipfs/add-url parameters', () => {
  it.each([
    [{}, 'url'],
    [{ url: 'ftp://example.org/x' }, 'must be an http or https URL'],
    [{ url: 'not a url' }, 'must be an absolute URL'],
    [{ url: 'https://example.org/x', sha256: 'abc' }, 'must be 64 hexadecimal digits'],
    [{ url: 'https://example.org/x', filename: '../etc/passwd' }, 'must be a plain file name'],
    [{ url: 'https://example.org/x', max_bytes: 'lots' }, 'is not a size'],
    [{ url: 'https://example.org/x', warc: 'yes' }, 'must be true or false'],
    [{ url: 'https://example.org/x', extra: 1 }, 'extra'],
  ])('rejects %j', (raw, message) => {
    const result = addUrlParams.safeParse(raw);
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain(message);
  });

  it('fills defaults and reads sizes with units', () => {
    expect(addUrlParams.parse({ url: 'https://example.org/x' })).toEqual({ url: 'https://example.org/x', max_bytes: 50 * 1024 ** 3, warc: false });
    expect(addUrlParams.parse({ url: 'https://example.org/x', max_bytes: '512m', sha256: 'A'.repeat(64) })).toMatchObject({ max_bytes: 512 * MiB, sha256: 'a'.repeat(64) });
  });

  it.each([
    ['https://example.org/dumps/wiki%20en.zim?x=1', 'wiki en.zim'],
    ['https://example.org/', undefined],
    ['https://example.org/a/..%2F..%2Fsecret', '.._.._secret'.replace(/^\.+/, '')],
    ['https://example.org/%2e%2e', undefined],
  ])('names %s %s', (url, name) => {
    expect(nameFromUrl(new URL(url))).toBe(name);
  });
});

describe('ipfs/add-url', () => {
  it('streams a 64 MiB body byte-exact to disk with flat memory', async () => {
    const expected = bigDigest();
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const started = performance.now();
    const result = await runWith({ url: `${base}/big.bin`, sha256: expected });
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    expect(result.state).toBeUndefined();
    expect(result.metadata).toEqual({ url: `${base}/big.bin`, finalUrl: `${base}/big.bin`, bytes: BIG, sha256: expected, contentType: 'application/octet-stream', file: 'big.bin' });
    expect((await stat(join(outDir, 'big.bin'))).size).toBe(BIG);
    const onDisk = createHash('sha256');
    for await (const chunk of createReadStream(join(outDir, 'big.bin'))) onDisk.update(chunk as Buffer);
    expect(onDisk.digest('hex')).toBe(expected);
    // The body must not be held in memory: growth stays below its 64 MiB (V8 and socket buffers account for most of what there is).
    const growth = peak - before;
    console.log(`64 MiB in ${seconds.toFixed(2)} s (${(BIG / MiB / seconds).toFixed(0)} MiB/s), peak RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    expect(growth).toBeLessThan(48 * MiB);
    expect(progress[0]).toEqual({ done: 0, total: BIG });
    expect(progress.at(-1)).toEqual({ done: BIG, total: BIG });
    expect(progress.length).toBeLessThan(20);
  });

  it('reports progress without a total when there is no Content-Length', async () => {
    const result = await runWith({ url: `${base}/chunked`, filename: 'data.bin' });
    expect(result.metadata).toMatchObject({ bytes: 6000, file: 'data.bin' });
    expect(progress.at(-1)).toEqual({ done: 6000 });
  });

  it('accepts a matching sha256 and names the file from the URL', async () => {
    const sha = createHash('sha256').update('hello, archive\n').digest('hex');
    const result = await runWith({ url: `${base}/files/hello.txt`, sha256: sha.toUpperCase() });
    expect(result.metadata).toMatchObject({ sha256: sha, bytes: 15, contentType: 'text/plain; charset=utf-8', file: 'hello.txt' });
    expect(await readFile(join(outDir, 'hello.txt'), 'utf8')).toBe('hello, archive\n');
  });

  it('fails on a sha256 mismatch and removes the file', async () => {
    const result = await runWith({ url: `${base}/files/hello.txt`, sha256: '0'.repeat(64) });
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(/^sha256 mismatch for .*: expected 0{64}, got [0-9a-f]{64}$/);
    expect(await readdir(outDir)).toEqual([]);
  });

  it('refuses a body whose Content-Length is above max_bytes before reading it', async () => {
    const result = await runWith({ url: `${base}/big.bin`, max_bytes: '1m' });
    expect(result).toEqual({ state: 'failed', error: `${base}/big.bin announces ${BIG} bytes (Content-Length), more than max_bytes ${MiB}` });
    expect(await readdir(outDir)).toEqual([]);
  });

  it('stops a body without Content-Length once it passes max_bytes', async () => {
    const result = await runWith({ url: `${base}/big.bin?length=no`, max_bytes: '1m' });
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(/is larger than max_bytes 1048576; stopped after \d+ bytes$/);
    expect(await readdir(outDir)).toEqual([]);
  });

  it('follows a redirect chain within the limit and reports the final URL', async () => {
    const result = await runWith({ url: `${base}/redirect?hops=5` });
    expect(result.metadata).toMatchObject({ url: `${base}/redirect?hops=5`, finalUrl: `${base}/files/hello.txt`, file: 'hello.txt' });
  });

  it('fails after too many redirects', async () => {
    const result = await runWith({ url: `${base}/redirect?hops=6` });
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(/^too many redirects \(6\)/);
  });

  it('fails on an HTTP error status', async () => {
    expect(await runWith({ url: `${base}/missing` })).toEqual({ state: 'failed', error: `${base}/missing answered HTTP 404 Not Found` });
  });

  it('refuses 127.0.0.1 when private addresses are not allowed', async () => {
    const result = await runWith({ url: `${base}/files/hello.txt` }, { fetch: new FetchGuard({ allowPrivateAddresses: false }) });
    expect(result).toEqual({ state: 'failed', error: 'refused: 127.0.0.1 is a loopback address' });
    expect(await readdir(outDir)).toEqual([]);
  });

  it('writes a WARC that warcio reads back: warcinfo, the redirect, request and response with real headers', async () => {
    const result = await runWith({ url: `${base}/redirect?hops=1`, warc: true });
    expect(result.metadata).toMatchObject({ file: 'hello.txt.warc.gz', bytes: 15 });
    expect(await readdir(outDir)).toEqual(['hello.txt.warc.gz']);
    expect(await readdir(join(dir, 'scratch'))).toEqual([]);

    const records = [];
    for await (const record of WARCParser.iterRecords(createReadStream(join(outDir, 'hello.txt.warc.gz')))) {
      const payload = await record.readFully(true);
      records.push({ type: record.warcType, uri: record.warcTargetURI, record, payload: Buffer.from(payload).toString('utf8') });
    }
    expect(records.map((r) => [r.type, r.uri])).toEqual([
      ['warcinfo', null],
      ['response', `${base}/redirect?hops=1`],
      ['request', `${base}/redirect?hops=1`],
      ['response', `${base}/files/hello.txt`],
      ['request', `${base}/files/hello.txt`],
    ]);
    const [info, redirect, , response, request] = records;
    expect(info!.payload).toContain('software: task-mgmt ipfs/add-url');
    expect(redirect!.record.httpHeaders?.statusCode).toBe(302);
    expect(redirect!.payload).toBe('see elsewhere');
    expect(response!.payload).toBe('hello, archive\n');
    expect(response!.record.httpHeaders?.statusCode).toBe(200);
    expect(response!.record.httpHeaders?.headers.get('X-Custom')).toBe('kept');
    expect(response!.record.warcHeader('WARC-Payload-Digest')).toBe(`sha256:${createHash('sha256').update('hello, archive\n').digest('hex')}`);
    expect(response!.record.warcHeader('WARC-IP-Address')).toBe('127.0.0.1');
    expect(request!.record.httpHeaders?.statusline).toBe('GET /files/hello.txt HTTP/1.1');
    expect(request!.record.warcHeader('WARC-Concurrent-To')).toBe(response!.record.warcHeader('WARC-Record-ID'));
  });

  it('stops promptly when aborted mid-download and leaves no partial file', async () => {
    const controller = new AbortController();
    const running = runWith({ url: `${base}/slow`, filename: 'slow.bin' }, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    controller.abort(new Error('cancelled by test'));
    await expect(running).rejects.toThrow('cancelled by test');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await readdir(outDir)).toEqual([]);
  });
});

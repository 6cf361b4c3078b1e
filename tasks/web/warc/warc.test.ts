import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WARCParser } from 'warcio';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskContext, TaskProgress } from '../../../src/ports/task-type.js';
import { FetchGuard } from '../../shared/safe-fetch.js';
import { extractLinks, inScope, webWarc, webWarcParams, type PageEntry } from './index.js';

let site: Server;
let outside: Server;
let base: string;
let outsideBase: string;
let outsideHits = 0;
let hits: string[] = [];
let dir: string;
let progress: TaskProgress[];

/** A small site: index → about ↔ index (a cycle), about → deep; requisites; one out-of-scope link. */
function pages(outsideUrl: string): Record<string, { type: string; body: string; status?: number; location?: string }> {
  return {
    '/': {
      type: 'text/html; charset=utf-8',
      body: `<!doctype html><html><head><link rel="stylesheet" href="/style.css"><script src="app.js"></script></head>
        <body><a href="/about#team">About</a> <a href='${outsideUrl}/elsewhere'>Elsewhere</a>
        <a href="mailto:someone@example.org">mail</a> <a href="javascript:void(0)">js</a>
        <!-- <a href="/commented-out">hidden</a> -->
        <img src="/logo.png" alt="logo"> <a href="/moved">moved</a></body></html>`,
    },
    '/about': { type: 'text/html', body: '<a href="/">home</a><a href="/deep">deeper</a><a href=/about>self</a>' },
    '/deep': { type: 'text/html', body: '<a href="/deeper">even deeper</a>' },
    '/deeper': { type: 'text/html', body: 'too deep for depth 2' },
    '/style.css': { type: 'text/css', body: 'body { color: black }' },
    '/app.js': { type: 'text/javascript', body: 'console.log("<a href=\\"/from-script\\">")' },
    '/logo.png': { type: 'image/png', body: 'not really a png' },
    '/moved': { type: 'text/html', body: 'moved', status: 301, location: '/new-home' },
    '/new-home': { type: 'text/html', body: '<p>new home</p>' },
  };
}

function context(overrides: Partial<TaskContext> = {}): TaskContext {
  const unused = () => {
    throw new Error('not used by web/warc');
  };
  return {
    runId: 'run-warc',
    signal: new AbortController().signal,
    log: () => {},
    progress: (value) => progress.push(value),
    ipfs: { addPath: unused, close: unused },
    executor: { execute: unused },
    outDir: join(dir, 'out'),
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

async function readWarc(path: string) {
  const records: { type: string | null | undefined; uri: string | null | undefined; status: number | string | undefined; payload: string; concurrentTo: string | null | undefined; id: string | null | undefined }[] = [];
  for await (const record of WARCParser.iterRecords(createReadStream(path))) {
    const payload = Buffer.from(await record.readFully(true)).toString('utf8');
    records.push({
      type: record.warcType,
      uri: record.warcTargetURI,
      status: record.warcType === 'response' ? record.httpHeaders?.statusCode : undefined,
      payload,
      concurrentTo: record.warcHeader('WARC-Concurrent-To'),
      id: record.warcHeader('WARC-Record-ID'),
    });
  }
  return records;
}

beforeAll(async () => {
  outside = createServer((_req, res) => {
    outsideHits++;
    res.end('outside');
  });
  await new Promise<void>((resolve) => outside.listen(0, '127.0.0.1', resolve));
  // "localhost" is another host name than 127.0.0.1, so this server is out of the crawl's scope.
  outsideBase = `http://localhost:${(outside.address() as AddressInfo).port}`;

  site = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.push(path);
    if (path === '/slow') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      const timer = setInterval(() => res.write(`<a href="/slow?${Math.random()}">more</a>`), 10);
      res.on('close', () => clearInterval(timer));
      return;
    }
    const page = pages(outsideBase)[path];
    if (!page) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(page.status ?? 200, { 'Content-Type': page.type, ...(page.location ? { Location: page.location } : {}) }).end(page.body);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
});

afterAll(async () => {
  site.closeAllConnections();
  await new Promise((resolve) => site.close(resolve));
  await new Promise((resolve) => outside.close(resolve));
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'web-warc-'));
  await mkdir(join(dir, 'out'));
  await mkdir(join(dir, 'scratch'));
  hits = [];
  outsideHits = 0;
  progress = [];
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('web/warc parameters', () => {
  it('fills defaults', () => {
    expect(webWarcParams.parse({ urls: ['https://example.org/'] })).toEqual({ urls: ['https://example.org/'], depth: 1, scope: 'host', max_pages: 1000 });
  });

  it.each([
    [{ urls: [] }, 'needs at least one URL'],
    [{ urls: ['ftp://example.org/'] }, 'must be an http or https URL'],
    [{ urls: ['https://example.org/'], depth: 6 }, 'must be at most 5'],
    [{ urls: ['https://example.org/'], scope: 'world' }, 'must be host, prefix or domain'],
    [{ urls: ['https://example.org/'], max_pages: 0 }, 'must be at least 1'],
  ])('rejects %j', (raw, message) => {
    const result = webWarcParams.safeParse(raw);
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain(message);
  });
});

describe('extractLinks', () => {
  it('finds links and requisites, decodes entities, honours <base>, skips comments, scripts and other schemes', () => {
    const html = `<base href="https://example.org/docs/">
      <A HREF="page?a=1&amp;b=2#frag">x</A> <a data-x='>' href = 'other'>y</a> <a href=bare.html>z</a>
      <img srcset="small.png 1x, big.png 2x" src="img.png"> <script>var s = '<a href="/nope">';</script>
      <link rel=icon href="/favicon.ico"><a href="mailto:a@b.c">m</a><!-- <a href="/hidden"> -->`;
    const { links, requisites } = extractLinks(html, new URL('https://example.org/index.html'));
    expect(links.map(String)).toEqual(['https://example.org/docs/page?a=1&b=2', 'https://example.org/docs/other', 'https://example.org/docs/bare.html']);
    expect(requisites.map(String)).toEqual(['https://example.org/docs/img.png', 'https://example.org/docs/small.png', 'https://example.org/docs/big.png', 'https://example.org/favicon.ico']);
  });
});

describe('inScope', () => {
  const seed = [new URL('https://www.example.org/docs/index.html')];
  it.each([
    ['host', 'https://www.example.org/other', true],
    ['host', 'https://example.org/', false],
    ['prefix', 'https://www.example.org/docs/a/b', true],
    ['prefix', 'https://www.example.org/blog/', false],
    ['domain', 'https://cdn.example.org/x.js', true],
    ['domain', 'https://example.org.evil.test/', false],
  ] as const)('%s scope: %s → %s', (scope, url, expected) => {
    expect(inScope(new URL(url), seed, scope)).toBe(expected);
  });
});

describe('web/warc', () => {
  it('crawls a site breadth-first within scope and depth, each URL once, into a WARC warcio reads', async () => {
    const result = await webWarc.run(context(), webWarcParams.parse({ urls: [`${base}/`], depth: 2 }));
    expect(result.state).toBeUndefined();
    expect(await readdir(join(dir, 'out'))).toEqual(['crawl.warc.gz', 'pages.json']);
    expect(await readdir(join(dir, 'scratch'))).toEqual([]);

    // Each URL once; /deeper is depth 3; the commented-out and script-text links never appear.
    expect([...hits].sort()).toEqual(['/', '/about', '/app.js', '/deep', '/logo.png', '/moved', '/new-home', '/style.css']);
    expect(outsideHits).toBe(0);

    const listed = JSON.parse(await readFile(join(dir, 'out', 'pages.json'), 'utf8')) as PageEntry[];
    expect(listed[0]).toEqual({ url: `${base}/`, depth: 0, status: 200, contentType: 'text/html; charset=utf-8', size: pages(outsideBase)['/']!.body.length });
    expect(listed.find((page) => page.url === `${base}/moved`)).toMatchObject({ status: 301, location: `${base}/new-home` });
    expect(listed.find((page) => page.url === `${base}/deep`)).toMatchObject({ depth: 2 });
    expect(listed.find((page) => page.url === `${base}/style.css`)).toMatchObject({ depth: 0, contentType: 'text/css' });
    expect(result.metadata).toMatchObject({ pages: 8, failed: 0, warc: 'crawl.warc.gz' });

    const records = await readWarc(join(dir, 'out', 'crawl.warc.gz'));
    expect(records[0]!.type).toBe('warcinfo');
    expect(records[0]!.payload).toContain(`seeds: ${base}/`);
    const responses = records.filter((record) => record.type === 'response');
    const requests = records.filter((record) => record.type === 'request');
    expect(responses.map((record) => record.uri)).toEqual(listed.map((page) => page.url));
    expect(requests).toHaveLength(responses.length);
    for (const request of requests) expect(responses.some((response) => response.id === request.concurrentTo && response.uri === request.uri)).toBe(true);
    expect(responses.find((record) => record.uri === `${base}/about`)!.payload).toBe(pages(outsideBase)['/about']!.body);
    expect(responses.find((record) => record.uri === `${base}/moved`)!.status).toBe(301);

    expect(progress.at(-1)).toEqual({ done: 8, total: 8, message: '8 of 8 URLs fetched' });
  });

  it('keeps to depth 0 (seed and its requisites) and to max_pages', async () => {
    await webWarc.run(context(), webWarcParams.parse({ urls: [`${base}/`], depth: 0 }));
    expect([...hits].sort()).toEqual(['/', '/app.js', '/logo.png', '/style.css']);
    hits = [];
    const result = await webWarc.run(context({ outDir: join(dir, 'scratch') }), webWarcParams.parse({ urls: [`${base}/`], max_pages: 2 }));
    expect(hits).toHaveLength(2);
    expect(result.metadata).toMatchObject({ pages: 2 });
  });

  it('refuses loopback addresses when private addresses are not allowed', async () => {
    const result = await webWarc.run(context({ fetch: new FetchGuard({ allowPrivateAddresses: false }) }), webWarcParams.parse({ urls: [`${base}/`] }));
    expect(result.state).toBe('failed');
    expect(result.error).toBe('no URL could be fetched: refused: 127.0.0.1 is a loopback address');
    expect(hits).toEqual([]);
  });

  it('stops promptly when aborted and leaves no half-written WARC', async () => {
    const controller = new AbortController();
    const running = webWarc.run(context({ signal: controller.signal }), webWarcParams.parse({ urls: [`${base}/slow`] }));
    await new Promise((resolve) => setTimeout(resolve, 150));
    const started = Date.now();
    controller.abort(new Error('cancelled by test'));
    await expect(running).rejects.toThrow('cancelled by test');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await readdir(join(dir, 'out'))).toEqual([]);
  });
});

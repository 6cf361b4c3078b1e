import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskContext, TaskProgress } from '../../../src/ports/task-type.js';
import { type Params, type ZimReport, kiwixZim } from './index.js';
import { newestInListing, splitDatedName } from './resolve-name.js';
import { readZimMetadata } from './zim-metadata.js';
import { ZimReader } from './zim-reader.js';

const run = promisify(execFile);

/** A real 48×48 PNG, which zimwriterfs requires as the illustration. */
function png48(): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (data: Buffer) => {
    let c = 0xffffffff;
    for (const byte of data) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(48, 0);
  ihdr.writeUInt32BE(48, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.alloc(48 * (1 + 48 * 3), 0x80);
  for (let y = 0; y < 48; y++) rows[y * (1 + 48 * 3)] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function makeZim(dir: string, title: string, pages: number): Promise<Buffer> {
  const html = join(dir, 'html');
  await mkdir(html, { recursive: true });
  await writeFile(join(html, 'favicon.png'), png48());
  const links = Array.from({ length: pages - 1 }, (_, i) => `<a href="page${i}.html">Page ${i}</a>`).join(' ');
  await writeFile(join(html, 'index.html'), `<html><head><title>Welcome</title></head><body>${links}</body></html>`);
  for (let i = 0; i < pages - 1; i++) {
    await writeFile(join(html, `page${i}.html`), `<html><head><title>Page ${i}</title></head><body><p>Text ${i}</p></body></html>`);
  }
  const out = join(dir, 'test.zim');
  await run('zimwriterfs', [
    '--welcome=index.html',
    '--illustration=favicon.png',
    '--language=eng',
    `--title=${title}`,
    '--description=A small test wiki',
    '--creator=Test Creator',
    '--publisher=Test Publisher',
    '--withoutFTIndex',
    html,
    out,
  ]);
  return readFile(out);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

let work: string;
let server: Server;
let base: string;
let newZim: Buffer;
let oldZim: Buffer;
const routes = new Map<string, { body: Buffer; status?: number; location?: string }>();

function serve(path: string, body: Buffer | string) {
  routes.set(path, { body: Buffer.isBuffer(body) ? body : Buffer.from(body) });
}

function listing(files: string[]): string {
  const rows = files.map((f) => `<tr><td><a href="${f}">${f}</a></td><td align="right">2024-02-01 10:00</td></tr>`);
  return `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head><title>Index of /zim/wikipedia</title></head><body><h1>Index of /zim/wikipedia</h1>
<table><tr><th><a href="?C=N;O=D">Name</a></th></tr><tr><td><a href="/zim/">Parent Directory</a></td></tr>
${rows.join('\n')}
</table></body></html>`;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiwix-zim-test-'));
  try {
    await run('zimwriterfs', ['--version']);
  } catch {
    throw new Error('zimwriterfs (zim-tools) is missing: run `bash scripts/test-deps.sh`');
  }
  newZim = await makeZim(join(work, 'new'), 'Test Wiki (new)', 4);
  oldZim = await makeZim(join(work, 'old'), 'Test Wiki (old)', 2);

  const newName = 'wikipedia_en_test_2024-02.zim';
  const oldName = 'wikipedia_en_test_2023-11.zim';
  // Decoys: a longer name with a newer date, and a non-ZIM file, must not be picked.
  serve(
    '/zim/wikipedia/',
    listing([oldName, `${oldName}.sha256`, newName, `${newName}.md5`, `${newName}.sha256`, 'wikipedia_en_test_nopic_2025-01.zim', 'wikipedia_en_test_2025-03.zim.torrent']),
  );
  serve(`/zim/wikipedia/${newName}`, newZim);
  serve(`/zim/wikipedia/${newName}.sha256`, `${sha256(newZim)}  ${newName}\n`);
  serve(`/zim/wikipedia/${newName}.md5`, `${md5(newZim)}  ${newName}\n`);
  serve(`/zim/wikipedia/${oldName}`, oldZim);
  serve(`/zim/wikipedia/${oldName}.sha256`, `${sha256(oldZim)}  ${oldName}\n`);
  routes.set('/moved/wikipedia_en_test_2024-02.zim', { body: Buffer.alloc(0), status: 302, location: `/zim/wikipedia/${newName}` });
  routes.set('/moved/wikipedia_en_test_2024-02.zim.md5', { body: Buffer.alloc(0), status: 302, location: `/zim/wikipedia/${newName}.md5` });

  const corrupt = Buffer.from(newZim);
  corrupt[Math.floor(corrupt.length / 2)]! ^= 0xff;
  serve('/corrupt/wikipedia_en_test_2024-02.zim', corrupt);
  serve('/corrupt/wikipedia_en_test_2024-02.zim.sha256', `${sha256(newZim)}  wikipedia_en_test_2024-02.zim\n`);

  const notZim = Buffer.from('<html>this is an error page, not a ZIM file</html>'.repeat(40));
  serve('/fake/fake_2024-01.zim', notZim);
  serve('/fake/fake_2024-01.zim.sha256', `${sha256(notZim)}  fake_2024-01.zim\n`);

  server = createServer((request, response) => {
    const route = routes.get(new URL(request.url ?? '/', 'http://x').pathname);
    if (!route) {
      response.writeHead(404).end('not found');
      return;
    }
    if (route.location) {
      response.writeHead(route.status ?? 302, { location: route.location }).end();
      return;
    }
    response.writeHead(200, { 'content-length': route.body.length }).end(route.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  if (work) await rm(work, { recursive: true, force: true });
});

function unused(what: string): never {
  throw new Error(`kiwix/zim must not use ${what}`);
}

async function context(options: { allowPrivateAddresses?: boolean } = {}) {
  const dir = await mkdtemp(join(work, 'run-'));
  const outDir = join(dir, 'out');
  await mkdir(outDir);
  const logs: string[] = [];
  const progress: TaskProgress[] = [];
  const ctx: TaskContext = {
    runId: 'run-1',
    signal: new AbortController().signal,
    log: (line) => logs.push(line),
    progress: (p) => progress.push(p),
    ipfs: { addPath: () => unused('ipfs'), close: () => unused('ipfs') },
    executor: { execute: () => unused('the executor') },
    outDir,
    scratchDir: dir,
    sourceDir: dir,
    inputs: {},
    limits: { memoryBytes: 1 << 30, nanoCpus: 1e9, pidsLimit: 100, timeoutMs: 60_000 },
    env: {},
    settings: { allowPrivateAddresses: options.allowPrivateAddresses ?? true, gatewayUrl: 'https://ipfs.io' },
  };
  return { ctx, outDir, logs, progress };
}

function params(input: Record<string, unknown>): Params {
  return kiwixZim.params.parse(input);
}

describe('kiwix/zim parameters', () => {
  it.each([
    [{ name: 'wikipedia_en_all_nopic' }, true],
    [{ name: 'wikipedia_en_all_nopic_2024-01', checksum: 'md5' }, true],
    [{ url: 'https://download.kiwix.org/zim/wikipedia/wikipedia_en_all_nopic_2024-01.zim' }, true],
    [{}, false],
    [{ name: 'wikipedia_en_all', url: 'https://example.org/a.zim' }, false],
    [{ name: '../etc/passwd' }, false],
    [{ url: 'file:///etc/passwd' }, false],
    [{ name: 'wikipedia_en_all', checksum: 'sha1' }, false],
  ])('%j valid: %s', (input, valid) => {
    expect(kiwixZim.params.safeParse(input).success).toBe(valid);
  });

  it('splits a dated name and picks only exact names from a listing', () => {
    expect(splitDatedName('wikipedia_en_all_nopic_2024-01')).toEqual({ book: 'wikipedia_en_all_nopic', date: '2024-01' });
    expect(splitDatedName('wikipedia_en_all_nopic')).toEqual({ book: 'wikipedia_en_all_nopic', date: undefined });
    const html = listing(['wikipedia_en_all_2023-12.zim', 'wikipedia_en_all_nopic_2025-01.zim', 'wikipedia_en_all_2024-05.zim']);
    expect(newestInListing(html, 'wikipedia_en_all')).toBe('wikipedia_en_all_2024-05.zim');
    expect(newestInListing(html, 'wikipedia_fr_all')).toBeUndefined();
  });
});

describe('kiwix/zim', () => {
  it('resolves a name to the newest release, verifies it and reads its metadata', async () => {
    const { ctx, outDir, progress } = await context();
    const result = await kiwixZim.run(ctx, params({ name: 'wikipedia_en_test', mirror: `${base}/zim/` }));
    expect(result.state ?? 'succeeded').toBe('succeeded');
    const report = result.metadata as unknown as ZimReport;
    expect(report.filename).toBe('wikipedia_en_test_2024-02.zim');
    expect(report.url).toBe(`${base}/zim/wikipedia/wikipedia_en_test_2024-02.zim`);
    expect(report.sha256).toBe(sha256(newZim));
    expect(report.bytes).toBe(newZim.length);
    expect(report.header).toMatchObject({ majorVersion: 6, clusterCount: expect.any(Number), mimeListPos: 80 });
    expect(report.header.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(report.metadata).toMatchObject({
      title: 'Test Wiki (new)',
      language: 'eng',
      creator: 'Test Creator',
      publisher: 'Test Publisher',
      description: 'A small test wiki',
      date: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
      articleCount: 4,
      mainPage: 'index.html',
      // libzim puts text metadata in a zstd cluster, which Node 20 cannot inflate.
      readWith: 'zimdump',
    });
    expect(report.metadata.entryCount).toBe(report.header.entryCount);

    expect((await readdir(outDir)).sort()).toEqual(['wikipedia_en_test_2024-02.zim', 'zim.json']);
    expect(await readFile(join(outDir, 'wikipedia_en_test_2024-02.zim'))).toEqual(newZim);
    expect(JSON.parse(await readFile(join(outDir, 'zim.json'), 'utf8'))).toEqual(report);
    expect(progress.at(-1)).toEqual({ done: newZim.length, total: newZim.length });
  });

  it('takes a dated name as it is', async () => {
    const { ctx } = await context();
    const result = await kiwixZim.run(ctx, params({ name: 'wikipedia_en_test_2023-11', mirror: `${base}/zim` }));
    expect(result.metadata).toMatchObject({ filename: 'wikipedia_en_test_2023-11.zim', metadata: { title: 'Test Wiki (old)', articleCount: 2 } });
  });

  it('fetches a URL through redirects, verifying with md5', async () => {
    const { ctx, outDir } = await context();
    const result = await kiwixZim.run(ctx, params({ url: `${base}/moved/wikipedia_en_test_2024-02.zim`, checksum: 'md5' }));
    expect(result.state ?? 'succeeded').toBe('succeeded');
    expect(result.metadata).toMatchObject({ filename: 'wikipedia_en_test_2024-02.zim', md5: md5(newZim), metadata: { title: 'Test Wiki (new)' } });
    expect(await readdir(outDir)).toContain('wikipedia_en_test_2024-02.zim');
  });

  it('fails on a checksum mismatch and leaves no ZIM behind', async () => {
    const { ctx, outDir } = await context();
    const result = await kiwixZim.run(ctx, params({ url: `${base}/corrupt/wikipedia_en_test_2024-02.zim` }));
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(new RegExp(`^checksum mismatch: expected sha256 ${sha256(newZim)}, got [0-9a-f]{64}`));
    expect(await readdir(outDir)).toEqual([]);
  });

  it('fails clearly on a file that is not a ZIM, even with a matching checksum', async () => {
    const { ctx, outDir } = await context();
    const result = await kiwixZim.run(ctx, params({ url: `${base}/fake/fake_2024-01.zim` }));
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(/^not a ZIM file: magic number \d+, expected 72173914/);
    expect(await readdir(outDir)).toEqual([]);
  });

  it('says when no release of a name is listed', async () => {
    const { ctx } = await context();
    const result = await kiwixZim.run(ctx, params({ name: 'wikipedia_fr_test', mirror: `${base}/zim/` }));
    expect(result).toEqual({ state: 'failed', error: `no wikipedia_fr_test_YYYY-MM.zim is listed in ${base}/zim/wikipedia/` });
  });

  it('records what the header gives when compressed metadata cannot be read', async () => {
    const path = join(work, 'header-only.zim');
    await writeFile(path, newZim);
    const file = await open(path, 'r');
    try {
      const reader = await ZimReader.open(file);
      const logs: string[] = [];
      const metadata = await readZimMetadata(reader, {
        path,
        signal: new AbortController().signal,
        log: (line) => logs.push(line),
        zimdump: join(work, 'no-such-zimdump'),
      });
      expect(metadata).toMatchObject({ readWith: 'header', entryCount: reader.header.entryCount, mainPage: 'index.html' });
      expect(metadata.title).toBeUndefined();
      expect(logs.join('\n')).toMatch(/compressed clusters and zimdump is not available/);
    } finally {
      await file.close();
    }
  });

  it('refuses 127.0.0.1 unless private addresses are allowed', async () => {
    const { ctx, outDir } = await context({ allowPrivateAddresses: false });
    const result = await kiwixZim.run(ctx, params({ url: `${base}/zim/wikipedia/wikipedia_en_test_2024-02.zim` }));
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(/^refused: 127\.0\.0\.1 is a loopback address/);
    expect(await readdir(outDir)).toEqual([]);
  });

  it('refuses a name that resolves to a loopback address', async () => {
    const { ctx } = await context({ allowPrivateAddresses: false });
    const port = (server.address() as AddressInfo).port;
    const result = await kiwixZim.run(ctx, params({ url: `http://localhost:${port}/zim/wikipedia/wikipedia_en_test_2024-02.zim` }));
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(/^refused: (127\.0\.0\.1|::1) is a loopback address \(resolved from localhost\)/);
  });
});

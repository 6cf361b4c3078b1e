import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskContext, TaskProgress } from '../../../src/ports/task-type.js';
import { zimToolsAvailable } from '../../../test/support/kiwix-stand-in.js';
import { wikiZim, wikiZimSpec, writeZim, zstdFrame, type ZimSpec } from '../../../test/support/zim-writer.js';
import { FetchGuard } from '../../shared/safe-fetch.js';
import { type Params, type ZimReport, kiwixZim } from './index.js';
import { inspectZim, type InspectZimOptions } from './inspect-zim.js';
import { newestInListing, splitDatedName } from './resolve-name.js';

/** Writing ZIM files needs the zstd and xz programs; without them the suite says so and skips. */
const ready = zimToolsAvailable();

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');
const MiB = 1024 * 1024;

let work: string | undefined;
let server: Server | undefined;
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

/** A ZIM of `spec` served with its checksum under /attack/<name>.zim. */
function serveZim(name: string, bytes: Buffer): string {
  serve(`/attack/${name}.zim`, bytes);
  serve(`/attack/${name}.zim.sha256`, `${sha256(bytes)}  ${name}.zim\n`);
  return `${base}/attack/${name}.zim`;
}

beforeAll(async () => {
  if (!ready) return;
  work = await mkdtemp(join(tmpdir(), 'kiwix-zim-test-'));
  newZim = wikiZim({ title: 'Test Wiki (new)', pages: 3 });
  oldZim = wikiZim({ title: 'Test Wiki (old)', pages: 1, compression: 'xz' });

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
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  const running = server;
  if (running) await new Promise<void>((resolve) => running.close(() => resolve()));
  if (work) await rm(work, { recursive: true, force: true });
});

function unused(what: string): never {
  throw new Error(`kiwix/zim must not use ${what}`);
}

async function context(options: { allowPrivateAddresses?: boolean } = {}) {
  const dir = await mkdtemp(join(work!, 'run-'));
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
    // The worker's fetch, as it builds it for these settings.
    fetch: new FetchGuard({ allowPrivateAddresses: options.allowPrivateAddresses ?? true }),
  };
  return { ctx, outDir, logs, progress };
}

function params(input: Record<string, unknown>): Params {
  return kiwixZim.params.parse(input);
}

/** What `work` gave (or threw) and the longest the event loop was blocked meanwhile, in ms. */
async function watched<T>(work: () => Promise<T>): Promise<{ outcome: { ok: true; value: T } | { ok: false; error: Error }; blockedMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let outcome: { ok: true; value: T } | { ok: false; error: Error };
  try {
    outcome = { ok: true, value: await work() };
  } catch (error) {
    outcome = { ok: false, error: error as Error };
  }
  await new Promise((resolve) => setTimeout(resolve, 30));
  delay.disable();
  return { outcome, blockedMs: delay.max / 1e6 };
}

async function zimFile(name: string, bytes: Buffer): Promise<string> {
  const path = join(work!, name);
  await writeFile(path, bytes);
  return path;
}

const quiet: InspectZimOptions = { signal: new AbortController().signal, log: () => {} };

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

describe.skipIf(!ready)('kiwix/zim', () => {
  it('resolves a name to the newest release, verifies it and reads its metadata from a zstd cluster', async () => {
    const { ctx, outDir, progress } = await context();
    const result = await kiwixZim.run(ctx, params({ name: 'wikipedia_en_test', mirror: `${base}/zim/` }));
    expect(result.state ?? 'succeeded').toBe('succeeded');
    const report = result.metadata as unknown as ZimReport;
    expect(report.filename).toBe('wikipedia_en_test_2024-02.zim');
    expect(report.url).toBe(`${base}/zim/wikipedia/wikipedia_en_test_2024-02.zim`);
    expect(report.sha256).toBe(sha256(newZim));
    expect(report.bytes).toBe(newZim.length);
    expect(report.header).toMatchObject({ majorVersion: 6, minorVersion: 1, clusterCount: 2, mimeListPos: 80 });
    expect(report.header.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(report.header.mimeTypes).toContain('text/html');
    expect(report.metadata).toEqual({
      title: 'Test Wiki (new)',
      language: 'eng',
      creator: 'Test Creator',
      publisher: 'Test Publisher',
      description: 'A small wiki for tests',
      date: '2024-06-01',
      name: 'test_wiki',
      counter: 'text/html=4',
      articleCount: 4,
      entryCount: report.header.entryCount,
      mainPage: 'index.html',
    });

    expect((await readdir(outDir)).sort()).toEqual(['wikipedia_en_test_2024-02.zim', 'zim.json']);
    expect(await readFile(join(outDir, 'wikipedia_en_test_2024-02.zim'))).toEqual(newZim);
    expect(JSON.parse(await readFile(join(outDir, 'zim.json'), 'utf8'))).toEqual(report);
    expect(progress.at(-1)).toEqual({ done: newZim.length, total: newZim.length });
  });

  it('takes a dated name as it is, and reads metadata from an xz cluster', async () => {
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

  it('refuses 127.0.0.1 unless private addresses are allowed', async () => {
    const { ctx, outDir } = await context({ allowPrivateAddresses: false });
    const result = await kiwixZim.run(ctx, params({ url: `${base}/zim/wikipedia/wikipedia_en_test_2024-02.zim` }));
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(/^refused: 127\.0\.0\.1 is a loopback address/);
    expect(await readdir(outDir)).toEqual([]);
  });

  it('refuses a name that resolves to a loopback address', async () => {
    const { ctx } = await context({ allowPrivateAddresses: false });
    const port = (server!.address() as AddressInfo).port;
    const result = await kiwixZim.run(ctx, params({ url: `http://localhost:${port}/zim/wikipedia/wikipedia_en_test_2024-02.zim` }));
    expect(result.state).toBe('failed');
    expect(result.error).toMatch(/^refused: (127\.0\.0\.1|::1) is a loopback address \(resolved from localhost\)/);
  });
});

describe.skipIf(!ready)('reading ZIM files', () => {
  it('reads a ZIM file written by libzim (zimwriterfs), its text in a zstd cluster libzim compressed', async () => {
    // fixtures/zimwriterfs-3.1.3.zim: zimwriterfs 3.1.3 (libzim 8.1.1) over a welcome page, three
    // pages and a 48×48 PNG, --withoutFTIndex.
    const inspection = await inspectZim(join(import.meta.dirname, 'fixtures', 'zimwriterfs-3.1.3.zim'), quiet);
    expect(inspection.header).toMatchObject({ majorVersion: 6, minorVersion: 1, entryCount: 19, clusterCount: 2, mainPage: 15 });
    expect(inspection.mimeTypes).toEqual([
      'application/octet-stream+xapian',
      'application/octet-stream+zimlisting',
      'image/png',
      'text/html',
      'text/plain',
      'text/plain;charset=utf-8',
    ]);
    expect(inspection.metadata).toMatchObject({
      title: 'Real Test Wiki',
      language: 'eng',
      creator: 'Test Creator',
      publisher: 'Test Publisher',
      description: 'A small wiki for tests',
      scraper: 'zimwriterfs-3.1.3',
      articleCount: 4,
      entryCount: 19,
      mainPage: 'index.html',
    });
  });

  it('reads clusters with 8-byte blob offsets', async () => {
    const spec = wikiZimSpec({ title: 'Extended', pages: 2, compression: 'none' });
    spec.clusters[0]!.extended = true;
    spec.clusters[1]!.extended = true;
    const inspection = await inspectZim(await zimFile('extended.zim', writeZim(spec).bytes), quiet);
    expect(inspection.metadata).toMatchObject({ title: 'Extended', articleCount: 3, mainPage: 'index.html' });
  });

  it('leaves out metadata larger than 64 KiB, with a log line, and reads the rest', async () => {
    const spec = wikiZimSpec({ title: 'Long', pages: 1 });
    spec.items.find((item) => item.path === 'Description')!.content = 'x'.repeat(100 * 1024);
    const logs: string[] = [];
    const inspection = await inspectZim(await zimFile('long.zim', writeZim(spec).bytes), { ...quiet, log: (line) => logs.push(line) });
    expect(inspection.metadata).toMatchObject({ title: 'Long', language: 'eng' });
    expect(inspection.metadata.description).toBeUndefined();
    expect(logs).toEqual(['kiwix/zim: metadata Description is larger than 64 KiB; left out']);
  });
});

/**
 * Attacks: each hostile file ends the reading with one clear line, and the event loop is never
 * blocked for more than a second meanwhile (the bytes are parsed and decompressed in a worker).
 */
describe.skipIf(!ready)('hostile ZIM files', () => {
  /** The wiki of wikiZimSpec with `change` applied; index.html is blob 0 of cluster 0, the metadata after it. */
  function hostile(change: (spec: ZimSpec) => void): Buffer {
    const spec = wikiZimSpec({ title: 'Hostile', pages: 2 });
    change(spec);
    return writeZim(spec).bytes;
  }

  async function expectRefused(name: string, bytes: Buffer, error: RegExp, options: Partial<InspectZimOptions> = {}) {
    const path = await zimFile(name, bytes);
    const { outcome, blockedMs } = await watched(() => inspectZim(path, { ...quiet, ...options }));
    expect(outcome.ok ? 'read without error' : outcome.error.message).toMatch(error);
    expect(blockedMs).toBeLessThan(1000);
  }

  it('a zstd bomb (34 KB that decompress to 1 GiB before the metadata) ends the task naming the limit, and no ZIM is kept', async () => {
    const bomb = hostile((spec) => {
      spec.clusters[0] = { compression: 'zstd', bomb: { blob: 0, bytes: 1024 * MiB } };
    });
    expect(bomb.length).toBeLessThan(64 * 1024);
    const { ctx, outDir } = await context();
    const url = serveZim('bomb_2024-01', bomb);
    const { outcome, blockedMs } = await watched(() => kiwixZim.run(ctx, params({ url })));
    expect(outcome.ok && outcome.value).toEqual({
      state: 'failed',
      error: 'ZIM cluster 0 would decompress to more than 64 MiB, the limit per cluster (blob 10 of cluster 0 ends 1073742122 bytes in)',
    });
    expect(blockedMs).toBeLessThan(1000);
    expect(await readdir(outDir)).toEqual([]);
  });

  it('a zstd frame asking for a 2 GiB window is refused before anything is allocated', async () => {
    await expectRefused(
      'window.zim',
      hostile((spec) => {
        spec.clusters[0] = { compression: 'none', raw: Buffer.concat([Buffer.from([5]), zstdFrame([{ raw: Buffer.from('x') }], 31)]) };
      }),
      /^ZIM cluster 0 asks for a zstd window of 2048 MiB, more than the limit of 32 MiB$/,
    );
  });

  it('stops at the limit for all clusters together', async () => {
    // Two clusters whose metadata lies 3 MiB in, within the per-cluster limit of 4 MiB; 5 MiB in all.
    const bytes = hostile((spec) => {
      spec.items.find((item) => item.path === 'Title')!.cluster = 2;
      // padding.html is blob 0 of cluster 2, Title blob 1.
      spec.items.splice(spec.items.findIndex((item) => item.path === 'Title'), 0, {
        namespace: 'C',
        path: 'padding.html',
        mime: 'text/html',
        content: '',
        cluster: 2,
      });
      spec.clusters[0] = { compression: 'zstd', bomb: { blob: 0, bytes: 3 * MiB } };
      spec.clusters[2] = { compression: 'zstd', bomb: { blob: 0, bytes: 3 * MiB } };
    });
    await expectRefused('total.zim', bytes, /^the ZIM file decompresses to more than 5 MiB in all, the limit for one file \(at cluster \d\)$/, {
      limits: { maxClusterBytes: 4 * MiB, maxTotalBytes: 5 * MiB },
    });
  });

  it('a cluster of one-byte zstd blocks (each costs the decoder its whole window) is stopped at the deadline per cluster', async () => {
    const bytes = hostile((spec) => {
      spec.clusters[0] = { compression: 'zstd', bomb: { blob: 0, bytes: 400_000, blockSize: 1 } };
    });
    await expectRefused('slow.zim', bytes, /^ZIM cluster 0 took more than 0\.5 s to decompress, the limit per cluster$/, {
      limits: { clusterDeadlineMs: 500 },
    });
  });

  it('the event loop ends a reading that runs past its deadline, worker busy or not', async () => {
    const bytes = hostile((spec) => {
      spec.clusters[0] = { compression: 'zstd', bomb: { blob: 0, bytes: 400_000, blockSize: 1 } };
    });
    await expectRefused('deadline.zim', bytes, /^reading the ZIM file took more than 3 s, the limit$/, {
      limits: { clusterDeadlineMs: 60_000 },
      deadlineMs: 3000,
    });
  });

  it.each<[string, (bytes: Buffer, layout: ReturnType<typeof writeZim>['layout']) => Buffer, RegExp]>([
    ['cut in half', (bytes) => bytes.subarray(0, bytes.length >> 1), /^broken ZIM header: \w+ \d+ lies past the end of the file \(\d+ bytes\)$/],
    ['cut to 40 bytes', (bytes) => bytes.subarray(0, 40), /^not a ZIM file: only 40 bytes$/],
    [
      'an entry pointer past the end',
      (bytes, layout) => {
        const copy = Buffer.from(bytes);
        copy.writeBigUInt64LE(1n << 40n, layout.urlPtrPos + 8 * layout.entryIndex.get('M/Title')!);
        return copy;
      },
      /^broken ZIM: entry \d+ lies at 1099511627776, past the end of the file$/,
    ],
    [
      'a main page that redirects to itself',
      (bytes, layout) => {
        const copy = Buffer.from(bytes);
        copy.writeUInt32LE(layout.entryIndex.get('W/mainPage')!, layout.entryOffsets.get('W/mainPage')! + 8);
        return copy;
      },
      /^broken ZIM: entry \d+ redirects in a loop$/,
    ],
    [
      'an entry in a cluster that does not exist',
      (bytes, layout) => {
        const copy = Buffer.from(bytes);
        copy.writeUInt32LE(99, layout.entryOffsets.get('M/Title')! + 8);
        return copy;
      },
      /^broken ZIM: cluster 99 does not exist \(the file has 2\)$/,
    ],
    [
      'a cluster pointer past the end',
      (bytes, layout) => {
        const copy = Buffer.from(bytes);
        copy.writeBigUInt64LE(BigInt(bytes.length + 10), layout.clusterPtrPos);
        return copy;
      },
      /^broken ZIM: cluster 0 has bad bounds/,
    ],
    [
      'a zstd cluster cut short',
      (bytes, layout) => {
        // Cluster 1 now starts 8 bytes into cluster 0's frame.
        const copy = Buffer.from(bytes);
        copy.writeBigUInt64LE(BigInt(layout.clusterOffsets[0]! + 8), layout.clusterPtrPos + 8);
        return copy;
      },
      /^broken ZIM: cluster 0's zstd data is cut short$/,
    ],
    [
      'garbage where the zstd frame should be',
      (bytes, layout) => {
        const copy = Buffer.from(bytes);
        copy.fill(0x41, layout.clusterOffsets[0]! + 1, layout.clusterOffsets[0]! + 9);
        return copy;
      },
      /^broken ZIM: cluster 0 has no zstd frame \(magic number 0x41414141\)$/,
    ],
    [
      'a cluster in zlib',
      (bytes, layout) => {
        const copy = Buffer.from(bytes);
        copy[layout.clusterOffsets[0]!] = 2;
        return copy;
      },
      /^ZIM cluster 0 uses zlib compression, which task-mgmt does not read/,
    ],
  ])('a ZIM with %s fails clearly', async (name, damage, error) => {
    const { bytes, layout } = writeZim(wikiZimSpec({ title: 'Damaged', pages: 2 }));
    await expectRefused(`${name.replace(/\W+/g, '-')}.zim`, damage(bytes, layout), error);
  });

  it('an xz cluster cut short fails clearly', async () => {
    const { bytes, layout } = writeZim(wikiZimSpec({ title: 'Damaged xz', pages: 2, compression: 'xz' }));
    const copy = Buffer.from(bytes);
    copy.writeBigUInt64LE(BigInt(layout.clusterOffsets[0]! + 40), layout.clusterPtrPos + 8);
    await expectRefused('xz-cut.zim', copy, /^broken ZIM: cluster 0 holds (xz data that is cut short|corrupt xz data)$/);
  });

  it('blob offsets that point outside the cluster fail clearly', async () => {
    const { bytes, layout } = writeZim(wikiZimSpec({ title: 'Offsets', pages: 2, compression: 'none' }));
    const copy = Buffer.from(bytes);
    // The first offset of an uncompressed cluster says how many blobs it has: make it 7 (not a multiple of 4).
    copy.writeUInt32LE(7, layout.clusterOffsets[0]! + 1);
    await expectRefused('offsets.zim', copy, /^broken ZIM: cluster 0 starts with a bad offset \(7\)$/);
  });
});

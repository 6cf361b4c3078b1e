import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskContext, TaskInput, TaskProgress } from '../../../src/ports/task-type.js';
import { type Identified, csvField, filesIdentify, sniff } from './index.js';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'files-identify-test-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function unused(what: string): never {
  throw new Error(`files/identify must not use ${what}`);
}

async function context(inputs: Record<string, string>) {
  const dir = await mkdtemp(join(work, 'run-'));
  const outDir = join(dir, 'out');
  await mkdir(outDir);
  const progress: TaskProgress[] = [];
  const ctx: TaskContext = {
    runId: 'run-1',
    signal: new AbortController().signal,
    log: () => {},
    progress: (p) => progress.push(p),
    ipfs: { addPath: () => unused('ipfs'), close: () => unused('ipfs') },
    executor: { execute: () => unused('the executor') },
    outDir,
    scratchDir: dir,
    sourceDir: dir,
    inputs: Object.fromEntries(
      Object.entries(inputs).map(([name, inputDir]): [string, TaskInput] => [name, { dir: inputDir, cid: 'Qm', files: [], metadata: {} }]),
    ),
    limits: { memoryBytes: 1 << 30, nanoCpus: 1e9, pidsLimit: 100, timeoutMs: 60_000 },
    env: {},
    settings: { allowPrivateAddresses: true, gatewayUrl: 'https://ipfs.io' },
    fetch: { get: () => unused('the network') },
  };
  return { ctx, outDir, progress };
}

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function png(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from([0, 0]))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The smallest GIF: 1×1, one colour. */
const gif = Buffer.from('47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b', 'hex');

function pdf(): Buffer {
  return Buffer.from(
    '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
  );
}

/** A ZIP with one deflated member, written by hand (local header, central directory, end record). */
function zip(name: string, content: Buffer): Buffer {
  const data = deflateRawSync(content);
  const nameBytes = Buffer.from(name);
  const crc = crc32(content);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(content.length, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(content.length, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  const centralOffset = local.length + nameBytes.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + nameBytes.length, 12);
  end.writeUInt32LE(centralOffset, 16);
  return Buffer.concat([local, nameBytes, data, central, nameBytes, end]);
}

function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  return rows;
}

describe('files/identify helpers', () => {
  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
  ])('csvField(%j) is %j', (input, output) => {
    expect(csvField(input)).toBe(output);
  });

  it.each([
    [Buffer.from('{"a": [1, 2]}'), 'application/json'],
    [Buffer.from('{"a": [1, 2'), 'text/plain'],
    [Buffer.from('héllo wörld\n'), 'text/plain'],
    [Buffer.from([0x68, 0x00, 0x69]), 'application/octet-stream'],
    [Buffer.from([0xc3, 0x28, 0x41]), 'application/octet-stream'],
    [Buffer.alloc(0), 'inode/x-empty'],
  ])('sniff(%s) is %s', (head, mime) => {
    expect(sniff(head, head.length).mime).toBe(mime);
  });

  it('accepts a multi-byte character cut at the end of the head of a longer file', () => {
    const head = Buffer.from('aé').subarray(0, 2);
    expect(sniff(head, 100).mime).toBe('text/plain');
  });
});

describe('files/identify', () => {
  it('identifies files by content and writes JSON, CSV and a summary', async () => {
    const input = join(work, 'mixed');
    await mkdir(join(input, 'images', 'deep'), { recursive: true });
    await mkdir(join(input, 'docs'), { recursive: true });
    await writeFile(join(input, 'images', 'dot.png'), png());
    await writeFile(join(input, 'images', 'deep', 'pixel.gif'), gif);
    await writeFile(join(input, 'docs', 'empty.pdf'), pdf());
    await writeFile(join(input, 'docs', 'bundle.zip'), zip('hello.txt', Buffer.from('hello, zip\n'.repeat(20))));
    await writeFile(join(input, 'data.gz'), gzipSync(Buffer.from('compressed text\n'.repeat(50))));
    await writeFile(join(input, 'data.json'), JSON.stringify({ files: [1, 2, 3], ok: true }));
    await writeFile(join(input, 'notes.txt'), 'Just some notes, in UTF-8: ünïcødé.\n');
    await writeFile(join(input, 'picture.txt'), png()); // a PNG misnamed .txt
    await writeFile(join(input, 'weird, "name".bin'), Buffer.from([0, 1, 2, 3, 255, 254]));
    await writeFile(join(input, 'empty'), '');

    const { ctx, outDir, progress } = await context({ fetch: input });
    const result = await filesIdentify.run(ctx, filesIdentify.params.parse({}));
    expect(result.state ?? 'succeeded').toBe('succeeded');

    const items = JSON.parse(await readFile(join(outDir, 'filetypes.json'), 'utf8')) as Identified[];
    const byPath = Object.fromEntries(items.map((i) => [i.path, i]));
    expect(items).toHaveLength(10);
    expect(byPath['images/dot.png']).toMatchObject({ input: 'fetch', mime: 'image/png', ext: 'png', by: 'content', size: png().length });
    expect(byPath['images/deep/pixel.gif']).toMatchObject({ mime: 'image/gif', ext: 'gif', by: 'content' });
    expect(byPath['docs/empty.pdf']).toMatchObject({ mime: 'application/pdf', ext: 'pdf', by: 'content' });
    expect(byPath['docs/bundle.zip']).toMatchObject({ mime: 'application/zip', ext: 'zip', by: 'content' });
    expect(byPath['data.gz']).toMatchObject({ mime: 'application/gzip', ext: 'gz', by: 'content' });
    expect(byPath['data.json']).toMatchObject({ mime: 'application/json', ext: 'json', by: 'fallback' });
    expect(byPath['notes.txt']).toMatchObject({ mime: 'text/plain', ext: 'txt', by: 'fallback' });
    expect(byPath['picture.txt']).toMatchObject({ mime: 'image/png', ext: 'png', by: 'content' });
    expect(byPath['weird, "name".bin']).toMatchObject({ mime: 'application/octet-stream', by: 'fallback' });
    expect(byPath['empty']).toMatchObject({ mime: 'inode/x-empty', size: 0, by: 'fallback' });

    const rows = parseCsv(await readFile(join(outDir, 'filetypes.csv'), 'utf8'));
    expect(rows[0]).toEqual(['input', 'path', 'size', 'mime', 'ext', 'by']);
    expect(rows.slice(1)).toEqual(items.map((i) => [i.input, i.path, String(i.size), i.mime, i.ext, i.by]));

    const summary = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ files: 10, byMime: { 'image/png': 2, 'text/plain': 1 }, byMethod: { content: 6, fallback: 4 } });
    expect(result.metadata).toEqual(summary);
    expect(progress.at(-1)).toEqual({ done: 10, total: 10 });
    expect((await readdir(outDir)).sort()).toEqual(['filetypes.csv', 'filetypes.json', 'summary.json']);
  });

  it('narrows to one input and a sub-folder, and refuses unknown inputs and escapes', async () => {
    const a = join(work, 'a');
    const b = join(work, 'b');
    await mkdir(join(a, 'sub'), { recursive: true });
    await mkdir(b, { recursive: true });
    await writeFile(join(a, 'sub', 'x.gif'), gif);
    await writeFile(join(a, 'top.txt'), 'top');
    await writeFile(join(b, 'y.txt'), 'why');

    const one = await context({ a, b });
    await filesIdentify.run(one.ctx, filesIdentify.params.parse({ input: 'a', path: 'sub' }));
    const items = JSON.parse(await readFile(join(one.outDir, 'filetypes.json'), 'utf8')) as Identified[];
    expect(items.map((i) => [i.input, i.path])).toEqual([['a', 'sub/x.gif']]);

    const all = await context({ a, b });
    await filesIdentify.run(all.ctx, filesIdentify.params.parse({}));
    const every = JSON.parse(await readFile(join(all.outDir, 'filetypes.json'), 'utf8')) as Identified[];
    expect(every.map((i) => `${i.input}:${i.path}`).sort()).toEqual(['a:sub/x.gif', 'a:top.txt', 'b:y.txt']);

    const unknown = await context({ a });
    expect(await filesIdentify.run(unknown.ctx, filesIdentify.params.parse({ input: 'zz' }))).toEqual({
      state: 'failed',
      error: 'input "zz" is not a task this one needs (needs: a)',
    });
    expect(await filesIdentify.run(unknown.ctx, filesIdentify.params.parse({ path: 'missing' }))).toEqual({
      state: 'failed',
      error: 'a has no folder missing',
    });
    expect(filesIdentify.params.safeParse({ path: '../b' }).success).toBe(false);
    expect(filesIdentify.params.safeParse({ path: '/etc' }).success).toBe(false);
  });

  it('writes an empty report for an empty input', async () => {
    const empty = join(work, 'empty-input');
    await mkdir(empty);
    const { ctx, outDir } = await context({ empty });
    await filesIdentify.run(ctx, filesIdentify.params.parse({}));
    expect(JSON.parse(await readFile(join(outDir, 'filetypes.json'), 'utf8'))).toEqual([]);
    expect(await readFile(join(outDir, 'filetypes.csv'), 'utf8')).toBe('input,path,size,mime,ext,by\r\n');
  });

  it('identifies 30,000 files with bounded memory', async () => {
    const input = join(work, 'many');
    const kinds = [png(), gif, Buffer.from('{"n": 1}'), Buffer.from('plain text\n'), gzipSync(Buffer.from('z'))];
    const count = 30_000;
    for (let d = 0; d < 30; d++) {
      const dir = join(input, `d${String(d).padStart(2, '0')}`);
      await mkdir(dir, { recursive: true });
      const writes: Promise<void>[] = [];
      for (let f = 0; f < count / 30; f++) writes.push(writeFile(join(dir, `f${f}.dat`), kinds[(d * 1000 + f) % kinds.length]!));
      await Promise.all(writes);
    }

    const { ctx, outDir } = await context({ many: input });
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }, 50);
    const started = performance.now();
    const result = await filesIdentify.run(ctx, filesIdentify.params.parse({}));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    const growthMb = (rssPeak - rssBefore) / 2 ** 20;
    console.log(`files/identify: ${count} files in ${seconds.toFixed(1)} s, RSS growth ${growthMb.toFixed(1)} MB`);

    expect(result.metadata).toMatchObject({ files: count, byMime: { 'image/png': count / 5, 'image/gif': count / 5, 'application/json': count / 5 } });
    const json = JSON.parse(await readFile(join(outDir, 'filetypes.json'), 'utf8')) as unknown[];
    expect(json).toHaveLength(count);
    const csv = (await readFile(join(outDir, 'filetypes.csv'), 'utf8')).split('\r\n').filter(Boolean);
    expect(csv).toHaveLength(count + 1);
    expect(growthMb).toBeLessThan(150);
  }, 120_000);
});

describe('an input file swapped while it is identified', () => {
  /**
   * Another thread turns `in/data` into a regular file and back into a FIFO or a symlink to a PNG
   * outside the input, atomically and as fast as it can, while identify runs again and again.
   */
  it.each(['fifo', 'symlink'] as const)('is never opened when it became a %s: no run hangs or reads through it', { timeout: 20_000 }, async (kind) => {
    const base = await mkdtemp(join(work, 'swap-'));
    const input = join(base, 'in');
    const spare = join(base, 'spare');
    await mkdir(input);
    await mkdir(spare);
    await writeFile(join(spare, 'file'), 'plain text\n'.repeat(10_000));
    await writeFile(join(base, 'secret.png'), png());
    const other = join(spare, kind);
    if (kind === 'fifo') execFileSync('mkfifo', [other]);
    else await symlink(join(base, 'secret.png'), other);
    await writeFile(join(input, 'data'), 'plain text\n');
    const swapper = new Worker(
      `const { linkSync, renameSync } = require('node:fs');
      const { workerData: w } = require('node:worker_threads');
      for (;;) {
        linkSync(w.file, w.tmp); renameSync(w.tmp, w.data);
        linkSync(w.other, w.tmp); renameSync(w.tmp, w.data);
      }`,
      { eval: true, workerData: { file: join(spare, 'file'), other, tmp: join(spare, 'tmp'), data: join(input, 'data') } },
    );
    const ended = { identified: 0, refused: 0, hung: 0, leaked: 0 };
    try {
      const until = Date.now() + 3000;
      while (Date.now() < until && ended.hung === 0) {
        const { ctx, outDir } = await context({ in: input });
        const attempt = filesIdentify.run(ctx, filesIdentify.params.parse({}));
        attempt.catch(() => undefined);
        const result = await Promise.race([attempt, new Promise<'hung'>((done) => setTimeout(() => done('hung'), 2000))]);
        if (result === 'hung') ended.hung += 1;
        else if (result.state === 'failed') ended.refused += 1;
        else {
          const report = JSON.parse(await readFile(join(outDir, 'filetypes.json'), 'utf8')) as Identified[];
          if (report.some((item) => item.mime === 'image/png')) ended.leaked += 1;
          else ended.identified += 1;
        }
      }
    } finally {
      await swapper.terminate();
      if (kind === 'fifo') {
        try {
          closeSync(openSync(other, constants.O_WRONLY | constants.O_NONBLOCK));
        } catch {
          // ENXIO: nobody was waiting
        }
      }
    }
    console.info(`${kind} swapped in while identifying: ${JSON.stringify(ended)}`);
    expect(ended).toMatchObject({ hung: 0, leaked: 0 });
    expect(ended.identified + ended.refused).toBeGreaterThan(3);
  });
});

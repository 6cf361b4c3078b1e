import { execFile } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, constants, createWriteStream, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as dagPb from '@ipld/dag-pb';
import { FsBlockstore } from 'blockstore-fs';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedIpfsStore, SpecialFileError } from './embedded-ipfs-store.js';
import type { ImportOptionsInput } from './import-profile.js';

/**
 * Kubo's deterministic test bytes (test/cli/testutils/random_deterministic.go): the ChaCha20
 * keystream for key = sha256(seed) and an all-zero nonce. OpenSSL's 16-byte IV is the block
 * counter followed by the nonce, so all zeros is the same stream.
 */
async function* kuboDeterministicBytes(size: number, seed: string): AsyncGenerator<Buffer> {
  const cipher = createCipheriv('chacha20', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let left = size; left > 0; left -= zeros.length) {
    yield cipher.update(zeros.subarray(0, Math.min(left, zeros.length)));
  }
}

async function writeDeterministicFile(path: string, size: number, seed: string): Promise<void> {
  await pipeline(Readable.from(kuboDeterministicBytes(size, seed)), createWriteStream(path));
}

/** Kubo's createDeterministicFiles (test/cli/add_test.go): names from the keystream, each file holding "x". */
async function writeHamtFolder(folder: string, count: number, nameLength: number, lastNameLength: number, seed: string) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz01234567890-_';
  const stream = kuboDeterministicBytes(1024 * 1024, seed);
  const first = await stream.next();
  const bytes = first.value as Buffer;
  await mkdir(folder, { recursive: true });
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const length = i === count - 1 ? lastNameLength : nameLength;
    let name = '';
    for (const byte of bytes.subarray(offset, offset + length)) name += alphabet[byte % alphabet.length];
    offset += length;
    await writeFile(join(folder, name), 'x');
  }
}

let dir: string;
const stores: EmbeddedIpfsStore[] = [];

function store(profile?: ImportOptionsInput, includeHidden?: boolean): EmbeddedIpfsStore {
  const created = new EmbeddedIpfsStore({ dataDir: join(dir, 'data'), profile, includeHidden });
  stores.push(created);
  return created;
}

async function file(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  return path;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'embedded-ipfs-store-'));
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('single files (Kubo sharness t0040, cid_profiles_test.go)', () => {
  it.each([
    ['hello world\\n', 'hello world\n', undefined, 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o'],
    ['the empty file', '', undefined, 'QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH'],
    ['Hello Worlds!\\n', 'Hello Worlds!\n', undefined, 'QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH'],
    ['hello world, v0 profile', 'hello world', { profile: 'unixfs-v0-2015' }, 'Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD'],
    [
      'hello world, v1 profile',
      'hello world',
      { profile: 'unixfs-v1-2025' },
      'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e',
    ],
    ['the empty file, --cid-version=1', '', { cidVersion: 1 }, 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'],
  ] as const)('%s', async (_label, content, profile, expected) => {
    const result = await store(profile).addPath(await file('f', content));
    expect(result).toEqual({ cid: expected, entries: [] });
  });

  it('adds a hidden file named on the command line (t0040 "ipfs add on hidden file")', async () => {
    const result = await store().addPath(await file('.hello.txt', 'Hello Worlds!\n'));
    expect(result.cid).toBe('QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH');
  });

  it('keeps the blocks under <dataDir>/ipfs, where a store opened later finds them', async () => {
    const s = store();
    const { cid } = await s.addPath(await file('f', 'hello world\n'));
    expect(await s.has(cid)).toBe(true);
    expect(await s.has('QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH')).toBe(false);
    await s.close();
    const reopened = store();
    expect(await reopened.has(cid)).toBe(true);
  });

  it('reads a stored block back as stored, by its CIDv0 or CIDv1 form; null for a block it does not hold', async () => {
    const s = store();
    const { cid } = await s.addPath(await file('f', 'hello world\n'));
    const block = await s.getBlock(cid);
    expect(block).not.toBeNull();
    expect(CID.createV0(await sha256.digest(block!)).toString()).toBe(cid);
    expect(await s.getBlock(CID.parse(cid).toV1().toString())).toEqual(block);
    expect(await s.getBlock('QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH')).toBeNull();
  });

  it('keeps no pins of its own: an add writes blocks and nothing else to its data folder', async () => {
    const s = store();
    await s.addPath(await file('f', 'hello world\n'));
    expect(await readdir(join(dir, 'data', 'ipfs'))).toStrictEqual(['packs']);
  });

  it('reads, finds and deletes the blocks earlier versions wrote one file each under <dataDir>/ipfs/blocks', async () => {
    const old = new FsBlockstore(join(dir, 'data', 'ipfs', 'blocks'));
    await old.open();
    const bytes = new TextEncoder().encode('written by an earlier version');
    const cid = CID.createV1(raw.code, await sha256.digest(bytes));
    await old.put(cid, bytes);
    const s = store();
    expect(await s.has(cid.toString())).toBe(true);
    expect(Buffer.from((await s.getBlock(cid.toString()))!)).toEqual(Buffer.from(bytes));
    // The same bytes added again go to a pack; deleting the block removes both copies, counted once.
    const path = await file('old.txt', 'written by an earlier version');
    const added = await store({ profile: 'unixfs-v1-2025' }).addPath(path);
    expect(added.cid).toBe(cid.toString());
    expect(await s.deleteBlocks([cid.toString()])).toBe(1);
    expect(await s.has(cid.toString())).toBe(false);
    expect(await old.has(cid)).toBe(false);
  });

  it('deletes the blocks it is told to, by either CID form, and a later add writes them again', async () => {
    const s = store();
    const path = await file('f', 'hello world\n');
    const { cid } = await s.addPath(path);
    expect(await s.deleteBlocks([CID.parse(cid).toV1().toString(), 'QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH'])).toBe(1);
    expect(await s.has(cid)).toBe(false);
    expect(await s.getBlock(cid)).toBeNull();
    expect(await s.deleteBlocks([cid])).toBe(0);
    await s.addPath(path);
    expect(await s.has(cid)).toBe(true);
  });

  it('stops when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(store().addPath(await file('f', 'x'), { signal: controller.signal })).rejects.toThrow(/abort/i);
  });
});

/** Every block below `root`, root included, read back from the store: what a pin of `root` must keep. */
async function dagBlocks(s: EmbeddedIpfsStore, root: string): Promise<Set<string>> {
  const seen = new Set<string>();
  const walk = async (cid: CID): Promise<void> => {
    if (seen.has(cid.toString())) return;
    seen.add(cid.toString());
    if (cid.code !== dagPb.code) return;
    const block = await s.getBlock(cid.toString());
    for (const link of dagPb.decode(block!).Links) await walk(link.Hash);
  };
  await walk(CID.parse(root));
  return seen;
}

describe('reporting the blocks of an add', () => {
  it.each([
    ['Kubo’s bare defaults', undefined],
    ['unixfs-v1-2025 (raw leaves)', { profile: 'unixfs-v1-2025' }],
  ] as const)('tells every block of the DAG, root included, once it is stored (%s)', async (_label, profile) => {
    const s = store(profile);
    await writeDeterministicFile(await file('tree/big.bin', ''), 3 * 1024 * 1024 + 5, 'blocks');
    await file('tree/sub/a.txt', 'a\n');
    await file('tree/sub/b.txt', 'a\n');
    const reported: string[][] = [];
    const { cid } = await s.addPath(join(dir, 'tree'), {
      onBlocks: async (cids) => {
        for (const block of cids) expect(await s.has(block)).toBe(true);
        reported.push(cids);
      },
    });
    expect(new Set(reported.flat())).toStrictEqual(await dagBlocks(s, cid));
    expect(reported.flat()).toContain(cid);
  });

  it('tells them in batches of at most 1,000', { timeout: 60_000 }, async () => {
    const s = store();
    for (let i = 0; i < 1_050; i++) await file(`many/${i}.txt`, `file ${i}\n`);
    const batches: number[] = [];
    const all = new Set<string>();
    const { cid } = await s.addPath(join(dir, 'many'), {
      onBlocks: async (cids) => {
        batches.push(cids.length);
        for (const block of cids) all.add(block);
      },
    });
    expect(batches.length).toBeGreaterThan(1);
    expect(Math.max(...batches)).toBeLessThanOrEqual(1_000);
    expect(all).toStrictEqual(await dagBlocks(s, cid));
  });

  it('fails the add when the callback fails', async () => {
    const s = store();
    await expect(s.addPath(await file('f', 'x'), { onBlocks: () => Promise.reject(new Error('index unavailable')) })).rejects.toThrow('index unavailable');
  });
});

describe('chunking and DAG layout (Kubo test/cli/cid_profiles_test.go, ChaCha20 bytes)', () => {
  const chunkV0 = 262_144;
  const chunkV1 = 1_048_576;
  it.each([
    ['v0: one full chunk', 'unixfs-v0-2015', chunkV0, 'chunk-v0-seed', 'QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE'],
    ['v0: one chunk + 1 byte', 'unixfs-v0-2015', chunkV0 + 1, 'chunk-v0-seed', 'QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ'],
    ['v0: 174 chunks, one layer', 'unixfs-v0-2015', 174 * chunkV0, 'v0-seed', 'QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2'],
    ['v0: 174 chunks + 1 byte, two layers', 'unixfs-v0-2015', 174 * chunkV0 + 1, 'v0-seed', 'QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW'],
    ['v1: one full chunk', 'unixfs-v1-2025', chunkV1, 'chunk-v1-seed', 'bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta'],
    [
      'v1: one chunk + 1 byte',
      'unixfs-v1-2025',
      chunkV1 + 1,
      'chunk-v1-seed',
      'bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64',
    ],
  ] as const)('%s', { timeout: 60_000 }, async (_label, profile, size, seed, expected) => {
    const path = join(dir, 'random');
    await writeDeterministicFile(path, size, seed);
    const result = await store({ profile }).addPath(path);
    expect(result.cid).toBe(expected);
  });

  it('the bare default equals the unixfs-v0-2015 profile', { timeout: 60_000 }, async () => {
    const path = join(dir, 'random');
    await writeDeterministicFile(path, 174 * chunkV0 + 1, 'v0-seed');
    expect((await store().addPath(path)).cid).toBe('QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW');
  });
});

describe('folders', () => {
  it('an empty folder (Kubo sharness)', async () => {
    await mkdir(join(dir, 'empty'));
    expect(await store().addPath(join(dir, 'empty'))).toEqual({
      cid: 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn',
      entries: [],
    });
  });

  it.each([
    ['unixfs-v0-2015', 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn'],
    ['unixfs-v1-2025', 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354'],
  ] as const)('reports an empty folder at the top among the entries, as its parent links it (%s)', async (profile, emptyCid) => {
    await file('tree/a.txt', 'a\n');
    await mkdir(join(dir, 'tree', 'empty'));
    await file('tree/only-hidden/.dot', 'hidden\n');
    await file('tree/sub/inner/b.txt', 'b\n');
    await mkdir(join(dir, 'tree', 'sub', 'inner-empty'));
    const s = store({ profile });
    const added = await s.addPath(join(dir, 'tree'));
    expect(added.entries.map((entry) => [entry.name, entry.kind])).toEqual([
      ['a.txt', 'file'],
      ['empty', 'directory'],
      ['only-hidden', 'directory'],
      ['sub', 'directory'],
    ]);
    expect(added.entries.find((entry) => entry.name === 'empty')).toEqual({ name: 'empty', cid: emptyCid, size: 0, kind: 'directory' });
    // Each entry is what the root folder links under that name.
    const links = dagPb.decode((await s.getBlock(added.cid))!).Links;
    expect(added.entries.map((entry) => [entry.name, entry.cid])).toEqual(links.map((link) => [link.Name, link.Hash.toString()]));
  });

  // t0040 add_directory with each flag set it runs.
  it.each([
    ['bare', undefined, 'QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY', 'QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN', 'QmU5kp3BH3B8tnWUU2Pikdb2maksBNkb92FHRr56hyghh4'],
    ['--raw-leaves', { rawLeaves: true }, 'QmfWfQfKCY5Ukv9peBbxM5vqWM9BzmqUSXvdCgjT2wsiBT', 'bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4', 'bafkreihfsphazrk2ilejpekyltjeh5k4yvwgjuwg26ueafohqioeo3sdca'],
    ['--cid-version=1', { cidVersion: 1 }, 'bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi', 'bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4', 'bafkreihfsphazrk2ilejpekyltjeh5k4yvwgjuwg26ueafohqioeo3sdca'],
    ['--cid-version=1 --raw-leaves=false', { cidVersion: 1, rawLeaves: false }, 'bafybeif5tuep5ap2d7zyhbktucey75aoacxufgt6i3v4gebmixyipnyp7y', 'bafybeiawta2ntdmsy24aro35w3homzl4ak7svr3si7l7gesvq4erglyye4', 'bafybeicvkvhs2fr75ynebtdjqpgm4g2fc63abqbmysupwpmcjl4gx7mzrm'],
  ] as const)('planets, %s (t0040)', async (_label, profile, planets, mars, venus) => {
    await file('planets/mars.txt', 'Hello Mars!\n');
    await file('planets/venus.txt', 'Hello Venus!\n');
    expect(await store(profile).addPath(join(dir, 'planets'))).toEqual({
      cid: planets,
      entries: [
        { name: 'mars.txt', cid: mars, size: 12, kind: 'file' },
        { name: 'venus.txt', cid: venus, size: 13, kind: 'file' },
      ],
    });
  });

  it('nested folders: moons (t0040 "ipfs add -rn")', async () => {
    await file('moons/jupiter/europa.txt', 'Hello Europa!\n');
    await file('moons/saturn/titan.txt', 'Hello Titan!\n');
    await file('moons/mercury.txt', 'hey you are no moon!\n');
    expect(await store().addPath(join(dir, 'moons'))).toEqual({
      cid: 'QmbGoaQZm8kjYfCiN1aBsgwhqfUBGDYTrDb91Mz7Dvq81B',
      entries: [
        { name: 'jupiter', cid: 'QmS5mZddhFPLWFX3w6FzAy9QxyYkaxvUpsWCtZ3r7jub9J', size: 0, kind: 'directory' },
        { name: 'mercury.txt', cid: 'QmRsTB5CpEUvDUpDgHCzb3VftZ139zrk9zs5ZcgYh9TMPJ', size: 21, kind: 'file' },
        { name: 'saturn', cid: 'QmaMagZT4rTE7Nonw8KGSK4oe1bh533yhZrCo1HihSG8FK', size: 0, kind: 'directory' },
      ],
    });
  });

  it('a folder given as "." (t0040 "ipfs add -r .")', async () => {
    await file('test_current_dir/hey', 'Hey\n');
    await file('test_current_dir/hello/world', 'World\n');
    const previous = process.cwd();
    process.chdir(join(dir, 'test_current_dir'));
    try {
      expect((await store().addPath('.')).cid).toBe('QmZQWnfcqJ6hNkkPvrY9Q5X39GP3jUnUbAV4AbmbbR3Cb1');
    } finally {
      process.chdir(previous);
    }
  });

  it('leaves hidden entries out, like ipfs add -r without --hidden', async () => {
    await file('planets/mars.txt', 'Hello Mars!\n');
    await file('planets/venus.txt', 'Hello Venus!\n');
    await file('planets/.secret', 'hidden\n');
    await file('planets/.git/HEAD', 'ref: refs/heads/main\n');
    expect((await store().addPath(join(dir, 'planets'))).cid).toBe('QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY');
    const withHidden = await store(undefined, true).addPath(join(dir, 'planets'));
    expect(withHidden.cid).not.toBe('QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY');
    expect(withHidden.entries.map((entry) => entry.name)).toEqual(['.git', '.secret', 'mars.txt', 'venus.txt']);
  });

  it('orders names by their UTF-8 bytes, as Go does, whatever the creation order', async () => {
    for (const name of ['b', 'B', 'a', 'é', 'Z', '_', '10', '9']) await file(`sorted/${name}`, name);
    const { entries } = await store().addPath(join(dir, 'sorted'));
    expect(entries.map((entry) => entry.name)).toEqual(['10', '9', 'B', 'Z', '_', 'a', 'b', 'é']);
  });

  it('refuses a socket and names its path', async () => {
    await mkdir(join(dir, 'out'));
    await file('out/ok.txt', 'ok');
    const socketPath = join(dir, 'out', 'control.sock');
    const server = createServer();
    await new Promise<void>((done) => server.listen(socketPath, done));
    try {
      const attempt = store().addPath(join(dir, 'out'));
      await expect(attempt).rejects.toBeInstanceOf(SpecialFileError);
      await expect(store().addPath(join(dir, 'out'))).rejects.toThrow(`cannot add ${socketPath}: it is a socket`);
    } finally {
      await new Promise((done) => server.close(done));
    }
  });
});

describe('a file a task swaps while it is added', () => {
  /**
   * Another thread turns `out/data` into a regular file and back into a FIFO or a symlink to a
   * file outside, atomically (rename over it) and as fast as it can, so that some adds see a
   * regular file at lstat and something else when they open it.
   */
  async function swapping(kind: 'fifo' | 'symlink', run: (out: string) => Promise<void>): Promise<void> {
    const out = join(dir, 'out');
    const spare = join(dir, 'spare');
    await mkdir(out);
    await mkdir(spare);
    await writeFile(join(spare, 'file'), 'regular\n');
    await writeFile(join(dir, 'secret'), 'a secret outside the output folder\n');
    const fifo = join(spare, 'fifo');
    if (kind === 'fifo') await promisify(execFile)('mkfifo', [fifo]);
    else await symlink(join(dir, 'secret'), join(spare, 'link'));
    await writeFile(join(out, 'data'), 'regular\n');
    const swapper = new Worker(
      `const { linkSync, renameSync } = require('node:fs');
      const { workerData: w } = require('node:worker_threads');
      for (;;) {
        linkSync(w.file, w.tmp); renameSync(w.tmp, w.data);
        linkSync(w.other, w.tmp); renameSync(w.tmp, w.data);
      }`,
      { eval: true, workerData: { file: join(spare, 'file'), other: kind === 'fifo' ? fifo : join(spare, 'link'), tmp: join(spare, 'tmp'), data: join(out, 'data') } },
    );
    try {
      await run(out);
    } finally {
      await swapper.terminate();
      // An add that opened the FIFO waits for a writer: be that writer so the thread comes back.
      if (kind === 'fifo') {
        try {
          closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        } catch {
          // ENXIO: nobody was waiting
        }
      }
    }
  }

  /** Adds `out` again and again for `ms`; counts how each add ended, a hang (over 2 s) included. */
  async function addRepeatedly(out: string, ms: number) {
    const ended = { added: 0, refused: 0, hung: 0, leaked: 0 };
    const until = Date.now() + ms;
    while (Date.now() < until && ended.hung === 0) {
      const attempt = store().addPath(out);
      attempt.catch(() => undefined);
      const result = await Promise.race([attempt.then((r) => r, (error: Error) => error), new Promise<'hung'>((done) => setTimeout(() => done('hung'), 2000))]);
      if (result === 'hung') ended.hung += 1;
      else if (result instanceof Error) ended.refused += 1;
      else if (result.entries[0]?.kind === 'file' && result.entries[0].size !== 'regular\n'.length) ended.leaked += 1;
      else ended.added += 1;
    }
    return ended;
  }

  it('never opens it when it became a FIFO: every add ends, none hangs', { timeout: 20_000 }, async () => {
    await swapping('fifo', async (out) => {
      const ended = await addRepeatedly(out, 3000);
      console.info(`FIFO swapped in during adds: ${JSON.stringify(ended)}`);
      expect(ended.hung).toBe(0);
      expect(ended.added + ended.refused).toBeGreaterThan(5);
    });
  });

  it('never follows it when it became a symlink: no add stores the file it points to', { timeout: 20_000 }, async () => {
    await swapping('symlink', async (out) => {
      const ended = await addRepeatedly(out, 3000);
      console.info(`symlink swapped in during adds: ${JSON.stringify(ended)}`);
      expect(ended.leaked).toBe(0);
      expect(ended.hung).toBe(0);
    });
  });
});

describe('symlinks (Kubo sharness t0044-add-symlink)', () => {
  beforeEach(async () => {
    await file('files/foo/baz', 'some text\n');
    await mkdir(join(dir, 'files/bar'));
    await symlink('files/foo/baz', join(dir, 'files/bar/baz'));
    await symlink('files/does/not/exist', join(dir, 'files/bad'));
  });

  it('stores links as UnixFS symlink nodes, never following them', async () => {
    const result = await store().addPath(join(dir, 'files'));
    expect(result.cid).toBe('QmWdiHKoeSW8G1u7ATCgpx4yMoUhYaJBQGkyPLkS9goYZ8');
    expect(result.entries.map(({ name, kind }) => ({ name, kind }))).toEqual([
      { name: 'bad', kind: 'symlink' },
      { name: 'bar', kind: 'directory' },
      { name: 'foo', kind: 'directory' },
    ]);
  });

  it('with --cid-version=1 every internal node is CIDv1', async () => {
    const result = await store({ cidVersion: 1 }).addPath(join(dir, 'files'));
    expect(result.cid).toBe('bafybeibyhlx64cklod6isy3h7tsmr4qvam3ae3b74n3hfes5bythjrwyua');
  });

  it('adds a symlink named on the command line as the link itself, broken or not', async () => {
    expect((await store().addPath(join(dir, 'files/bar/baz'))).cid).toBe('QmdocmZeF7qwPT9Z8SiVhMSyKA2KKoA2J7jToW6z6WBmxR');
    expect((await store().addPath(join(dir, 'files/bad'))).cid).toBe('QmWYN8SEXCgNT2PSjB6BnxAx6NJQtazWoBkTRH9GRfPFFQ');
  });
});

describe('HAMT sharding threshold (Kubo test/cli/cid_profiles_test.go)', () => {
  // The same seed names the files of both folders of a profile; a size of exactly 256 KiB stays flat.
  it.each([
    ['v0: links size at 256 KiB stays flat', 'unixfs-v0-2015', 4096, 30, 30, 'hamt-unixfs-v0-2015', 'QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN'],
    ['v0: links size 1 byte over becomes a HAMT', 'unixfs-v0-2015', 4033, 31, 31, 'hamt-unixfs-v0-2015', 'QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP'],
    ['v1: block size at 256 KiB stays flat', 'unixfs-v1-2025', 4766, 11, 21, 'hamt-unixfs-v1-2025', 'bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4'],
    ['v1: block size 1 byte over becomes a HAMT', 'unixfs-v1-2025', 4766, 11, 22, 'hamt-unixfs-v1-2025', 'bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu'],
  ] as const)('%s', { timeout: 120_000 }, async (_label, profile, count, nameLength, lastNameLength, seed, expected) => {
    const folder = join(dir, seed);
    await writeHamtFolder(folder, count, nameLength, lastNameLength, seed);
    const result = await store({ profile }).addPath(folder);
    expect(result.entries).toHaveLength(count);
    expect(result.cid).toBe(expected);
  });
});

describe('memory', () => {
  it('adds a 200 MB file with flat memory', { timeout: 300_000 }, async () => {
    const size = 200 * 1024 * 1024;
    const path = join(dir, 'big');
    // Written by another process, so that writing it does not inflate this process's baseline.
    const writer = `
      const { createCipheriv, createHash } = require('node:crypto');
      const { writeSync, openSync, closeSync } = require('node:fs');
      const cipher = createCipheriv('chacha20', createHash('sha256').update('memory').digest(), Buffer.alloc(16));
      const fd = openSync(process.argv[1], 'w');
      const zeros = Buffer.alloc(1 << 20);
      for (let i = 0; i < ${size / (1 << 20)}; i++) writeSync(fd, cipher.update(zeros));
      closeSync(fd);`;
    await promisify(execFile)(process.execPath, ['-e', writer, path]);
    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 20);
    const started = performance.now();
    try {
      const result = await store().addPath(path);
      expect(result.cid).toMatch(/^Qm/);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage.rss());
    const seconds = (performance.now() - started) / 1000;
    const growthMb = (peak - before) / 1024 / 1024;
    console.info(`added 200 MB in ${seconds.toFixed(1)} s (${(200 / seconds).toFixed(0)} MB/s), RSS growth ${growthMb.toFixed(1)} MB`);
    expect(growthMb).toBeLessThan(64);
  });
});

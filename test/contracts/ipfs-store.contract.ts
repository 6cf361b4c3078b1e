/**
 * What every IpfsStore adapter must do (src/ports/ipfs-store.ts): add a file or folder and give
 * the CIDs Kubo's `ipfs add -r` gives with its bare defaults, leave dot-files inside folders out
 * (Kubo's default without --hidden), store symlinks as links and never follow them, tell every
 * block it stored, keep what it added readable, and let go of it when the collector says (the
 * IpfsGarbage section).
 *
 * The vectors come from Kubo's own tests (test/sharness/t0040-add-and-cat.sh,
 * t0044-add-symlink.sh). Each adapter is opened with Kubo's bare defaults, and brings a way to read
 * a file back (`ipfs cat`) and to list the roots it holds pinned itself.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CID } from 'multiformats/cid';
import type { IpfsBlockReader, IpfsBlockWriter, IpfsGarbage, IpfsStore } from '../../src/ports/ipfs-store.js';

export interface OpenedIpfsStore {
  /** A store with Kubo's bare `ipfs add` defaults. */
  store: IpfsStore & IpfsGarbage & IpfsBlockWriter & IpfsBlockReader;
  /** The bytes of the file at `path` below `cid` (or of `cid` itself), like `ipfs cat <cid>/<path>`. */
  cat(cid: string, path?: string): Promise<Uint8Array>;
  /** The roots the backend itself holds pinned (Kubo's recursive pins; none for the embedded store, whose pins are the run store's). */
  pinned(): Promise<string[]>;
  cleanup(): Promise<void>;
}

const hello = { content: 'hello world\n', cid: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o' };
const planets = {
  cid: 'QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY',
  entries: [
    { name: 'mars.txt', cid: 'QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN', size: 12, kind: 'file' },
    { name: 'venus.txt', cid: 'QmU5kp3BH3B8tnWUU2Pikdb2maksBNkb92FHRr56hyghh4', size: 13, kind: 'file' },
  ],
};

export function ipfsStoreContract(name: string, open: () => Promise<OpenedIpfsStore>): void {
  describe(`IpfsStore contract: ${name}`, () => {
    let opened: OpenedIpfsStore;
    let store: OpenedIpfsStore['store'];
    let dir: string;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'task-mgmt-ipfs-contract-'));
      opened = await open();
      ({ store } = opened);
    });

    afterEach(async () => {
      await opened.cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    async function file(path: string, content: string | Uint8Array): Promise<string> {
      const full = join(dir, path);
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, content);
      return full;
    }

    async function planetsFolder(): Promise<string> {
      await file('planets/mars.txt', 'Hello Mars!\n');
      await file('planets/venus.txt', 'Hello Venus!\n');
      return join(dir, 'planets');
    }

    describe('CIDs equal Kubo’s', () => {
      it.each([
        ['hello world\\n', hello.content, hello.cid],
        ['the empty file', '', 'QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH'],
      ])('a single file: %s', async (_label, content, cid) => {
        expect(await store.addPath(await file('f', content))).toStrictEqual({ cid, entries: [] });
      });

      it('a folder, with its top-level entries', async () => {
        expect(await store.addPath(await planetsFolder())).toStrictEqual(planets);
      });

      it('nested folders (ipfs add -r of moons)', async () => {
        await file('moons/jupiter/europa.txt', 'Hello Europa!\n');
        await file('moons/saturn/titan.txt', 'Hello Titan!\n');
        await file('moons/mercury.txt', 'hey you are no moon!\n');
        expect(await store.addPath(join(dir, 'moons'))).toStrictEqual({
          cid: 'QmbGoaQZm8kjYfCiN1aBsgwhqfUBGDYTrDb91Mz7Dvq81B',
          entries: [
            { name: 'jupiter', cid: 'QmS5mZddhFPLWFX3w6FzAy9QxyYkaxvUpsWCtZ3r7jub9J', size: 0, kind: 'directory' },
            { name: 'mercury.txt', cid: 'QmRsTB5CpEUvDUpDgHCzb3VftZ139zrk9zs5ZcgYh9TMPJ', size: 21, kind: 'file' },
            { name: 'saturn', cid: 'QmaMagZT4rTE7Nonw8KGSK4oe1bh533yhZrCo1HihSG8FK', size: 0, kind: 'directory' },
          ],
        });
      });

      it('an empty folder', async () => {
        await mkdir(join(dir, 'empty'));
        expect(await store.addPath(join(dir, 'empty'))).toStrictEqual({ cid: 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn', entries: [] });
      });

      it('lists entries in the byte order of their names, as Go sorts them', async () => {
        for (const entry of ['b', 'B', 'a', 'é', 'Z', '_', '10', '9']) await file(`sorted/${entry}`, entry);
        const { entries } = await store.addPath(join(dir, 'sorted'));
        expect(entries.map((entry) => entry.name)).toStrictEqual(['10', '9', 'B', 'Z', '_', 'a', 'b', 'é']);
      });
    });

    describe('dot-files', () => {
      it('leaves dot-files and dot-folders inside a folder out', async () => {
        const folder = await planetsFolder();
        await file('planets/.secret', 'hidden\n');
        await file('planets/.git/HEAD', 'ref: refs/heads/main\n');
        expect(await store.addPath(folder)).toStrictEqual(planets);
      });

      it('adds a dot-file that is itself the path given', async () => {
        expect((await store.addPath(await file('.hello.txt', 'Hello Worlds!\n'))).cid).toBe('QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH');
      });
    });

    describe('symlinks', () => {
      beforeEach(async () => {
        await file('files/foo/baz', 'some text\n');
        await mkdir(join(dir, 'files/bar'));
        await symlink('files/foo/baz', join(dir, 'files/bar/baz'));
        await symlink('files/does/not/exist', join(dir, 'files/bad'));
      });

      it('stores links inside a folder as links, never following them, broken ones included', async () => {
        const result = await store.addPath(join(dir, 'files'));
        expect(result.cid).toBe('QmWdiHKoeSW8G1u7ATCgpx4yMoUhYaJBQGkyPLkS9goYZ8');
        expect(result.entries.map(({ name, kind }) => ({ name, kind }))).toStrictEqual([
          { name: 'bad', kind: 'symlink' },
          { name: 'bar', kind: 'directory' },
          { name: 'foo', kind: 'directory' },
        ]);
      });

      it('stores a link given itself as the link, not its target', async () => {
        expect((await store.addPath(join(dir, 'files/bar/baz'))).cid).toBe('QmdocmZeF7qwPT9Z8SiVhMSyKA2KKoA2J7jToW6z6WBmxR');
        expect((await store.addPath(join(dir, 'files/bad'))).cid).toBe('QmWYN8SEXCgNT2PSjB6BnxAx6NJQtazWoBkTRH9GRfPFFQ');
      });

      it('never stores a linked file’s content through a link that points outside the folder', async () => {
        await file('outside/secret', 'HOST SECRET\n');
        await mkdir(join(dir, 'out'));
        await symlink(join(dir, 'outside/secret'), join(dir, 'out/leak'));
        const { cid, entries } = await store.addPath(join(dir, 'out'));
        expect(entries).toStrictEqual([expect.objectContaining({ name: 'leak', kind: 'symlink', size: 0 })]);
        // A link is not a file: reading it fails (the embedded reader), or gives the link's own
        // target path (Kubo's `ipfs cat`, where a UnixFS symlink reads as its target) — never the host file's bytes.
        const read = await opened.cat(cid, 'leak').then(
          (bytes) => Buffer.from(bytes).toString(),
          () => null,
        );
        expect([null, join(dir, 'outside/secret')]).toContain(read);
      });
    });

    describe('what was added can be read back', () => {
      it('a single file larger than one chunk, byte for byte', async () => {
        const content = randomBytes(600_000);
        const { cid } = await store.addPath(await file('big.bin', content));
        expect(Buffer.from(await opened.cat(cid)).equals(content)).toBe(true);
      });

      it('files inside an added folder, by path', async () => {
        const content = randomBytes(300_000);
        await file('out/data/part.bin', content);
        await file('out/index.html', '<h1>archived</h1>\n');
        const { cid } = await store.addPath(join(dir, 'out'));
        expect(Buffer.from(await opened.cat(cid, 'index.html')).toString()).toBe('<h1>archived</h1>\n');
        expect(Buffer.from(await opened.cat(cid, 'data/part.bin')).equals(content)).toBe(true);
      });
    });

    describe('the blocks of an add, and letting go of them', () => {
      it('tells every block it stored, root and top-level entries included, in batches', async () => {
        const told: string[][] = [];
        const folder = await store.addPath(await planetsFolder(), { onBlocks: async (cids) => void told.push(cids) });
        const blocks = new Set(told.flat());
        expect(blocks).toContain(folder.cid);
        for (const entry of planets.entries) expect(blocks).toContain(entry.cid);
        expect(told.every((batch) => batch.length > 0 && batch.length <= 1000)).toBe(true);
      });

      it('unpins a root the collector released, and adds it again as new afterwards', async () => {
        const told: string[] = [];
        const folder = await store.addPath(await planetsFolder(), { onBlocks: async (cids) => void told.push(...cids) });
        await store.unpin(folder.cid);
        await store.deleteBlocks(told);
        expect(await opened.pinned()).not.toContain(folder.cid);
        // What was let go of comes back whole when the same files are added again.
        expect(await store.addPath(await planetsFolder())).toStrictEqual(planets);
        expect(Buffer.from(await opened.cat(planets.cid, 'mars.txt')).toString()).toBe('Hello Mars!\n');
      });

      it('ignores a root it does not hold pinned, and blocks it does not store', async () => {
        await store.unpin(hello.cid);
        expect(await store.deleteBlocks([hello.cid, 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'])).toBe(0);
      });
    });

    describe('one document as one block (putDagJson)', () => {
      const document = { type: 'task-mgmt/provenance', version: 1, params: { b: '2', a: '1' }, outputs: null };
      /** DAG-JSON writes keys sorted by their bytes, and no spaces. */
      const encoded = '{"outputs":null,"params":{"a":"1","b":"2"},"type":"task-mgmt/provenance","version":1}';
      const cid = 'baguqeera26r2jhliih57scwm2ob3kkyc426bf4dh4y7mpfiyshqbqzuoqjua';

      it('stores it as DAG-JSON under a CIDv1 of its bytes, whatever the order of its keys, and tells the block', async () => {
        const told: string[][] = [];
        expect(await store.putDagJson(document, { onBlocks: async (cids) => void told.push(cids) })).toBe(cid);
        expect(told).toStrictEqual([[cid]]);
        expect(await store.putDagJson({ version: 1, type: 'task-mgmt/provenance', outputs: null, params: { a: '1', b: '2' } })).toBe(cid);
        const bytes = await store.getBlock(cid);
        expect(Buffer.from(bytes!).toString()).toBe(encoded);
        const parsed = CID.parse(cid);
        expect({ version: parsed.version, codec: parsed.code, hash: parsed.multihash.code }).toStrictEqual({ version: 1, codec: 0x0129, hash: 0x12 });
        expect(Buffer.from(parsed.multihash.digest).equals(createHash('sha256').update(encoded).digest())).toBe(true);
      });

      it('is held like an add’s root until the collector releases it', async () => {
        await store.putDagJson(document);
        const pinned = await opened.pinned();
        // Kubo pins it; the embedded store pins nothing itself (its pins are the run store's).
        if (pinned.length > 0) expect(pinned).toContain(cid);
        await store.unpin(cid);
        await store.deleteBlocks([cid]);
        expect(await opened.pinned()).not.toContain(cid);
      });

      it('refuses a document larger than one block may be, and one DAG-JSON cannot hold', async () => {
        await expect(store.putDagJson({ big: 'x'.repeat(1024 * 1024) })).rejects.toThrow(/more than the 1,048,576 one block may hold/);
        await expect(store.putDagJson({ gone: undefined })).rejects.toThrow();
      });
    });

    it('adds nothing when the signal is already aborted', async () => {
      const controller = new AbortController();
      controller.abort(new Error('run cancelled'));
      const before = await opened.pinned();
      await expect(store.addPath(await planetsFolder(), { signal: controller.signal })).rejects.toThrow();
      expect(await opened.pinned()).toStrictEqual(before);
    });
  });
}

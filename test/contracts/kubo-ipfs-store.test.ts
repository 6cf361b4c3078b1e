/**
 * KuboIpfsStore against the IpfsStore contract, then what only the Kubo backend promises.
 *
 * By default Kubo is the fake in test/fake-kubo/ (Kubo's binary is in no package registry). With
 * IPFS_API_URL set, the same tests run against that real Kubo instead:
 *
 *   IPFS_API_URL=http://127.0.0.1:5001 npx vitest run test/contracts/kubo-ipfs-store.test.ts
 *
 * Tests that inject Kubo's failures or look inside its memory need the fake and say so.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as dagPb from '@ipld/dag-pb';
import { create, type KuboRPCClient } from 'kubo-rpc-client';
import { CID } from 'multiformats/cid';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedIpfsStore } from '../../src/adapters/ipfs/embedded-ipfs-store.js';
import type { ImportOptionsInput } from '../../src/adapters/ipfs/import-profile.js';
import { CAR_SEGMENT_BYTES, KuboError, KuboIpfsStore, KuboUnreachableError } from '../../src/adapters/ipfs/kubo-ipfs-store.js';
import { RetryableError } from '../../src/ports/errors.js';
import { FakeKubo } from '../fake-kubo/fake-kubo.js';
import { ipfsStoreContract } from './ipfs-store.contract.js';

const realKubo = process.env.IPFS_API_URL?.trim() || undefined;
/** Tests that inject Kubo's failures or read the fake's memory; a real Kubo skips them. */
const withFake = it.skipIf(realKubo !== undefined);

let fake: FakeKubo | undefined;
let apiUrl: string;
let client: KuboRPCClient;

beforeAll(async () => {
  if (realKubo === undefined) fake = await FakeKubo.start();
  apiUrl = realKubo ?? fake!.url;
  client = create({ url: apiUrl });
});

afterAll(async () => {
  await fake?.close();
});

async function concat(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

ipfsStoreContract(realKubo ? `KuboIpfsStore (Kubo at ${realKubo})` : 'KuboIpfsStore (fake Kubo)', async () => {
  const store = new KuboIpfsStore({ apiUrl });
  return {
    store,
    // `ipfs cat` itself, so what is read back is what Kubo holds.
    cat: (cid, path) => concat(client.cat(path ? `/ipfs/${cid}/${path}` : `/ipfs/${cid}`)),
    pinned: async () => {
      const roots: string[] = [];
      for await (const pin of client.pin.ls({ type: 'recursive' })) roots.push(pin.cid.toString());
      return roots;
    },
    cleanup: () => store.close(),
  };
});

describe(`KuboIpfsStore (${realKubo ? `Kubo at ${realKubo}` : 'fake Kubo'})`, () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'task-mgmt-kubo-store-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function file(path: string, content: string | Uint8Array): Promise<string> {
    const full = join(dir, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content);
    return full;
  }

  /** A folder with a bit of everything: nested folders, a file of many chunks, a symlink, an empty folder, a repeated file. */
  async function mixedFolder(): Promise<string> {
    await file('out/index.html', '<h1>archived</h1>\n');
    await file('out/data/big.bin', randomBytes(1_300_000));
    await file('out/data/copy-a.txt', 'same bytes\n');
    await file('out/data/copy-b.txt', 'same bytes\n');
    await mkdir(join(dir, 'out/empty'));
    await symlink('data/big.bin', join(dir, 'out/link'));
    return join(dir, 'out');
  }

  function kubo(profile?: ImportOptionsInput): KuboIpfsStore {
    return new KuboIpfsStore({ apiUrl, ...(profile ? { profile } : {}) });
  }

  /** Every block of the DAG under `root`, from the embedded store's disk, root first. */
  async function embeddedBlocks(store: EmbeddedIpfsStore, root: string): Promise<Array<{ cid: CID; bytes: Uint8Array }>> {
    const blocks: Array<{ cid: CID; bytes: Uint8Array }> = [];
    const stack = [CID.parse(root)];
    while (stack.length > 0) {
      const cid = stack.pop()!;
      const bytes = await store.getBlock(cid.toString());
      if (bytes === null) throw new Error(`the embedded store lacks ${cid}`);
      blocks.push({ cid, bytes });
      if (cid.code === dagPb.code) stack.push(...dagPb.decode(bytes).Links.map((link) => link.Hash));
    }
    return blocks;
  }

  describe('gives the CIDs the embedded store gives, and Kubo holds exactly those blocks', () => {
    it.each([
      ['Kubo’s bare defaults', undefined],
      ['unixfs-v1-2025', { profile: 'unixfs-v1-2025' } as const],
      ['--cid-version=1 --raw-leaves=false', { cidVersion: 1, rawLeaves: false } as const],
    ])('%s', async (_label, profile) => {
      const folder = await mixedFolder();
      const embedded = new EmbeddedIpfsStore({ dataDir: join(dir, 'embedded-data'), ...(profile ? { profile } : {}) });
      const expected = await embedded.addPath(folder);
      const added = await kubo(profile).addPath(folder);
      expect(added).toStrictEqual(expected);

      for (const { cid, bytes } of await embeddedBlocks(embedded, expected.cid)) {
        expect(Buffer.from(await client.block.get(cid)).equals(Buffer.from(bytes)), `${cid}`).toBe(true);
      }
      await embedded.close();
    });
  });

  it('pins the root recursively on Kubo, and unpins it with pin/rm when the collector releases it', async () => {
    const { cid } = await kubo().addPath(await mixedFolder());
    const pins = [];
    for await (const pin of client.pin.ls({ paths: cid, type: 'recursive' })) pins.push({ cid: pin.cid.toString(), type: pin.type });
    expect(pins).toStrictEqual([{ cid, type: 'recursive' }]);
    await kubo().unpin(cid);
    await expect(
      (async () => {
        for await (const _ of client.pin.ls({ paths: cid, type: 'recursive' })) return;
      })(),
    ).rejects.toThrow(/not pinned/);
    // Twice is no error: the root is not pinned any more.
    await kubo().unpin(cid);
  });

  withFake('sends every add as one dag/import without pinning header roots, then pin/add and pin/ls', async () => {
    // A Kubo of its own, so the pins seen are this add's only.
    const own = await FakeKubo.start();
    try {
      const { cid } = await new KuboIpfsStore({ apiUrl: own.url }).addPath(await mixedFolder());
      const calls = own.requests.map((request) => ({
        method: request.method,
        command: request.command,
        query: Object.fromEntries(request.query),
        status: request.status,
      }));
      expect(calls).toStrictEqual([
        { method: 'POST', command: 'dag/import', query: { 'pin-roots': 'false' }, status: 200 },
        { method: 'POST', command: 'pin/add', query: expect.objectContaining({ arg: cid, recursive: 'true' }), status: 200 },
        { method: 'POST', command: 'pin/ls', query: expect.objectContaining({ arg: cid, type: 'recursive' }), status: 200 },
      ]);
      // The root alone is pinned, not the CAR header's stand-in (the empty folder).
      expect(own.pins().map((pin) => `${pin.type} ${pin.cid}`)).toStrictEqual([`recursive ${cid}`]);
    } finally {
      await own.close();
    }
  });

  withFake('cuts a large add into CARs of about CAR_SEGMENT_BYTES, each imported before the next, all blocks held at the end', async () => {
    const own = await FakeKubo.start();
    try {
      const content = randomBytes(2 * CAR_SEGMENT_BYTES + 1);
      const { cid } = await new KuboIpfsStore({ apiUrl: own.url }).addPath(await file('large.bin', content));
      expect(own.requests.map((request) => `${request.command} ${request.status}`)).toStrictEqual(['dag/import 200', 'dag/import 200', 'dag/import 200', 'pin/add 200', 'pin/ls 200']);
      const read = await concat(create({ url: own.url }).cat(cid));
      expect(Buffer.from(read).equals(content)).toBe(true);
    } finally {
      await own.close();
    }
  });

  describe('when Kubo fails, one line that names Kubo and its URL', () => {
    withFake('Kubo refuses the import: its message, and nothing is pinned', async () => {
      fake!.failNext('dag/import', 'blockstore: disk full');
      const pinnedBefore = fake!.pins().length;
      const folder = await mixedFolder();
      const attempt = kubo().addPath(folder);
      await expect(attempt).rejects.toBeInstanceOf(KuboError);
      await expect(attempt).rejects.toThrow(`Kubo at ${apiUrl} refused dag/import: blockstore: disk full (HTTP 500)`);
      expect(fake!.pins()).toHaveLength(pinnedBefore);
    });

    withFake('Kubo refuses the pin', async () => {
      fake!.failNext('pin/add', 'pin: context canceled\nwhile walking the DAG');
      const error = await kubo().addPath(await file('one.txt', 'one\n')).then(
        () => new Error('the add succeeded'),
        (caught: unknown) => caught as Error,
      );
      expect(error).toBeInstanceOf(KuboError);
      expect(error.message).toBe(`Kubo at ${apiUrl} refused pin/add: pin: context canceled while walking the DAG (HTTP 500)`);
    });

    it('nothing listens at the URL: a retryable error, so the run goes back to the queue', async () => {
      const port = await closedPort();
      const store = new KuboIpfsStore({ apiUrl: `http://127.0.0.1:${port}` });
      const error = await store.addPath(await mixedFolder()).then(
        () => new Error('the add succeeded'),
        (caught: unknown) => caught as Error,
      );
      expect(error).toBeInstanceOf(KuboUnreachableError);
      expect(error).toBeInstanceOf(RetryableError);
      expect(error.message).toBe(`cannot reach Kubo at http://127.0.0.1:${port} for dag/import: ECONNREFUSED`);
    });

    it('never names the credentials of the URL', async () => {
      const port = await closedPort();
      const store = new KuboIpfsStore({ apiUrl: `http://admin:s3cret@127.0.0.1:${port}/` });
      const error = await store.addPath(await file('one.txt', 'one\n')).then(
        () => new Error('the add succeeded'),
        (caught: unknown) => caught as Error,
      );
      expect(error.message).toContain(`Kubo at http://127.0.0.1:${port} `);
      expect(error.message).not.toContain('s3cret');
    });
  });

  it('a file the importer cannot add ends the upload too, with the importer’s own error', async () => {
    const folder = await mixedFolder();
    await mkdir(join(folder, 'bad\\'));
    await file('out/bad\\/x', 'x');
    await expect(kubo().addPath(folder)).rejects.toThrow('a folder name may not end with a backslash');
  });

  it('a cancelled add ends with the caller’s reason', async () => {
    const controller = new AbortController();
    const reason = new Error('run cancelled');
    const content = randomBytes(4 * 1024 * 1024);
    const attempt = kubo().addPath(await file('big.bin', content), { signal: controller.signal });
    controller.abort(reason);
    await expect(attempt).rejects.toBe(reason);
  });
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

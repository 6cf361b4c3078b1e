import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from 'multiformats/hashes/sha2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockPacks } from './block-packs.js';

let dir: string;
const opened: BlockPacks[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'task-mgmt-packs-'));
});
afterEach(async () => {
  for (const packs of opened.splice(0)) packs.close();
  await rm(dir, { recursive: true, force: true });
});

function packs(): BlockPacks {
  const created = new BlockPacks(join(dir, 'packs'));
  created.open();
  opened.push(created);
  return created;
}

async function block(size: number): Promise<{ multihash: Uint8Array; bytes: Uint8Array }> {
  const bytes = randomBytes(size);
  return { multihash: (await sha256.digest(bytes)).bytes, bytes };
}

async function packFiles(): Promise<string[]> {
  return (await readdir(join(dir, 'packs'))).filter((name) => name.endsWith('.pack')).sort();
}

describe('BlockPacks', () => {
  it('reads back each block of an add, written at once into one pack, and knows which it holds', async () => {
    const store = packs();
    const blocks = await Promise.all([1, 100, 70_000, 300_000, 5].map(block));
    const writer = store.writer();
    await Promise.all(blocks.map((b) => writer.put(b.multihash, b.bytes)));
    await writer.seal();
    for (const b of blocks) {
      expect(store.has(b.multihash)).toBe(true);
      expect(Buffer.from((await store.get(b.multihash))!).equals(Buffer.from(b.bytes))).toBe(true);
    }
    const missing = await block(10);
    expect(store.has(missing.multihash)).toBe(false);
    expect(await store.get(missing.multihash)).toBeNull();
    expect(await packFiles()).toHaveLength(1);
  });

  it('writes a block the index already has not again, and a pack that got no block leaves no file', async () => {
    const store = packs();
    const b = await block(1000);
    const first = store.writer();
    await first.put(b.multihash, b.bytes);
    await first.seal();
    const second = store.writer();
    await second.put(b.multihash, b.bytes);
    await second.seal();
    expect(await packFiles()).toHaveLength(1);
  });

  it('shows blocks another process wrote: the index is shared through the folder', async () => {
    const writerSide = packs();
    const readerSide = packs();
    const b = await block(2000);
    const writer = writerSide.writer();
    await writer.put(b.multihash, b.bytes);
    expect(readerSide.has(b.multihash)).toBe(true);
    expect(Buffer.from((await readerSide.get(b.multihash))!).equals(Buffer.from(b.bytes))).toBe(true);
    await writer.seal();
  });

  it('deletes a pack once none of its blocks is left, and counts only blocks it held', async () => {
    const store = packs();
    const blocks = await Promise.all([10, 20].map(block));
    const writer = store.writer();
    for (const b of blocks) await writer.put(b.multihash, b.bytes);
    await writer.seal();
    expect(await store.delete([blocks[0]!.multihash])).toBe(1);
    expect(await packFiles()).toHaveLength(1);
    expect(await store.delete([blocks[0]!.multihash, blocks[1]!.multihash])).toBe(1);
    expect(await packFiles()).toStrictEqual([]);
    expect(await store.get(blocks[1]!.multihash)).toBeNull();
  });

  it('rewrites a pack whose live blocks fill less than half of it, keeping them readable', async () => {
    const store = packs();
    const [big, small] = await Promise.all([block(200_000), block(50_000)]);
    const writer = store.writer();
    await writer.put(big!.multihash, big!.bytes);
    await writer.put(small!.multihash, small!.bytes);
    await writer.seal();
    const [before] = await packFiles();
    await store.delete([big!.multihash]);
    const after = await packFiles();
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before);
    expect((await stat(join(dir, 'packs', after[0]!))).size).toBe(50_000);
    expect(Buffer.from((await store.get(small!.multihash))!).equals(Buffer.from(small!.bytes))).toBe(true);
  });

  it('leaves a pack still being written alone when its blocks are deleted', async () => {
    const store = packs();
    const [kept, dropped] = await Promise.all([block(100), block(100)]);
    const writer = store.writer();
    await writer.put(dropped!.multihash, dropped!.bytes);
    await store.delete([dropped!.multihash]);
    expect(await packFiles()).toHaveLength(1);
    await writer.put(kept!.multihash, kept!.bytes);
    await writer.seal();
    expect(Buffer.from((await store.get(kept!.multihash))!).equals(Buffer.from(kept!.bytes))).toBe(true);
  });
});

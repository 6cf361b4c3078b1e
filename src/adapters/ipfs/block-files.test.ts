import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlockstore } from 'blockstore-fs';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockFiles } from './block-files.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'task-mgmt-blocks-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function block(text: string): Promise<{ cid: CID; bytes: Uint8Array }> {
  const bytes = new TextEncoder().encode(text);
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes };
}

describe('BlockFiles', () => {
  it('keeps blocks where blockstore-fs keeps them: each reads what the other wrote', async () => {
    const root = join(dir, 'blocks');
    const ours = new BlockFiles(root);
    const theirs = new FsBlockstore(root);
    await ours.open();
    await theirs.open();
    const written = await block('written here');
    const older = await block('written by blockstore-fs');
    await ours.put(written.cid, written.bytes);
    await theirs.put(older.cid, older.bytes);
    const read = async (cid: CID) => {
      const parts: Uint8Array[] = [];
      for await (const part of theirs.get(cid)) parts.push(part);
      return Buffer.concat(parts);
    };
    expect(await read(written.cid)).toEqual(Buffer.from(written.bytes));
    expect(Buffer.from((await ours.get(older.cid))!)).toEqual(Buffer.from(older.bytes));
    expect(await ours.has(older.cid)).toBe(true);
    expect(await theirs.has(written.cid)).toBe(true);
  });

  it('answers null and false for a block it does not hold, and deletes only what it holds', async () => {
    const store = new BlockFiles(join(dir, 'blocks'));
    await store.open();
    const { cid, bytes } = await block('x');
    expect(await store.get(cid)).toBeNull();
    expect(await store.has(cid)).toBe(false);
    expect(await store.delete(cid)).toBe(false);
    await store.put(cid, bytes);
    expect(await store.delete(cid)).toBe(true);
    expect(await store.has(cid)).toBe(false);
  });

  it('leaves no temporary file behind, also when the same block is written at once from two places', async () => {
    const root = join(dir, 'blocks');
    const first = new BlockFiles(root);
    const second = new BlockFiles(root);
    await first.open();
    const { cid, bytes } = await block('twice');
    await Promise.all([first.put(cid, bytes), second.put(cid, bytes), first.put(cid, bytes)]);
    const shards = await readdir(root);
    const files = (await Promise.all(shards.map((shard) => readdir(join(root, shard))))).flat();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^B[A-Z2-7]+\.data$/);
  });

  it('writes again after its shard folder was removed under it', async () => {
    const root = join(dir, 'blocks');
    const store = new BlockFiles(root);
    await store.open();
    const one = await block('one');
    await store.put(one.cid, one.bytes);
    await rm(root, { recursive: true });
    await store.open();
    await store.put(one.cid, one.bytes);
    expect(await store.has(one.cid)).toBe(true);
  });
});

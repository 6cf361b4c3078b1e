import { mkdtemp, rm } from 'node:fs/promises';
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
  it('reads, finds and deletes the blocks blockstore-fs wrote, as earlier versions of the store did', async () => {
    const root = join(dir, 'blocks');
    const written = new FsBlockstore(root);
    await written.open();
    const { cid, bytes } = await block('written by blockstore-fs');
    await written.put(cid, bytes);
    const files = new BlockFiles(root);
    expect(await files.has(cid)).toBe(true);
    expect(Buffer.from((await files.get(cid))!)).toEqual(Buffer.from(bytes));
    expect(await files.delete(cid)).toBe(true);
    expect(await written.has(cid)).toBe(false);
  });

  it('answers null and false for a block it does not hold', async () => {
    const files = new BlockFiles(join(dir, 'missing'));
    const { cid } = await block('x');
    expect(await files.get(cid)).toBeNull();
    expect(await files.has(cid)).toBe(false);
    expect(await files.delete(cid)).toBe(false);
  });
});

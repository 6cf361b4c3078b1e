import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dagPb from '@ipld/dag-pb';
import { UnixFS } from 'ipfs-unixfs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChunkMemory, fileLeafBlock, ownsItsMemory, readChunks } from './file-chunks.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'task-mgmt-chunks-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Byte equality without vitest's element-by-element comparison, which takes seconds per MiB. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** What the importer's own leaf writer encodes: the reference fileLeafBlock must equal. */
function encodedLeaf(data: Uint8Array): Uint8Array {
  return dagPb.encode({ Data: new UnixFS({ type: 'file', data }).marshal(), Links: [] });
}

async function chunksOf(bytes: Buffer, chunkSize: number, sizeHint = bytes.length): Promise<Uint8Array[]> {
  const path = join(dir, `f-${bytes.length}-${chunkSize}-${sizeHint}`);
  await writeFile(path, bytes);
  const handle = await open(path);
  try {
    const chunks: Uint8Array[] = [];
    for await (const chunk of readChunks(handle, sizeHint, new ChunkMemory(chunkSize, false))) chunks.push(Uint8Array.from(chunk));
    return chunks;
  } finally {
    await handle.close();
  }
}

describe('fileLeafBlock', () => {
  it.each([1, 2, 127, 128, 129, 16_383, 16_384, 65_535, 262_144, 1_048_576, 2_097_151, 2_097_152])(
    'equals the UnixFS + dag-pb encoding for %i bytes, copied or built in place',
    async (length) => {
      const data = randomBytes(length);
      const expected = encodedLeaf(data);
      expect(same(fileLeafBlock(Uint8Array.from(data)), expected)).toBe(true);
      const path = join(dir, `leaf-${length}`);
      await writeFile(path, data);
      const handle = await open(path);
      try {
        for await (const chunk of readChunks(handle, length, new ChunkMemory(length, false))) {
          expect(ownsItsMemory(chunk)).toBe(true);
          expect(same(fileLeafBlock(chunk), expected)).toBe(true);
        }
      } finally {
        await handle.close();
      }
    },
  );

  it('refuses an empty chunk, whose leaf has no Data field', () => {
    expect(() => fileLeafBlock(new Uint8Array(0))).toThrow(RangeError);
  });
});

describe('readChunks', () => {
  it('gives pieces of exactly the chunk size, the last one shorter, joining to the file', async () => {
    const bytes = randomBytes(10 * 1000 + 7);
    const chunks = await chunksOf(bytes, 1000);
    expect(chunks.map((chunk) => chunk.byteLength)).toStrictEqual([...Array(10).fill(1000), 7]);
    expect(same(Buffer.concat(chunks), bytes)).toBe(true);
  });

  it('gives nothing for an empty file', async () => {
    expect(await chunksOf(Buffer.alloc(0), 1000)).toStrictEqual([]);
  });

  it('reads a file that grew after its size was taken to its end', async () => {
    const bytes = randomBytes(300_000);
    const chunks = await chunksOf(bytes, 100_000, 150_000);
    expect(same(Buffer.concat(chunks), bytes)).toBe(true);
  });

  it('stops where a file that shrank after its size was taken ends', async () => {
    const bytes = randomBytes(150_000);
    const chunks = await chunksOf(bytes, 100_000, 900_000);
    expect(same(Buffer.concat(chunks), bytes)).toBe(true);
  });
});

describe('ChunkMemory', () => {
  it('reads a later chunk into the memory of one given back, when allowed to', () => {
    const memory = new ChunkMemory(1000, true);
    const first = memory.take(1000);
    const firstMemory = first.buffer;
    memory.give(first);
    memory.give(first);
    expect(memory.take(1000).buffer).toBe(firstMemory);
    expect(memory.take(1000).buffer).not.toBe(firstMemory);
  });

  it('keeps no memory it did not hand out, of a short last chunk, or when reuse is off', () => {
    const memory = new ChunkMemory(1000, true);
    memory.give(new Uint8Array(1000));
    const short = memory.take(10);
    memory.give(short);
    expect(memory.take(10).buffer).not.toBe(short.buffer);
    const off = new ChunkMemory(1000, false);
    const chunk = off.take(1000);
    off.give(chunk);
    expect(off.take(1000).buffer).not.toBe(chunk.buffer);
  });
});

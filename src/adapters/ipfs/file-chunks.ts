/**
 * How an add reads a file and turns its chunks into leaf blocks with as little copying as it can.
 *
 * A file is read in pieces of exactly the chunk size, a few reads ahead of the importer, so the
 * fixed-size chunker hands each piece on as it is and the disk is read while earlier chunks are
 * hashed and written. Each piece has an ArrayBuffer of its own, which can be lent to a hashing
 * thread (hash-pool.ts), with a few spare bytes before and after it: a dag-pb leaf is the chunk
 * between a short header and a shorter trailer, so the leaf is built around the chunk in place
 * instead of being encoded into a fresh copy of it (twice, by the UnixFS and dag-pb encoders).
 * Once a leaf is stored its memory can go back to the add's ChunkMemory and hold a later chunk:
 * a fresh megabyte per chunk was zeroed, faulted in page by page, and left to the garbage
 * collector, which together cost about as much CPU as hashing it.
 */
import type { FileHandle } from 'node:fs/promises';

/** Reads in flight ahead of the importer, per file. */
const READS_AHEAD = 4;
/** Spare bytes kept before and after each chunk: enough for a leaf's header and trailer (fileLeafBlock). */
const ROOM_BEFORE = 16;
const ROOM_AFTER = 8;
/** What a read past the size fstat reported asks for: it normally finds nothing. */
const GROWTH_PROBE_BYTES = 64 * 1024;

/** Chunks read by readChunks, with their spare room around them. */
const roomy = new WeakSet<Uint8Array>();
/** Most idle chunk buffers an add keeps for reuse: more than it ever has in flight (import-tree.ts). */
const IDLE_CHUNKS_KEPT = 64;

/**
 * The memory of one add's chunks. Without `reuse` every chunk gets new memory; with it, a chunk
 * given back (`give`) is read into again, so the caller must be sure nothing reads the chunk, or
 * the leaf built around it, any more: it was stored, and the block sink kept no reference.
 */
export class ChunkMemory {
  private readonly idle: ArrayBuffer[] = [];
  private readonly size: number;

  constructor(
    readonly chunkSize: number,
    readonly reuse: boolean,
  ) {
    this.size = ROOM_BEFORE + chunkSize + ROOM_AFTER;
  }

  /** Room for `length` bytes of a file (at most a chunk), with spare bytes around it. */
  take(length: number): Uint8Array {
    const memory = (length === this.chunkSize ? this.idle.pop() : undefined) ?? uninitialized(ROOM_BEFORE + length + ROOM_AFTER);
    const chunk = new Uint8Array(memory, ROOM_BEFORE, length);
    roomy.add(chunk);
    return chunk;
  }

  /** Takes back the memory of a chunk read by take (or of the leaf built around it); any other is left alone. */
  give(bytes: Uint8Array): void {
    const memory = bytes.buffer;
    if (!this.reuse || !(memory instanceof ArrayBuffer) || memory.byteLength !== this.size || this.idle.length >= IDLE_CHUNKS_KEPT) return;
    if (!this.idle.includes(memory)) this.idle.push(memory);
  }
}

/**
 * The file's bytes in pieces of `chunkSize` (the last one shorter), read until end of file.
 * `sizeHint` (from fstat) only decides how far to read ahead; a file that grows or shrinks
 * meanwhile is read as it is then. The caller owns the handle and closes it after the iteration
 * ends; no read is left running when it does.
 */
export async function* readChunks(handle: FileHandle, sizeHint: number, memory: ChunkMemory, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const { chunkSize } = memory;
  const reads: { length: number; done: Promise<Uint8Array> }[] = [];
  let position = 0;
  try {
    for (;;) {
      signal?.throwIfAborted();
      while (reads.length < READS_AHEAD && position < sizeHint) {
        const length = Math.min(chunkSize, sizeHint - position);
        reads.push({ length, done: readAt(handle, position, memory.take(length)) });
        position += length;
      }
      const next = reads.shift();
      if (next === undefined) {
        // All that fstat promised is read; a file still being written may hold more.
        const extra = await readAt(handle, position, new Uint8Array(Math.min(GROWTH_PROBE_BYTES, chunkSize)));
        if (extra.byteLength === 0) return;
        position += extra.byteLength;
        yield extra;
        sizeHint = position + READS_AHEAD * chunkSize;
        continue;
      }
      const chunk = await next.done;
      // Read before the yield: the consumer may lend the chunk's memory away (ownsItsMemory).
      const ended = chunk.byteLength < next.length;
      if (chunk.byteLength > 0) yield chunk;
      // The file ended sooner than fstat said.
      if (ended) return;
    }
  } finally {
    // Reads already started write into their buffers: let them finish before the handle closes.
    await Promise.allSettled(reads.map((read) => read.done));
  }
}

/**
 * Whether `chunk` came from readChunks as it was read: then its ArrayBuffer holds nothing else
 * and no one else uses it, so it can be lent to a hashing thread (hash-pool.ts). The fixed-size
 * chunker passes such a piece on as it is only when the piece is exactly one chunk, and keeps no
 * view of it once it has moved on; a chunk it puts together from several pieces is a copy.
 */
export function ownsItsMemory(chunk: Uint8Array): boolean {
  return roomy.has(chunk);
}

/**
 * The dag-pb leaf Kubo writes for a chunk of file data (PBNode{Data: UnixFS{Type: File, Data,
 * filesize}}, no links), byte for byte what `dagPb.encode` of `new UnixFS({type: 'file', data})`
 * gives. Built around the chunk in place when readChunks read it, else into a new buffer: either
 * way the leaf's ArrayBuffer holds only the leaf, and can be lent like a chunk read here.
 * An empty chunk has a different encoding (no Data field): callers encode it the usual way.
 */
export function fileLeafBlock(chunk: Uint8Array): Uint8Array {
  const length = chunk.byteLength;
  if (length === 0) throw new RangeError('an empty chunk has no Data field; encode it with the UnixFS encoder');
  const trailer = [0x18, ...varint(length)];
  const unixfsLength = 2 + 1 + varint(length).length + length + trailer.length;
  const header = [0x0a, ...varint(unixfsLength), 0x08, 0x02, 0x12, ...varint(length)];
  if (roomy.has(chunk) && header.length <= ROOM_BEFORE && trailer.length <= ROOM_AFTER) {
    const start = chunk.byteOffset - header.length;
    const whole = new Uint8Array(chunk.buffer, start, header.length + length + trailer.length);
    whole.set(header, 0);
    whole.set(trailer, header.length + length);
    return whole;
  }
  const block = new Uint8Array(header.length + length + trailer.length);
  block.set(header, 0);
  block.set(chunk, header.length);
  block.set(trailer, header.length + length);
  return block;
}

/** Memory of its own (not a slice of Node's shared pool), and not zeroed: a read fills it. */
function uninitialized(size: number): ArrayBuffer {
  return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
}

/** Fills `buffer` from `position` as far as the file goes; the part read (empty at end of file). */
async function readAt(handle: FileHandle, position: number, buffer: Uint8Array): Promise<Uint8Array> {
  let filled = 0;
  while (filled < buffer.byteLength) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.byteLength - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  if (filled === buffer.byteLength) return buffer;
  const part = buffer.subarray(0, filled);
  if (roomy.has(buffer)) roomy.add(part);
  return part;
}

/** Protobuf's unsigned varint. */
function varint(value: number): number[] {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return bytes;
}

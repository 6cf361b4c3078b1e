/**
 * The decompressed bytes of one compressed ZIM cluster, decoded only as far as a reader asks
 * (the blob offsets at its head, then up to the end of the blob wanted), within limits: bytes
 * per cluster, bytes for the whole inspection, and time per cluster. zstd is decoded by fzstd
 * and xz by xz-decompress (xz-embedded compiled to WebAssembly); neither is native code, and
 * both run in the inspection's worker thread (inspect-zim.ts), never on the event loop.
 *
 * fzstd is fed one zstd block at a time, so a block of 4 bytes that stands for 128 KiB is the
 * most one step can give: the frame is walked here first (ZstdFrameSplitter), which also
 * refuses what fzstd would otherwise allocate blindly (a window of up to 2 GiB).
 */
import type { FileHandle } from 'node:fs/promises';
import { Decompress } from 'fzstd';
import xzDecompress from 'xz-decompress';
import { PermanentError } from '../../../src/ports/errors.js';

export interface ZimLimits {
  /** Decompressed bytes one cluster may give. */
  maxClusterBytes: number;
  /** Decompressed bytes all clusters of one inspection may give together. */
  maxTotalBytes: number;
  /** Time one cluster may take to decompress, in milliseconds. */
  clusterDeadlineMs: number;
  /** Largest zstd window a cluster may ask for (libzim writes 8 MiB). */
  maxZstdWindowBytes: number;
}

/** A limit of the inspection was reached: the message names it. */
export class ZimLimitError extends PermanentError {
  override readonly name = 'ZimLimitError';
}

/** What every cluster of one inspection shares: the limits and the bytes decompressed so far. */
export interface DecodeBudget {
  limits: ZimLimits;
  used: number;
  /** Told when a cluster starts and stops decoding (the worker forwards it to the watchdog). */
  onCluster?: (cluster: number, phase: 'start' | 'stop') => void;
}

export const Compression = { none: 1, zlib: 2, bzip2: 3, xz: 4, zstd: 5 } as const;

const MiB = 1024 * 1024;
const READ_BYTES = 64 * 1024;
const ZSTD_MAX_BLOCK = 128 * 1024;

export function formatBytes(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/** A source of decompressed pieces; `null` once the stream has ended. */
interface Decoder {
  next(): Promise<Uint8Array | null>;
  close(): void;
}

export class ClusterStream {
  private data: Buffer = Buffer.alloc(0);
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private ended = false;
  private readonly decoder: Decoder;
  private elapsedMs = 0;

  constructor(
    readonly cluster: number,
    compression: number,
    file: FileHandle,
    /** Compressed bytes: from after the info byte to the next cluster (or the checksum). */
    range: { start: number; end: number },
    private readonly budget: DecodeBudget,
  ) {
    const read = rangeReader(file, range);
    if (compression === Compression.zstd) this.decoder = zstdDecoder(cluster, read, budget.limits);
    else if (compression === Compression.xz) this.decoder = xzDecoder(cluster, read);
    else throw new PermanentError(`ZIM cluster ${cluster} uses ${compressionName(compression)}, which task-mgmt does not read (zstd, xz and none are read)`);
  }

  get length(): number {
    return this.data.length + this.pendingBytes;
  }

  /** Decodes until at least `bytes` bytes are there or the stream ends; `what` needs them. */
  async ensure(bytes: number, what: string): Promise<void> {
    const { limits } = this.budget;
    if (bytes > limits.maxClusterBytes) {
      throw new ZimLimitError(
        `ZIM cluster ${this.cluster} would decompress to more than ${formatBytes(limits.maxClusterBytes)}, the limit per cluster (${what} ends ${bytes} bytes in)`,
      );
    }
    if (this.length >= bytes || this.ended) return;
    const started = Date.now();
    this.budget.onCluster?.(this.cluster, 'start');
    try {
      while (this.length < bytes && !this.ended) {
        const piece = await this.decoder.next();
        if (piece === null) {
          this.ended = true;
          break;
        }
        this.pending.push(piece);
        this.pendingBytes += piece.length;
        this.budget.used += piece.length;
        if (this.length > limits.maxClusterBytes + ZSTD_MAX_BLOCK) {
          throw new ZimLimitError(`ZIM cluster ${this.cluster} decompresses to more than ${formatBytes(limits.maxClusterBytes)}, the limit per cluster`);
        }
        if (this.budget.used > limits.maxTotalBytes) {
          throw new ZimLimitError(`the ZIM file decompresses to more than ${formatBytes(limits.maxTotalBytes)} in all, the limit for one file (at cluster ${this.cluster})`);
        }
        if (this.elapsedMs + (Date.now() - started) > limits.clusterDeadlineMs) {
          throw new ZimLimitError(`ZIM cluster ${this.cluster} took more than ${limits.clusterDeadlineMs / 1000} s to decompress, the limit per cluster`);
        }
      }
    } catch (error) {
      this.close();
      throw error;
    } finally {
      this.elapsedMs += Date.now() - started;
      this.budget.onCluster?.(this.cluster, 'stop');
    }
  }

  /** Bytes [from, to) of the decompressed cluster; throws when the cluster is shorter. */
  async bytes(from: number, to: number, what: string): Promise<Buffer> {
    await this.ensure(to, what);
    if (this.length < to) throw new PermanentError(`broken ZIM: cluster ${this.cluster} ends before ${what}`);
    if (this.pending.length > 0) {
      this.data = Buffer.concat([this.data, ...this.pending]);
      this.pending = [];
      this.pendingBytes = 0;
    }
    return this.data.subarray(from, to);
  }

  close(): void {
    this.ended = true;
    this.decoder.close();
  }
}

function compressionName(compression: number): string {
  switch (compression) {
    case Compression.zlib:
      return 'zlib compression';
    case Compression.bzip2:
      return 'bzip2 compression';
    default:
      return `an unknown compression (type ${compression})`;
  }
}

/** Reads a byte range of the file in pieces; `null` at its end. */
function rangeReader(file: FileHandle, range: { start: number; end: number }): () => Promise<Buffer | null> {
  let at = range.start;
  return async () => {
    if (at >= range.end) return null;
    const buffer = Buffer.alloc(Math.min(READ_BYTES, range.end - at));
    const { bytesRead } = await file.read(buffer, 0, buffer.length, at);
    if (bytesRead === 0) return null;
    at += bytesRead;
    return buffer.subarray(0, bytesRead);
  };
}

/* ------------------------------------------------------------------------------------- zstd */

/**
 * Walks one zstd frame (RFC 8878 section 3.1.1) as its bytes arrive and hands them on cut at
 * block boundaries: the frame header with the first block, then one block per piece, then the
 * checksum. Refuses what a ZIM cluster never needs and a decoder would pay for: dictionaries,
 * reserved bits, windows or declared sizes above the limits. Bytes after the frame are ignored.
 */
export class ZstdFrameSplitter {
  private buffer: Buffer = Buffer.alloc(0);
  private state: 'header' | 'block' | 'checksum' | 'done' = 'header';
  private checksum = false;
  private started = false;

  constructor(
    private readonly cluster: number,
    private readonly limits: Pick<ZimLimits, 'maxClusterBytes' | 'maxZstdWindowBytes'>,
  ) {}

  get done(): boolean {
    return this.state === 'done';
  }

  /** Feeds bytes; returns the complete pieces they finish, in order. */
  feed(chunk: Buffer): Buffer[] {
    if (this.state === 'done') return [];
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const pieces: Buffer[] = [];
    let from = 0;
    let at = 0;
    for (;;) {
      const available = this.buffer.length - at;
      if (this.state === 'header') {
        const length = this.headerLength(at);
        if (length === undefined || available < length) break;
        this.checkHeader(at);
        at += length;
        this.state = 'block';
      } else if (this.state === 'block') {
        if (available < 3) break;
        const header = this.buffer.readUIntLE(at, 3);
        const last = (header & 1) === 1;
        const type = (header >> 1) & 3;
        const size = header >>> 3;
        if (type === 3) throw this.broken('a reserved block type');
        if (size > ZSTD_MAX_BLOCK) throw this.broken(`a block of ${size} bytes (at most ${ZSTD_MAX_BLOCK})`);
        const length = 3 + (type === 1 ? 1 : size);
        if (available < length) break;
        at += length;
        // The frame header travels with the first block: fzstd reads both at once.
        pieces.push(this.buffer.subarray(from, at));
        from = at;
        if (last) this.state = this.checksum ? 'checksum' : 'done';
      } else if (this.state === 'checksum') {
        if (available < 4) break;
        at += 4;
        pieces.push(this.buffer.subarray(from, at));
        from = at;
        this.state = 'done';
      } else {
        break;
      }
    }
    this.buffer = this.state === 'done' ? Buffer.alloc(0) : Buffer.from(this.buffer.subarray(from));
    return pieces;
  }

  private headerLength(at: number): number | undefined {
    if (this.buffer.length - at < 5) return undefined;
    const descriptor = this.buffer[at + 4]!;
    const singleSegment = (descriptor >> 5) & 1;
    const sizeFlag = descriptor >> 6;
    const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
    const sizeBytes = sizeFlag === 0 ? singleSegment : 1 << sizeFlag;
    return 5 + (singleSegment ? 0 : 1) + dictionaryBytes + sizeBytes;
  }

  private checkHeader(at: number): void {
    const magic = this.buffer.readUInt32LE(at);
    if (magic !== 0xfd2fb528) throw this.broken(`no zstd frame (magic number 0x${magic.toString(16)})`);
    if (this.started) throw this.broken('a second zstd frame');
    this.started = true;
    const descriptor = this.buffer[at + 4]!;
    const singleSegment = (descriptor >> 5) & 1;
    if (descriptor & 0x08) throw this.broken('a reserved bit set in the zstd frame header');
    if (descriptor & 3) throw this.broken('a zstd dictionary, which ZIM files do not use');
    this.checksum = ((descriptor >> 2) & 1) === 1;
    let position = at + 5;
    let window: number | undefined;
    if (!singleSegment) {
      const descriptorByte = this.buffer[position++]!;
      const base = 2 ** (10 + (descriptorByte >> 3));
      window = base + (base / 8) * (descriptorByte & 7);
    }
    const sizeFlag = descriptor >> 6;
    const sizeBytes = sizeFlag === 0 ? singleSegment : 1 << sizeFlag;
    let contentSize: number | undefined;
    if (sizeBytes > 0) {
      contentSize = readUnsigned(this.buffer, position, sizeBytes) + (sizeBytes === 2 ? 256 : 0);
    }
    const { maxClusterBytes, maxZstdWindowBytes } = this.limits;
    if (contentSize !== undefined && contentSize > maxClusterBytes) {
      throw new ZimLimitError(
        `ZIM cluster ${this.cluster} would decompress to more than ${formatBytes(maxClusterBytes)} (its zstd frame says ${contentSize} bytes), the limit per cluster`,
      );
    }
    const needed = window ?? contentSize ?? 0;
    if (needed > maxZstdWindowBytes) {
      throw new ZimLimitError(
        `ZIM cluster ${this.cluster} asks for a zstd window of ${formatBytes(needed)}, more than the limit of ${formatBytes(maxZstdWindowBytes)}`,
      );
    }
  }

  private broken(what: string): PermanentError {
    return new PermanentError(`broken ZIM: cluster ${this.cluster} has ${what}`);
  }
}

function readUnsigned(buffer: Buffer, at: number, bytes: number): number {
  let value = 0;
  for (let i = bytes - 1; i >= 0; i--) value = value * 256 + buffer[at + i]!;
  return value;
}

function zstdDecoder(cluster: number, read: () => Promise<Buffer | null>, limits: ZimLimits): Decoder {
  const splitter = new ZstdFrameSplitter(cluster, limits);
  const output: Uint8Array[] = [];
  const decompress = new Decompress((data) => {
    if (data.length > 0) output.push(data);
  });
  const queue: Buffer[] = [];
  let flushed = false;
  const push = (piece: Uint8Array, final: boolean) => {
    try {
      decompress.push(piece, final);
    } catch (error) {
      throw new PermanentError(`broken ZIM: cluster ${cluster} holds bad zstd data (${(error as Error).message})`);
    }
  };
  return {
    async next() {
      while (output.length === 0) {
        if (queue.length > 0) {
          push(queue.shift()!, false);
          continue;
        }
        if (splitter.done) {
          if (flushed) return null;
          flushed = true;
          push(new Uint8Array(0), true);
          continue;
        }
        const chunk = await read();
        if (chunk === null) throw new PermanentError(`broken ZIM: cluster ${cluster}'s zstd data is cut short`);
        queue.push(...splitter.feed(chunk));
      }
      return output.shift()!;
    },
    close() {
      queue.length = 0;
      output.length = 0;
    },
  };
}

/* --------------------------------------------------------------------------------------- xz */

/** xz-embedded's answers (xz.h), for errors a person can read. */
const xzErrors: Record<string, string> = {
  '2': 'an integrity check it cannot verify',
  '3': 'more memory than the decoder has',
  '4': 'a dictionary larger than the decoder allows',
  '5': 'no xz data',
  '6': 'xz options it does not support',
  '7': 'corrupt xz data',
  '8': 'xz data that is cut short',
};

function xzDecoder(cluster: number, read: () => Promise<Buffer | null>): Decoder {
  const source = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = await read();
      if (chunk === null) controller.close();
      else controller.enqueue(chunk);
    },
  });
  const reader = new xzDecompress.XzReadableStream(source).getReader();
  let finished = false;
  return {
    async next() {
      if (finished) return null;
      for (;;) {
        let result: Awaited<ReturnType<typeof reader.read>>;
        try {
          result = await reader.read();
        } catch (error) {
          finished = true;
          const code = /error code (\d+)/.exec((error as Error).message)?.[1];
          const what = code !== undefined ? (xzErrors[code] ?? `xz error ${code}`) : 'xz data that is cut short';
          const message = `${code === '4' ? '' : 'broken ZIM: '}cluster ${cluster} holds ${what}`;
          throw code === '4' ? new ZimLimitError(`ZIM ${message}`) : new PermanentError(message);
        }
        if (result.done) {
          finished = true;
          return null;
        }
        if (result.value.length > 0) return result.value;
      }
    },
    close() {
      if (!finished) {
        finished = true;
        // Releases the decoder's context; a stream already failed has nothing to release.
        reader.cancel().catch(() => undefined);
      }
    },
  };
}

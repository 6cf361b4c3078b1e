/**
 * Just enough of the ZIM format (https://wiki.openzim.org/wiki/ZIM_file_format) to check a file
 * and read its metadata: the header, the MIME type list, the URL pointer list, directory entries
 * and blobs of uncompressed clusters. Reads are positioned, so a 100 GB file costs a few KiB.
 */
import type { FileHandle } from 'node:fs/promises';
import { PermanentError } from '../../../src/ports/errors.js';

export const ZIM_MAGIC = 72173914;
const NO_PAGE = 0xffffffff;

export interface ZimHeader {
  majorVersion: number;
  minorVersion: number;
  uuid: string;
  /** Every directory entry, metadata and indexes included (the header's "article count"). */
  entryCount: number;
  clusterCount: number;
  urlPtrPos: number;
  titlePtrPos: number;
  clusterPtrPos: number;
  mimeListPos: number;
  mainPage: number | null;
  layoutPage: number | null;
  checksumPos: number;
}

export interface DirEntry {
  /** Position in the URL pointer list. */
  index: number;
  namespace: string;
  url: string;
  title: string;
  /** MIME type, or undefined for redirects, link targets and deleted entries. */
  mime: string | undefined;
  redirectIndex: number | undefined;
  cluster: number | undefined;
  blob: number | undefined;
}

/** Compression byte of a cluster (low four bits). */
export const Compression = { none: 1, zlib: 2, bzip2: 3, xz: 4, zstd: 5 } as const;

export class ZimReader {
  private constructor(
    private readonly file: FileHandle,
    readonly size: number,
    readonly header: ZimHeader,
    readonly mimeTypes: string[],
  ) {}

  static async open(file: FileHandle): Promise<ZimReader> {
    const { size } = await file.stat();
    const raw = await readAt(file, 0, 80);
    if (raw.length < 80) throw new PermanentError(`not a ZIM file: only ${raw.length} bytes`);
    const magic = raw.readUInt32LE(0);
    if (magic !== ZIM_MAGIC) {
      throw new PermanentError(`not a ZIM file: magic number ${magic}, expected ${ZIM_MAGIC}`);
    }
    const majorVersion = raw.readUInt16LE(4);
    if (majorVersion !== 5 && majorVersion !== 6) {
      throw new PermanentError(`unsupported ZIM major version ${majorVersion} (5 and 6 are known)`);
    }
    const position = (offset: number, name: string): number => {
      const value = raw.readBigUInt64LE(offset);
      if (value >= BigInt(size)) throw new PermanentError(`broken ZIM header: ${name} ${value} lies past the end of the file`);
      return Number(value);
    };
    const page = (offset: number): number | null => {
      const value = raw.readUInt32LE(offset);
      return value === NO_PAGE ? null : value;
    };
    const hex = raw.subarray(8, 24).toString('hex');
    const header: ZimHeader = {
      majorVersion,
      minorVersion: raw.readUInt16LE(6),
      uuid: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
      entryCount: raw.readUInt32LE(24),
      clusterCount: raw.readUInt32LE(28),
      urlPtrPos: position(32, 'urlPtrPos'),
      titlePtrPos: position(40, 'titlePtrPos'),
      clusterPtrPos: position(48, 'clusterPtrPos'),
      mimeListPos: position(56, 'mimeListPos'),
      mainPage: page(64),
      layoutPage: page(68),
      checksumPos: position(72, 'checksumPos'),
    };
    const mimeTypes = await readMimeList(file, header.mimeListPos);
    return new ZimReader(file, size, header, mimeTypes);
  }

  async entryOffset(index: number): Promise<number> {
    if (index < 0 || index >= this.header.entryCount) throw new PermanentError(`ZIM entry ${index} does not exist`);
    return Number((await readAt(this.file, this.header.urlPtrPos + 8 * index, 8)).readBigUInt64LE(0));
  }

  async entry(index: number): Promise<DirEntry> {
    const offset = await this.entryOffset(index);
    // Fixed part (at most 16 bytes), then url\0title\0; grow the read for long URLs.
    for (let length = 1024; ; length *= 4) {
      const raw = await readAt(this.file, offset, length);
      if (raw.length < 8) throw new PermanentError(`broken ZIM: entry ${index} is cut short`);
      const mimeIndex = raw.readUInt16LE(0);
      const namespace = String.fromCharCode(raw[3]!);
      const redirect = mimeIndex === 0xffff;
      const hasTarget = mimeIndex < 0xfffd;
      const start = redirect ? 12 : hasTarget ? 16 : 8;
      const urlEnd = raw.indexOf(0, start);
      const titleEnd = urlEnd < 0 ? -1 : raw.indexOf(0, urlEnd + 1);
      if (titleEnd < 0) {
        if (raw.length < length || length >= 1 << 20) throw new PermanentError(`broken ZIM: entry ${index} has no end`);
        continue;
      }
      const url = raw.toString('utf8', start, urlEnd);
      const title = raw.toString('utf8', urlEnd + 1, titleEnd);
      return {
        index,
        namespace,
        url,
        // An empty title means "same as the URL".
        title: title || url,
        mime: hasTarget ? this.mimeTypes[mimeIndex] : undefined,
        redirectIndex: redirect ? raw.readUInt32LE(8) : undefined,
        cluster: hasTarget ? raw.readUInt32LE(8) : undefined,
        blob: hasTarget ? raw.readUInt32LE(12) : undefined,
      };
    }
  }

  private async namespaceAt(index: number): Promise<string> {
    const offset = await this.entryOffset(index);
    return String.fromCharCode((await readAt(this.file, offset + 3, 1))[0]!);
  }

  /**
   * Index range [start, end) of a namespace: the URL pointer list is sorted by namespace then
   * URL, so two binary searches find it without walking millions of entries.
   */
  async namespaceRange(namespace: string): Promise<{ start: number; end: number }> {
    const firstAtLeast = async (target: (ns: string) => boolean): Promise<number> => {
      let low = 0;
      let high = this.header.entryCount;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (target(await this.namespaceAt(middle))) high = middle;
        else low = middle + 1;
      }
      return low;
    };
    const start = await firstAtLeast((ns) => ns >= namespace);
    const end = await firstAtLeast((ns) => ns > namespace);
    return { start, end };
  }

  /** Finds an entry by namespace and URL (binary search over the URL pointer list). */
  async find(namespace: string, url: string): Promise<DirEntry | undefined> {
    const { start, end } = await this.namespaceRange(namespace);
    let low = start;
    let high = end;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const entry = await this.entry(middle);
      if (entry.url === url) return entry;
      if (Buffer.compare(Buffer.from(entry.url), Buffer.from(url)) < 0) low = middle + 1;
      else high = middle;
    }
    return undefined;
  }

  private async clusterBounds(cluster: number): Promise<{ start: number; end: number }> {
    if (cluster >= this.header.clusterCount) throw new PermanentError(`broken ZIM: cluster ${cluster} does not exist`);
    const pointers = await readAt(this.file, this.header.clusterPtrPos + 8 * cluster, 16);
    const start = Number(pointers.readBigUInt64LE(0));
    const end = cluster + 1 < this.header.clusterCount ? Number(pointers.readBigUInt64LE(8)) : this.header.checksumPos;
    if (start >= end || end > this.size) throw new PermanentError(`broken ZIM: cluster ${cluster} has bad bounds`);
    return { start, end };
  }

  async clusterCompression(cluster: number): Promise<number> {
    const { start } = await this.clusterBounds(cluster);
    return (await readAt(this.file, start, 1))[0]! & 0x0f;
  }

  /** Size of a blob in an uncompressed cluster. */
  async blobSize(cluster: number, blob: number): Promise<number> {
    const { from, to } = await this.blobBounds(cluster, blob);
    return to - from;
  }

  /** A blob of an uncompressed cluster, refusing blobs above `maxBytes`. */
  async readBlob(cluster: number, blob: number, maxBytes: number): Promise<Buffer> {
    const { from, to } = await this.blobBounds(cluster, blob);
    if (to - from > maxBytes) throw new PermanentError(`ZIM blob ${cluster}/${blob} is larger than ${maxBytes} bytes`);
    return readAt(this.file, from, to - from);
  }

  private async blobBounds(cluster: number, blob: number): Promise<{ from: number; to: number }> {
    const { start, end } = await this.clusterBounds(cluster);
    const info = (await readAt(this.file, start, 1))[0]!;
    if ((info & 0x0f) !== Compression.none && (info & 0x0f) !== 0) {
      throw new PermanentError(`ZIM cluster ${cluster} is compressed (type ${info & 0x0f})`);
    }
    // Bit 4 set: "extended" cluster with 8-byte offsets (ZIM 6).
    const width = info & 0x10 ? 8 : 4;
    const read = (raw: Buffer): number => (width === 8 ? Number(raw.readBigUInt64LE(0)) : raw.readUInt32LE(0));
    const data = start + 1;
    const blobs = read(await readAt(this.file, data, width)) / width - 1;
    if (blob >= blobs) throw new PermanentError(`broken ZIM: blob ${blob} not in cluster ${cluster}`);
    const offsets = await readAt(this.file, data + blob * width, 2 * width);
    const from = data + read(offsets);
    const to = data + read(offsets.subarray(width));
    if (from > to || to > end) throw new PermanentError(`broken ZIM: blob ${blob} of cluster ${cluster} has bad bounds`);
    return { from, to };
  }
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/** The MIME list: NUL-terminated strings, ended by an empty one. */
async function readMimeList(file: FileHandle, position: number): Promise<string[]> {
  const raw = await readAt(file, position, 64 * 1024);
  const types: string[] = [];
  let at = 0;
  while (at < raw.length && raw[at] !== 0) {
    const end = raw.indexOf(0, at);
    if (end < 0) throw new PermanentError('broken ZIM: the MIME type list has no end');
    types.push(raw.toString('utf8', at, end));
    at = end + 1;
  }
  return types;
}

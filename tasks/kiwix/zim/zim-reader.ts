/**
 * Enough of the ZIM format (https://wiki.openzim.org/wiki/ZIM_file_format) to check a file and
 * read its metadata: the header, the MIME type list, the URL pointer list, directory entries and
 * blobs, in uncompressed, zstd and xz clusters. Reads are positioned, so a 100 GB file costs a
 * few KiB plus the clusters read; every offset the file gives is checked against its size before
 * it is followed. The file is untrusted: this module runs in the inspection's worker thread only
 * (zim-worker.ts), never on the event loop.
 */
import type { FileHandle } from 'node:fs/promises';
import { PermanentError } from '../../../src/ports/errors.js';
import { ClusterStream, Compression, type DecodeBudget } from './cluster-stream.js';

export const ZIM_MAGIC = 72173914;
const NO_PAGE = 0xffffffff;
const HEADER_BYTES = 80;
/** A directory entry's URL and title together; libzim's are far shorter. */
const MAX_ENTRY_BYTES = 64 * 1024;
const MAX_MIME_LIST_BYTES = 64 * 1024;

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

export class ZimReader {
  /** The compressed cluster being read; one at a time, so memory holds one cluster at most. */
  private current: ClusterStream | undefined;

  private constructor(
    private readonly file: FileHandle,
    readonly size: number,
    readonly header: ZimHeader,
    readonly mimeTypes: string[],
    private readonly budget: DecodeBudget,
  ) {}

  static async open(file: FileHandle, budget: DecodeBudget): Promise<ZimReader> {
    const { size } = await file.stat();
    const raw = await readAt(file, 0, HEADER_BYTES);
    if (raw.length < HEADER_BYTES) throw new PermanentError(`not a ZIM file: only ${raw.length} bytes`);
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
      if (value >= BigInt(size)) throw new PermanentError(`broken ZIM header: ${name} ${value} lies past the end of the file (${size} bytes)`);
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
    if (header.mimeListPos < HEADER_BYTES) throw new PermanentError(`broken ZIM header: mimeListPos ${header.mimeListPos} lies inside the header`);
    if (header.urlPtrPos + 8 * header.entryCount > size) {
      throw new PermanentError(`broken ZIM header: ${header.entryCount} entries do not fit in the URL pointer list at ${header.urlPtrPos}`);
    }
    if (header.clusterPtrPos + 8 * header.clusterCount > size) {
      throw new PermanentError(`broken ZIM header: ${header.clusterCount} clusters do not fit in the cluster pointer list at ${header.clusterPtrPos}`);
    }
    if (header.mainPage !== null && header.mainPage >= header.entryCount) {
      throw new PermanentError(`broken ZIM header: the main page is entry ${header.mainPage} of ${header.entryCount}`);
    }
    const mimeTypes = await readMimeList(file, header.mimeListPos);
    return new ZimReader(file, size, header, mimeTypes, budget);
  }

  async close(): Promise<void> {
    this.current?.close();
    this.current = undefined;
  }

  private async entryOffset(index: number): Promise<number> {
    if (!Number.isInteger(index) || index < 0 || index >= this.header.entryCount) {
      throw new PermanentError(`broken ZIM: entry ${index} does not exist (the file has ${this.header.entryCount})`);
    }
    const offset = (await readAt(this.file, this.header.urlPtrPos + 8 * index, 8)).readBigUInt64LE(0);
    if (offset + 16n > BigInt(this.size)) throw new PermanentError(`broken ZIM: entry ${index} lies at ${offset}, past the end of the file`);
    return Number(offset);
  }

  async entry(index: number): Promise<DirEntry> {
    const offset = await this.entryOffset(index);
    // Fixed part (at most 16 bytes), then url\0title\0; grow the read for long URLs.
    for (let length = 1024; ; length *= 4) {
      const raw = await readAt(this.file, offset, Math.min(length, 16 + MAX_ENTRY_BYTES));
      if (raw.length < 8) throw new PermanentError(`broken ZIM: entry ${index} is cut short`);
      const mimeIndex = raw.readUInt16LE(0);
      const namespace = String.fromCharCode(raw[3]!);
      const redirect = mimeIndex === 0xffff;
      const hasTarget = mimeIndex < 0xfffd;
      const start = redirect ? 12 : hasTarget ? 16 : 8;
      const urlEnd = raw.length > start ? raw.indexOf(0, start) : -1;
      const titleEnd = urlEnd < 0 ? -1 : raw.indexOf(0, urlEnd + 1);
      if (titleEnd < 0) {
        if (raw.length < length || length >= 16 + MAX_ENTRY_BYTES) throw new PermanentError(`broken ZIM: entry ${index} has no end`);
        continue;
      }
      if (hasTarget && mimeIndex >= this.mimeTypes.length) {
        throw new PermanentError(`broken ZIM: entry ${index} names MIME type ${mimeIndex} of ${this.mimeTypes.length}`);
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

  /** Follows redirects from `index` to an entry that is not one; a loop or a long chain is an error. */
  async resolve(index: number, maxHops = 16): Promise<DirEntry> {
    const seen = new Set<number>();
    let entry = await this.entry(index);
    while (entry.redirectIndex !== undefined) {
      seen.add(entry.index);
      if (seen.has(entry.redirectIndex)) throw new PermanentError(`broken ZIM: entry ${index} redirects in a loop`);
      if (seen.size > maxHops) throw new PermanentError(`broken ZIM: entry ${index} redirects more than ${maxHops} times`);
      entry = await this.entry(entry.redirectIndex);
    }
    return entry;
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
    return { start, end: Math.max(start, end) };
  }

  /** Finds an entry by namespace and URL (binary search over the URL pointer list). */
  async find(namespace: string, url: string): Promise<DirEntry | undefined> {
    const { start, end } = await this.namespaceRange(namespace);
    const wanted = Buffer.from(url);
    let low = start;
    let high = end;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const entry = await this.entry(middle);
      const order = Buffer.compare(Buffer.from(entry.url), wanted);
      if (order === 0 && entry.namespace === namespace) return entry;
      if (order < 0) low = middle + 1;
      else high = middle;
    }
    return undefined;
  }

  /** The compressed payload of a cluster runs from after its info byte to the next cluster (or the checksum). */
  private async clusterBounds(cluster: number): Promise<{ start: number; end: number }> {
    if (!Number.isInteger(cluster) || cluster >= this.header.clusterCount) {
      throw new PermanentError(`broken ZIM: cluster ${cluster} does not exist (the file has ${this.header.clusterCount})`);
    }
    const pointers = await readAt(this.file, this.header.clusterPtrPos + 8 * cluster, 16);
    const start = Number(pointers.readBigUInt64LE(0));
    const end = cluster + 1 < this.header.clusterCount ? Number(pointers.readBigUInt64LE(8)) : this.header.checksumPos;
    if (start < HEADER_BYTES || start >= end || end > this.size) {
      throw new PermanentError(`broken ZIM: cluster ${cluster} has bad bounds (${start} to ${end} in a file of ${this.size} bytes)`);
    }
    return { start, end };
  }

  private async clusterInfo(cluster: number): Promise<{ start: number; end: number; compression: number; width: 4 | 8 }> {
    const bounds = await this.clusterBounds(cluster);
    const info = (await readAt(this.file, bounds.start, 1))[0]!;
    // Bit 4 set: "extended" cluster with 8-byte offsets (ZIM 6).
    return { ...bounds, compression: info & 0x0f, width: info & 0x10 ? 8 : 4 };
  }

  /**
   * Where a blob lies: in the file for an uncompressed cluster, in the decompressed cluster
   * otherwise. The offsets at the cluster's head say; each is checked before it is used.
   */
  private async blobBounds(entry: DirEntry): Promise<{ from: number; to: number; read: (from: number, to: number) => Promise<Buffer> }> {
    const { cluster, blob } = entry;
    if (cluster === undefined || blob === undefined) throw new PermanentError(`ZIM entry ${entry.index} holds no data`);
    const info = await this.clusterInfo(cluster);
    const what = `blob ${blob} of cluster ${cluster}`;
    let read: (from: number, to: number) => Promise<Buffer>;
    let limit: number;
    if (info.compression === Compression.none || info.compression === 0) {
      const data = info.start + 1;
      limit = info.end - data;
      read = async (from, to) => {
        if (to > limit) throw new PermanentError(`broken ZIM: ${what} runs past the cluster's end`);
        const bytes = await readAt(this.file, data + from, to - from);
        if (bytes.length < to - from) throw new PermanentError(`broken ZIM: ${what} is cut short`);
        return bytes;
      };
    } else {
      const stream = this.streamFor(cluster, info);
      limit = Number.MAX_SAFE_INTEGER;
      read = (from, to) => stream.bytes(from, to, what);
    }
    const offset = async (at: number): Promise<number> => {
      const raw = await read(at, at + info.width);
      const value = info.width === 8 ? raw.readBigUInt64LE(0) : BigInt(raw.readUInt32LE(0));
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new PermanentError(`broken ZIM: cluster ${cluster} has an offset of ${value}`);
      return Number(value);
    };
    const first = await offset(0);
    if (first < info.width || first % info.width !== 0) throw new PermanentError(`broken ZIM: cluster ${cluster} starts with a bad offset (${first})`);
    const blobs = first / info.width - 1;
    if (blob >= blobs) throw new PermanentError(`broken ZIM: ${what} does not exist (the cluster has ${blobs})`);
    const from = await offset(blob * info.width);
    const to = await offset((blob + 1) * info.width);
    if (from < first || from > to || to > limit) throw new PermanentError(`broken ZIM: ${what} has bad bounds (${from} to ${to})`);
    return { from, to, read };
  }

  private streamFor(cluster: number, info: { start: number; end: number; compression: number }): ClusterStream {
    if (this.current?.cluster === cluster) return this.current;
    this.current?.close();
    this.current = new ClusterStream(cluster, info.compression, this.file, { start: info.start + 1, end: info.end }, this.budget);
    return this.current;
  }

  /** Size of an entry's data. */
  async blobSize(entry: DirEntry): Promise<number> {
    const { from, to } = await this.blobBounds(entry);
    return to - from;
  }

  /** An entry's data, or undefined (and nothing decompressed past its offsets) when it is larger than `maxBytes`. */
  async readBlob(entry: DirEntry, maxBytes: number): Promise<Buffer | undefined> {
    const { from, to, read } = await this.blobBounds(entry);
    if (to - from > maxBytes) return undefined;
    return Buffer.from(await read(from, to));
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
  const raw = await readAt(file, position, MAX_MIME_LIST_BYTES);
  const types: string[] = [];
  let at = 0;
  while (at < raw.length && raw[at] !== 0) {
    const end = raw.indexOf(0, at);
    if (end < 0) throw new PermanentError(`broken ZIM: the MIME type list has no end within ${MAX_MIME_LIST_BYTES / 1024} KiB`);
    types.push(raw.toString('utf8', at, end));
    at = end + 1;
  }
  if (at >= raw.length) throw new PermanentError('broken ZIM: the MIME type list has no end');
  return types;
}

/**
 * Writes small but complete ZIM files for tests (format 6.1, as libzim 7+ writes it: content in
 * `C`, metadata in `M`, the main page as `W/mainPage`, title listings in `X`), with clusters
 * stored as they are or compressed by the real `zstd` and `xz` programs (zstd and xz-utils,
 * installed by scripts/test-deps.sh). Tests also build broken files with it: any cluster's bytes
 * can be given as they should appear, and `layout` says where everything went so a test can
 * patch it afterwards.
 *
 * Layout, as libzim writes it: header (80 bytes), MIME type list, clusters, title pointer list,
 * directory entries, URL pointer list, cluster pointer list, MD5 checksum.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';

export type ClusterCompression = 'none' | 'zstd' | 'xz';

export interface ZimItem {
  namespace: string;
  path: string;
  /** Empty (the default) means "same as the path". */
  title?: string;
  mime: string;
  content: Buffer | string;
  /** Index into `clusters` (default 0). */
  cluster?: number;
}

export interface ZimRedirect {
  namespace: string;
  path: string;
  title?: string;
  to: { namespace: string; path: string };
}

export interface ClusterSpec {
  compression: ClusterCompression;
  /** 8-byte blob offsets ("extended" cluster). */
  extended?: boolean;
  /** Bytes written for this cluster instead of its items (info byte included): for attack tests. */
  raw?: Buffer;
  /**
   * Write it as a zstd bomb: blob `blob` becomes `bytes` bytes of one repeated byte, in RLE blocks
   * of `blockSize` (zstdBombCluster).
   */
  bomb?: { blob: number; bytes: number; blockSize?: number };
}

export interface ZimSpec {
  items: ZimItem[];
  redirects?: ZimRedirect[];
  clusters: ClusterSpec[];
  mainPage?: { namespace: string; path: string };
  /** Default a fixed value, so that the same spec gives the same bytes. */
  uuid?: Buffer;
}

export interface ZimLayout {
  mimeListPos: number;
  urlPtrPos: number;
  titlePtrPos: number;
  clusterPtrPos: number;
  checksumPos: number;
  clusterOffsets: number[];
  /** Directory entry offset by `namespace/path`. */
  entryOffsets: Map<string, number>;
  /** URL-list index by `namespace/path`. */
  entryIndex: Map<string, number>;
}

const MAGIC = 72173914;
const COMPRESSION_BYTE: Record<ClusterCompression, number> = { none: 1, xz: 4, zstd: 5 };

/** Whether the `zstd` and `xz` programs this writer compresses with are installed. */
export function zimCompressorsAvailable(): { ok: true } | { ok: false; missing: string[] } {
  const missing = ['zstd', 'xz'].filter((command) => {
    try {
      execFileSync(command, ['--version'], { stdio: 'ignore', timeout: 10_000 });
      return false;
    } catch {
      return true;
    }
  });
  return missing.length === 0 ? { ok: true } : { ok: false, missing };
}

function compress(data: Buffer, compression: ClusterCompression): Buffer {
  switch (compression) {
    case 'none':
      return data;
    case 'zstd':
      return execFileSync('zstd', ['-q', '-c', '-19'], { input: data, maxBuffer: 1 << 30 });
    case 'xz':
      return execFileSync('xz', ['-q', '-c', '--check=crc32', '-6'], { input: data, maxBuffer: 1 << 30 });
  }
}

const u16 = (value: number) => {
  const buffer = Buffer.alloc(2);
  buffer.writeUInt16LE(value);
  return buffer;
};
const u32 = (value: number) => {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value);
  return buffer;
};
const u64 = (value: number) => {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return buffer;
};

/** A cluster's uncompressed body: the blob offsets (one more than blobs), then the blobs. */
export function clusterBody(blobs: Buffer[], extended = false): Buffer {
  const width = extended ? 8 : 4;
  const offsets: Buffer[] = [];
  let at = (blobs.length + 1) * width;
  for (const blob of [...blobs, null]) {
    offsets.push(width === 8 ? u64(at) : u32(at));
    if (blob) at += blob.length;
  }
  return Buffer.concat([...offsets, ...blobs]);
}

export function writeZim(spec: ZimSpec): { bytes: Buffer; layout: ZimLayout } {
  const key = (namespace: string, path: string) => `${namespace}/${path}`;
  type Entry = { namespace: string; path: string; title: string } & ({ item: ZimItem } | { redirect: ZimRedirect });
  const entries: Entry[] = [
    ...spec.items.map((item) => ({ namespace: item.namespace, path: item.path, title: item.title ?? '', item })),
    ...(spec.redirects ?? []).map((redirect) => ({ namespace: redirect.namespace, path: redirect.path, title: redirect.title ?? '', redirect })),
  ];
  // The URL pointer list is sorted by namespace then path, compared as bytes.
  entries.sort((a, b) => Buffer.compare(Buffer.from(key(a.namespace, a.path)), Buffer.from(key(b.namespace, b.path))));
  const entryIndex = new Map(entries.map((entry, index) => [key(entry.namespace, entry.path), index]));

  const mimeTypes = [...new Set(spec.items.map((item) => item.mime))];
  const mimeList = Buffer.concat([...mimeTypes.map((mime) => Buffer.from(`${mime}\0`)), Buffer.from([0])]);

  // Blobs per cluster, in item order.
  const blobs: Buffer[][] = spec.clusters.map(() => []);
  const blobOf = new Map<ZimItem, { cluster: number; blob: number }>();
  for (const item of spec.items) {
    const cluster = item.cluster ?? 0;
    const list = blobs[cluster];
    if (!list) throw new Error(`item ${item.path} names cluster ${cluster}, which the spec does not have`);
    blobOf.set(item, { cluster, blob: list.length });
    list.push(Buffer.isBuffer(item.content) ? item.content : Buffer.from(item.content));
  }

  const parts: Buffer[] = [];
  let position = 80;
  const append = (buffer: Buffer) => {
    const at = position;
    parts.push(buffer);
    position += buffer.length;
    return at;
  };
  const mimeListPos = append(mimeList);
  const clusterOffsets = spec.clusters.map((cluster, index) => {
    if (cluster.raw) return append(cluster.raw);
    if (cluster.bomb) return append(zstdBombCluster(blobs[index]!, cluster.bomb));
    const info = COMPRESSION_BYTE[cluster.compression] | (cluster.extended ? 0x10 : 0);
    return append(Buffer.concat([Buffer.from([info]), compress(clusterBody(blobs[index]!, cluster.extended), cluster.compression)]));
  });

  const byTitle = entries.map((_, index) => index);
  byTitle.sort((a, b) => {
    const title = (entry: Entry) => key(entry.namespace, entry.title || entry.path);
    return Buffer.compare(Buffer.from(title(entries[a]!)), Buffer.from(title(entries[b]!)));
  });
  const titlePtrPos = append(Buffer.concat(byTitle.map((index) => u32(index))));

  const entryOffsets = new Map<string, number>();
  const offsets = entries.map((entry) => {
    const names = Buffer.from(`${entry.path}\0${entry.title}\0`);
    const common = (mime: number) => Buffer.concat([u16(mime), Buffer.from([0, entry.namespace.charCodeAt(0)]), u32(0)]);
    let dirent: Buffer;
    if ('item' in entry) {
      const { cluster, blob } = blobOf.get(entry.item)!;
      dirent = Buffer.concat([common(mimeTypes.indexOf(entry.item.mime)), u32(cluster), u32(blob), names]);
    } else {
      const target = entryIndex.get(key(entry.redirect.to.namespace, entry.redirect.to.path));
      if (target === undefined) throw new Error(`redirect ${entry.path} points at a missing entry`);
      dirent = Buffer.concat([common(0xffff), u32(target), names]);
    }
    const at = append(dirent);
    entryOffsets.set(key(entry.namespace, entry.path), at);
    return at;
  });
  const urlPtrPos = append(Buffer.concat(offsets.map(u64)));
  const clusterPtrPos = append(Buffer.concat(clusterOffsets.map(u64)));
  const checksumPos = position;

  const header = Buffer.alloc(80);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt16LE(6, 4);
  header.writeUInt16LE(1, 6);
  (spec.uuid ?? Buffer.from('0123456789abcdef0123456789abcdef', 'hex')).copy(header, 8);
  header.writeUInt32LE(entries.length, 24);
  header.writeUInt32LE(spec.clusters.length, 28);
  header.writeBigUInt64LE(BigInt(urlPtrPos), 32);
  header.writeBigUInt64LE(BigInt(titlePtrPos), 40);
  header.writeBigUInt64LE(BigInt(clusterPtrPos), 48);
  header.writeBigUInt64LE(BigInt(mimeListPos), 56);
  const main = spec.mainPage ? entryIndex.get(key(spec.mainPage.namespace, spec.mainPage.path)) : undefined;
  header.writeUInt32LE(main ?? 0xffffffff, 64);
  header.writeUInt32LE(0xffffffff, 68);
  header.writeBigUInt64LE(BigInt(checksumPos), 72);

  const body = Buffer.concat([header, ...parts]);
  const bytes = Buffer.concat([body, createHash('md5').update(body).digest()]);
  return {
    bytes,
    layout: { mimeListPos, urlPtrPos, titlePtrPos, clusterPtrPos, checksumPos, clusterOffsets, entryOffsets, entryIndex },
  };
}

/** A real 48×48 PNG, for the illustration Kiwix shows beside a book. */
export function png48(): Buffer {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (data: Buffer) => {
    let c = 0xffffffff;
    for (const byte of data) c = table[(c ^ byte) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(48, 0);
  header.writeUInt32BE(48, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.alloc(48 * (1 + 48 * 3), 0x80);
  for (let y = 0; y < 48; y++) rows[y * (1 + 48 * 3)] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export interface WikiOptions {
  title: string;
  /** Pages besides the welcome page. */
  pages: number;
  /** How the text cluster (pages and metadata) is stored; images and listings stay uncompressed, as libzim does. */
  compression?: ClusterCompression;
  language?: string;
  date?: string;
}

/**
 * A small wiki as Kiwix publishes one: a welcome page linking `pages` others, text metadata
 * (Title, Language, Creator, Publisher, Date, Description, Name) in the compressed cluster, the
 * illustration, the main page redirect and the title listings in an uncompressed one.
 */
export function wikiZimSpec(options: WikiOptions): ZimSpec {
  const pages = Array.from({ length: options.pages }, (_, i) => i);
  const text = (path: string, content: string, title = ''): ZimItem => ({ namespace: 'C', path, title, mime: 'text/html', content, cluster: 0 });
  const meta = (path: string, content: string): ZimItem => ({ namespace: 'M', path, mime: 'text/plain', content, cluster: 0 });
  const articles = ['index.html', ...pages.map((i) => `page${i}.html`)];
  const items: ZimItem[] = [
    text('index.html', `<html><head><title>${options.title}</title></head><body>${pages.map((i) => `<a href="page${i}.html">Page ${i}</a>`).join(' ')}</body></html>`, options.title),
    ...pages.map((i) => text(`page${i}.html`, `<html><head><title>Page ${i}</title></head><body><p>Text of page ${i}</p></body></html>`, `Page ${i}`)),
    meta('Title', options.title),
    meta('Language', options.language ?? 'eng'),
    meta('Creator', 'Test Creator'),
    meta('Publisher', 'Test Publisher'),
    meta('Date', options.date ?? '2024-06-01'),
    meta('Description', 'A small wiki for tests'),
    meta('Name', 'test_wiki'),
    meta('Counter', `text/html=${articles.length}`),
    { namespace: 'M', path: 'Illustration_48x48@1', mime: 'image/png', content: png48(), cluster: 1 },
    // v0 lists every entry by title, v1 the front articles: 4-byte URL-list indexes each.
    { namespace: 'X', path: 'listing/titleOrdered/v0', mime: 'application/octet-stream+zimlisting', content: Buffer.alloc(0), cluster: 1 },
    { namespace: 'X', path: 'listing/titleOrdered/v1', mime: 'application/octet-stream+zimlisting', content: Buffer.alloc(4 * articles.length), cluster: 1 },
  ];
  return {
    items,
    redirects: [{ namespace: 'W', path: 'mainPage', to: { namespace: 'C', path: 'index.html' } }],
    clusters: [{ compression: options.compression ?? 'zstd' }, { compression: 'none' }],
    mainPage: { namespace: 'W', path: 'mainPage' },
  };
}

/** The bytes of a small wiki ZIM; see wikiZimSpec. */
export function wikiZim(options: WikiOptions): Buffer {
  return writeZim(wikiZimSpec(options)).bytes;
}

/* ------------------------------------------------------------------ hostile zstd by hand */

const ZSTD_MAX_BLOCK = 128 * 1024;

/**
 * A piece of a hand-made zstd frame: bytes stored as they are, or one byte repeated `size` times
 * in RLE blocks of `blockSize` (default, and at most, 128 KiB).
 */
export type ZstdPiece = { raw: Buffer } | { repeat: number; size: number; blockSize?: number };

/**
 * A zstd frame made of raw and RLE blocks (each at most 128 KiB): valid zstd that any decoder
 * reads, whose RLE blocks cost 4 bytes for 128 KiB of output. It declares no content size and a
 * window of 2^`windowLog` bytes (default 8 MiB, what libzim writes), as a decompression bomb would.
 */
export function zstdFrame(pieces: ZstdPiece[], windowLog = 23): Buffer {
  // Frame header descriptor 0: no single segment, no checksum, no dictionary, no content size.
  const out: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (windowLog - 10) << 3])];
  const blocks: { type: number; size: number; body: Buffer }[] = [];
  for (const piece of pieces) {
    if ('raw' in piece) {
      for (let at = 0; at < piece.raw.length; at += ZSTD_MAX_BLOCK) {
        const body = piece.raw.subarray(at, at + ZSTD_MAX_BLOCK);
        blocks.push({ type: 0, size: body.length, body });
      }
    } else {
      const blockSize = piece.blockSize ?? ZSTD_MAX_BLOCK;
      const body = Buffer.from([piece.repeat]);
      for (let left = piece.size; left > 0; left -= blockSize) blocks.push({ type: 1, size: Math.min(left, blockSize), body });
    }
  }
  blocks.forEach((block, index) => {
    const header = Buffer.alloc(3);
    header.writeUIntLE((index === blocks.length - 1 ? 1 : 0) | (block.type << 1) | (block.size << 3), 0, 3);
    out.push(header, block.body);
  });
  return Buffer.concat(out);
}

/**
 * The bytes of a zstd cluster (info byte included) whose blob `bomb.blob` is `bomb.bytes` of one
 * repeated byte: a few KiB in the file, any size once decompressed (or, in blocks of one byte, a
 * few bytes that cost a decoder a block each). The offsets table is right, so a reader that
 * trusts it walks into the bomb to reach the blobs after it.
 */
export function zstdBombCluster(blobs: Buffer[], bomb: { blob: number; bytes: number; blockSize?: number }): Buffer {
  const width = 4;
  const sizes = blobs.map((blob, index) => (index === bomb.blob ? bomb.bytes : blob.length));
  const offsets = Buffer.alloc((blobs.length + 1) * width);
  let at = offsets.length;
  sizes.forEach((size, index) => {
    offsets.writeUInt32LE(at, index * width);
    at += size;
  });
  offsets.writeUInt32LE(at, blobs.length * width);
  const pieces: ZstdPiece[] = [
    { raw: Buffer.concat([offsets, ...blobs.slice(0, bomb.blob)]) },
    { repeat: 0x61, size: bomb.bytes, ...(bomb.blockSize ? { blockSize: bomb.blockSize } : {}) },
  ];
  if (bomb.blob + 1 < blobs.length) pieces.push({ raw: Buffer.concat(blobs.slice(bomb.blob + 1)) });
  return Buffer.concat([Buffer.from([COMPRESSION_BYTE.zstd]), zstdFrame(pieces)]);
}

/**
 * The one place CIDs are computed: a file or folder becomes a UnixFS DAG exactly as Kubo's
 * `ipfs add -r` builds it, and every block of it is handed to a sink. Each IPFS backend is only
 * a sink (blocks in DATA_DIR, or a CAR stream to Kubo), so all backends give the same CIDs by
 * construction (README "Outputs on IPFS").
 *
 * Kubo's choices kept here: same chunking and layout (import-profile.ts), names in Go's byte
 * order, symlinks stored as UnixFS symlink nodes and never followed, empty folders kept, hidden
 * entries left out unless asked for.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import * as dagPb from '@ipld/dag-pb';
import { UnixFS } from 'ipfs-unixfs';
import { importer } from 'ipfs-unixfs-importer';
import type { BufferImporter, BufferImporterResult, ImportCandidate, ImportResult, ImporterOptions, WritableStorage } from 'ipfs-unixfs-importer';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { create as createDigest } from 'multiformats/hashes/digest';
import { sha256 } from 'multiformats/hashes/sha2';
import type { AddedEntry, AddResult } from '../../ports/ipfs-store.js';
import { describeFileType, openRegularFile } from '../../ports/untrusted-file.js';
import { ChunkMemory, fileLeafBlock, ownsItsMemory, readChunks } from './file-chunks.js';
import { sha256Digest } from './hash-pool.js';
import { toImporterOptions } from './import-profile.js';
import type { ImportSettings } from './import-profile.js';

/** Where the blocks of an add go. A block may be offered more than once (two identical files). */
export interface BlockSink {
  put(cid: CID, bytes: Uint8Array): Promise<void>;
  /**
   * True when `put` keeps no reference to `bytes` once it has resolved (it wrote them, or found
   * them stored): the add then reads later chunks into the same memory (file-chunks.ts).
   */
  readonly releasesBytes?: boolean;
}

export interface ImportTreeOptions {
  settings: ImportSettings;
  /**
   * Include entries whose name starts with a dot inside added folders, like `ipfs add -r --hidden`.
   * Kubo leaves them out by default ("--hidden / -H includes hidden files (default: false)",
   * Kubo v0.40 changelog; `ipfs add --help`), so the default keeps CIDs equal to plain `ipfs add -r`.
   * The path given itself is always added, dot or not, as Kubo does.
   */
  includeHidden?: boolean;
  signal?: AbortSignal;
  /** Told the CIDs of the blocks stored, in batches (AddOptions in src/ports/ipfs-store.ts). */
  onBlocks?: (cids: string[]) => Promise<void>;
}

/** A socket, FIFO or device node: it has no content to add, and reading a FIFO could block forever. */
export class SpecialFileError extends Error {
  constructor(
    readonly path: string,
    readonly fileType: string,
  ) {
    super(`cannot add ${path}: it is a ${fileType}; only regular files, folders and symlinks can be added`);
    this.name = 'SpecialFileError';
  }
}

/** A name the UnixFS importer cannot represent faithfully (not UTF-8, or a folder ending in a backslash). */
export class UnsupportedNameError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`cannot add ${path}: ${reason}`);
    this.name = 'UnsupportedNameError';
  }
}

// Path prefix handed to the importer; never visible in results (names come from the components below it).
const ROOT = 'root';

// Bound on memory: each of FILES_IN_FLIGHT files holds at most LEAVES_IN_FLIGHT chunks being
// hashed and stored and READS_AHEAD (file-chunks.ts) being read: 48 chunks, 12 MiB with 256 KiB
// chunks, 48 MiB with 1 MiB ones. None of these changes a CID.
const FILES_IN_FLIGHT = 4;
const LEAVES_IN_FLIGHT = 8;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Most CIDs per `onBlocks` call: what the caller indexes at once, and all this side holds. */
const BLOCKS_PER_REPORT = 1000;

/** Gathers the CIDs of stored blocks and hands them on in batches, a repeated block once per batch. */
class BlockReport {
  private batch = new Set<string>();

  constructor(private readonly onBlocks: (cids: string[]) => Promise<void>) {}

  async add(cid: CID): Promise<void> {
    this.batch.add(cid.toString());
    if (this.batch.size >= BLOCKS_PER_REPORT) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.batch.size === 0) return;
    const cids = [...this.batch];
    this.batch = new Set();
    await this.onBlocks(cids);
  }
}

/** Adds the file or folder at `path`: every block goes to `sink`, and the root and top-level entries come back. */
export async function importTree(path: string, sink: BlockSink, options: ImportTreeOptions): Promise<AddResult> {
  const { settings, signal } = options;
  signal?.throwIfAborted();
  const absolute = resolve(path);
  const stats = await lstat(absolute);
  const memory = new ChunkMemory(settings.chunkSize, sink.releasesBytes === true);
  const importerOptions: ImporterOptions = {
    ...toImporterOptions(settings),
    fileImportConcurrency: FILES_IN_FLIGHT,
    // The importer runs leaves in batches, reading the next batch only once the last one is
    // stored; leanLeafImporter keeps its own window of leaves in flight instead, hands them over
    // in order, and the importer takes them one at a time.
    blockWriteConcurrency: 1,
    bufferImporter: leanLeafImporter(settings, memory),
  };
  const report = options.onBlocks ? new BlockReport(options.onBlocks) : undefined;
  const writer: WritableStorage = {
    put: async (cid, bytes) => {
      await sink.put(cid, await toBytes(bytes));
      await report?.add(cid);
      return cid;
    },
  };

  let root: ImportResult | undefined;
  const entries: AddedEntry[] = [];
  // The importer links an empty folder into its parent but never yields it (only folders it
  // built from their children come back), so the empty ones at the top are noted on the walk.
  const emptyTopFolders: string[] = [];
  const source = candidates(absolute, stats, memory, options.includeHidden ?? false, signal, emptyTopFolders);
  for await (const result of importer(source, writer, importerOptions)) {
    signal?.throwIfAborted();
    const components = (result.path ?? '').split('/');
    if (components.length === 1) root = result;
    else if (components.length === 2 && components[1] !== undefined) {
      entries.push(toEntry(components[1], result));
    }
  }
  if (root === undefined) throw new Error(`adding ${absolute} produced no root CID`);
  if (emptyTopFolders.length > 0) {
    const cid = await emptyFolderCid(settings);
    for (const name of emptyTopFolders) if (!entries.some((entry) => entry.name === name)) entries.push({ name, cid, size: 0, kind: 'directory' });
  }
  await report?.flush();
  return { cid: root.cid.toString(), entries: entries.sort((a, b) => compareNames(a.name, b.name)) };
}

/**
 * Import candidates in the order Kubo walks a tree: depth first, each folder's names sorted
 * by their bytes (Go's os.ReadDir). Files are read only when the importer gets to them.
 */
async function* candidates(
  absolute: string,
  stats: Stats,
  memory: ChunkMemory,
  includeHidden: boolean,
  signal: AbortSignal | undefined,
  emptyTopFolders: string[],
): AsyncGenerator<ImportCandidate> {
  if (stats.isDirectory()) yield* walkFolder(absolute, ROOT, memory, includeHidden, signal, emptyTopFolders);
  else yield await leafCandidate(absolute, ROOT, stats, memory, signal);
}

async function* walkFolder(
  folder: string,
  importPath: string,
  memory: ChunkMemory,
  includeHidden: boolean,
  signal: AbortSignal | undefined,
  emptyTopFolders: string[],
): AsyncGenerator<ImportCandidate> {
  signal?.throwIfAborted();
  // One folder's names at a time: sorting needs them all, as it does for Kubo.
  const names = (await readdir(folder, { encoding: 'buffer' }))
    .filter((name) => includeHidden || name[0] !== 0x2e /* '.' */)
    .sort(Buffer.compare)
    .map((name) => decodeName(join(folder, name.toString()), name));
  if (names.length === 0) {
    // An empty folder (or one holding only hidden entries) is kept, as Kubo's --empty-dirs default does.
    const components = importPath.split('/');
    if (components.length === 2) emptyTopFolders.push(components[1]!);
    yield { path: importPath };
    return;
  }
  for (const name of names) {
    signal?.throwIfAborted();
    const child = join(folder, name);
    const childPath = `${importPath}/${name}`;
    const stats = await lstat(child);
    if (stats.isDirectory()) {
      // The importer splits paths on "/" unless escaped with "\", so "a\" + "/" would merge two names.
      if (name.endsWith('\\')) throw new UnsupportedNameError(child, 'a folder name may not end with a backslash');
      yield* walkFolder(child, childPath, memory, includeHidden, signal, emptyTopFolders);
    } else {
      yield await leafCandidate(child, childPath, stats, memory, signal);
    }
  }
}

async function leafCandidate(path: string, importPath: string, stats: Stats, memory: ChunkMemory, signal: AbortSignal | undefined): Promise<ImportCandidate> {
  // No mtime or mode, as Kubo by default: leanLeafImporter relies on it (a single leaf's block is never read again).
  if (stats.isFile()) return { path: importPath, content: readLazily(path, memory, signal) };
  if (stats.isSymbolicLink()) {
    // Stored as the link itself, never followed (Kubo's default without --dereference-symlinks).
    const target = await readlink(path, { encoding: 'buffer' });
    return { path: importPath, link: decodeName(path, target) };
  }
  throw new SpecialFileError(path, describeFileType(stats));
}

/**
 * Writes each chunk as a leaf block, byte for byte as the importer's own leaf writer does, but
 * - without keeping the chunk in the leaf's UnixFS metadata: the importer holds the leaves of a
 *   file node until all of them are written, which with dag-pb leaves kept 174 × 256 KiB (44 MiB)
 *   of file data alive per file being imported. The parent node needs only each leaf's length;
 * - building a dag-pb leaf around the chunk instead of encoding it twice (file-chunks.ts);
 * - hashing on worker threads (hash-pool.ts), with up to LEAVES_IN_FLIGHT leaves of the file
 *   being hashed and stored at once while the next chunks are read. They are handed to the
 *   importer in file order, so the DAG is the same as one leaf at a time would give;
 * - reading later chunks into the memory of stored leaves (ChunkMemory). The importer keeps the
 *   block of a file's first leaf (a file of one chunk without mtime or mode never reads it
 *   again, but that one is left alone anyway) and drops the others' as they come.
 */
function leanLeafImporter(settings: ImportSettings, memory: ChunkMemory): BufferImporter {
  return async function* importLeaves(file, blockstore) {
    const chunks = file.content[Symbol.asyncIterator]();
    const leaves: Promise<BufferImporterResult>[] = [];
    let more = true;
    let index = 0;
    try {
      for (;;) {
        while (more && leaves.length < LEAVES_IN_FLIGHT) {
          const next = await chunks.next();
          if (next.done === true) more = false;
          else leaves.push(handled(storeLeaf(next.value, settings, blockstore, index++ > 0 ? memory : undefined)));
        }
        const leaf = leaves.shift();
        if (leaf === undefined) return;
        yield () => leaf;
      }
    } finally {
      // Stopped early (a failed leaf, a cancelled add): close the file, and let the leaves
      // still being written finish before the add reports its failure.
      await chunks.return?.();
      await Promise.allSettled(leaves);
    }
  };
}

/** Stores one leaf; with `giveBack`, its memory goes back for a later chunk once it is stored. */
async function storeLeaf(chunk: Uint8Array, settings: ImportSettings, blockstore: WritableStorage, giveBack: ChunkMemory | undefined): Promise<BufferImporterResult> {
  const length = chunk.byteLength;
  const own = ownsItsMemory(chunk);
  if (settings.rawLeaves) {
    // The chunk may be lent to a hashing thread: from here on only `block` is read.
    const { digest, block } = await sha256Digest(chunk, own);
    // Raw blocks cannot be addressed by CIDv0, so raw leaves are CIDv1 even under a v0 root, as in Kubo.
    const cid = CID.createV1(raw.code, createDigest(sha256.code, digest));
    await blockstore.put(cid, block);
    if (own) giveBack?.give(block);
    return { cid, size: BigInt(length), block };
  }
  const leaf = length === 0 ? dagPb.encode({ Data: new UnixFS({ type: 'file', data: chunk }).marshal(), Links: [] }) : fileLeafBlock(chunk);
  const { digest, block } = await sha256Digest(leaf, length > 0);
  const multihash = createDigest(sha256.code, digest);
  const cid = settings.cidVersion === 0 ? CID.createV0(multihash) : CID.createV1(dagPb.code, multihash);
  await blockstore.put(cid, block);
  if (own) giveBack?.give(block);
  const unixfs = new UnixFS({ type: 'file', blockSizes: [BigInt(length)] });
  return { cid, size: BigInt(block.byteLength), block, unixfs };
}

/** The same promise, marked as handled: it is awaited later, in order, and may fail before that. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/**
 * Opens the file only when the importer starts reading it, and closes it however the read ends.
 * It was a regular file when the folder was walked, but whoever wrote it may have swapped it
 * since: opened as README "Security model" says, a FIFO or a symlink put there now
 * ends the add with NotRegularFileError instead of hanging or being followed.
 */
async function* readLazily(path: string, memory: ChunkMemory, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted();
  const { handle, stats } = await openRegularFile(path);
  try {
    yield* readChunks(handle, stats.size, memory, signal);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The importer hands over whole blocks as one Uint8Array; the blockstore type also allows streams. */
async function toBytes(bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  if (bytes instanceof Uint8Array) return bytes;
  const parts: Uint8Array[] = [];
  for await (const part of bytes) parts.push(part);
  return Buffer.concat(parts);
}

function toEntry(name: string, result: ImportResult): AddedEntry {
  const cid = result.cid.toString();
  const unixfs = result.unixfs;
  // A raw leaf has no UnixFS wrapper: the block is the file's bytes.
  if (unixfs === undefined) return { name, cid, size: Number(result.size), kind: 'file' };
  switch (unixfs.type) {
    case 'directory':
    case 'hamt-sharded-directory':
      return { name, cid, size: 0, kind: 'directory' };
    case 'symlink':
      return { name, cid, size: 0, kind: 'symlink' };
    default:
      return { name, cid, size: Number(unixfs.fileSize()), kind: 'file' };
  }
}

/** The CID of an empty UnixFS folder without mtime or mode, as the importer writes it under these settings. */
async function emptyFolderCid(settings: ImportSettings): Promise<string> {
  const block = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [] }));
  const digest = await sha256.digest(block);
  return (settings.cidVersion === 0 ? CID.createV0(digest) : CID.createV1(dagPb.code, digest)).toString();
}

function decodeName(path: string, bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new UnsupportedNameError(path, 'the name is not valid UTF-8');
  }
}

/** Byte order of the UTF-8 names, as Go compares strings. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

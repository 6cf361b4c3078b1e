/**
 * CAR responses of the gateway (Trustless Gateway spec, "CAR Responses"): the blocks a client
 * needs to verify a content path, walked depth first (`order=dfs`) and written as a CARv1 while
 * they are read, never gathered first. The client's reading paces the walk: a block is read only
 * once the one before has been taken by the socket.
 *
 * What follows the path's own blocks depends on `dag-scope`:
 * - `block`: the block the path ends at;
 * - `entity`: what it takes to read that entity: a UnixFS file's whole DAG (or, with
 *   `entity-bytes`, the nodes whose bytes overlap the range), a folder's block (and the shards of
 *   a HAMT-sharded folder, but none of its entries); the block alone for anything else;
 * - `all`: the whole DAG below it, through dag-pb, dag-cbor and dag-json links.
 * Identity CIDs carry their bytes in the CID and are never sent as blocks (the spec forbids it).
 */
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CarWriter } from '@ipld/car';
import * as dagCbor from '@ipld/dag-cbor';
import * as dagJson from '@ipld/dag-json';
import * as dagPb from '@ipld/dag-pb';
import { UnixFS } from 'ipfs-unixfs';
import { CID } from 'multiformats/cid';
import { identity } from 'multiformats/hashes/identity';
import type { CarRequest, EntityBytes } from './ipfs-gateway-request.js';

export interface Block {
  cid: CID;
  bytes: Uint8Array;
}

/** The bytes of a block; rejects when it is not stored. */
export type BlockGetter = (cid: CID) => Promise<Uint8Array>;

type Visit =
  | { cid: CID; mode: 'all' | 'entity' | 'block' | 'shards' }
  /** A UnixFS file node whose data starts at `offset` in the file, walked only where it meets [from, to]. */
  | { cid: CID; mode: 'range'; offset: number; from: number; to: number };

/** How deep a DAG-CBOR or DAG-JSON value is searched for links. */
const maxValueDepth = 64;

/**
 * The blocks of `pathBlocks` (those read to resolve the path, in that order), then those of the
 * DAG at `terminal` the request's scope selects, depth first. Without `dups` each block is sent once.
 */
export async function* carBlocks(pathBlocks: readonly Block[], terminal: CID, request: CarRequest, getBlock: BlockGetter): AsyncGenerator<Block> {
  const seen = new Set<string>();
  for (const block of pathBlocks) {
    const key = block.cid.toString();
    if (isIdentity(block.cid) || (!request.dups && seen.has(key))) continue;
    seen.add(key);
    yield block;
  }
  const stack: Visit[] = [{ cid: terminal, mode: request.scope }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    if (isIdentity(visit.cid)) continue;
    const key = visit.cid.toString();
    const repeated = seen.has(key);
    // A block met again has had its subtree sent already, except where a byte range chose only
    // part of it (identical chunks at two offsets of one file).
    if (repeated && !request.dups && visit.mode !== 'range') continue;
    const bytes = await getBlock(visit.cid);
    if (!repeated || request.dups) yield { cid: visit.cid, bytes };
    seen.add(key);
    const children = childrenOf(visit, bytes, request.entityBytes);
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
}

function childrenOf(visit: Visit, bytes: Uint8Array, entityBytes: EntityBytes | null): Visit[] {
  if (visit.mode === 'block') return [];
  switch (visit.cid.code) {
    case dagPb.code:
      return dagPbChildren(visit, dagPb.decode(bytes), entityBytes);
    case dagCbor.code:
      return visit.mode === 'all' ? linksIn(dagCbor.decode(bytes)).map((cid) => ({ cid, mode: 'all' })) : [];
    case dagJson.code:
      return visit.mode === 'all' ? linksIn(dagJson.decode(bytes)).map((cid) => ({ cid, mode: 'all' })) : [];
    default:
      // raw, json and codecs without links.
      return [];
  }
}

function dagPbChildren(visit: Visit, node: dagPb.PBNode, entityBytes: EntityBytes | null): Visit[] {
  if (visit.mode === 'all') return node.Links.map((link) => ({ cid: link.Hash, mode: 'all' }));
  const unixfs = unixfsOf(node);
  // For dag-pb that is not UnixFS, the entity is the block.
  if (unixfs === null) return [];
  if (visit.mode === 'range') return rangeChildren(node, unixfs, visit.offset, visit.from, visit.to);
  if (visit.mode === 'shards' || unixfs.type === 'hamt-sharded-directory') {
    // Links named by the bucket alone (as many hex digits as the fanout needs) are sub-shards; longer names are entries.
    const width = (Number(unixfs.fanout ?? 256n) - 1).toString(16).length;
    return node.Links.filter((link) => (link.Name ?? '').length === width).map((link) => ({ cid: link.Hash, mode: 'shards' }));
  }
  if (unixfs.type !== 'file' && unixfs.type !== 'raw') return [];
  if (entityBytes === null) return node.Links.map((link) => ({ cid: link.Hash, mode: 'all' }));
  const size = Number(unixfs.fileSize());
  const from = entityBytes.from < 0 ? Math.max(0, size + entityBytes.from) : entityBytes.from;
  const to = Math.min(size - 1, entityBytes.to === '*' ? size - 1 : entityBytes.to < 0 ? size + entityBytes.to : entityBytes.to);
  // A range that is empty or outside the file: the file's root block alone, so the client can see why.
  if (from > to || from >= size) return [];
  return rangeChildren(node, unixfs, 0, from, to);
}

function rangeChildren(node: dagPb.PBNode, unixfs: UnixFS, offset: number, from: number, to: number): Visit[] {
  const children: Visit[] = [];
  let position = offset + (unixfs.data?.byteLength ?? 0);
  node.Links.forEach((link, index) => {
    const size = Number(unixfs.blockSizes[index] ?? 0n);
    if (position <= to && position + size - 1 >= from) children.push({ cid: link.Hash, mode: 'range', offset: position, from, to });
    position += size;
  });
  return children;
}

function unixfsOf(node: dagPb.PBNode): UnixFS | null {
  if (node.Data === undefined) return null;
  try {
    return UnixFS.unmarshal(node.Data);
  } catch {
    return null;
  }
}

/** The links in a decoded DAG-CBOR or DAG-JSON value, in the order its fields are met. */
function linksIn(value: unknown, depth = 0, found: CID[] = []): CID[] {
  if (depth > maxValueDepth || value === null || typeof value !== 'object') return found;
  const cid = CID.asCID(value);
  if (cid) {
    found.push(cid);
    return found;
  }
  if (value instanceof Uint8Array) return found;
  for (const item of Array.isArray(value) ? value : Object.values(value)) linksIn(item, depth + 1, found);
  return found;
}

export function isIdentity(cid: CID): boolean {
  return cid.multihash.code === identity.code;
}

/**
 * Writes a CARv1 with `root` as its one root and `blocks` as its data to `destination`, as the
 * blocks come. Resolves when all is written; rejects when a block cannot be read (the response is
 * then cut short: clients must check a CAR is complete, as the spec says) or the client leaves.
 */
export async function writeCar(destination: Writable, root: CID, blocks: AsyncIterable<Block>): Promise<void> {
  const { writer, out } = CarWriter.create([root]);
  const stop = new AbortController();
  // One chunk read ahead at most: the walk waits for the socket instead of filling memory.
  const source = Readable.from(out, { highWaterMark: 1 });
  const produce = (async () => {
    for await (const block of blocks) await untilStopped(writer.put(block), stop.signal);
    await untilStopped(writer.close(), stop.signal);
  })();
  produce.catch((error: unknown) => source.destroy(error instanceof Error ? error : new Error(String(error))));
  try {
    await pipeline(source, destination);
  } finally {
    stop.abort();
  }
  await produce.catch(() => undefined);
}

/** The promise, or a rejection once `signal` aborts: a put waiting for a reader that left never settles. */
function untilStopped<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('the CAR stream stopped'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('the CAR stream stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * Gets a needed task's outputs onto this worker by CID (README "Pipelines across machines"):
 * from the Kubo node the deployment publishes to, block by block, when the outputs were published
 * there and it holds their root; otherwise from the app's own gateway as one CAR, which is kept
 * in a scratch block store while it arrives. Either way every block is checked against its CID, the folder is written from
 * the root down (so a missing block is noticed), within OUTPUT_MAX_BYTES and OUTPUT_MAX_FILES, and
 * it appears at its place only once complete.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FsBlockstore } from 'blockstore-fs';
import type { ReadableStorage } from 'ipfs-unixfs-exporter';
import { CID } from 'multiformats/cid';
import type { IpfsBlockReader } from '../../ports/ipfs-store.js';
import { DagFetchError, type FetchLimits, type FetchOptions, type OutputFetcher } from '../../ports/output-fetcher.js';
import { fetchCarInto } from './gateway-car-fetch.js';
import { checkBlock } from './verify-block.js';
import { writeUnixfsFolder } from './write-unixfs-folder.js';

export interface VerifiedOutputFetcherOptions {
  /** The IPFS node outputs are published to (Kubo, IPFS_API_URL), and how errors name it. */
  node?: { blocks: IpfsBlockReader; name: string } | undefined;
  /** The app's address (PUBLIC_URL): its gateway at `/ipfs/` serves every output under a live pin. */
  appUrl?: string | undefined;
  /** A service token of the app (WORKER_TOKEN), sent to the app's gateway only. */
  token?: string | undefined;
  fetch?: typeof fetch;
  /** Longest wait for the next bytes from the gateway (default 60 s). */
  idleMs?: number;
}

const IDENTITY = 0x00;

export class VerifiedOutputFetcher implements OutputFetcher {
  constructor(private readonly options: VerifiedOutputFetcherOptions) {}

  async fetch(cid: string, dir: string, options: FetchOptions): Promise<void> {
    let root: CID;
    try {
      root = CID.parse(cid);
    } catch {
      throw new DagFetchError(`${JSON.stringify(cid.slice(0, 100))} is not a CID`);
    }
    const tree = join(options.scratchDir, 'tree');
    await rm(options.scratchDir, { recursive: true, force: true });
    await mkdir(options.scratchDir, { recursive: true });
    try {
      const node = this.options.node;
      // Published outputs come from the node; those it lacks (a repository that was private when
      // they were added) from the app, which serves what it kept as well as what the node holds.
      const onNode = options.published && node !== undefined && (await node.blocks.getBlock(root.toString(), { signal: options.signal })) !== null;
      if (onNode) {
        await this.write(root, nodeStorage(node, options.signal), tree, options);
      } else if (this.options.appUrl) {
        await this.fromGateway(root, this.options.appUrl, tree, options);
      } else {
        const where = !node ? '' : options.published ? `${node.name} does not have them, and ` : "they were kept off Kubo (a private repository's outputs), and ";
        throw new DagFetchError(`${where}PUBLIC_URL, the app's address whose gateway serves them, is not set`);
      }
      await mkdir(dirname(dir), { recursive: true });
      await rename(tree, dir).catch((error: NodeJS.ErrnoException) => {
        // Another run on this worker fetched the same outputs first: theirs are as good.
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      });
    } finally {
      await rm(tree, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async fromGateway(root: CID, appUrl: string, tree: string, options: FetchOptions): Promise<void> {
    const store = new FsBlockstore(join(options.scratchDir, 'blocks'));
    await store.open();
    try {
      await fetchCarInto({
        appUrl,
        token: this.options.token,
        root,
        put: async (cid, bytes) => {
          await store.put(cid, bytes, { signal: options.signal });
        },
        maxBytes: carBudget(options.limits),
        signal: options.signal,
        ...(this.options.idleMs !== undefined ? { idleMs: this.options.idleMs } : {}),
        ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
      });
      await this.write(root, scratchStorage(store, `the CAR from the app's gateway at ${appUrl}/ipfs/`), tree, options);
    } finally {
      await store.close().catch(() => undefined);
      await rm(join(options.scratchDir, 'blocks'), { recursive: true, force: true });
    }
  }

  private async write(root: CID, blocks: ReadableStorage, tree: string, options: FetchOptions): Promise<void> {
    try {
      await writeUnixfsFolder(root, blocks, tree, options.limits, options.signal);
    } catch (error) {
      if (error instanceof DagFetchError || options.signal.aborted) throw error;
      const failure = error as { code?: string; message?: string };
      if (failure.code === 'EEXIST') throw new DagFetchError('a folder of the outputs names one entry twice', { cause: error });
      // The exporter's own verdicts on what it read: not UnixFS, a codec it cannot read, a broken node.
      if (typeof failure.code === 'string' && failure.code.startsWith('ERR_')) {
        throw new DagFetchError(`the outputs are not a UnixFS folder this worker can write: ${String(failure.message).slice(0, 200)}`, { cause: error });
      }
      throw error;
    }
  }
}

/**
 * Most bytes the CAR of outputs within the limits can take: their content, plus the DAG's own
 * nodes (a file's links cost about 1/64 of its bytes at most, an entry of a folder well under 1 KiB).
 */
export function carBudget(limits: FetchLimits): number {
  return limits.maxBytes + Math.ceil(limits.maxBytes / 64) + limits.maxFiles * 1024 + 1024 * 1024;
}

/** Blocks read from the IPFS node one at a time, each checked against its CID. */
function nodeStorage(node: { blocks: IpfsBlockReader; name: string }, signal: AbortSignal): ReadableStorage {
  return {
    get: async function* (cid) {
      if (cid.multihash.code === IDENTITY) {
        yield cid.multihash.digest;
        return;
      }
      const bytes = await node.blocks.getBlock(cid.toString(), { signal });
      if (bytes === null) throw new DagFetchError(`${node.name} does not have block ${cid.toString()}: the DAG is incomplete there`);
      const check = checkBlock(cid, bytes);
      if (check !== 'ok') throw new DagFetchError(`block ${cid.toString()} from ${node.name} ${check === 'mismatch' ? 'does not match its CID' : 'uses a hash function no add here uses'}`);
      yield bytes;
    },
  };
}

/** The blocks of a fetched CAR, checked as they arrived; one it did not hold means the DAG is incomplete. */
function scratchStorage(store: FsBlockstore, source: string): ReadableStorage {
  return {
    get: async function* (cid, options) {
      if (cid.multihash.code === IDENTITY) {
        yield cid.multihash.digest;
        return;
      }
      try {
        yield* store.get(cid, options);
      } catch (error) {
        if ((error as Error).name === 'NotFoundError') throw new DagFetchError(`${source} lacks block ${cid.toString()}: the DAG is incomplete`);
        throw error;
      }
    },
  };
}

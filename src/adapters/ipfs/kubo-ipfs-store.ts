/**
 * The Kubo backend (IPFS_API_URL): CIDs are computed here by import-tree.ts, exactly as the
 * embedded store computes them, and the blocks of each add are streamed to Kubo as CARs through
 * `dag/import`; then the root is pinned with `pin/add` and `pin/ls` must list it. Kubo announces
 * and serves the blocks from then on (README "Publishing to Kubo").
 *
 * Kubo never chunks or hashes anything of ours, so its `Import.*` settings cannot change a CID.
 * Memory stays flat: each block is written to the request body as the importer makes it, the
 * importer waits while Kubo has not read the last one, and no request carries more than
 * CAR_SEGMENT_BYTES (see CarSegments for why).
 */
import * as dagPb from '@ipld/dag-pb';
import { CarWriter } from '@ipld/car';
import { UnixFS } from 'ipfs-unixfs';
import { create, type HTTPRPCOptions, type KuboRPCClient } from 'kubo-rpc-client';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { equals } from 'multiformats/bytes';
import type { AddOptions, AddResult, IpfsBlockReader, IpfsBlockWriter, IpfsGarbage, IpfsStore } from '../../ports/ipfs-store.js';
import { dagJsonBlock } from './dag-json-block.js';
import { RetryableError } from '../../ports/errors.js';
import { resolveImportSettings } from './import-profile.js';
import type { ImportOptionsInput, ImportSettings } from './import-profile.js';
import { importTree, type BlockSink } from './import-tree.js';

export interface KuboIpfsStoreOptions {
  /** Kubo's RPC API, e.g. `http://127.0.0.1:5001`; `user:password@` becomes HTTP Basic authentication. */
  apiUrl: string;
  /** Import profile and Kubo-style overrides; Kubo's bare `ipfs add` defaults when unset. */
  profile?: ImportOptionsInput;
  /** Include dot-files inside added folders, like `ipfs add -r --hidden` (import-tree.ts). */
  includeHidden?: boolean;
}

/** Kubo answered with an error (HTTP 500 and its `{"Message", "Code", "Type": "error"}`), or broke its contract. */
export class KuboError extends Error {
  override readonly name = 'KuboError';
}

/** Kubo could not be reached at all: the run may succeed later, so the worker gives it back to the queue. */
export class KuboUnreachableError extends RetryableError {
  override readonly name = 'KuboUnreachableError';
}

export class KuboIpfsStore implements IpfsStore, IpfsBlockReader, IpfsBlockWriter, IpfsGarbage {
  readonly settings: ImportSettings;
  /** The API's address without credentials: what every error names. */
  readonly apiUrl: string;
  private readonly client: KuboRPCClient;
  private readonly includeHidden: boolean;

  constructor(options: KuboIpfsStoreOptions) {
    this.settings = resolveImportSettings(options.profile);
    const url = new URL(options.apiUrl);
    const headers: Record<string, string> = {};
    if (url.username !== '' || url.password !== '') {
      // fetch refuses URLs that carry credentials; Kubo's API.Authorizations takes them as a header.
      const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
      url.username = '';
      url.password = '';
    }
    this.apiUrl = url.toString().replace(/\/+$/, '');
    this.client = create({ url: this.apiUrl, headers });
    this.includeHidden = options.includeHidden ?? false;
  }

  async addPath(path: string, options: AddOptions = {}): Promise<AddResult> {
    const { signal } = options;
    signal?.throwIfAborted();
    // One controller for the whole add: the caller's cancel, a failed import or a failed upload ends all of it.
    const controller = new AbortController();
    const forward = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', forward, { once: true });
    try {
      const result = await this.importToKubo(path, controller, options.onBlocks);
      await this.pinRoot(result.cid, controller.signal);
      return result;
    } finally {
      signal?.removeEventListener('abort', forward);
    }
  }

  /**
   * The block goes to Kubo as a CAR of its own through `dag/import`, as an add's blocks do, so Kubo
   * stores exactly the bytes and CID computed here (it checks the hash); then it is pinned like an
   * add's root.
   */
  async putDagJson(value: unknown, options: Pick<AddOptions, 'signal' | 'onBlocks'> = {}): Promise<string> {
    const signal = options.signal ?? new AbortController().signal;
    signal.throwIfAborted();
    const block = await dagJsonBlock(value);
    const { writer, out } = CarWriter.create([block.cid]);
    void writer
      .put(block)
      .then(() => writer.close())
      .catch(() => undefined);
    await this.call('dag/import', signal, async () => {
      for await (const _ of this.client.dag.import([out], { pinRoots: false, signal })) {
        // With pin-roots=false Kubo reports nothing; reading to the end waits for the import to finish.
      }
    });
    const cid = block.cid.toString();
    await options.onBlocks?.([cid]);
    await this.pinRoot(cid, signal);
    return cid;
  }

  /**
   * `pin/rm` of a root whose last pin in the run store ended; Kubo's own repository GC then
   * reclaims the blocks no other pin of that node reaches. A root Kubo does not have pinned
   * (unpinned by hand, or never pinned because its add failed) is no error.
   */
  async unpin(root: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = options.signal ?? new AbortController().signal;
    try {
      await this.call('pin/rm', signal, () => this.client.pin.rm(root, { recursive: true, signal }));
    } catch (error) {
      if (error instanceof KuboError && /not pinned/.test(error.message)) return;
      throw error;
    }
  }

  /** Kubo keeps its blocks itself: once a root is unpinned, its repository GC decides. */
  async deleteBlocks(): Promise<number> {
    return 0;
  }

  /**
   * One block as this Kubo holds it (`block/get`), or null when it has none. Asked with Kubo's
   * `offline` option, so Kubo answers from its own repository instead of searching the network.
   */
  async getBlock(cid: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array | null> {
    const signal = options.signal ?? new AbortController().signal;
    // kubo-rpc-client sends options it does not know as query parameters, as Kubo's global `offline` flag is.
    const offline = { signal, offline: true } as HTTPRPCOptions;
    try {
      return await this.call('block/get', signal, () => this.client.block.get(CID.parse(cid), offline));
    } catch (error) {
      if (error instanceof KuboError && /not found/i.test(error.message)) return null;
      throw error;
    }
  }

  async close(): Promise<void> {
    // Nothing held open: each call is its own HTTP request.
  }

  /**
   * Streams the add through `dag/import` while the importer makes its blocks, as CARs of about
   * CAR_SEGMENT_BYTES each. The root is known only at the end, so each CAR's header names the
   * empty folder (whose block goes first, keeping the CAR well-formed) and Kubo is told not to
   * pin header roots: the real root is pinned next, by `pin/add`.
   */
  private async importToKubo(path: string, controller: AbortController, onBlocks: AddOptions['onBlocks']): Promise<AddResult> {
    const { signal } = controller;
    const placeholder = await emptyFolder(this.settings);
    const segments = new CarSegments(placeholder, (car) =>
      this.call('dag/import', signal, async () => {
        for await (const _ of this.client.dag.import([car], { pinRoots: false, signal })) {
          // With pin-roots=false Kubo reports nothing; reading to the end waits for the import to finish.
        }
      }),
    );

    return (async () => {
      try {
        const result = await importTree(path, segments, {
          settings: this.settings,
          includeHidden: this.includeHidden,
          signal,
          ...(onBlocks ? { onBlocks } : {}),
        });
        await segments.finish();
        return result;
      } catch (error) {
        // The upload stops too; what Kubo received unpinned is garbage its own GC collects.
        controller.abort(error);
        throw error;
      }
    })();
  }

  /** Pins the root recursively, then asks Kubo to list it: only then does the add count as published. */
  private async pinRoot(root: string, signal: AbortSignal): Promise<void> {
    await this.call('pin/add', signal, () => this.client.pin.add(root, { recursive: true, signal }));
    const wanted = CID.parse(root).multihash.bytes;
    const listed = await this.call('pin/ls', signal, async () => {
      for await (const pin of this.client.pin.ls({ paths: root, type: 'recursive', signal })) {
        if (equals(CID.parse(pin.cid.toString()).multihash.bytes, wanted)) return true;
      }
      return false;
    });
    if (!listed) throw new KuboError(`Kubo at ${this.apiUrl} did not list ${root} as pinned after pin/add`);
  }

  /** Runs one RPC call and turns whatever goes wrong into one line that names Kubo, its URL and the call. */
  private async call<T>(command: string, signal: AbortSignal, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      // Stopped on purpose (cancelled, or the other half of the add failed): that reason is the error.
      if (signal.aborted) throw signal.reason;
      throw this.describe(command, error);
    }
  }

  private describe(command: string, error: unknown): Error {
    const failure = error as { name?: string; message?: string; response?: { status?: number }; cause?: { code?: string; message?: string } };
    if (failure.name === 'HTTPError' && failure.response !== undefined) {
      const message = oneLine(failure.message ?? '') || 'no message';
      return new KuboError(`Kubo at ${this.apiUrl} refused ${command}: ${message} (HTTP ${failure.response.status ?? '?'})`, { cause: error });
    }
    if (failure.name === 'TimeoutError') return new KuboUnreachableError(`Kubo at ${this.apiUrl} timed out on ${command}`, { cause: error });
    const reason = oneLine(failure.cause?.code ?? failure.cause?.message ?? failure.message ?? String(error));
    return new KuboUnreachableError(`cannot reach Kubo at ${this.apiUrl} for ${command}: ${reason}`, { cause: error });
  }
}

/**
 * Most block bytes one `dag/import` request carries. Node's fetch keeps a copy of a streamed
 * request body until the request ends (it tees the body, to follow a redirect, unless told
 * `redirect: 'error'`, which kubo-rpc-client does not say), so one CAR for a whole add held
 * the whole add in memory: +1,116 MiB of RSS for a 1 GiB file. Cut into CARs of this size, each
 * imported before the next starts, the same add took +99 MiB.
 */
export const CAR_SEGMENT_BYTES = 16 * 1024 * 1024;

/**
 * The block sink of an add on Kubo: blocks are written, in the order they come, into a CAR that
 * streams to Kubo as it is written; past CAR_SEGMENT_BYTES that CAR is closed, its import awaited,
 * and the next block opens a new one. Blocks need no order across CARs: Kubo pins only after the
 * last one, when it holds them all.
 */
class CarSegments implements BlockSink {
  private current: { writer: ReturnType<typeof CarWriter.create>['writer']; writes: PendingWrites; upload: Promise<void>; bytes: number } | undefined;
  private queue: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly placeholder: { cid: CID; bytes: Uint8Array },
    private readonly send: (car: AsyncIterable<Uint8Array>) => Promise<void>,
  ) {}

  put(cid: CID, bytes: Uint8Array): Promise<void> {
    const step = this.queue.then(() => this.write(cid, bytes));
    this.queue = step.catch(() => undefined);
    return step;
  }

  /** Ends the last CAR and waits for Kubo to have imported it. */
  async finish(): Promise<void> {
    await this.queue;
    if (this.failure) throw this.failure.error;
    await this.closeSegment();
  }

  private async write(cid: CID, bytes: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure.error;
    const segment = (this.current ??= this.open());
    await segment.writes.wait(segment.writer.put({ cid, bytes }));
    segment.bytes += bytes.byteLength;
    if (segment.bytes >= CAR_SEGMENT_BYTES) await this.closeSegment();
  }

  private open(): NonNullable<CarSegments['current']> {
    const { writer, out } = CarWriter.create([this.placeholder.cid]);
    const writes = new PendingWrites();
    const upload = this.send(out).catch((error: unknown) => {
      this.failure ??= { error };
      writes.fail(error);
      throw error;
    });
    upload.catch(() => undefined);
    // The header's stand-in root goes in first, so every CAR holds its own root.
    void writes.wait(writer.put(this.placeholder)).catch(() => undefined);
    return { writer, writes, upload, bytes: 0 };
  }

  private async closeSegment(): Promise<void> {
    const segment = this.current;
    if (segment === undefined) return;
    this.current = undefined;
    await segment.writes.wait(segment.writer.close());
    await segment.upload;
  }
}

/**
 * A CAR write resolves once Kubo has read what came before it, so if the upload dies the write
 * would wait forever: each write is also failed with the upload's error. Only writes in flight
 * are held (the importer's few), not one waiter per block of the add.
 */
class PendingWrites {
  private readonly waiting = new Set<(error: unknown) => void>();
  private failure: { error: unknown } | undefined;

  wait(write: Promise<void>): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error);
    return new Promise<void>((resolve, reject) => {
      this.waiting.add(reject);
      write.then(resolve, reject).finally(() => this.waiting.delete(reject));
    });
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    for (const reject of this.waiting) reject(error);
    this.waiting.clear();
  }
}

/** The empty UnixFS folder in the profile's CID version: the CAR header's stand-in root. */
async function emptyFolder(settings: ImportSettings): Promise<{ cid: CID; bytes: Uint8Array }> {
  const bytes = dagPb.encode({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [] });
  const digest = await sha256.digest(bytes);
  const cid = settings.cidVersion === 0 ? CID.createV0(digest) : CID.createV1(dagPb.code, digest);
  return { cid, bytes };
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 500);
}

/**
 * The zero-setup IPFS backend: blocks kept as files under `<dataDir>/ipfs/blocks` (block-files.ts).
 * Offline by design: no libp2p, no peer is ever dialed (README "Outputs on IPFS"). CIDs are
 * computed by import-tree.ts, as for every backend.
 */
import { join, resolve } from 'node:path';
import { CID } from 'multiformats/cid';
import type { AddOptions, AddResult, IpfsBlockReader, IpfsBlockWriter, IpfsGarbage, IpfsStore } from '../../ports/ipfs-store.js';
import { dagJsonBlock } from './dag-json-block.js';
import { resolveImportSettings } from './import-profile.js';
import type { ImportOptionsInput, ImportSettings } from './import-profile.js';
import { BlockFiles } from './block-files.js';
import { importTree, type BlockSink } from './import-tree.js';

export { SpecialFileError, UnsupportedNameError } from './import-tree.js';

export interface EmbeddedIpfsStoreOptions {
  /** Root of the service's data; blocks go to `<dataDir>/ipfs/blocks`. */
  dataDir: string;
  /** Import profile and Kubo-style overrides; Kubo's bare `ipfs add` defaults when unset. */
  profile?: ImportOptionsInput;
  /** Include dot-files inside added folders, like `ipfs add -r --hidden` (import-tree.ts). */
  includeHidden?: boolean;
}

export class EmbeddedIpfsStore implements IpfsStore, IpfsBlockReader, IpfsBlockWriter, IpfsGarbage {
  readonly settings: ImportSettings;
  private readonly blocks: BlockFiles;
  private readonly includeHidden: boolean;
  private opened: Promise<void> | undefined;
  /** Blocks being written now, by multihash, so a repeated block is written once. */
  private readonly writing = new Map<string, Promise<void>>();
  private readonly sink: BlockSink = { put: (cid, bytes) => this.putOnce(cid, bytes) };

  constructor(options: EmbeddedIpfsStoreOptions) {
    // Validate at once: a bad profile is a configuration error, not an error of the first add.
    this.settings = resolveImportSettings(options.profile);
    this.blocks = new BlockFiles(join(resolve(options.dataDir), 'ipfs', 'blocks'));
    this.includeHidden = options.includeHidden ?? false;
  }

  async addPath(path: string, options: AddOptions = {}): Promise<AddResult> {
    const { signal } = options;
    signal?.throwIfAborted();
    await this.open();
    const result = await importTree(path, this.sink, {
      settings: this.settings,
      includeHidden: this.includeHidden,
      ...(signal ? { signal } : {}),
      ...(options.onBlocks ? { onBlocks: options.onBlocks } : {}),
    });
    return result;
  }

  async putDagJson(value: unknown, options: Pick<AddOptions, 'signal' | 'onBlocks'> = {}): Promise<string> {
    options.signal?.throwIfAborted();
    const { cid, bytes } = await dagJsonBlock(value);
    await this.open();
    await this.putOnce(cid, bytes);
    await options.onBlocks?.([cid.toString()]);
    return cid.toString();
  }

  /** Whether the block with this CID is stored here (the root of an add, or any block below it). */
  async has(cid: string): Promise<boolean> {
    await this.open();
    return this.blocks.has(CID.parse(cid));
  }

  /** Pins live in the run store, not here: the blocks of a root go by deleteBlocks. */
  async unpin(): Promise<void> {}

  /**
   * Deletes stored blocks (missing ones are ignored). A block an add of this process is writing
   * right now is left alone: that add is about to index it under its own pin.
   */
  async deleteBlocks(cids: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number> {
    await this.open();
    let deleted = 0;
    for (const text of cids) {
      options.signal?.throwIfAborted();
      const cid = CID.parse(text);
      if (this.writing.has(Buffer.from(cid.multihash.bytes).toString('base64'))) continue;
      if (await this.blocks.delete(cid)) deleted += 1;
    }
    return deleted;
  }

  async getBlock(cid: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array | null> {
    const key = CID.parse(cid);
    await this.open();
    return this.blocks.get(key, options);
  }

  async close(): Promise<void> {
    if (this.opened === undefined) return;
    const opened = this.opened;
    this.opened = undefined;
    await opened;
  }

  private open(): Promise<void> {
    this.opened ??= this.blocks.open().catch((error: unknown) => {
      this.opened = undefined;
      throw error;
    });
    return this.opened;
  }

  /**
   * Writes a block unless it is already stored or being stored: a folder of many identical
   * files writes their block once, and deleteBlocks can tell a block an add is writing now.
   */
  private async putOnce(cid: CID, bytes: Uint8Array): Promise<void> {
    const key = Buffer.from(cid.multihash.bytes).toString('base64');
    const pending = this.writing.get(key);
    if (pending !== undefined) return pending;
    const write = this.blocks.put(cid, bytes);
    this.writing.set(key, write);
    try {
      await write;
    } finally {
      this.writing.delete(key);
    }
  }
}

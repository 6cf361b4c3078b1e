/**
 * The zero-setup IPFS backend: blocks kept in packs under `<dataDir>/ipfs/packs` (block-packs.ts),
 * and read from `<dataDir>/ipfs/blocks` too, where earlier versions kept one file per block
 * (block-files.ts). Offline by design: no libp2p, no peer is ever dialed (README "Outputs on
 * IPFS"). CIDs are computed by import-tree.ts, as for every backend.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CID } from 'multiformats/cid';
import type { AddOptions, AddResult, IpfsBlockReader, IpfsBlockWriter, IpfsGarbage, IpfsStore } from '../../ports/ipfs-store.js';
import { resolveImportSettings } from './import-profile.js';
import type { ImportOptionsInput, ImportSettings } from './import-profile.js';
import { BlockFiles } from './block-files.js';
import { BlockPacks, type PackWriter } from './block-packs.js';
import { importTree } from './import-tree.js';

export { SpecialFileError, UnsupportedNameError } from './import-tree.js';

export interface EmbeddedIpfsStoreOptions {
  /** Root of the service's data; blocks go to `<dataDir>/ipfs/packs`. */
  dataDir: string;
  /** Import profile and Kubo-style overrides; Kubo's bare `ipfs add` defaults when unset. */
  profile?: ImportOptionsInput;
  /** Include dot-files inside added folders, like `ipfs add -r --hidden` (import-tree.ts). */
  includeHidden?: boolean;
}

export class EmbeddedIpfsStore implements IpfsStore, IpfsBlockReader, IpfsBlockWriter, IpfsGarbage {
  readonly settings: ImportSettings;
  private readonly packs: BlockPacks;
  /** Blocks written one file each by earlier versions: read, and deleted, but never written. */
  private readonly files: BlockFiles;
  private hasFiles = false;
  private readonly includeHidden: boolean;
  private opened: Promise<void> | undefined;
  /** Blocks being written now, by multihash, so a repeated block is written once. */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(options: EmbeddedIpfsStoreOptions) {
    // Validate at once: a bad profile is a configuration error, not an error of the first add.
    this.settings = resolveImportSettings(options.profile);
    const folder = join(resolve(options.dataDir), 'ipfs');
    this.packs = new BlockPacks(join(folder, 'packs'));
    this.files = new BlockFiles(join(folder, 'blocks'));
    this.includeHidden = options.includeHidden ?? false;
  }

  async addPath(path: string, options: AddOptions = {}): Promise<AddResult> {
    const { signal } = options;
    signal?.throwIfAborted();
    await this.open();
    // The add's new blocks go to a pack of their own, closed when the add ends either way.
    const pack = this.packs.writer();
    try {
      // Once put resolves the block is written (or was stored already) and its bytes are not kept.
      const sink = { put: (cid: CID, bytes: Uint8Array) => this.putOnce(cid, bytes, pack), releasesBytes: true };
      return await importTree(path, sink, {
        settings: this.settings,
        includeHidden: this.includeHidden,
        ...(signal ? { signal } : {}),
        ...(options.onBlocks ? { onBlocks: options.onBlocks } : {}),
      });
    } finally {
      await pack.seal();
    }
  }

  async putDagJson(value: unknown, options: Pick<AddOptions, 'signal' | 'onBlocks'> = {}): Promise<string> {
    options.signal?.throwIfAborted();
    // Loaded when first needed: DAG-JSON's encoder is twenty modules an add never uses.
    const { dagJsonBlock } = await import('./dag-json-block.js');
    const { cid, bytes } = await dagJsonBlock(value);
    await this.open();
    const pack = this.packs.writer();
    try {
      await this.putOnce(cid, bytes, pack);
    } finally {
      await pack.seal();
    }
    await options.onBlocks?.([cid.toString()]);
    return cid.toString();
  }

  /** Whether the block with this CID is stored here (the root of an add, or any block below it). */
  async has(cid: string): Promise<boolean> {
    await this.open();
    const key = CID.parse(cid);
    return this.packs.has(key.multihash.bytes) || (this.hasFiles && (await this.files.has(key)));
  }

  /** Pins live in the run store, not here: the blocks of a root go by deleteBlocks. */
  async unpin(): Promise<void> {}

  /**
   * Deletes stored blocks (missing ones are ignored). A block an add of this process is writing
   * right now is left alone: that add is about to index it under its own pin.
   */
  async deleteBlocks(cids: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number> {
    await this.open();
    const unwritten = cids.map((text) => CID.parse(text)).filter((cid) => !this.writing.has(writingKey(cid)));
    // A block may be in a pack and, from an earlier version, in a file too: it counts once.
    const inPacks = new Set<string>();
    for (const cid of unwritten) if (this.packs.has(cid.multihash.bytes)) inPacks.add(writingKey(cid));
    let deleted = await this.packs.delete(
      unwritten.map((cid) => cid.multihash.bytes),
      options,
    );
    if (this.hasFiles) {
      for (const cid of unwritten) {
        options.signal?.throwIfAborted();
        if ((await this.files.delete(cid)) && !inPacks.has(writingKey(cid))) deleted += 1;
      }
    }
    return deleted;
  }

  async getBlock(cid: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array | null> {
    const key = CID.parse(cid);
    await this.open();
    return (await this.packs.get(key.multihash.bytes, options)) ?? (this.hasFiles ? this.files.get(key, options) : null);
  }

  async close(): Promise<void> {
    if (this.opened === undefined) return;
    const opened = this.opened;
    this.opened = undefined;
    await opened.catch(() => undefined);
    this.packs.close();
  }

  private open(): Promise<void> {
    this.opened ??= (async () => {
      this.packs.open();
      this.hasFiles = existsSync(this.files.root);
    })().catch((error: unknown) => {
      this.opened = undefined;
      throw error;
    });
    return this.opened;
  }

  /**
   * Writes a block unless it is already stored or being stored: a folder of many identical
   * files writes their block once, and deleteBlocks can tell a block an add is writing now.
   */
  private async putOnce(cid: CID, bytes: Uint8Array, pack: PackWriter): Promise<void> {
    const key = writingKey(cid);
    const pending = this.writing.get(key);
    if (pending !== undefined) return pending;
    const write = pack.put(cid.multihash.bytes, bytes);
    this.writing.set(key, write);
    try {
      await write;
    } finally {
      this.writing.delete(key);
    }
  }
}

function writingKey(cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64');
}

/** Where task outputs go: a content-addressed store that computes CIDs exactly as Kubo's `ipfs add -r`. */

/** Import settings named after Kubo's `--profile` values (see README "Outputs on IPFS"). */
export type CidProfile = 'unixfs-v0-2015' | 'unixfs-v1-2025';

export interface AddedEntry {
  /** Name of the entry inside the added folder (top level only), or the file's own name. */
  name: string;
  cid: string;
  /** Bytes of file content (0 for folders and symlinks' targets are not counted). */
  size: number;
  kind: 'file' | 'directory' | 'symlink';
}

export interface AddResult {
  /** Root CID: the folder's CID, or the file's CID when a single file was added. */
  cid: string;
  /** Top-level entries of an added folder (empty when a single file was added). */
  entries: AddedEntry[];
}

export interface AddOptions {
  signal?: AbortSignal;
  /**
   * Told the CIDs (as `CID.toString()`) of the add's blocks, each once it is stored (written, or
   * found stored already), in batches of at most 1,000; the add waits for each call, fails with
   * it, and has reported every block, root included, before it returns. The run store indexes
   * what a pin holds this way without a large add's blocks all held in memory. How long the
   * outputs stay is the run store's to say (its Pins section); a backend keeps what it added
   * until the collector releases it (IpfsGarbage).
   */
  onBlocks?: (cids: string[]) => Promise<void>;
}

export interface IpfsStore {
  /**
   * Adds a file or a folder (recursively) from the local filesystem.
   * Symlinks are stored as UnixFS symlink nodes and never followed.
   */
  addPath(path: string, options?: AddOptions): Promise<AddResult>;
  close(): Promise<void>;
}

/**
 * Reading stored blocks back, for the app's own gateway: a section of its own, so task types
 * (which only add) and their test doubles need not offer it.
 */
export interface IpfsBlockReader {
  /**
   * The bytes of one stored block (any block of an add, not only roots), exactly as stored, or
   * null when this store does not hold it. The CID is matched by its multihash, so a CIDv0 and its
   * CIDv1 form find the same block.
   */
  getBlock(cid: string, options?: { signal?: AbortSignal }): Promise<Uint8Array | null>;
}

/**
 * Storing one small document as a single block (the provenance record): a section of its own, so
 * task types (which only add) and their test doubles need not offer it.
 */
export interface IpfsBlockWriter {
  /**
   * Stores `value` as one DAG-JSON block (keys in DAG-JSON's fixed order, so equal values give
   * equal CIDs), CIDv1 with the dag-json codec and sha2-256, held as an add's root is held (Kubo
   * pins it), and returns its CID. Tells `onBlocks` that CID once stored, as an add does. Refuses
   * a value over 1 MiB encoded, the most one block may be for other peers.
   */
  putDagJson(value: unknown, options?: Pick<AddOptions, 'signal' | 'onBlocks'>): Promise<string>;
}

/**
 * What the pin collector asks of a backend once the run store's pins no longer hold something:
 * a section of its own, so task types (which only add) and their test doubles need not offer it.
 * Each backend does the half that is its own: Kubo pinned the roots itself, so it unpins them
 * and its repository GC reclaims the blocks; the embedded store keeps no pins, only blocks, and
 * deletes the ones no pin's index lists.
 */
export interface IpfsGarbage {
  /** `root` lost its last pin: a backend that pinned it (Kubo: `pin/rm`) lets go of it. A root not pinned there is ignored. */
  unpin(root: string, options?: { signal?: AbortSignal }): Promise<void>;
  /** Deletes these blocks where this backend stores them itself (the embedded store); missing ones are ignored. How many it deleted. */
  deleteBlocks(cids: readonly string[], options?: { signal?: AbortSignal }): Promise<number>;
}

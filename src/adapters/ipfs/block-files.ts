/**
 * Blocks as earlier versions of the embedded store kept them, one file per block through
 * blockstore-fs (its default NextToLast sharding): `<root>/<XY>/<KEY>.data`, KEY the block's
 * multihash in upper-case base32 with its multibase prefix, XY the key's last two characters.
 * New blocks go to packs (block-packs.ts); a DATA_DIR written before is still read, and its
 * blocks deleted when the collector says so, from here. Nothing is migrated.
 */
import { access, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { base32upper } from 'multiformats/bases/base32';
import type { CID } from 'multiformats/cid';

export class BlockFiles {
  constructor(readonly root: string) {}

  async has(cid: CID): Promise<boolean> {
    try {
      await access(this.file(cid));
      return true;
    } catch {
      return false;
    }
  }

  /** The block's bytes, or null when it is not stored here. */
  async get(cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array | null> {
    try {
      return await readFile(this.file(cid), options.signal ? { signal: options.signal } : {});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  /** True when it deleted the block's file, false when there was none. */
  async delete(cid: CID): Promise<boolean> {
    try {
      await unlink(this.file(cid));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  private file(cid: CID): string {
    const key = base32upper.encode(cid.multihash.bytes);
    return join(this.root, key.slice(-2), `${key}.data`);
  }
}

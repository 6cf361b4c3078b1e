/**
 * The embedded store's blocks, one file per block, in blockstore-fs's layout (its default
 * NextToLast sharding): `<root>/<XY>/<KEY>.data`, KEY the block's multihash in upper-case
 * base32 with its multibase prefix, XY the key's last two characters. Folders written by
 * earlier versions (through blockstore-fs) are read and added to as they are; nothing migrates.
 *
 * Written here rather than through blockstore-fs because an add writes thousands of blocks and
 * blockstore-fs spent six file-system calls and a temporary file shared by concurrent writers
 * on each; here a block costs an existence check, then a fresh temporary file (open, write,
 * close) renamed into place, with the shard folders created once per process.
 * Without fsync, as before: a crash can lose blocks written just before it, never leave a
 * partial block under a block's name.
 */
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { base32upper } from 'multiformats/bases/base32';
import type { CID } from 'multiformats/cid';

let temporaryFiles = 0;

export class BlockFiles {
  /** Shard folders known to exist, so a block's write does not ask again. */
  private readonly folders = new Set<string>();

  constructor(readonly root: string) {}

  /** Creates the root folder if it is missing. */
  async open(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  async has(cid: CID): Promise<boolean> {
    try {
      await access(this.locate(cid).file);
      return true;
    } catch {
      return false;
    }
  }

  /** The block's bytes, or null when it is not stored. */
  async get(cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array | null> {
    try {
      return await readFile(this.locate(cid).file, options.signal ? { signal: options.signal } : {});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  /** Writes the block unless a file of that name is there already (same name, same bytes). */
  async put(cid: CID, bytes: Uint8Array): Promise<void> {
    const { folder, file } = this.locate(cid);
    if (await this.has(cid)) return;
    const temporary = join(folder, `.${process.pid}-${(temporaryFiles += 1)}.tmp`);
    if (!this.folders.has(folder)) {
      await mkdir(folder, { recursive: true });
      this.folders.add(folder);
    }
    try {
      const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
      try {
        for (let written = 0; written < bytes.byteLength; ) {
          written += (await handle.write(bytes, written)).bytesWritten;
        }
      } finally {
        await handle.close();
      }
      await rename(temporary, file);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      // The folder may have been removed under us (a collector emptying the store): once more.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && this.folders.delete(folder)) return this.put(cid, bytes);
      throw error;
    }
  }

  /** True when it deleted the block's file, false when there was none. */
  async delete(cid: CID): Promise<boolean> {
    try {
      await unlink(this.locate(cid).file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  private locate(cid: CID): { folder: string; file: string } {
    const key = base32upper.encode(cid.multihash.bytes);
    const folder = join(this.root, key.slice(-2));
    return { folder, file: join(folder, `${key}.data`) };
  }
}

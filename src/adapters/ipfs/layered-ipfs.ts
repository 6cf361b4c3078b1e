/**
 * Two stores seen as one, for a deployment that publishes to Kubo but keeps private repositories'
 * outputs in DATA_DIR (IPFS_PUBLISH_PRIVATE unset): the app's gateway reads a block from whichever
 * holds it, and the pin collector releases what is its own in each (Kubo's pins, the embedded
 * store's blocks).
 */
import type { IpfsBlockReader, IpfsGarbage } from '../../ports/ipfs-store.js';

/** Reads from the first of `readers` that holds the block. */
export function firstHolding(readers: readonly IpfsBlockReader[]): IpfsBlockReader {
  return {
    async getBlock(cid, options) {
      for (const reader of readers) {
        const bytes = await reader.getBlock(cid, options);
        if (bytes !== null) return bytes;
      }
      return null;
    },
  };
}

/** Unpins in every backend (a root one of them never pinned is ignored there) and deletes blocks from each. */
export function everyBackend(backends: readonly IpfsGarbage[]): IpfsGarbage {
  return {
    async unpin(root, options) {
      for (const backend of backends) await backend.unpin(root, options);
    },
    async deleteBlocks(cids, options) {
      let deleted = 0;
      for (const backend of backends) deleted += await backend.deleteBlocks(cids, options);
      return deleted;
    },
  };
}

/**
 * EmbeddedIpfsStore against the IpfsStore contract, in a fresh data folder per test. Reading back
 * walks the UnixFS DAG as `ipfs cat` would, through a second store opened on the same folder, and
 * checks every block it reads against its CID. The store pins nothing itself: its pins are the
 * run store's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dagPb from '@ipld/dag-pb';
import { UnixFS } from 'ipfs-unixfs';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { equals } from 'multiformats/bytes';
import { EmbeddedIpfsStore } from '../../src/adapters/ipfs/embedded-ipfs-store.js';
import { ipfsStoreContract } from './ipfs-store.contract.js';

/** `ipfs cat` over a store's blocks: follows folder links by name, then joins a file's leaves in order. */
class UnixfsReader {
  constructor(private readonly blocks: EmbeddedIpfsStore) {}

  async cat(root: string, path = ''): Promise<Uint8Array> {
    let cid = CID.parse(root);
    for (const name of path.split('/').filter(Boolean)) {
      const node = dagPb.decode(await this.block(cid));
      const unixfs = UnixFS.unmarshal(node.Data ?? new Uint8Array());
      if (unixfs.type !== 'directory') throw new Error(`${cid} is a ${unixfs.type}, not a folder`);
      const link = node.Links.find((candidate) => candidate.Name === name);
      if (!link) throw new Error(`no ${name} in ${cid}`);
      cid = link.Hash;
    }
    return Buffer.concat(await this.fileParts(cid));
  }

  private async fileParts(cid: CID): Promise<Uint8Array[]> {
    const bytes = await this.block(cid);
    if (cid.code === raw.code) return [bytes];
    const node = dagPb.decode(bytes);
    const unixfs = UnixFS.unmarshal(node.Data ?? new Uint8Array());
    if (unixfs.type !== 'file' && unixfs.type !== 'raw') throw new Error(`${cid} is a ${unixfs.type}, not a file`);
    const parts: Uint8Array[] = unixfs.data ? [unixfs.data] : [];
    for (const link of node.Links) parts.push(...(await this.fileParts(link.Hash)));
    return parts;
  }

  private async block(cid: CID): Promise<Uint8Array> {
    const bytes = await this.blocks.getBlock(cid.toString());
    if (bytes === null) throw new Error(`block ${cid} is not stored`);
    if (!equals((await sha256.digest(bytes)).bytes, cid.multihash.bytes)) throw new Error(`block ${cid} does not hash to its CID`);
    return bytes;
  }
}

ipfsStoreContract('EmbeddedIpfsStore', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'task-mgmt-ipfs-'));
  const store = new EmbeddedIpfsStore({ dataDir });
  const blocks = new EmbeddedIpfsStore({ dataDir });
  const reader = new UnixfsReader(blocks);
  return {
    store,
    cat: (cid, path) => reader.cat(cid, path),
    pinned: async () => [],
    cleanup: async () => {
      await store.close();
      await blocks.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});

/**
 * Whether a block's bytes are the ones its CID names: the check that makes a fetched DAG
 * trustworthy whoever served it. The importer hashes with sha2-256 only; identity CIDs carry
 * their bytes in the CID itself.
 */
import { createHash } from 'node:crypto';
import type { CID } from 'multiformats/cid';

const SHA2_256 = 0x12;
const IDENTITY = 0x00;

/** Bytes of the largest block an add makes (1 MiB chunks with their framing) and that Kubo's Bitswap moves (2 MiB). */
export const MAX_BLOCK_BYTES = 2 * 1024 * 1024;

/** 'ok', 'mismatch', or 'unsupported' for a hash function no add here uses. */
export function checkBlock(cid: CID, bytes: Uint8Array): 'ok' | 'mismatch' | 'unsupported' {
  const { code, digest } = cid.multihash;
  if (code === SHA2_256) {
    const actual = createHash('sha256').update(bytes).digest();
    return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).equals(actual) ? 'ok' : 'mismatch';
  }
  if (code === IDENTITY) return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).equals(bytes) ? 'ok' : 'mismatch';
  return 'unsupported';
}

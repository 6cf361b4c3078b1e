/**
 * One document as one IPLD block, the same way for every backend: DAG-JSON (which writes map keys
 * in a fixed order, so equal documents give equal bytes and CIDs), hashed with sha2-256 and named by
 * a CIDv1 with the dag-json codec (`bagu…`). The provenance record is stored this way.
 */
import * as dagJson from '@ipld/dag-json';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';

/** Largest block Kubo takes without `--allow-big-block`, and other peers exchange (1 MiB, inclusive). */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;

export class DocumentTooLargeError extends Error {
  override readonly name = 'DocumentTooLargeError';
}

/** The block of `value`; throws when its encoding passes MAX_DOCUMENT_BYTES, or `value` holds what DAG-JSON cannot (undefined, NaN). */
export async function dagJsonBlock(value: unknown): Promise<{ cid: CID; bytes: Uint8Array }> {
  const bytes = dagJson.encode(value);
  if (bytes.byteLength > MAX_DOCUMENT_BYTES) {
    throw new DocumentTooLargeError(`the document is ${bytes.byteLength.toLocaleString('en-US')} bytes as DAG-JSON, more than the ${MAX_DOCUMENT_BYTES.toLocaleString('en-US')} one block may hold`);
  }
  return { cid: CID.createV1(dagJson.code, await sha256.digest(bytes)), bytes };
}

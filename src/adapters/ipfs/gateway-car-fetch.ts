/**
 * Reads a whole DAG from the app's own trustless gateway as one CAR
 * (`GET /ipfs/<root>?format=car&dag-scope=all`) and keeps each block in a blockstore once it is
 * checked against its CID. The body is read as it streams, block by block: memory holds one block
 * at a time, a block over MAX_BLOCK_BYTES is refused from its length alone, and the whole CAR may
 * not pass `maxBytes`. Nothing but the configured address is asked: a redirect is an error, not
 * followed, so the worker's token goes nowhere else.
 */
import { asyncIterableReader, readBlockHead, readHeader } from '@ipld/car/decoder';
import type { CID } from 'multiformats/cid';
import { DagFetchError } from '../../ports/output-fetcher.js';
import { RetryableError } from '../../ports/errors.js';
import { checkBlock, MAX_BLOCK_BYTES } from './verify-block.js';

export interface GatewayCarRequest {
  /** The app's address (PUBLIC_URL); the CAR is asked of `<appUrl>/ipfs/<root>`. */
  appUrl: string;
  /** A service token of the app (WORKER_TOKEN), so outputs of private repositories are served too. */
  token?: string | undefined;
  root: CID;
  /** Where each checked block goes. */
  put: (cid: CID, bytes: Uint8Array) => Promise<void>;
  /** Most bytes the CAR may have in all. */
  maxBytes: number;
  signal: AbortSignal;
  /** Longest wait for the next bytes of the body (default 60 s). */
  idleMs?: number;
  fetch?: typeof fetch;
}

const DEFAULT_IDLE_MS = 60_000;

/** Fetches the CAR and stores its blocks; returns how many blocks and bytes it held. */
export async function fetchCarInto(request: GatewayCarRequest): Promise<{ blocks: number; bytes: number }> {
  const url = new URL(`ipfs/${request.root.toString()}`, `${request.appUrl.replace(/\/+$/, '')}/`);
  url.searchParams.set('format', 'car');
  url.searchParams.set('dag-scope', 'all');
  const where = `the app's gateway at ${url.origin}${url.pathname}`;

  const idle = new AbortController();
  const signal = AbortSignal.any([request.signal, idle.signal]);
  let timer: NodeJS.Timeout | undefined;
  const idleMs = request.idleMs ?? DEFAULT_IDLE_MS;
  const awake = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new DagFetchError(`${where} sent nothing for ${Math.round(idleMs / 1000)} s`)), idleMs);
  };

  awake();
  try {
    let response: Response;
    try {
      response = await (request.fetch ?? fetch)(url, {
        headers: { accept: 'application/vnd.ipld.car', ...(request.token ? { authorization: `Bearer ${request.token}` } : {}) },
        // A redirect is answered as it is, and refused below: the token goes to this address only.
        redirect: 'manual',
        signal,
      });
    } catch (error) {
      if (request.signal.aborted) throw request.signal.reason;
      if (idle.signal.aborted) throw idle.signal.reason;
      throw new RetryableError(`cannot reach ${where}: ${reasonOf(error)}`, { cause: error });
    }
    if (response.status !== 200) throw await refusal(response, where, request);
    if (!response.body) throw new DagFetchError(`${where} answered without a body`);

    let received = 0;
    const body = (async function* () {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        received += chunk.byteLength;
        if (received > request.maxBytes) throw new DagFetchError(`the CAR from ${where} is larger than the ${request.maxBytes.toLocaleString('en-US')} bytes the outputs may take`);
        awake();
        yield chunk;
      }
    })();
    return await readBlocks(asyncIterableReader(body), request, where, () => received);
  } catch (error) {
    if (request.signal.aborted) throw request.signal.reason;
    if (idle.signal.aborted) throw idle.signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function readBlocks(
  reader: ReturnType<typeof asyncIterableReader>,
  request: GatewayCarRequest,
  where: string,
  received: () => number,
): Promise<{ blocks: number; bytes: number }> {
  let blocks = 0;
  try {
    await readHeader(reader);
    while ((await reader.upTo(8)).length > 0) {
      const { cid, blockLength } = await readBlockHead(reader);
      if (blockLength > MAX_BLOCK_BYTES) {
        throw new DagFetchError(`the CAR from ${where} holds a block of ${blockLength.toLocaleString('en-US')} bytes (${cid.toString()}), more than any add makes`);
      }
      const bytes = await reader.exactly(blockLength, true);
      const check = checkBlock(cid, bytes);
      if (check === 'mismatch') throw new DagFetchError(`block ${cid.toString()} from ${where} does not match its CID`);
      if (check === 'unsupported') throw new DagFetchError(`block ${cid.toString()} from ${where} uses a hash function no add here uses`);
      await request.put(cid, bytes);
      blocks += 1;
    }
  } catch (error) {
    if (error instanceof DagFetchError || request.signal.aborted) throw error;
    // The CAR decoder's own words: "Unexpected end of data", a bad header or section.
    const reason = reasonOf(error);
    const cut = /end of data/i.test(reason) ? 'was cut off' : 'is not a valid CAR';
    throw new DagFetchError(`the CAR from ${where} ${cut} after ${received().toLocaleString('en-US')} bytes (${reason})`, { cause: error });
  }
  return { blocks, bytes: received() };
}

/** A non-200 answer, as one line: the status, the gateway's own line, and what to do about a 404. */
async function refusal(response: Response, where: string, request: GatewayCarRequest): Promise<Error> {
  const text = await readSome(response, 300);
  const said = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  const status = `${where} answered ${response.status}${said ? ` (${said})` : ''}`;
  if (response.status === 404) {
    return new DagFetchError(
      request.token
        ? `${status}: it holds no live pin of ${request.root.toString()}`
        : `${status}: it holds no live pin of ${request.root.toString()}, or the outputs are a private repository's and this worker has no WORKER_TOKEN`,
    );
  }
  if (response.status === 401 || response.status === 403) return new DagFetchError(`${status}: WORKER_TOKEN must be one of the app's API_TOKENS`);
  if (response.status >= 300 && response.status < 400) return new DagFetchError(`${status}: redirects are not followed`);
  if (response.status >= 500 || response.status === 429) return new RetryableError(status);
  return new DagFetchError(status);
}

/** At most `limit` bytes of an error body, as text; the rest is not read. */
async function readSome(response: Response, limit: number): Promise<string> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      chunks.push(chunk);
      size += chunk.byteLength;
      if (size >= limit) break;
    }
  } catch {
    // what arrived is enough
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

function reasonOf(error: unknown): string {
  const failure = error as { message?: string; cause?: { code?: string; message?: string } };
  return (failure.cause?.code ?? failure.cause?.message ?? failure.message ?? String(error)).replace(/\s+/g, ' ').trim().slice(0, 200);
}

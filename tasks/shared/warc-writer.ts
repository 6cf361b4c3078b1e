/**
 * A streaming WARC 1.1 writer, shared by the task types that archive HTTP exchanges: `web/warc`
 * (a crawl) and `ipfs/add-url` (one URL with `warc: true`). It lives here, not in one of them,
 * because a task type never imports another task type's folder.
 */
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { WARC_1_1, WARCRecord } from 'warcio';
import type { FetchedResponse, SentRequest } from '../../src/ports/task-type.js';

const CRLF = Buffer.from('\r\n');

/** The HTTP header block of a response as a WARC response record stores it. */
export function responseHeaderBlock(response: Pick<FetchedResponse, 'httpVersion' | 'status' | 'statusText' | 'rawHeaders'>): Buffer {
  const lines = [`HTTP/${response.httpVersion} ${response.status} ${response.statusText}`.trimEnd()];
  for (const [name, value] of response.rawHeaders) {
    // Node hands over the body de-chunked, so the stored payload is not chunked any more; keep
    // the original header under another name so replay tools do not try to de-chunk it again.
    lines.push(name.toLowerCase() === 'transfer-encoding' ? `X-Archive-Orig-${name}: ${value}` : `${name}: ${value}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

function requestHeaderBlock(request: SentRequest): Buffer {
  const lines = [`${request.method} ${request.path} HTTP/1.1`, ...request.headers.map(([name, value]) => `${name}: ${value}`)];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

export interface ResponsePayload {
  /** The HTTP header block, from responseHeaderBlock(). */
  headerBlock: Buffer;
  /** The body: a file to stream from, or bytes already in memory (small bodies only). */
  body: { path: string } | { bytes: Buffer };
  bytes: number;
  /** Hex SHA-256 of the body. */
  sha256: string;
  /** Hex SHA-256 of header block and body; computed from the file when missing. */
  blockSha256?: string;
  /** Set when the stored body is not the whole body (WARC-Truncated). */
  truncated?: 'length' | 'time' | 'disconnect' | 'unspecified';
}

/**
 * Writes a WARC 1.1 file, one gzip member per record (the `.warc.gz` convention that lets readers
 * seek to a record). Bodies stream from disk: a record's length must be known before its body, so
 * callers spool the body first (saveBody) and hand over the file.
 */
export class WarcWriter {
  private constructor(
    readonly path: string,
    private readonly out: WriteStream,
    private readonly signal: AbortSignal | undefined,
  ) {}

  static async create(path: string, options: { signal?: AbortSignal; info: Record<string, string> }): Promise<WarcWriter> {
    const out = createWriteStream(path);
    await new Promise<void>((resolve, reject) => {
      out.once('open', () => resolve());
      out.once('error', reject);
    });
    const writer = new WarcWriter(path, out, options.signal);
    const record = WARCRecord.create({ type: 'warcinfo', filename: path.split('/').pop() ?? path, warcVersion: WARC_1_1 });
    const body = Buffer.from(Object.entries(options.info).map(([name, value]) => `${name}: ${value}\r\n`).join(''), 'utf8');
    await writer.writeRecord(record, body.length, undefined, [body]);
    return writer;
  }

  /** Writes the request record; returns its WARC-Record-ID for WARC-Concurrent-To. */
  async writeRequest(request: SentRequest, date: Date, concurrentTo?: string): Promise<string> {
    const block = requestHeaderBlock(request);
    const record = WARCRecord.create({ type: 'request', url: request.url.href, date: date.toISOString(), warcVersion: WARC_1_1 });
    if (concurrentTo) record.warcHeaders.headers.set('WARC-Concurrent-To', concurrentTo);
    record.warcHeaders.headers.set('WARC-Block-Digest', `sha256:${createHash('sha256').update(block).digest('hex')}`);
    return this.writeRecord(record, block.length, undefined, [block]);
  }

  /** Writes the response record; returns its WARC-Record-ID. */
  async writeResponse(response: Pick<FetchedResponse, 'url' | 'remoteAddress'>, date: Date, payload: ResponsePayload): Promise<string> {
    const record = WARCRecord.create({ type: 'response', url: response.url.href, date: date.toISOString(), warcVersion: WARC_1_1 });
    const headers = record.warcHeaders.headers;
    if (response.remoteAddress) headers.set('WARC-IP-Address', response.remoteAddress);
    headers.set('WARC-Payload-Digest', `sha256:${payload.sha256}`);
    headers.set('WARC-Block-Digest', `sha256:${payload.blockSha256 ?? (await blockDigest(payload))}`);
    if (payload.truncated) headers.set('WARC-Truncated', payload.truncated);
    const body = 'path' in payload.body ? createReadStream(payload.body.path) : [payload.body.bytes];
    return this.writeRecord(record, payload.headerBlock.length + payload.bytes, payload.headerBlock, body);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }

  /** Closes and deletes the file (a failed or cancelled run leaves no half-written WARC). */
  async discard(): Promise<void> {
    this.out.destroy();
    await rm(this.path, { force: true });
  }

  private async writeRecord(record: WARCRecord, length: number, headerBlock: Buffer | undefined, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<string> {
    const headers = record.warcHeaders.headers;
    headers.set('Content-Length', String(length));
    const id = headers.get('WARC-Record-ID') ?? `<urn:uuid:${randomUUID()}>`;
    async function* parts(): AsyncGenerator<Uint8Array> {
      yield Buffer.from(record.warcHeaders.toString(), 'utf8');
      yield CRLF;
      if (headerBlock) yield headerBlock;
      let written = 0;
      for await (const chunk of body) {
        written += chunk.length;
        yield chunk;
      }
      if ((headerBlock?.length ?? 0) + written !== length) throw new Error(`WARC record for ${headers.get('WARC-Target-URI') ?? 'warcinfo'} changed size while written`);
      yield CRLF;
      yield CRLF;
    }
    // Into the shared file stream by hand: pipeline(…, { end: false }) leaves listeners on it per record.
    const out = this.out;
    const append = async (compressed: AsyncIterable<Buffer>) => {
      for await (const chunk of compressed) if (!out.write(chunk)) await once(out, 'drain');
    };
    await pipeline(Readable.from(parts()), createGzip(), append, this.signal ? { signal: this.signal } : {});
    return id;
  }
}

async function blockDigest(payload: ResponsePayload): Promise<string> {
  const hash = createHash('sha256').update(payload.headerBlock);
  if ('bytes' in payload.body) return hash.update(payload.body.bytes).digest('hex');
  for await (const chunk of createReadStream(payload.body.path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}


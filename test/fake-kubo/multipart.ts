/**
 * A streaming reader of multipart/form-data bodies (RFC 7578), as Kubo reads the files of a
 * command: part after part, each part's content streamed as it arrives, binary-safe, with or
 * without a filename. (A whole-body parser would hold a large CAR in memory and turns a part
 * without a filename into text, which Kubo does not.)
 */

export interface MultipartPart {
  /** Header names in lower case. */
  headers: Map<string, string>;
  /** The `name` of Content-Disposition. */
  name: string | undefined;
  /** The `filename` of Content-Disposition, percent-decoded as Kubo decodes it. */
  filename: string | undefined;
  content: AsyncGenerator<Uint8Array>;
}

export class MultipartError extends Error {}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;

/** The boundary of a `multipart/form-data; boundary=…` content type, or undefined if it is not one. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (contentType === undefined || !/^multipart\/form-data\s*(;|$)/i.test(contentType)) return undefined;
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

/** The parts of `body` in order; a part's content must be read (or is skipped) before the next part comes. */
export async function* multipartParts(body: AsyncIterable<Uint8Array>, boundary: string): AsyncGenerator<MultipartPart> {
  const reader = new BufferedReader(body[Symbol.asyncIterator]());
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // The first delimiter may open the body without its CRLF; anything before it is a preamble.
  await reader.skipPast(Buffer.from(`--${boundary}`));
  for (;;) {
    const after = await reader.take(2);
    if (after.equals(Buffer.from('--'))) return;
    if (!after.equals(CRLF)) throw new MultipartError('malformed multipart body: expected a line break after the boundary');
    const headers = parseHeaders(await reader.takeUntil(HEADER_END, MAX_HEADER_BYTES));
    const disposition = headers.get('content-disposition') ?? '';
    const content = reader.streamUntil(delimiter);
    yield { headers, name: parameter(disposition, 'name'), filename: decodeFilename(parameter(disposition, 'filename')), content };
    // Whatever the consumer left unread of this part is skipped.
    for await (const _ of content) {
      // discard
    }
  }
}

class BufferedReader {
  private buffer: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(private readonly source: AsyncIterator<Uint8Array>) {}

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.source.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    this.buffer = this.buffer.length === 0 ? Buffer.from(next.value) : Buffer.concat([this.buffer, next.value]);
    return true;
  }

  async take(length: number): Promise<Buffer> {
    while (this.buffer.length < length) {
      if (!(await this.fill())) throw new MultipartError('multipart body ended early');
    }
    const taken = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return taken;
  }

  async skipPast(marker: Buffer): Promise<void> {
    for (;;) {
      const at = this.buffer.indexOf(marker);
      if (at !== -1) {
        this.buffer = this.buffer.subarray(at + marker.length);
        return;
      }
      this.buffer = this.buffer.subarray(Math.max(0, this.buffer.length - marker.length));
      if (!(await this.fill())) throw new MultipartError('multipart body has no boundary');
    }
  }

  async takeUntil(marker: Buffer, limit: number): Promise<Buffer> {
    for (;;) {
      const at = this.buffer.indexOf(marker);
      if (at !== -1) {
        const taken = this.buffer.subarray(0, at);
        this.buffer = this.buffer.subarray(at + marker.length);
        return taken;
      }
      if (this.buffer.length > limit) throw new MultipartError('multipart part headers are too long');
      if (!(await this.fill())) throw new MultipartError('multipart body ended inside part headers');
    }
  }

  /** Yields bytes up to `marker` (consumed, not yielded), holding back only what could be the marker's start. */
  async *streamUntil(marker: Buffer): AsyncGenerator<Uint8Array> {
    for (;;) {
      const at = this.buffer.indexOf(marker);
      if (at !== -1) {
        const last = this.buffer.subarray(0, at);
        this.buffer = this.buffer.subarray(at + marker.length);
        if (last.length > 0) yield last;
        return;
      }
      const safe = this.buffer.length - (marker.length - 1);
      if (safe > 0) {
        const chunk = this.buffer.subarray(0, safe);
        this.buffer = this.buffer.subarray(safe);
        yield chunk;
      }
      if (!(await this.fill())) throw new MultipartError('multipart body ended inside a part');
    }
  }
}

function parseHeaders(block: Buffer): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.toString('utf8').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new MultipartError(`malformed multipart part header: ${JSON.stringify(line.slice(0, 80))}`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

function parameter(header: string, name: string): string | undefined {
  const match = new RegExp(`;\\s*${name}="((?:[^"\\\\]|\\\\.)*)"`, 'i').exec(header) ?? new RegExp(`;\\s*${name}=([^;\\s]+)`, 'i').exec(header);
  return match?.[1];
}

function decodeFilename(filename: string | undefined): string | undefined {
  if (filename === undefined) return undefined;
  try {
    return decodeURIComponent(filename);
  } catch {
    return filename;
  }
}

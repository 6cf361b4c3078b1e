/**
 * Saving what `ctx.fetch` returns: a response body streamed to a file, hashed on the way, with a
 * size limit. Shared by the task types that download; it touches no network itself.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PermanentError, RetryableError } from '../../src/ports/errors.js';
import type { FetchedResponse } from '../../src/ports/task-type.js';

/** A body grew past the caller's limit; the download stopped there. */
export class BodyTooLargeError extends PermanentError {
  override readonly name = 'BodyTooLargeError';
}

export interface SaveBodyOptions {
  signal?: AbortSignal;
  /** Stop with BodyTooLargeError once more than this many bytes arrived. */
  maxBytes?: number;
  /** Called after each chunk with the bytes written so far (throttle on the caller's side). */
  onBytes?: (bytes: number) => void;
  /** Also fed every chunk, e.g. a WARC block digest already fed the HTTP header block. */
  extraHash?: Hash;
}

export interface SavedBody {
  bytes: number;
  /** Hex SHA-256 of the body. */
  sha256: string;
}

/**
 * Streams a response body into a file, hashing as it goes: memory stays flat whatever the size.
 * Rejects on abort, on a body past maxBytes, and on a body shorter than its Content-Length.
 */
export async function saveBody(response: FetchedResponse, path: string, options: SaveBodyOptions = {}): Promise<SavedBody> {
  const hash = createHash('sha256');
  const { maxBytes, onBytes, extraHash } = options;
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (maxBytes !== undefined && bytes > maxBytes) {
        callback(new BodyTooLargeError(`${response.url.href} is larger than the limit of ${maxBytes} bytes; stopped after ${bytes} bytes`));
        return;
      }
      hash.update(chunk);
      extraHash?.update(chunk);
      onBytes?.(bytes);
      callback(null, chunk);
    },
  });
  await pipeline(response.body, meter, createWriteStream(path), options.signal ? { signal: options.signal } : {});
  const announced = contentLength(response);
  if (announced !== undefined && announced !== bytes) {
    throw new RetryableError(`${response.url.href} ended after ${bytes} of ${announced} bytes`);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** The Content-Length a response announced, if it is a valid number. */
export function contentLength(response: Pick<FetchedResponse, 'headers'>): number | undefined {
  const value = response.headers['content-length'];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}


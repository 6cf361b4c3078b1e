/**
 * The GETs of kiwix/zim, through the context's guarded fetch (every address a host resolves to
 * is vetted, the connection goes to exactly those, each redirect hop is vetted again), plus what
 * this task needs on top: a 2xx response or an error saying whether to retry, and small bodies
 * (checksum files, directory listings) read as text.
 */
import { PermanentError, RetryableError } from '../../../src/ports/errors.js';
import type { FetchedResponse, TaskFetch } from '../../../src/ports/task-type.js';

export type Get = (url: string) => Promise<FetchedResponse>;

/** A GET that follows redirects (download.kiwix.org answers with one to a mirror) and wants a 2xx. */
export function okGetter(fetch: TaskFetch, signal: AbortSignal): Get {
  return async (url) => {
    const got = await fetch.get(url, { signal, headers: { 'User-Agent': 'task-mgmt (kiwix/zim)' } });
    if (got.status >= 200 && got.status < 300) return got;
    got.body.destroy();
    const message = `GET ${got.url.href} answered ${got.status}`;
    // 429 and 5xx are the server's trouble, and may pass; any other 4xx will not.
    if (got.status === 429 || got.status >= 500) throw new RetryableError(message);
    throw new PermanentError(message);
  };
}

/** Reads a small response body as text, refusing bodies above `maxBytes`. */
export async function readText(got: FetchedResponse, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of got.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      got.body.destroy();
      throw new PermanentError(`${got.url.href} is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reading a request's body from someone who may send far more than is wanted, without holding more. */
import type { Hmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export type BodyRead = { kind: 'body'; body: Buffer } | { kind: 'too large' | 'over budget' | 'too slow'; bytes: number };

/**
 * The body; or, as soon as it passes `maxBytes`, `admit` refuses its size so far, or `deadlineMs`
 * passes, why not and the bytes read by then (what was read is dropped, the rest left unread: the
 * request is paused, not destroyed, so an answer can still be written on its connection). `hmac`
 * is fed each chunk as it arrives.
 */
export function readAtMost(
  req: IncomingMessage,
  options: { maxBytes: number; deadlineMs?: number; admit?: (size: number) => boolean; hmac?: Hmac },
): Promise<BodyRead> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const give = (kind: 'too large' | 'over budget' | 'too slow') => {
      stop();
      chunks.length = 0;
      req.pause();
      resolve({ kind, bytes: size });
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > options.maxBytes) give('too large');
      else if (options.admit && !options.admit(size)) give('over budget');
      else {
        chunks.push(chunk);
        options.hmac?.update(chunk);
      }
    };
    const onEnd = () => {
      stop();
      resolve({ kind: 'body', body: Buffer.concat(chunks, size) });
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const timer = options.deadlineMs === undefined ? undefined : setTimeout(() => give('too slow'), options.deadlineMs);
    timer?.unref();
    const stop = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

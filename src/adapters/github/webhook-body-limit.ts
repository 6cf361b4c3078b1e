/**
 * Webhook bodies come from anyone who can reach the app, and @octokit/webhooks buffers the whole
 * body before it checks the signature. GitHub caps payloads at 25 MB and does not deliver larger
 * ones (https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap), so a larger
 * body is not from GitHub: it is refused with 413 while it is read — at once when its
 * Content-Length says so, and as soon as a chunked body passes the cap — and never buffered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Probot } from 'probot';

/** 25 MiB: no body GitHub sends is larger (its cap is 25 MB). */
export const webhookMaxBytes = 25 * 1024 * 1024;

type WebhookMiddleware = Awaited<ReturnType<Probot['getNodeMiddleware']>>;

export interface WebhookBodyLimit {
  /** The webhook path (WEBHOOK_PATH); other requests pass untouched. */
  path: string;
  log: Logger;
  maxBytes?: number;
}

/**
 * A Probot whose webhook middleware reads the body itself, at most `maxBytes`, and hands it on
 * as `request.body` (the string form @octokit/webhooks accepts) instead of letting it buffer
 * the stream without limit.
 */
export function withWebhookBodyLimit(Base: typeof Probot, limit: WebhookBodyLimit): typeof Probot {
  return class extends Base {
    override async getNodeMiddleware(...args: Parameters<Probot['getNodeMiddleware']>): Promise<WebhookMiddleware> {
      return limitWebhookBodies(await super.getNodeMiddleware(...args), limit);
    }
  };
}

export function limitWebhookBodies(middleware: WebhookMiddleware, limit: WebhookBodyLimit): WebhookMiddleware {
  const maxBytes = limit.maxBytes ?? webhookMaxBytes;
  const path = withoutTrailingSlashes(limit.path);
  return async (req, res, next) => {
    if (req.method !== 'POST' || pathOf(req) !== path) return middleware(req, res, next);
    const declared = Number(req.headers['content-length']);
    if (declared > maxBytes) return refuse(req, res, declared);
    const body = await readAtMost(req, maxBytes);
    if (typeof body === 'number') return refuse(req, res, body);
    (req as IncomingMessage & { body?: string }).body = body.toString('utf8');
    return middleware(req, res, next);
  };

  function refuse(req: IncomingMessage, res: ServerResponse, bytes: number): true {
    // Only what identifies the delivery, never the body; header values are cut short.
    limit.log.warn(
      { deliveryId: header(req, 'x-github-delivery'), event: header(req, 'x-github-event'), bytes },
      `webhook body refused: larger than ${maxBytes} bytes, GitHub's cap for payloads`,
    );
    const body = JSON.stringify({ error: `the body is larger than ${maxBytes} bytes (25 MiB); GitHub caps webhook payloads at 25 MB` });
    // Connection: close makes Node close the socket once this is sent instead of reading the rest.
    res.writeHead(413, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close' }).end(body);
    return true;
  }
}

/** The body, or the number of bytes read when it passed `maxBytes` (the rest is dropped unread). */
function readAtMost(req: IncomingMessage, maxBytes: number): Promise<Buffer | number> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      stop();
      chunks.length = 0;
      req.pause();
      resolve(size);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** The path exactly as @octokit/webhooks' middleware works it out, so both agree on what is a webhook. */
function pathOf(req: IncomingMessage): string | undefined {
  try {
    return new URL(withoutTrailingSlashes(req.url ?? '/'), 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

function withoutTrailingSlashes(path: string): string {
  return path.replace(/\/+$/, '') || '/';
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value.slice(0, 100) : undefined;
}

/**
 * Webhook bodies come from anyone who can reach the app, and @octokit/webhooks buffers the whole
 * body before it checks the signature. GitHub caps payloads at 25 MB and does not deliver larger
 * ones (https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap), so a larger
 * body is not from GitHub: it is refused with 413 while it is read — at once when its
 * Content-Length says so, and as soon as a chunked body passes the cap — and never buffered.
 *
 * Many bodies just under the cap at once would still add up: the bodies being read and handled
 * share one budget (WEBHOOK_BODY_BUDGET), counted as their bytes arrive, and a body that would
 * pass it is refused with 503 and `Retry-After` while it is read, its bytes dropped. Counting what
 * arrived rather than what a Content-Length announces means a share of the budget costs its
 * bandwidth, and a body still arriving after GitHub's own 10 s (30 s on GitHub Enterprise
 * Server) is not from GitHub: it is refused with 408 and gives its share back.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { closeAfterAnswer } from '../net/close-after-answer.js';
import { readAtMost } from '../net/read-at-most.js';
import type { Probot } from 'probot';

/** 25 MiB: no body GitHub sends is larger (its cap is 25 MB). */
export const webhookMaxBytes = 25 * 1024 * 1024;
/** Bytes of webhook bodies read or handled at once, across connections (WEBHOOK_BODY_BUDGET's default). */
export const webhookBodyBudget = 100 * 1024 * 1024;
/** Longest a webhook body may take to arrive: GitHub gives up on a delivery after 10 s (30 s on GHES). */
export const webhookBodyDeadlineMs = 30_000;
/** What a 503 asks the sender to wait: bodies are handled in seconds, and their bytes come back then. */
export const webhookBusyRetryAfterSeconds = 5;

type WebhookMiddleware = Awaited<ReturnType<Probot['getNodeMiddleware']>>;

export interface WebhookBodyLimit {
  /** The webhook path (WEBHOOK_PATH); other requests pass untouched. */
  path: string;
  log: Logger;
  maxBytes?: number;
  /** Bytes of bodies read or handled at once, all connections together (default 100 MiB). */
  budgetBytes?: number;
  deadlineMs?: number;
  /**
   * The webhook secret. With it the signature is checked as the body arrives, and a body whose
   * signature does not match is refused with 400 without ever being decoded or handed on.
   */
  secret?: string;
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
  const budget = new ByteBudget(limit.budgetBytes ?? webhookBodyBudget);
  const deadlineMs = limit.deadlineMs ?? webhookBodyDeadlineMs;
  const path = withoutTrailingSlashes(limit.path);
  return async (req, res, next) => {
    if (req.method !== 'POST' || pathOf(req) !== path) return middleware(req, res, next);
    const declared = Number(req.headers['content-length']);
    if (declared > maxBytes) return refuse(req, res, 413, declared);
    // Each chunk takes its share of the budget as it arrives; it all comes back once the body is handled.
    let held = 0;
    const admit = (size: number) => {
      if (!budget.take(size - held)) return false;
      held = size;
      return true;
    };
    try {
      const signature = limit.secret === undefined ? undefined : sha256Signature(req);
      const hmac = signature === undefined ? undefined : createHmac('sha256', limit.secret!);
      const read = await readAtMost(req, { maxBytes, deadlineMs, admit, ...(hmac ? { hmac } : {}) });
      if (read.kind !== 'body') return refuse(req, res, refusals[read.kind], read.bytes);
      if (hmac && signature && !timingSafeEqual(hmac.digest(), signature)) return refuseSignature(req, res, read.body.length);
      (req as IncomingMessage & { body?: string }).body = read.body.toString('utf8');
      return await middleware(req, res, next);
    } finally {
      budget.give(held);
    }
  };

  function refuse(req: IncomingMessage, res: ServerResponse, status: 413 | 503 | 408, bytes: number): true {
    const why = {
      413: { log: `larger than ${maxBytes} bytes, GitHub's cap for payloads`, error: `the body is larger than ${maxBytes} bytes (25 MiB); GitHub caps webhook payloads at 25 MB` },
      503: { log: `webhook bodies being read and handled would pass ${budget.total} bytes (WEBHOOK_BODY_BUDGET)`, error: `too many webhook bodies are being read at once; try again in ${webhookBusyRetryAfterSeconds} s` },
      408: { log: `still arriving after ${deadlineMs} ms`, error: `the body took longer than ${deadlineMs / 1000} s to arrive` },
    }[status];
    // Only what identifies the delivery, never the body; header values are cut short.
    limit.log.warn({ deliveryId: header(req, 'x-github-delivery'), event: header(req, 'x-github-event'), bytes, status }, `webhook body refused: ${why.log}`);
    const body = JSON.stringify({ error: why.error });
    // The connection ends once this is sent instead of the rest being read, after a short linger
    // so that the sender, still sending, gets the answer rather than a reset.
    closeAfterAnswer(req, res);
    const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    res.writeHead(status, status === 503 ? { ...headers, 'retry-after': String(webhookBusyRetryAfterSeconds) } : headers).end(body);
    return true;
  }

  /** As @octokit/webhooks answers a wrong signature, without its cost: the body is never decoded. */
  function refuseSignature(req: IncomingMessage, res: ServerResponse, bytes: number): true {
    limit.log.warn({ deliveryId: header(req, 'x-github-delivery'), event: header(req, 'x-github-event'), bytes, status: 400 }, 'webhook refused: its signature does not match the body and WEBHOOK_SECRET');
    const body = JSON.stringify({ error: 'Error: [@octokit/webhooks] signature does not match event payload and secret' });
    res.writeHead(400, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }).end(body);
    return true;
  }
}

/** The X-Hub-Signature-256 header's digest, when it has the form GitHub sends; else @octokit/webhooks judges it. */
function sha256Signature(req: IncomingMessage): Buffer | undefined {
  const match = /^sha256=([0-9a-f]{64})$/i.exec(header(req, 'x-hub-signature-256') ?? '');
  return match ? Buffer.from(match[1]!, 'hex') : undefined;
}

const refusals = { 'too large': 413, 'over budget': 503, 'too slow': 408 } as const;

/** Bytes shared by every connection: taken while bodies arrive, given back when they are done with. */
class ByteBudget {
  private used = 0;
  constructor(readonly total: number) {}
  take(bytes: number): boolean {
    if (this.used + bytes > this.total) return false;
    this.used += bytes;
    return true;
  }
  give(bytes: number): void {
    this.used -= bytes;
  }
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

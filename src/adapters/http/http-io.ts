/**
 * What every HTTP handler of the API shares: the error that carries its status and stable code,
 * reading a bounded body, writing JSON, and checking the bearer token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { closeAfterAnswer } from '../net/close-after-answer.js';
import { readAtMost } from '../net/read-at-most.js';
import type { ErrorBody, ErrorCode } from './api-schemas.js';

/** Bodies larger than this are refused with 413 before they are parsed. */
export const maxBodyBytes = 1024 * 1024;

const statusOf: Record<ErrorCode, number> = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  invalid_request: 400,
  refused: 422,
  conflict: 409,
  internal: 500,
  unavailable: 503,
};

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options: { field?: string | undefined; status?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.status = options.status ?? statusOf[code];
    this.field = options.field;
  }
  readonly field: string | undefined;

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.field !== undefined ? { field: this.field } : {}) } };
  }
}

/**
 * Who called: a service token (API_TOKENS), or a GitHub user token, which gets exactly the
 * rights that user has through comments (the same policy decides).
 */
export type ApiActor =
  | {
      kind: 'service';
      /** `service:<first 12 hex digits of the token's sha256>`: stable, and says nothing usable about the token. */
      name: string;
    }
  | { kind: 'user'; /** The GitHub login. */ name: string };

/** Asks GitHub whose token this is; null when GitHub does not know it. */
export type UserTokenResolver = (token: string) => Promise<string | null>;

/**
 * Checks `Authorization: Bearer <token>` against the service tokens. Digests are compared, so
 * the comparison takes the same time whatever the lengths, and every token is compared so the
 * time says nothing about which one matched.
 */
export function createAuthenticator(tokens: readonly string[], resolveUser?: UserTokenResolver): (req: IncomingMessage) => Promise<ApiActor> {
  const known = tokens.filter((token) => token.length > 0).map((token) => sha256(token));
  return async (req) => {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
    if (!match) throw new ApiError('unauthorized', 'send `Authorization: Bearer <token>` with a service token or a GitHub user token');
    const given = sha256(match[1]!);
    let matched = false;
    for (const digest of known) matched = timingSafeEqual(digest, given) || matched;
    if (matched) return { kind: 'service', name: `service:${given.toString('hex').slice(0, 12)}` };
    const login = resolveUser ? await resolveUser(match[1]!) : null;
    if (login === null) throw new ApiError('unauthorized', 'the bearer token is not valid');
    return { kind: 'user', name: login };
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Reads the whole body, at most `maxBodyBytes`; 413 beyond that. The request is only paused, not
 * destroyed, when it is too large, so the 413 can still be written on its connection.
 */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBodyBytes) throw tooLarge();
  const read = await readAtMost(req, { maxBytes: maxBodyBytes });
  if (read.kind !== 'body') throw tooLarge();
  return read.body;
}

function tooLarge(): ApiError {
  return new ApiError('invalid_request', `the body is larger than ${maxBodyBytes} bytes (1 MiB)`, { status: 413 });
}

/** Parses a JSON body; 400 naming the position when it is not JSON. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const body = await readBody(req);
  if (body.length === 0) throw new ApiError('invalid_request', 'the body is empty; send a JSON object');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new ApiError('invalid_request', `the body is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, error: ApiError): void {
  if (res.headersSent) {
    res.destroy(error);
    return;
  }
  // After a 413 the connection is closed once the answer is sent, so the rest of the body is
  // neither read in full nor left hanging (as the webhook path does).
  if (error.status === 413) closeAfterAnswer(res.req, res);
  sendJson(res, error.status, error.toBody(), error.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
}

/** The path and query of a request (the host is irrelevant: only the path routes). */
export function requestUrl(req: IncomingMessage): URL {
  return new URL(req.url ?? '/', 'http://localhost');
}

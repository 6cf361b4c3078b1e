import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AppAuth } from './app-auth.js';
import type { OpenApiValidator, OpenApiViolation } from './openapi-validator.js';
import { githubError, type RouteResponse, type Router } from './router.js';

export interface RecordedRequest {
  method: string;
  /** Path as requested, including /api/v3. */
  path: string;
  query: Record<string, string>;
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  timestamp: number;
  /** When the request arrived, in `preciseNow()` milliseconds. */
  startedAt: number;
  /** When the response was sent (preciseNow() ms); undefined while the request is being answered. */
  endedAt?: number;
}

/**
 * Milliseconds since the epoch with sub-millisecond precision, on the monotonic clock: the clock
 * of `startedAt` / `endedAt` here and of a webhook delivery's `startedAt`.
 */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

export interface FaultRule {
  method?: string;
  /** Tested against the request path (with /api/v3, without the query string). */
  path: RegExp;
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** How many matching requests to fail (default 1). */
  times?: number;
}

/** A handler for paths outside /api/v3 that need no token (codeload downloads). */
/** Paths outside /api/v3 (codeload, the OAuth pages): given the request's method, body and content type. */
export type RawHandler = (url: URL, res: ServerResponse, request: { method: string; body: string; contentType: string | undefined }) => Promise<boolean>;

/**
 * The HTTP side of the fake: records every request, injects faults, authenticates like
 * GitHub, checks bodies against the OpenAPI description, then dispatches to the router.
 */
export class FakeHttpServer {
  readonly requests: RecordedRequest[] = [];
  readonly unhandled: RecordedRequest[] = [];
  readonly openapiViolations: OpenApiViolation[] = [];
  private readonly faults: Array<FaultRule & { remaining: number }> = [];
  private server: Server | undefined;
  /** Least milliseconds between a request's arrival and its answer, like the round trip to a distant GitHub. */
  latencyMs = 0;

  constructor(
    private readonly router: Router,
    private readonly auth: AppAuth,
    private readonly validator: OpenApiValidator,
    private readonly raw: RawHandler,
  ) {}

  async listen(): Promise<number> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) send(res, { status: 500, body: { message: String(error) } });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  failNext(rule: FaultRule): void {
    this.faults.push({ ...rule, remaining: rule.times ?? 1 });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = preciseNow();
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const method = (req.method ?? 'GET').toUpperCase();
    const rawBody = await readBody(req);
    let body: unknown;
    let bodyIsJson = true;
    try {
      body = rawBody.length > 0 ? JSON.parse(rawBody) : undefined;
    } catch {
      body = rawBody;
      bodyIsJson = false;
    }
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: 0,
      body,
      headers: req.headers,
      timestamp: Date.now(),
      startedAt,
    };
    this.requests.push(record);
    const ended = () => {
      record.endedAt ??= preciseNow();
    };
    res.once('finish', ended);
    res.once('close', ended);
    // No answer leaves before the latency is over; the fake's own work runs meanwhile.
    const due = this.latencyMs > 0 ? new Promise((resolve) => setTimeout(resolve, this.latencyMs)) : undefined;
    const reply = async (response: RouteResponse) => {
      await due;
      send(res, response);
    };

    const fault = this.faults.find((f) => f.remaining > 0 && (!f.method || f.method.toUpperCase() === method) && f.path.test(url.pathname));
    if (fault) {
      fault.remaining -= 1;
      record.status = fault.status;
      await reply({ status: fault.status, headers: fault.headers, body: fault.body ?? { message: `Injected failure ${fault.status}`, documentation_url: 'https://docs.github.com/rest' } });
      return;
    }

    if (!url.pathname.startsWith('/api/v3/')) {
      await due;
      if (await this.raw(url, res, { method, body: rawBody, contentType: req.headers['content-type'] })) {
        record.status = res.statusCode;
        return;
      }
      this.unhandled.push(record);
      record.status = 404;
      await reply(githubError(404, 'Not Found'));
      return;
    }

    // GitHub answers /contents and /tarball without a trailing path as the root / default branch.
    const path = url.pathname.slice('/api/v3'.length).replace(/\/(contents|tarball)$/, '/$1/');
    const matched = this.router.match(method, path);
    if (!matched) {
      this.unhandled.push(record);
      record.status = 404;
      await reply(githubError(404, 'Not Found'));
      return;
    }

    const auth = this.auth.authenticate(req.headers.authorization);
    const needed = matched.route.caller;
    if (auth.kind === 'none' || auth.kind !== needed) {
      // GitHub: a missing or bad credential is 401; an installation token on an app-only
      // endpoint (or a JWT elsewhere) is refused too.
      const message = auth.kind === 'none' ? auth.message : needed === 'app' ? 'A JSON web token could not be decoded' : 'Bad credentials';
      const response = githubError(401, message);
      record.status = 401;
      await reply(response);
      return;
    }

    if (!bodyIsJson) {
      this.openapiViolations.push({ operation: matched.route.template, method, path, error: 'request body is not JSON' });
      record.status = 400;
      await reply(githubError(400, 'Problems parsing JSON'));
      return;
    }
    this.openapiViolations.push(...this.validator.check(method, path, body, rawBody.length > 0));

    const response = await matched.route.handler({ method, path, params: matched.params, query: url.searchParams, body, auth });
    record.status = response.status;
    await reply(response);
  }
}

function send(res: ServerResponse, response: RouteResponse): void {
  const headers: Record<string, string> = {
    'x-github-media-type': 'github.v3; format=json',
    'x-ratelimit-limit': '5000',
    'x-ratelimit-remaining': '4999',
    'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
    'x-ratelimit-used': '1',
    'x-ratelimit-resource': 'core',
    'x-github-request-id': Math.random().toString(16).slice(2, 10).toUpperCase(),
    ...Object.fromEntries(Object.entries(response.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
  };
  if (response.body === undefined || response.body === '' || response.status === 204) {
    res.writeHead(response.status, headers);
    res.end();
    return;
  }
  const text = typeof response.body === 'string' ? response.body : JSON.stringify(response.body);
  headers['content-type'] ??= 'application/json; charset=utf-8';
  res.writeHead(response.status, headers);
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

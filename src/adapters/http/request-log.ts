/**
 * One short line per HTTP request (README "Security model", Webhooks). Probot's Server logs every
 * request through pino-http, whose line holds every request header, the whole URL with its query
 * and an id taken from the client's `X-Request-Id` or `X-GitHub-Delivery` header: a stranger's
 * 16 KB of headers made a 16 KB line, and a header can carry anything. Probot 14's Server has no
 * way to change that (its `loggingOptions` is typed but never read), so its `http` logger is made
 * silent and the app logs requests itself: method, path without the query, status, duration, and
 * for a webhook its delivery id and event, each cut short.
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

/** Longest path logged, in characters; longer ones are cut and end in `…`. */
export const maxLoggedPathChars = 200;
/** Longest delivery id or event logged (GitHub's are a GUID and a short name). */
export const maxLoggedHeaderChars = 100;

/**
 * The logger to hand Probot's Server: `log` itself for everything it and the Probot app log,
 * except the `http` child it gives pino-http, which is silent.
 */
export function withoutProbotRequestLog(log: Logger): Logger {
  const server = log.child({});
  server.onChild = (child) => {
    // Only the Server's own children are looked at; their children log as they are told.
    child.onChild = () => undefined;
    if (child.bindings().name === 'http') child.level = 'silent';
  };
  return server;
}

/**
 * Logs each request of `server` once, when its answer is sent or its connection closes. Added in
 * front of the other listeners, so the duration counts from the request's arrival.
 */
export function logRequests(server: HttpServer, log: Logger): void {
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    let logged = false;
    const done = () => {
      if (logged) return;
      logged = true;
      const fields = {
        method: req.method,
        path: pathOf(req.url),
        status: res.statusCode,
        durationMs: Math.round(performance.now() - started),
        ...headerField('deliveryId', req.headers['x-github-delivery']),
        ...headerField('event', req.headers['x-github-event']),
      };
      const closed = res.writableFinished ? '' : ' (connection closed before the answer was sent)';
      log.info(fields, `${fields.method} ${fields.path} ${fields.status} - ${fields.durationMs}ms${closed}`);
    };
    res.once('finish', done);
    res.once('close', done);
  });
}

/** The path without its query (which may carry an OAuth code or a token), cut short. */
function pathOf(url: string | undefined): string {
  return cut((url ?? '').split(/[?#]/, 1)[0]!, maxLoggedPathChars);
}

function headerField<K extends string>(key: K, value: string | string[] | undefined): Partial<Record<K, string>> {
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? {} : ({ [key]: cut(first, maxLoggedHeaderChars) } as Record<K, string>);
}

function cut(text: string, max: number): string {
  // Control characters would only confuse whoever reads the log in a terminal.
  const clean = text.replace(/\p{Cc}/gu, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

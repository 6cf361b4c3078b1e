/**
 * `GET /metrics` as a node:http route (the app mounts it beside its API), and the small server a
 * `task-mgmt worker` runs on METRICS_PORT: `/metrics` and `/healthz`, nothing else.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { METRICS_CONTENT_TYPE } from './prometheus-metrics.js';

export interface Exposition {
  expose(): Promise<string>;
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0]!;
}

/** Answers `GET`/`HEAD /metrics`; false for anything else. */
export function metricsRoute(metrics: Exposition): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    if (pathOf(req) !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const text = await metrics.expose();
    res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
    return true;
  };
}

export interface MetricsServerOptions {
  port: number;
  /** Where to listen; all interfaces unless given (Prometheus scrapes from elsewhere). */
  host?: string;
  metrics: Exposition;
  /** For `/healthz`: null when healthy, else why not (one line). */
  unhealthy: () => string | null;
}

export interface MetricsServer {
  /** The port it listens on (the one chosen when asked for 0 in tests). */
  readonly port: number;
  close(): Promise<void>;
}

/** Listens for `/metrics` and `/healthz`; fails with a clear message when the port is taken. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const route = metricsRoute(options.metrics);
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (await route(req, res)) return;
      if (pathOf(req) === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
        const reason = options.unhealthy();
        res.writeHead(reason ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify(reason ? { status: 'unavailable', reason } : { status: 'ok' }));
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: this port serves /metrics and /healthz\n');
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('could not collect the metrics\n');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(`cannot serve metrics on port ${options.port}${error.code === 'EADDRINUSE' ? ': the port is in use (set METRICS_PORT, or 0 to turn metrics off)' : `: ${error.message}`}`)),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

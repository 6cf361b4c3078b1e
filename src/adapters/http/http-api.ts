/**
 * The whole HTTP surface besides the webhooks, as one handler for Probot's server
 * (`options.addHandler(createHttpApi(deps))`): the JSON API (`/api/runs…`, `/api/openapi.json`),
 * JSON-RPC (`/rpc`), Prometheus metrics (`/metrics`) and, given a block reader, the IPFS gateway
 * (`/ipfs/…`). It returns false for any other path, so the webhooks, `/healthz` and Probot's own
 * routes keep working beside it.
 */
import { createApiHandler, type ApiHandlerDeps, type HttpHandler } from './api-handler.js';
import { createIpfsGateway, type IpfsGatewayDeps } from './ipfs-gateway.js';
import { createMetricsHandler } from './metrics-handler.js';
import type { Exposition } from '../metrics/metrics-server.js';
import { createRpcHandler } from './rpc-handler.js';

export type HttpApiDeps = ApiHandlerDeps & {
  /** Serves `/metrics` from these metrics; without them `/metrics` is not served. */
  metrics?: Exposition;
  /** Serves `/ipfs/…` from these blocks to whom `access` allows; callers authenticate as for the API. */
  gateway?: Pick<IpfsGatewayDeps, 'blocks' | 'access'>;
};

export function createHttpApi(deps: HttpApiDeps): HttpHandler {
  const handlers = [
    createApiHandler(deps),
    createRpcHandler(deps),
    ...(deps.metrics ? [createMetricsHandler({ metrics: deps.metrics })] : []),
    ...(deps.gateway
      ? [createIpfsGateway({ ...deps.gateway, tokens: deps.tokens, ...(deps.resolveUser ? { resolveUser: deps.resolveUser } : {}), log: deps.log })]
      : []),
  ];
  return async (req, res) => {
    for (const handler of handlers) {
      try {
        if (await handler(req, res)) return true;
      } catch (error) {
        // The API and RPC handlers answer their own failures; this catches the rest (a scrape whose collection failed).
        deps.log.error({ err: error, path: req.url }, 'HTTP request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('internal error\n');
        else res.destroy();
        return true;
      }
    }
    return false;
  };
}

/**
 * `GET /metrics` on the app's HTTP surface: Prometheus' text exposition of the process's metrics
 * (src/adapters/metrics/prometheus-metrics.ts). No authentication, as Prometheus scrapes it.
 */
import type { HttpHandler } from './api-handler.js';
import { metricsRoute, type Exposition } from '../metrics/metrics-server.js';

export function createMetricsHandler(deps: { metrics: Exposition }): HttpHandler {
  return metricsRoute(deps.metrics);
}

/** A worker's /metrics and /healthz server, on a real port. */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';

describe('the metrics server', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves the exposition and says whether the queue connection is up', async () => {
    let reason: string | null = null;
    server = await startMetricsServer({ port: 0, host: '127.0.0.1', metrics: { expose: async () => 'up 1\n' }, unhealthy: () => reason });
    const base = `http://127.0.0.1:${server.port}`;
    const scrape = await fetch(`${base}/metrics`);
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await scrape.text()).toBe('up 1\n');

    const healthy = await fetch(`${base}/healthz`);
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toStrictEqual({ status: 'ok' });
    reason = 'not connected to the queue (rabbitmq)';
    const down = await fetch(`${base}/healthz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toStrictEqual({ status: 'unavailable', reason: 'not connected to the queue (rabbitmq)' });

    const other = await fetch(`${base}/api/runs`);
    expect(other.status).toBe(404);
    expect(await other.text()).toBe('not found: this port serves /metrics and /healthz\n');
  });

  it('answers 500 when collecting fails, and keeps serving', async () => {
    let fail = true;
    server = await startMetricsServer({
      port: 0,
      host: '127.0.0.1',
      metrics: { expose: async () => (fail ? Promise.reject(new Error('boom')) : 'ok 1\n') },
      unhealthy: () => null,
    });
    const failed = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(failed.status).toBe(500);
    expect(await failed.text()).toBe('could not collect the metrics\n');
    fail = false;
    expect(await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text()).toBe('ok 1\n');
  });

  it('refuses a port in use with one line that names METRICS_PORT', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      await expect(startMetricsServer({ port, host: '127.0.0.1', metrics: { expose: async () => '' }, unhealthy: () => null })).rejects.toThrow(
        `cannot serve metrics on port ${port}: the port is in use (set METRICS_PORT, or 0 to turn metrics off)`,
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

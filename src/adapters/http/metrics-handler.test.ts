/** GET /metrics on a real server: the exposition text Prometheus scrapes, kept without querying the store. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, newRun } from '../../../test/contracts/run-store.contract.js';
import { MemoryRepoHost } from '../local/memory-repo-host.js';
import { SqliteRunStore } from '../store/sqlite-run-store.js';
import { withEvents } from '../events/eventing-run-store.js';
import { PrometheusMetrics } from '../metrics/prometheus-metrics.js';
import { ReadAccess } from '../../core/run-service/run-service.js';
import type { RunStore } from '../../ports/run-store.js';
import { createHttpApi } from './http-api.js';
import { sample } from '../../../test/support/prometheus-text.js';

describe('GET /metrics', () => {
  let sqlite: SqliteRunStore;
  let store: RunStore & { flush(): Promise<void> };
  let metrics: PrometheusMetrics;
  let depth: number;
  let server: Server;
  let base: string;
  let storeQueries = 0;

  beforeEach(async () => {
    sqlite = await SqliteRunStore.open(':memory:');
    depth = 7;
    metrics = new PrometheusMetrics({ role: 'app', queueDepth: async () => depth });
    store = withEvents(sqlite, metrics.runEvents(), pino({ level: 'silent' }));
    const unused = async (): Promise<never> => {
      throw new Error('not called by /metrics');
    };
    // Any read of the store during a scrape is counted: there must be none.
    const counting = new Proxy(store, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (typeof key === 'string' && /^(list|count|get)/.test(key)) storeQueries += 1;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const handler = createHttpApi({
      store: counting,
      tokens: ['t'],
      runs: { create: unused, cancel: unused, pin: unused },
      reads: new ReadAccess({ hostFor: async () => new MemoryRepoHost(), now: () => new Date() }),
      log: pino({ level: 'silent' }),
      metrics,
    });
    server = createServer((req, res) => {
      void handler(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  });

  it('counts runs by state from the moves the store records, and exposes durations, GitHub headroom, IPFS bytes and queue depth', async () => {
    const running = await store.createRun(newRun(), at(1));
    await store.createRun(newRun(), at(2));
    const cancelled = await store.createRun(newRun(), at(3));
    await store.claimRun(running.id, { workerId: 'w', leaseUntil: at(100), maxRunningInRepo: 5 }, at(4));
    await store.transition(cancelled.id, 'cancel', at(5));
    const finished = await store.transition(running.id, 'succeed', at(20), {}, { heldBy: 'w' });
    await store.flush();
    metrics.runFinished(finished!);
    for (const seconds of [120, 10 * 24 * 3600]) metrics.runFinished({ state: 'failed', startedAt: at(10), finishedAt: at(10 + seconds) });
    // A run cancelled before it started has no duration to count.
    metrics.runFinished({ state: 'cancelled', startedAt: null, finishedAt: at(10) });
    metrics.webhookAccepted(0.02);
    metrics.github.request(200);
    metrics.github.request(200);
    metrics.github.request(404);
    metrics.github.rateLimit(4990, 5000);
    metrics.outputsAdded(1234);
    metrics.outputsAdded(0);

    storeQueries = 0;
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    expect(storeQueries).toBe(0);
    const lines = text.split('\n');
    const value = (name: string, labels: Record<string, string> = {}) => sample(text, name, { ...labels, role: 'app' });

    expect(lines).toContain('# TYPE task_mgmt_runs_total counter');
    expect(value('task_mgmt_runs_total', { state: 'queued' })).toBe(3);
    expect(value('task_mgmt_runs_total', { state: 'running' })).toBe(1);
    expect(value('task_mgmt_runs_total', { state: 'succeeded' })).toBe(1);
    expect(value('task_mgmt_runs_total', { state: 'cancelled' })).toBe(1);
    expect(value('task_mgmt_runs_total', { state: 'timed_out' })).toBe(0);

    expect(lines).toContain('# TYPE task_mgmt_run_duration_seconds histogram');
    expect(value('task_mgmt_run_duration_seconds_bucket', { le: '15', state: 'succeeded' })).toBe(0);
    expect(value('task_mgmt_run_duration_seconds_bucket', { le: '60', state: 'succeeded' })).toBe(1);
    expect(value('task_mgmt_run_duration_seconds_bucket', { le: '300', state: 'failed' })).toBe(1);
    expect(value('task_mgmt_run_duration_seconds_bucket', { le: '+Inf', state: 'failed' })).toBe(2);
    expect(value('task_mgmt_run_duration_seconds_sum', { state: 'failed' })).toBe(120 + 10 * 24 * 3600);
    expect(value('task_mgmt_run_duration_seconds_count', { state: 'failed' })).toBe(2);
    expect(lines.some((line) => line.includes('state="cancelled"') && line.startsWith('task_mgmt_run_duration'))).toBe(false);

    expect(value('task_mgmt_webhook_seconds_bucket', { le: '0.025' })).toBe(1);
    expect(value('task_mgmt_github_requests_total', { status: '200' })).toBe(2);
    expect(value('task_mgmt_github_requests_total', { status: '404' })).toBe(1);
    expect(value('task_mgmt_github_rate_limit_remaining')).toBe(4990);
    expect(value('task_mgmt_github_rate_limit_limit')).toBe(5000);
    expect(value('task_mgmt_ipfs_added_bytes_total')).toBe(1234);
    expect(value('task_mgmt_queue_depth')).toBe(7);
    // Node's own: process, event-loop lag and garbage collection.
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds']) {
      expect(lines, name).toContain(`# TYPE ${name} ${name === 'nodejs_gc_duration_seconds' ? 'histogram' : name.endsWith('_total') ? 'counter' : 'gauge'}`);
    }
  });

  it('makes the queue depth NaN when the queue does not answer, instead of failing the scrape', async () => {
    const hung = new PrometheusMetrics({ role: 'worker', queueDepth: () => new Promise<number>(() => undefined) });
    const started = Date.now();
    const text = await hung.expose();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(text).toContain('# TYPE task_mgmt_queue_depth gauge');
    expect(sample(text, 'task_mgmt_queue_depth', { role: 'worker' })).toBeNaN();
    const failing = new PrometheusMetrics({ role: 'worker', queueDepth: () => Promise.reject(new Error('down')) });
    expect(sample(await failing.expose(), 'task_mgmt_queue_depth', { role: 'worker' })).toBeNaN();
    // Before GitHub has answered, the headroom is unknown, not 0.
    expect(sample(text, 'task_mgmt_github_rate_limit_remaining', { role: 'worker' })).toBeNaN();
  });

  it('leaves other paths and methods to other handlers', async () => {
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${base}/metricsx`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'HEAD' })).status).toBe(200);
  });
});

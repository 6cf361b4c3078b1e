/** GET /metrics on a real server: the exposition text Prometheus scrapes. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, newRun } from '../../../test/contracts/run-store.contract.js';
import { MemoryRepoHost } from '../local/memory-repo-host.js';
import { SqliteRunStore } from '../store/sqlite-run-store.js';
import { ReadAccess } from '../../core/run-service/run-service.js';
import { createHttpApi } from './http-api.js';
import { Counter, countGithubRequest, Histogram, MetricsRegistry, observeRunFinished, observeWebhook, setRateLimitRemaining } from './metrics-handler.js';

describe('GET /metrics', () => {
  let store: SqliteRunStore;
  let server: Server;
  let base: string;

  beforeEach(async () => {
    store = await SqliteRunStore.open(':memory:');
    const unused = async (): Promise<never> => {
      throw new Error('not called by /metrics');
    };
    const handler = createHttpApi({ store, tokens: ['t'], runs: { create: unused, cancel: unused, pin: unused }, reads: new ReadAccess({ hostFor: async () => new MemoryRepoHost(), now: () => new Date() }), log: pino({ level: 'silent' }) });
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

  it('exposes runs by state, the histograms, the counter and the gauge without authentication', async () => {
    const running = await store.createRun(newRun(), at(1));
    await store.createRun(newRun(), at(2));
    await store.createRun(newRun(), at(3));
    await store.transition(running.id, 'claim', at(4));
    for (const seconds of [3, 120, 10 * 24 * 3600]) observeRunFinished({ startedAt: at(10), finishedAt: at(10 + seconds) });
    // A run cancelled before it started has no duration to count.
    observeRunFinished({ startedAt: null, finishedAt: at(10) });
    observeWebhook(0.02);
    countGithubRequest(200);
    countGithubRequest(200);
    countGithubRequest(404);
    setRateLimitRemaining(4990);

    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    const lines = text.split('\n');
    expect(text.endsWith('\n')).toBe(true);

    expect(lines).toContain('# TYPE task_mgmt_runs gauge');
    expect(lines).toContain('task_mgmt_runs{state="queued"} 2');
    expect(lines).toContain('task_mgmt_runs{state="running"} 1');
    expect(lines).toContain('task_mgmt_runs{state="timed_out"} 0');

    expect(lines).toContain('# TYPE task_mgmt_run_duration_seconds histogram');
    expect(lines).toContain('task_mgmt_run_duration_seconds_bucket{le="1"} 0');
    expect(lines).toContain('task_mgmt_run_duration_seconds_bucket{le="5"} 1');
    expect(lines).toContain('task_mgmt_run_duration_seconds_bucket{le="300"} 2');
    expect(lines).toContain('task_mgmt_run_duration_seconds_bucket{le="+Inf"} 3');
    expect(lines).toContain(`task_mgmt_run_duration_seconds_sum ${3 + 120 + 10 * 24 * 3600}`);
    expect(lines).toContain('task_mgmt_run_duration_seconds_count 3');

    expect(lines).toContain('# TYPE task_mgmt_webhook_seconds histogram');
    expect(lines).toContain('task_mgmt_webhook_seconds_bucket{le="0.01"} 0');
    expect(lines).toContain('task_mgmt_webhook_seconds_bucket{le="0.025"} 1');
    expect(lines).toContain('task_mgmt_webhook_seconds_count 1');

    expect(lines).toContain('# TYPE task_mgmt_github_requests_total counter');
    expect(lines).toContain('task_mgmt_github_requests_total{status="200"} 2');
    expect(lines).toContain('task_mgmt_github_requests_total{status="404"} 1');
    expect(lines).toContain('# TYPE task_mgmt_github_rate_limit_remaining gauge');
    expect(lines).toContain('task_mgmt_github_rate_limit_remaining 4990');

    // Every line is a HELP, a TYPE or a sample of the metric its TYPE announced, and every metric has both.
    let current = '';
    for (const line of lines.filter((l) => l !== '')) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
      if (type) {
        current = type[1]!;
        continue;
      }
      if (line.startsWith('# HELP ')) continue;
      expect(line, line).toMatch(/^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.eInfNa]+$/);
      expect(line.startsWith(current), `${line} under ${current}`).toBe(true);
    }
    const helps = lines.filter((l) => l.startsWith('# HELP ')).map((l) => l.split(' ')[2]);
    const types = lines.filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]);
    expect(helps).toStrictEqual(types);
    expect(new Set(types).size).toBe(types.length);
  });

  it('leaves other paths and methods to other handlers', async () => {
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${base}/metricsx`)).status).toBe(404);
  });
});

describe('MetricsRegistry', () => {
  it('escapes label values and help text, and keeps buckets cumulative', () => {
    const registry = new MetricsRegistry();
    const counter = registry.add(new Counter('odd_total', 'A help with a \\ and a\nnewline.'));
    counter.inc({ path: 'a"b\\c\nd' }, 2);
    const histogram = registry.add(new Histogram('h_seconds', 'h', [1, 0.5]));
    histogram.observe(0.5);
    histogram.observe(0.7);
    histogram.observe(Number.NaN);
    expect(registry.expose()).toBe(
      [
        '# HELP odd_total A help with a \\\\ and a\\nnewline.',
        '# TYPE odd_total counter',
        'odd_total{path="a\\"b\\\\c\\nd"} 2',
        '# HELP h_seconds h',
        '# TYPE h_seconds histogram',
        'h_seconds_bucket{le="0.5"} 1',
        'h_seconds_bucket{le="1"} 2',
        'h_seconds_bucket{le="+Inf"} 2',
        'h_seconds_sum 1.2',
        'h_seconds_count 2',
        '',
      ].join('\n'),
    );
    expect(() => counter.inc({}, -1)).toThrow(RangeError);
    expect(() => registry.add(new Counter('odd_total', 'again'))).toThrow(/twice/);
  });
});

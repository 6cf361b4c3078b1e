/**
 * The metrics as Prometheus sees them (README "JSON API, JSON-RPC, events and metrics"): the real
 * app and a real `task-mgmt worker` process, sharing PostgreSQL and a Redis queue, run a task;
 * then both `/metrics` are scraped live, the worker's `/healthz` answers, and every metric the
 * Grafana dashboard in deploy/grafana queries is one that both processes expose.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeGitHub } from '../fake-github/index.js';
import { createTestDatabase } from '../support/postgres.js';
import { projectRoot, startApp, type AppProcess } from '../support/app-process.js';
import { metricNames, sample } from '../support/prometheus-text.js';
import { requireServices } from '../support/services.js';

const token = `svc-${randomUUID()}`;

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

/** PromQL's words that are not metric names: functions are told apart by the `(` after them. */
const promqlKeywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** The metric names one PromQL expression selects. */
export function metricsOfExpr(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\$__\w+/g, '');
  const names: string[] = [];
  for (const match of bare.matchAll(/[a-zA-Z_:][\w:]*/g)) {
    const word = match[0];
    const after = bare.slice(match.index + word.length).trimStart();
    if (after.startsWith('(') || promqlKeywords.has(word.toLowerCase())) continue;
    names.push(word);
  }
  return names;
}

/** Whether an exposition has `name`: declared itself, or a histogram's or summary's series. */
function exposes(text: string, name: string): boolean {
  const declared = metricNames(text);
  if (declared.has(name)) return true;
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  return base !== undefined && new RegExp(`^# TYPE ${base} (histogram|summary)$`, 'm').test(text);
}

const dashboard = JSON.parse(readFileSync(join(projectRoot, 'deploy', 'grafana', 'task-mgmt.json'), 'utf8')) as { panels: Panel[] };

describe('the Grafana dashboard', () => {
  it('reads metric names out of PromQL the way the dashboard writes it', () => {
    expect(metricsOfExpr('histogram_quantile(0.95, sum by (le) (rate(task_mgmt_run_duration_seconds_bucket[$__rate_interval])))')).toStrictEqual([
      'task_mgmt_run_duration_seconds_bucket',
    ]);
    expect(metricsOfExpr('min by (role, instance) (a_remaining / b_limit{role="app", x=~"y|z"}) or on() vector(0)')).toStrictEqual(['a_remaining', 'b_limit']);
    // Every panel queries something.
    for (const panel of dashboard.panels) expect(panel.targets?.length ?? 0, panel.title).toBeGreaterThan(0);
  });
});

const ready = (await requireServices('docker')) && (await requireServices('redis', 'postgres'));

describe('metrics of live processes', () => {
  let gh: FakeGitHub | undefined;
  const processes: AppProcess[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.stop()));
    await gh?.close();
    gh = undefined;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it.skipIf(!ready)('the app and a worker expose every metric the dashboard queries, with what a run left in them', { timeout: 120_000 }, async () => {
    gh = await FakeGitHub.start();
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const shared = { QUEUE_URL: 'redis://127.0.0.1:6379', QUEUE_PREFIX: `task-mgmt-test-${randomUUID()}`, DATABASE_URL: database.url, API_TOKENS: token };
    const app = await startApp(gh, { ...shared, WORKERS: '0' });
    processes.push(app);
    const worker = await startApp(gh, { ...shared, WORKERS: '1' }, ['worker']);
    processes.push(worker);

    const health = await fetch(`${worker.metricsUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toStrictEqual({ status: 'ok' });

    const repo = await gh.createRepo({
      owner: 'octo-org',
      name: `metrics-${randomUUID().slice(0, 8)}`,
      files: { Dockerfile: 'FROM busybox\nCMD printf "hello metrics\\n" > /out/hello.txt\n' },
    });
    const created = await fetch(`${app.url}/api/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ repo: repo.fullName }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    await gh
      .waitFor(() => gh!.checkRuns(repo).find((c) => c.status === 'completed'), { timeoutMs: 90_000 })
      .catch((error: Error) => {
        throw new Error(`${error.message}\napp:\n${app.output().slice(-3000)}\nworker:\n${worker.output().slice(-3000)}`);
      });

    const scrape = async (url: string) => {
      const response = await fetch(`${url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      return response.text();
    };
    const appText = await scrape(app.url);
    // The check run is completed before the worker's handler returns: wait for it to let go of the run.
    let workerText = '';
    await vi.waitFor(
      async () => {
        workerText = await scrape(worker.metricsUrl);
        expect(sample(workerText, 'task_mgmt_runs_active', { role: 'worker' })).toBe(0);
      },
      { timeout: 10_000, interval: 100 },
    );

    // Every name each panel queries is exposed by both processes.
    const queried = new Set<string>();
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        const names = metricsOfExpr(target.expr);
        expect(names.length, `${panel.title}: ${target.expr}`).toBeGreaterThan(0);
        for (const name of names) {
          queried.add(name);
          expect(exposes(appText, name), `${panel.title} queries ${name}, which the app does not expose`).toBe(true);
          expect(exposes(workerText, name), `${panel.title} queries ${name}, which the worker does not expose`).toBe(true);
        }
      }
    }
    for (const name of ['task_mgmt_runs_total', 'task_mgmt_queue_depth', 'task_mgmt_run_duration_seconds_bucket', 'task_mgmt_github_rate_limit_remaining', 'task_mgmt_ipfs_added_bytes_total', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_gc_duration_seconds_sum', 'process_cpu_seconds_total']) {
      expect(queried, `the dashboard shows ${name}`).toContain(name);
    }

    // What the run left: the app recorded it queued, the worker took and ended it and added its outputs.
    expect(sample(appText, 'task_mgmt_runs_total', { role: 'app', state: 'queued' })).toBe(1);
    expect(sample(workerText, 'task_mgmt_runs_total', { role: 'worker', state: 'running' })).toBe(1);
    expect(sample(workerText, 'task_mgmt_runs_total', { role: 'worker', state: 'succeeded' })).toBe(1);
    expect(sample(workerText, 'task_mgmt_run_duration_seconds_count', { role: 'worker', state: 'succeeded' })).toBe(1);
    expect(sample(workerText, 'task_mgmt_ipfs_added_bytes_total', { role: 'worker' })).toBe(Buffer.byteLength('hello metrics\n'));
    expect(sample(workerText, 'task_mgmt_runs_active', { role: 'worker' })).toBe(0);
    expect(sample(appText, 'task_mgmt_queue_depth', { role: 'app' })).toBe(0);
    expect(sample(workerText, 'task_mgmt_queue_depth', { role: 'worker' })).toBe(0);
    // The fake GitHub answers with x-ratelimit-limit 5000 and x-ratelimit-remaining 4999, as GitHub does.
    expect(sample(workerText, 'task_mgmt_github_rate_limit_limit', { role: 'worker' })).toBe(5000);
    expect(sample(workerText, 'task_mgmt_github_rate_limit_remaining', { role: 'worker' })).toBe(4999);
    expect(sample(appText, 'task_mgmt_github_rate_limit_remaining', { role: 'app' })).toBe(4999);
    expect(sample(appText, 'nodejs_eventloop_lag_p99_seconds', { role: 'app' })).toBeGreaterThan(0);
  });
});

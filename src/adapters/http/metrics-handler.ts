/**
 * `GET /metrics` in Prometheus' text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), without a client library: a
 * handful of counters, gauges and histograms is all the app keeps.
 *
 * The rest of the app reports through the exported functions (`observeRunFinished`,
 * `observeWebhook`, `countGithubRequest`, `setRateLimitRemaining`), which write to one registry
 * per process. Runs per state are counted from the run store at each scrape; the store lists at
 * most 500 runs per query, so each state's count stops at 500 (enough to see a backlog grow).
 */
import type { HttpHandler } from './api-handler.js';
import { requestUrl } from './http-io.js';
import { runStates, type Run } from '../../core/runs/run.js';
import type { RunRecords } from '../../ports/run-store.js';

type Labels = Record<string, string>;

/** A value for the exposition: integers as they are, others in full precision, infinities as Prometheus spells them. */
function formatValue(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  if (Number.isNaN(value)) return 'NaN';
  return String(value);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(',')}}`;
}

function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  samples(): string[];
}

export class Counter implements Metric {
  readonly type = 'counter';
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new RangeError(`a counter only goes up; ${this.name} was given ${by}`);
    const key = labelKey(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(key, entry);
  }

  samples(): string[] {
    return [...this.values.values()].map(({ labels, value }) => `${this.name}${formatLabels(labels)} ${formatValue(value)}`);
  }
}

export class Gauge implements Metric {
  readonly type = 'gauge';
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), { labels, value });
  }

  samples(): string[] {
    return [...this.values.values()].map(({ labels, value }) => `${this.name}${formatLabels(labels)} ${formatValue(value)}`);
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram';
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  /** Upper bounds, ascending; `+Inf` is implied. */
  readonly buckets: readonly number[];

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
  ) {
    this.buckets = [...buckets].sort((a, b) => a - b);
    this.counts = this.buckets.map(() => 0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.count += 1;
    for (const [index, bound] of this.buckets.entries()) if (value <= bound) this.counts[index]! += 1;
  }

  samples(): string[] {
    // Prometheus buckets are cumulative: each counts every observation up to its bound.
    const lines = this.buckets.map((bound, index) => `${this.name}_bucket{le="${formatValue(bound)}"} ${this.counts[index]!}`);
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${formatValue(this.sum)}`, `${this.name}_count ${this.count}`);
    return lines;
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  add<T extends Metric>(metric: T): T {
    if (this.metrics.has(metric.name)) throw new Error(`the metric ${metric.name} is registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  /** The exposition of these metrics and of `extra` (computed at scrape time). */
  expose(extra: Metric[] = []): string {
    const blocks = [...this.metrics.values(), ...extra].map((metric) =>
      [`# HELP ${metric.name} ${escapeHelp(metric.help)}`, `# TYPE ${metric.name} ${metric.type}`, ...metric.samples()].join('\n'),
    );
    return `${blocks.join('\n')}\n`;
  }
}

/** The process's metrics. */
export const metrics = new MetricsRegistry();

const runDuration = metrics.add(
  new Histogram('task_mgmt_run_duration_seconds', 'Time from a run starting to its end, in seconds.', [
    1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 3 * 24 * 3600,
  ]),
);
const webhookDuration = metrics.add(
  new Histogram('task_mgmt_webhook_seconds', 'Time to handle one webhook delivery, in seconds.', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
);
const githubRequests = metrics.add(new Counter('task_mgmt_github_requests_total', 'Requests to the GitHub API, by response status.'));
const rateLimitRemaining = metrics.add(
  new Gauge('task_mgmt_github_rate_limit_remaining', 'Requests left in the current GitHub rate-limit window (x-ratelimit-remaining of the last response).'),
);

/** Counts a run that ended, by how long it ran. */
export function observeRunFinished(run: Pick<Run, 'startedAt' | 'finishedAt'>): void {
  if (run.startedAt && run.finishedAt) runDuration.observe((run.finishedAt.getTime() - run.startedAt.getTime()) / 1000);
}

export function observeWebhook(seconds: number): void {
  webhookDuration.observe(seconds);
}

/** `status`: the HTTP status GitHub answered, or a word such as `error` when none came. */
export function countGithubRequest(status: number | string): void {
  githubRequests.inc({ status: String(status) });
}

export function setRateLimitRemaining(remaining: number): void {
  rateLimitRemaining.set(remaining);
}

/** How many runs per state the store reports at most (its cap per query). */
export const runCountCap = 500;

export function createMetricsHandler(deps: { store: RunRecords; registry?: MetricsRegistry }): HttpHandler {
  const registry = deps.registry ?? metrics;
  return async (req, res) => {
    if (requestUrl(req).pathname !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const runs = new Gauge('task_mgmt_runs', `Runs by state, as the run store holds them (each count stops at ${runCountCap}).`);
    for (const state of runStates) runs.set((await deps.store.listRuns({ state, limit: runCountCap })).length, { state });
    const text = registry.expose([runs]);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
    return true;
  };
}

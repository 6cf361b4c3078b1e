/**
 * The process's Prometheus metrics (README "Metrics"), kept with prom-client in a registry of
 * their own: Node's process, event-loop lag and garbage-collection metrics, and task-mgmt's.
 *
 * Nothing here reads the run store at scrape time. Runs by state are counted as the store records
 * each move (`runEvents`, an EventBus that the run store's event decorator publishes to), run
 * durations by the worker that ends the run, IPFS bytes where outputs are added, GitHub's headroom
 * from the headers of its answers (NaN until GitHub has answered). Queue depth is asked of the
 * queue at scrape time, bounded in time: a queue backend that is down makes it NaN instead of
 * holding the scrape.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { runStates, type Run, type RunState } from '../../core/runs/run.js';
import type { EventBus, RunEventName } from '../../ports/event-bus.js';
import type { RunMetrics } from '../../ports/metrics.js';

/** The exposition's content type (Prometheus text format 0.0.4). */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Longest a scrape waits for the queue to tell its depth. */
const QUEUE_DEPTH_TIMEOUT_MS = 2000;

const stateOfEvent: Record<RunEventName, RunState | null> = {
  'run.queued': 'queued',
  'run.started': 'running',
  'run.progress': null,
  'run.succeeded': 'succeeded',
  'run.failed': 'failed',
  'run.cancelled': 'cancelled',
  'run.timed_out': 'timed_out',
};

export interface PrometheusMetricsOptions {
  /** `app` or `worker`: a constant label on every metric, so one dashboard tells them apart. */
  role: 'app' | 'worker';
  /** Runs waiting in the queue; asked at each scrape. */
  queueDepth?: () => Promise<number>;
}

export class PrometheusMetrics implements RunMetrics {
  readonly registry = new Registry();
  private readonly runTransitions: Counter<'state'>;
  private readonly runDuration: Histogram<'state'>;
  private readonly active: Gauge;
  private readonly webhookDuration: Histogram;
  private readonly githubRequests: Counter<'status'>;
  private readonly rateLimitRemaining: Gauge;
  private readonly rateLimitLimit: Gauge;
  private readonly ipfsAddedBytes: Counter;

  constructor(options: PrometheusMetricsOptions) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ role: options.role });
    collectDefaultMetrics({ register: this.registry });
    this.runTransitions = new Counter({
      name: 'task_mgmt_runs_total',
      help: 'Runs that entered each state, counted by the process that recorded the move (queued again after a retry counts again).',
      labelNames: ['state'],
      registers,
    });
    for (const state of runStates) this.runTransitions.inc({ state }, 0);
    this.runDuration = new Histogram({
      name: 'task_mgmt_run_duration_seconds',
      help: 'Time from a run starting to its end, in seconds, by final state (observed by the worker that ended it).',
      labelNames: ['state'],
      buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 3 * 24 * 3600],
      registers,
    });
    this.active = new Gauge({ name: 'task_mgmt_runs_active', help: 'Runs this process is working on now.', registers });
    this.webhookDuration = new Histogram({
      name: 'task_mgmt_webhook_seconds',
      help: 'Time to accept one webhook delivery, in seconds.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.githubRequests = new Counter({ name: 'task_mgmt_github_requests_total', help: 'Requests to the GitHub API, by response status.', labelNames: ['status'], registers });
    this.rateLimitRemaining = new Gauge({
      name: 'task_mgmt_github_rate_limit_remaining',
      help: 'Requests left in the current GitHub rate-limit window (x-ratelimit-remaining of the last answer).',
      registers,
    });
    this.rateLimitLimit = new Gauge({
      name: 'task_mgmt_github_rate_limit_limit',
      help: 'Requests allowed per GitHub rate-limit window (x-ratelimit-limit of the last answer).',
      registers,
    });
    this.rateLimitRemaining.set(Number.NaN);
    this.rateLimitLimit.set(Number.NaN);
    this.ipfsAddedBytes = new Counter({ name: 'task_mgmt_ipfs_added_bytes_total', help: "Bytes of runs' outputs added to IPFS.", registers });
    const queueDepth = options.queueDepth;
    new Gauge({
      name: 'task_mgmt_queue_depth',
      help: 'Runs waiting in the queue for a worker (asked of the queue at each scrape; NaN when it does not answer in time).',
      registers,
      async collect() {
        if (!queueDepth) return;
        const depth = await withinMs(queueDepth(), QUEUE_DEPTH_TIMEOUT_MS);
        this.set(depth ?? Number.NaN);
      },
    });
  }

  /** An EventBus for the run store's event decorator: each run event counts the state it entered. */
  runEvents(): EventBus {
    return {
      publish: async (event) => {
        const state = stateOfEvent[event];
        if (state) this.runTransitions.inc({ state });
      },
      close: async () => undefined,
    };
  }

  runFinished(run: Pick<Run, 'state' | 'startedAt' | 'finishedAt'>): void {
    if (run.startedAt && run.finishedAt) this.runDuration.observe({ state: run.state }, (run.finishedAt.getTime() - run.startedAt.getTime()) / 1000);
  }

  outputsAdded(bytes: number): void {
    if (bytes > 0) this.ipfsAddedBytes.inc(bytes);
  }

  activeRuns(delta: 1 | -1): void {
    this.active.inc(delta);
  }

  webhookAccepted(seconds: number): void {
    this.webhookDuration.observe(seconds);
  }

  /** For instrumentOctokit: each GitHub answer, and the rate-limit headers it carried. */
  readonly github = {
    request: (status: number | string): void => {
      this.githubRequests.inc({ status: String(status) });
    },
    rateLimit: (remaining: number, limit: number | undefined): void => {
      this.rateLimitRemaining.set(remaining);
      if (limit !== undefined) this.rateLimitLimit.set(limit);
    },
  };

  /** The exposition text. */
  expose(): Promise<string> {
    return this.registry.metrics();
  }
}

async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise.catch(() => undefined), new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

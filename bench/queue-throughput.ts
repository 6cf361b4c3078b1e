/**
 * How many runs a queue moves per second when the work itself costs nothing: N runs are enqueued,
 * then drained by a handler that only does the store writes the real worker does
 * (queued → running → succeeded). The baseline is bare BullMQ on the same Redis (addBulk and a
 * no-op processor, no store), the floor any Redis-backed queue pays.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { BullmqRunQueue } from '../src/adapters/queue/bullmq-run-queue.js';
import { EmbeddedRunQueue } from '../src/adapters/queue/embedded-run-queue.js';
import { SqliteRunStore } from '../src/adapters/store/sqlite-run-store.js';
import type { RunHandler, RunQueue } from '../src/ports/run-queue.js';
import type { RunRecords } from '../src/ports/run-store.js';
import { Countdown, perSecond, ratio, within, withTempDir, type Benchmark, type BenchmarkResult, type Cell } from './report.js';
import { benchRun, benchRunIds } from './run-fixture.js';

const RUNS = 2000;
const CONCURRENCY = 8;
/** Every case runs this many times, in turn; the best run of each is reported. */
const ROUNDS = 2;
/** Bound on each phase (enqueue, drain) of each case; a case that hits it reports what it did. */
const PHASE_CAP_MS = 60_000;
const REDIS_URL = 'redis://127.0.0.1:6379';
const QUEUE_NAME = 'runs';
// The same job options BullmqRunQueue uses, so the baseline differs only in what the adapter adds.
const JOB_OPTIONS = {
  attempts: 20,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: { count: 100 },
  removeOnFail: { count: 1000 },
} as const;

const log = pino({ level: 'silent' });

interface CaseResult {
  name: string;
  done: number;
  enqueueMs: number;
  drainMs: number;
  capped: boolean;
}

export const queueThroughput: Benchmark = {
  name: 'queue-throughput',
  async run(): Promise<BenchmarkResult> {
    const notes: string[] = [];
    const redis = await redisAnswers(REDIS_URL);
    if (!redis) notes.push(`Redis did not answer at ${REDIS_URL}: the BullMQ rows (baseline included) were skipped.`);
    // Whole rounds, keeping each case's best: a busy machine slows one round, rarely one case in every round.
    let cases: CaseResult[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const next = await measureRound(redis);
      cases = round === 0 ? next : next.map((c, i) => fasterCase(cases[i], c));
    }
    const baseline = redis ? cases[0] : undefined;
    const baselineRate = baseline ? perSecond(baseline.done, baseline.enqueueMs + baseline.drainMs) : null;
    const measured = cases.map((c) => {
      const rate = perSecond(c.done, c.enqueueMs + c.drainMs);
      return { ...c, rate, ratio: c === baseline ? 1 : ratio(rate, baselineRate) };
    });
    const rows = measured.map((c): Record<string, Cell> => ({
      case: c.name,
      runs: c.capped ? `${c.done} (capped)` : c.done,
      enqueue: perSecond(c.done, c.enqueueMs),
      drain: perSecond(c.done, c.drainMs),
      rate: c.rate,
      ratio: c.ratio,
    }));
    for (const c of cases) if (c.capped) notes.push(`${c.name} hit the ${PHASE_CAP_MS / 1000} s cap after ${c.done} runs.`);
    notes.push(`${RUNS} runs, concurrency ${CONCURRENCY}, best of ${ROUNDS} rounds; runs/s = runs ÷ (enqueue time + drain time).`);

    return {
      name: this.name,
      title: `Queue throughput: enqueue ${RUNS} runs, then drain them with a no-op handler`,
      columns: [
        { key: 'case', header: 'case', align: 'left' },
        { key: 'runs', header: 'runs' },
        { key: 'enqueue', header: 'enqueue runs/s' },
        { key: 'drain', header: 'drain runs/s' },
        { key: 'rate', header: 'runs/s' },
        { key: 'ratio', header: 'ratio vs baseline', digits: 3 },
      ],
      rows,
      ratios: measured.filter((c) => c.name !== baseline?.name).map((c) => ({ case: c.name, ratio: c.ratio })),
      notes,
    };
  },
};

/** The baseline: BullMQ itself, no adapter, no store. */
async function measureRound(redis: boolean): Promise<CaseResult[]> {
  const cases: CaseResult[] = [];
  if (redis) {
    cases.push(await withRedisPrefix((prefix) => rawBullmq('baseline: raw BullMQ addBulk + no-op Worker', prefix, 'bulk')));
    cases.push(await withRedisPrefix((prefix) => rawBullmq('raw BullMQ add() one by one + no-op Worker', prefix, 'one-by-one')));
    cases.push(
      await withRedisPrefix((prefix) =>
        withStore('bullmq', (store) =>
          throughRunQueue('BullmqRunQueue + SqliteRunStore', store, new BullmqRunQueue({ url: REDIS_URL, prefix, log, queueName: QUEUE_NAME })),
        ),
      ),
    );
  }
  cases.push(await withStore('embedded', (store) => throughRunQueue('EmbeddedRunQueue + SqliteRunStore', store, new EmbeddedRunQueue({ store, log }))));
  return cases;
}

function fasterCase(best: CaseResult | undefined, next: CaseResult): CaseResult {
  if (!best) return next;
  return next.done / (next.enqueueMs + next.drainMs) > best.done / (best.enqueueMs + best.drainMs) ? next : best;
}

async function rawBullmq(name: string, prefix: string, adding: 'bulk' | 'one-by-one'): Promise<CaseResult> {
  const connections = [connect(), connect()] as const;
  const queue = new Queue(QUEUE_NAME, { connection: connections[0], prefix });
  const ids = benchRunIds('raw', RUNS);
  const done = new Countdown(RUNS);
  let worker: Worker | undefined;
  try {
    const enqueueStart = performance.now();
    let enqueued = true;
    if (adding === 'bulk') {
      await queue.addBulk(ids.map((id) => ({ name: 'run', data: { runId: id }, opts: { ...JOB_OPTIONS, jobId: id } })));
    } else {
      enqueued = await within(
        (async () => {
          for (const id of ids) await queue.add('run', { runId: id }, { ...JOB_OPTIONS, jobId: id });
        })(),
        PHASE_CAP_MS,
      );
    }
    const enqueueMs = performance.now() - enqueueStart;

    const drainStart = performance.now();
    worker = new Worker(QUEUE_NAME, async () => done.tick(), { connection: connections[1], prefix, concurrency: CONCURRENCY });
    const drained = await within(done.reached, PHASE_CAP_MS);
    const drainMs = performance.now() - drainStart;
    return { name, done: done.count, enqueueMs, drainMs, capped: !enqueued || !drained };
  } finally {
    await worker?.close();
    await queue.close();
    await Promise.allSettled(connections.map((connection) => connection.quit()));
  }
}

/** A RunQueue adapter with the store writes of a real run: what the app and worker actually pay. */
async function throughRunQueue(name: string, store: RunRecords, queue: RunQueue): Promise<CaseResult> {
  const ids = benchRunIds('run', RUNS);
  const done = new Countdown(RUNS);
  try {
    const enqueueStart = performance.now();
    // As the app does for each `/run`: record the run, then hand its id to the queue.
    const enqueued = await within(
      (async () => {
        for (const id of ids) {
          await store.createRun(benchRun(id), new Date());
          await queue.enqueue({ runId: id });
        }
      })(),
      PHASE_CAP_MS,
    );
    const enqueueMs = performance.now() - enqueueStart;

    const drainStart = performance.now();
    await queue.consume(noopRunHandler(store, () => done.tick()), { concurrency: CONCURRENCY });
    const drained = await within(done.reached, PHASE_CAP_MS);
    const drainMs = performance.now() - drainStart;
    return { name, done: done.count, enqueueMs, drainMs, capped: !enqueued || !drained };
  } finally {
    await queue.close();
  }
}

/** The store writes of createRunHandler (src/worker/run-worker.ts) with the task left out. */
function noopRunHandler(store: RunRecords, onSucceeded: () => void): RunHandler {
  return async ({ runId }) => {
    const found = await store.getRun(runId);
    if (!found || found.state !== 'queued') return;
    const now = new Date();
    const run = await store.transition(runId, 'claim', now, {
      workerId: 'bench-worker',
      leaseUntil: new Date(now.getTime() + 30_000),
    });
    if (!run) return;
    await store.transition(runId, 'succeed', new Date(), { exitCode: 0 }, { heldBy: 'bench-worker' });
    onSucceeded();
  };
}

async function withStore<T>(label: string, body: (store: SqliteRunStore) => Promise<T>): Promise<T> {
  return withTempDir(`queue-${label}`, async (dir) => {
    const store = await SqliteRunStore.open(join(dir, 'runs.sqlite'));
    try {
      return await body(store);
    } finally {
      await store.close();
    }
  });
}

/** Gives `body` a prefix no one else uses, then deletes every key under it. */
async function withRedisPrefix<T>(body: (prefix: string) => Promise<T>): Promise<T> {
  const prefix = `task-mgmt-bench-${randomUUID()}`;
  try {
    return await body(prefix);
  } finally {
    const redis = connect();
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    } finally {
      await redis.quit();
    }
  }
}

function connect(): Redis {
  // BullMQ needs maxRetriesPerRequest: null on worker connections (FACTS "Queues").
  return new Redis(REDIS_URL, { maxRetriesPerRequest: null });
}

async function redisAnswers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * How many runs a queue moves per second when the work itself costs nothing: N runs are recorded
 * and enqueued, then drained by a handler that makes the store calls the real worker makes (claim
 * the run, record it succeeded). Each adapter is compared with its bare client on the
 * same server, no adapter and no store, used two ways: in bulk (BullMQ's addBulk; amqplib
 * publishing everything, then waiting for the confirms), the floor any queue on that server pays;
 * and alike (the same number of producers as the app's case, each adding one run and waiting for
 * its answer), what the client itself achieves when runs arrive one request at a time.
 * RabbitMQ's messages are persistent, on a quorum queue, published on a confirm channel and
 * consumed with acks, as the adapter's are.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { connect as amqpConnect, type ChannelModel } from 'amqplib';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { BullmqRunQueue } from '../src/adapters/queue/bullmq-run-queue.js';
import { EmbeddedRunQueue } from '../src/adapters/queue/embedded-run-queue.js';
import { RabbitmqRunQueue } from '../src/adapters/queue/rabbitmq-run-queue.js';
import { PostgresRunStore } from '../src/adapters/store/postgres-run-store.js';
import { SqliteRunStore } from '../src/adapters/store/sqlite-run-store.js';
import type { RunHandler, RunQueue } from '../src/ports/run-queue.js';
import type { RunLeases, RunRecords } from '../src/ports/run-store.js';
import { Countdown, perSecond, ratio, within, withTempDir, type Benchmark, type BenchmarkResult, type Cell } from './report.js';
import { benchRun, benchRunIds } from './run-fixture.js';

const RUNS = 2000;
const CONCURRENCY = 8;
/**
 * Runs are recorded and enqueued by this many producers at once, as the app does for webhooks that
 * arrive together; each producer records a run, then enqueues it, then takes the next. With one
 * producer every enqueue waits for its own round trip (for a quorum queue's confirm, a disk sync
 * on the broker) while the baselines send all their messages at once.
 */
const PRODUCERS = Number(process.env.BENCH_QUEUE_PRODUCERS ?? CONCURRENCY);
/** Every case runs this many times, in turn; the best run of each is reported. */
const ROUNDS = 2;
/** Bound on each phase (enqueue, drain) of each case; a case that hits it reports what it did. */
const PHASE_CAP_MS = 60_000;
const REDIS_URL = 'redis://127.0.0.1:6379';
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
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
  /** The client's bulk baseline, which this case is compared with (its own row when it is one). */
  against: string;
  /** The same client used as the app uses it: runs enqueued one at a time by concurrent producers. */
  alike: string;
}

const BULLMQ_BASELINE = 'baseline: raw BullMQ addBulk + no-op Worker';
const BULLMQ_ALIKE = `baseline: raw BullMQ add() from ${PRODUCERS} producers + no-op Worker`;
const AMQP_BASELINE = 'baseline: raw amqplib confirmed publishes + acking consumer';
const AMQP_ALIKE = `baseline: raw amqplib, ${PRODUCERS} producers each awaiting its confirm + acking consumer`;
const BULLMQ = { bulk: BULLMQ_BASELINE, alike: BULLMQ_ALIKE };
const AMQP = { bulk: AMQP_BASELINE, alike: AMQP_ALIKE };
const isBaseline = (c: CaseResult) => c.name === c.against || c.name === c.alike;

export const queueThroughput: Benchmark = {
  name: 'queue-throughput',
  async run(): Promise<BenchmarkResult> {
    const notes: string[] = [];
    const redis = await redisAnswers(REDIS_URL);
    if (!redis) notes.push(`Redis did not answer at ${REDIS_URL}: the BullMQ rows (baseline included) were skipped.`);
    const rabbit = await amqpAnswers(AMQP_URL);
    if (!rabbit) notes.push(`RabbitMQ did not answer at ${AMQP_URL}: the RabbitMQ rows (baseline included) were skipped.`);
    const postgres = await postgresAnswers();
    if (!postgres) notes.push(`PostgreSQL did not answer at ${POSTGRES_URL}: the PostgresRunStore rows were skipped.`);
    // Whole rounds, keeping each case's best: a busy machine slows one round, rarely one case in every round.
    let cases: CaseResult[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const next = await measureRound(redis, rabbit, postgres);
      cases = round === 0 ? next : next.map((c, i) => fasterCase(cases[i], c));
    }
    const rateOf = (c: CaseResult) => perSecond(c.done, c.enqueueMs + c.drainMs);
    const against = (c: CaseResult, name: string) => {
      const baseline = cases.find((other) => other.name === name);
      return c.name === name ? 1 : ratio(rateOf(c), baseline ? rateOf(baseline) : null);
    };
    const measured = cases.map((c) => ({ ...c, rate: rateOf(c), ratio: against(c, c.against), ratioAlike: against(c, c.alike) }));
    const rows = measured.map((c): Record<string, Cell> => ({
      case: c.name,
      runs: c.capped ? `${c.done} (capped)` : c.done,
      enqueue: perSecond(c.done, c.enqueueMs),
      drain: perSecond(c.done, c.drainMs),
      rate: c.rate,
      ratio: c.ratio,
      ratioAlike: c.ratioAlike,
      client: c.against === BULLMQ_BASELINE ? 'BullMQ' : 'amqplib',
    }));
    for (const c of cases) if (c.capped) notes.push(`${c.name} hit the ${PHASE_CAP_MS / 1000} s cap after ${c.done} runs.`);
    notes.push(`${RUNS} runs, ${PRODUCERS} producers (BENCH_QUEUE_PRODUCERS), concurrency ${CONCURRENCY}, best of ${ROUNDS} rounds; runs/s = runs ÷ (enqueue time + drain time).`);
    notes.push('vs raw bulk: against the raw client enqueueing every run at once (addBulk; all publishes, then their confirms). vs raw alike: against the raw client enqueueing as the app does, one run at a time from concurrent producers, each waiting for its own answer.');

    return {
      name: this.name,
      title: `Queue throughput: enqueue ${RUNS} runs, then drain them with a no-op handler`,
      columns: [
        { key: 'case', header: 'case', align: 'left' },
        { key: 'runs', header: 'runs' },
        { key: 'enqueue', header: 'enqueue runs/s' },
        { key: 'drain', header: 'drain runs/s' },
        { key: 'rate', header: 'runs/s' },
        { key: 'ratio', header: 'vs raw bulk', digits: 3 },
        { key: 'ratioAlike', header: 'vs raw alike', digits: 3 },
        { key: 'client', header: 'raw client', align: 'left' },
      ],
      rows,
      ratios: measured
        .filter((c) => !isBaseline(c))
        .flatMap((c) => [
          { case: `${c.name} vs raw bulk`, ratio: c.ratio },
          { case: `${c.name} vs raw alike`, ratio: c.ratioAlike },
        ]),
      notes,
    };
  },
};

/** The baselines: BullMQ and amqplib themselves, no adapter, no store. */
async function measureRound(redis: boolean, rabbit: boolean, postgres: boolean): Promise<CaseResult[]> {
  const cases: CaseResult[] = [];
  if (redis) {
    cases.push(await withRedisPrefix((prefix) => rawBullmq(BULLMQ_BASELINE, prefix, 'bulk')));
    cases.push(await withRedisPrefix((prefix) => rawBullmq(BULLMQ_ALIKE, prefix, 'producers')));
    cases.push(
      await withRedisPrefix((prefix) =>
        withStore('bullmq', (store) =>
          throughRunQueue('BullmqRunQueue + SqliteRunStore', store, new BullmqRunQueue({ url: REDIS_URL, prefix, log, queueName: QUEUE_NAME }), BULLMQ),
        ),
      ),
    );
    if (postgres) {
      cases.push(
        await withRedisPrefix((prefix) =>
          withPostgresStore((store) =>
            throughRunQueue('BullmqRunQueue + PostgresRunStore', store, new BullmqRunQueue({ url: REDIS_URL, prefix, log, queueName: QUEUE_NAME }), BULLMQ),
          ),
        ),
      );
    }
  }
  if (rabbit) {
    cases.push(await withAmqpQueue((queueName) => rawAmqp(AMQP_BASELINE, queueName, 'bulk')));
    cases.push(await withAmqpQueue((queueName) => rawAmqp(AMQP_ALIKE, queueName, 'producers')));
    cases.push(
      await withAmqpQueue((queueName) =>
        withStore('rabbitmq', (store) =>
          throughRunQueue('RabbitmqRunQueue + SqliteRunStore', store, new RabbitmqRunQueue({ url: AMQP_URL, log, queueName }), AMQP),
        ),
      ),
    );
    if (postgres) {
      cases.push(
        await withAmqpQueue((queueName) =>
          withPostgresStore((store) =>
            throughRunQueue('RabbitmqRunQueue + PostgresRunStore', store, new RabbitmqRunQueue({ url: AMQP_URL, log, queueName }), AMQP),
          ),
        ),
      );
    }
  }
  cases.push(await withStore('embedded', (store) => throughRunQueue('EmbeddedRunQueue + SqliteRunStore', store, new EmbeddedRunQueue({ store, log }), BULLMQ)));
  return cases;
}

function fasterCase(best: CaseResult | undefined, next: CaseResult): CaseResult {
  if (!best) return next;
  return next.done / (next.enqueueMs + next.drainMs) > best.done / (best.enqueueMs + best.drainMs) ? next : best;
}

async function rawBullmq(name: string, prefix: string, adding: 'bulk' | 'producers'): Promise<CaseResult> {
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
        fromProducers(ids, async (id) => {
          await queue.add('run', { runId: id }, { ...JOB_OPTIONS, jobId: id });
        }),
        PHASE_CAP_MS,
      );
    }
    const enqueueMs = performance.now() - enqueueStart;

    const drainStart = performance.now();
    worker = new Worker(QUEUE_NAME, async () => done.tick(), { connection: connections[1], prefix, concurrency: CONCURRENCY });
    const drained = await within(done.reached, PHASE_CAP_MS);
    const drainMs = performance.now() - drainStart;
    return { name, done: done.count, enqueueMs, drainMs, capped: !enqueued || !drained, against: BULLMQ_BASELINE, alike: BULLMQ_ALIKE };
  } finally {
    await worker?.close();
    await queue.close();
    await Promise.allSettled(connections.map((connection) => connection.quit()));
  }
}

/**
 * Hands `ids` to PRODUCERS producers, each taking the next id once its last one is answered, as
 * runs arrive from concurrent requests.
 */
async function fromProducers(ids: readonly string[], produce: (id: string) => Promise<void>): Promise<void> {
  let next = 0;
  const producer = async () => {
    while (next < ids.length) {
      const id = ids[next]!;
      next += 1;
      await produce(id);
    }
  };
  await Promise.all(Array.from({ length: PRODUCERS }, producer));
}

/** A RunQueue adapter with the store writes of a real run: what the app and worker actually pay. */
async function throughRunQueue(name: string, store: RunRecords & RunLeases, queue: RunQueue, baselines: { bulk: string; alike: string }): Promise<CaseResult> {
  const ids = benchRunIds('run', RUNS);
  const done = new Countdown(RUNS);
  try {
    const enqueueStart = performance.now();
    // As the app does for each `/run`: record the run, then hand its id to the queue.
    const enqueued = await within(
      fromProducers(ids, async (id) => {
        await store.createRun(benchRun(id), new Date());
        await queue.enqueue({ runId: id });
      }),
      PHASE_CAP_MS,
    );
    const enqueueMs = performance.now() - enqueueStart;

    const drainStart = performance.now();
    await queue.consume(noopRunHandler(store, () => done.tick()), { concurrency: CONCURRENCY });
    const drained = await within(done.reached, PHASE_CAP_MS);
    const drainMs = performance.now() - drainStart;
    return { name, done: done.count, enqueueMs, drainMs, capped: !enqueued || !drained, against: baselines.bulk, alike: baselines.alike };
  } finally {
    await queue.close();
  }
}

/**
 * The RabbitMQ baseline: persistent JSON messages on a durable quorum queue, as the adapter sends
 * them, published on a confirm channel with every confirm awaited (in flight together, as addBulk
 * is), then consumed at prefetch CONCURRENCY with each message acked.
 */
async function rawAmqp(name: string, queueName: string, publishing: 'bulk' | 'producers'): Promise<CaseResult> {
  const connection = await amqpConnect(AMQP_URL);
  const ids = benchRunIds('raw', RUNS);
  const done = new Countdown(RUNS);
  try {
    const publisher = await connection.createConfirmChannel();
    await publisher.assertQueue(queueName, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const enqueueStart = performance.now();
    const publish = (id: string, confirmed?: (error: unknown) => void) =>
      publisher.publish('', queueName, Buffer.from(JSON.stringify({ runId: id })), { persistent: true, contentType: 'application/json', messageId: id }, confirmed);
    let enqueued: boolean;
    if (publishing === 'bulk') {
      for (const id of ids) publish(id);
      enqueued = await within(publisher.waitForConfirms(), PHASE_CAP_MS);
    } else {
      const confirmed = (id: string) => new Promise<void>((resolve, reject) => publish(id, (error) => (error ? reject(error as Error) : resolve())));
      enqueued = await within(fromProducers(ids, confirmed), PHASE_CAP_MS);
    }
    const enqueueMs = performance.now() - enqueueStart;

    const drainStart = performance.now();
    const consumer = await connection.createChannel();
    await consumer.prefetch(CONCURRENCY);
    await consumer.consume(
      queueName,
      (message) => {
        if (!message) return;
        consumer.ack(message);
        done.tick();
      },
      { noAck: false },
    );
    const drained = await within(done.reached, PHASE_CAP_MS);
    const drainMs = performance.now() - drainStart;
    return { name, done: done.count, enqueueMs, drainMs, capped: !enqueued || !drained, against: AMQP_BASELINE, alike: AMQP_ALIKE };
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Gives `body` a queue name no one else uses, then deletes the queues and exchanges under it. */
async function withAmqpQueue<T>(body: (queueName: string) => Promise<T>): Promise<T> {
  const queueName = `task-mgmt-bench-${randomUUID()}`;
  try {
    return await body(queueName);
  } finally {
    const connection: ChannelModel = await amqpConnect(AMQP_URL);
    try {
      const channel = await connection.createChannel();
      for (const queue of [queueName, `${queueName}.dead`]) await channel.deleteQueue(queue);
      for (const exchange of [`${queueName}.dead`, `${queueName}.cancel`]) await channel.deleteExchange(exchange);
    } finally {
      await connection.close().catch(() => undefined);
    }
  }
}

async function amqpAnswers(url: string): Promise<boolean> {
  try {
    const connection = await amqpConnect(url, { timeout: 1000 });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * The store calls of createRunHandler (src/worker/run-worker.ts) with the task left out, for a run
 * that needs no other task: claimed in one statement with no read first, then recorded succeeded.
 */
function noopRunHandler(store: RunRecords & RunLeases, onSucceeded: () => void): RunHandler {
  return async ({ runId }) => {
    const now = new Date();
    const run = await store.claimRun(runId, { workerId: 'bench-worker', leaseUntil: new Date(now.getTime() + 30_000), maxRunningInRepo: CONCURRENCY, onlyWithoutNeeds: true }, now);
    if (run === null || run === 'busy') throw new Error(`run ${runId} could not be claimed: the bench's runs need nothing and never wait for a slot`);
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

/** Gives `body` a PostgresRunStore in a schema of its own, then drops the schema. */
async function withPostgresStore<T>(body: (store: PostgresRunStore) => Promise<T>): Promise<T> {
  const schema = `task_mgmt_bench_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  await postgresAdmin((client) => client.query(`CREATE SCHEMA ${schema}`));
  try {
    const store = await PostgresRunStore.open(POSTGRES_URL, { schema });
    try {
      return await body(store);
    } finally {
      await store.close();
    }
  } finally {
    await postgresAdmin((client) => client.query(`DROP SCHEMA ${schema} CASCADE`));
  }
}

async function postgresAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 1000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function postgresAnswers(): Promise<boolean> {
  try {
    await postgresAdmin((client) => client.query('select 1'));
    return true;
  } catch {
    return false;
  }
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

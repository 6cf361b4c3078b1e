/**
 * BullMQ on Redis, for many workers on many machines. The job id is the run id, so adding a run
 * twice is a no-op. Cancellation crosses processes on a Redis channel: whichever worker holds the
 * run aborts it.
 */
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { DeferredError, QueueUnavailableError, RetryableError } from '../../ports/errors.js';
import { emitsWithin, hidePassword, RECONNECT_GRACE_MS } from '../net/reach-backend.js';
import { runMessageSchema, type RunMessage } from '../../core/runs/run.js';
import type { RunHandler, RunQueue } from '../../ports/run-queue.js';

export interface BullmqRunQueueOptions {
  url: string;
  /** Prefix of every key; lets deployments and tests share one Redis. */
  prefix: string;
  log: Logger;
  queueName?: string;
  /**
   * Longest an enqueue or a cancel waits for Redis (CONNECT_TIMEOUT). While the connection is
   * down they fail with a QueueUnavailableError unless it comes back within two seconds; only a
   * first connection is waited for this long. Default 10 s.
   */
  producerTimeoutMs?: number;
}

const jobName = 'run';

/**
 * A custom backoff type, so the worker's `backoffStrategy` is consulted: BullMQ only calls it for
 * types it does not know, and the built-in exponential one cannot see the error that was thrown.
 */
const retryBackoffType = 'run-retry';
const retryBaseDelayMs = 2000;

/**
 * Waits as long as a RetryableError asks (a GitHub Retry-After, say), as the embedded queue does;
 * otherwise backs off exponentially from two seconds.
 */
export function retryDelayMs(attemptsMade: number, error: unknown): number {
  if (error instanceof RetryableError && error.retryAfterMs !== undefined) return Math.max(0, error.retryAfterMs);
  return Math.round(retryBaseDelayMs * 2 ** Math.max(0, attemptsMade - 1));
}

export class BullmqRunQueue implements RunQueue {
  private readonly queue: Queue<RunMessage>;
  private readonly queueName: string;
  private readonly cancelChannel: string;
  private readonly connections: Redis[] = [];
  private worker: Worker<RunMessage> | null = null;
  private subscriber: Redis | null = null;
  /** Enqueues and cancels: fails fast while Redis is down, see connect(). */
  private readonly producer: Redis;
  private producerWasReady = false;

  constructor(private readonly options: BullmqRunQueueOptions) {
    this.queueName = options.queueName ?? 'runs';
    this.cancelChannel = `${options.prefix}:${this.queueName}:cancel`;
    this.producer = this.connect('producer');
    this.queue = new Queue<RunMessage>(this.queueName, { connection: this.producer, prefix: options.prefix });
    this.queue.on('error', (error) => options.log.warn({ err: error }, 'queue connection error'));
  }

  async enqueue(message: RunMessage): Promise<void> {
    const parsed = runMessageSchema.parse(message);
    await this.produce(`queue run ${parsed.runId}`, () =>
      this.queue.add(jobName, parsed, {
        jobId: parsed.runId,
        attempts: 20,
        backoff: { type: retryBackoffType, delay: retryBaseDelayMs },
        // Finished jobs live on in the run store; Redis keeps only a short tail for debugging.
        removeOnComplete: { count: 100 },
        removeOnFail: { count: 1000 },
      }),
    );
  }

  /** A producer's command: fails fast while Redis is down, and waits at most producerTimeoutMs. */
  private async produce(what: string, command: () => Promise<unknown>): Promise<void> {
    const timeoutMs = this.options.producerTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      if (this.producer.status !== 'ready') {
        // A first connection is waited for; a lost one only briefly (a Redis restarting).
        const waitMs = this.producerWasReady ? Math.min(RECONNECT_GRACE_MS, timeoutMs) : timeoutMs;
        if (!(await emitsWithin(this.producer, 'ready', waitMs))) throw new Error(`not connected (${this.producer.status}) after ${waitMs} ms`);
      }
      await Promise.race([
        command(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      // The address stays in the log (the cause): this line may be shown on a pull request.
      throw new QueueUnavailableError(`the run queue (Redis) is not answering, so it could not ${what}; try again later`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  async consume(handler: RunHandler, options: { concurrency: number }): Promise<void> {
    if (this.worker) throw new Error('this queue is already consuming');
    this.subscriber = this.connect();
    this.subscriber.on('message', (_channel: string, runId: string) => {
      // The job id is the run id: BullMQ aborts the signal it gave that run's handler, with this
      // reason as it is (its type says string; an Error is what the handler's code expects).
      const reason: unknown = new Error('cancelled');
      this.worker?.cancelJob(runId, reason as string);
    });
    await this.subscriber.subscribe(this.cancelChannel);
    this.worker = new Worker<RunMessage>(
      this.queueName,
      // Taking a third parameter makes BullMQ give each job an AbortSignal, which cancelJob aborts.
      async (job: Job<RunMessage>, token?: string, signal?: AbortSignal) => {
        const message = runMessageSchema.parse(job.data);
        try {
          await handler(message, { signal: signal ?? new AbortController().signal });
        } catch (error) {
          if (error instanceof DeferredError) {
            // Waiting for a free slot is not an attempt: park the job and tell BullMQ so.
            await job.moveToDelayed(Date.now() + error.retryAfterMs, token);
            throw new DelayedError();
          }
          if (error instanceof RetryableError) throw error;
          // The handler records permanent failures on the run itself; the job is done.
          this.options.log.error({ err: error, runId: message.runId }, 'run handler failed');
        }
      },
      {
        connection: this.connect(),
        prefix: this.options.prefix,
        concurrency: options.concurrency,
        lockDuration: 30_000,
        maxStalledCount: 2,
        settings: { backoffStrategy: (attemptsMade, _type, error) => retryDelayMs(attemptsMade, error) },
      },
    );
    this.worker.on('error', (error) => this.options.log.warn({ err: error }, 'worker connection error'));
  }

  async cancel(runId: string): Promise<void> {
    await this.queue.remove(runId).catch(() => 0);
    await this.produce(`tell the workers to cancel run ${runId}`, () => this.producer.publish(this.cancelChannel, runId));
  }

  async depth(): Promise<number> {
    const counts = await this.queue.getJobCounts('waiting', 'delayed', 'prioritized');
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  }

  /** Every Redis connection this queue opened is ready (a worker's blocking one included). */
  connected(): boolean {
    return this.connections.every((connection) => connection.status === 'ready');
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
    await Promise.allSettled(this.connections.map((connection) => connection.quit()));
  }

  /**
   * A connection that reconnects by itself. A consumer's commands wait out a Redis restart (BullMQ
   * needs maxRetriesPerRequest: null on worker connections); a producer's fail at once while
   * the connection is down (enableOfflineQueue: false), so the request that enqueues can say so
   * instead of hanging. Each outage is logged once at warn, and its end at info.
   */
  private connect(role: 'consumer' | 'producer' = 'consumer'): Redis {
    const connection = new Redis(
      this.options.url,
      role === 'producer' ? { maxRetriesPerRequest: 1, enableOfflineQueue: false } : { maxRetriesPerRequest: null },
    );
    const where = hidePassword(this.options.url);
    let down = false;
    connection.on('error', (error: Error) => {
      if (down) return this.options.log.debug({ err: error }, 'redis connection error');
      down = true;
      this.options.log.warn({ err: error, redis: where, role }, 'lost the Redis connection; reconnecting');
    });
    connection.on('ready', () => {
      if (role === 'producer') this.producerWasReady = true;
      if (!down) return;
      down = false;
      this.options.log.info({ redis: where, role }, 'reconnected to Redis');
    });
    this.connections.push(connection);
    return connection;
  }
}

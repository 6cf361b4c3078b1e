/**
 * BullMQ on Redis, for many workers on many machines. The job id is the run id, so adding a run
 * twice is a no-op. Cancellation crosses processes on a Redis channel: whichever worker holds the
 * run aborts it.
 */
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { DeferredError, RetryableError } from '../../ports/errors.js';
import { runMessageSchema, type RunMessage } from '../../core/runs/run.js';
import type { RunHandler, RunQueue } from '../../ports/run-queue.js';

export interface BullmqRunQueueOptions {
  url: string;
  /** Prefix of every key; lets deployments and tests share one Redis. */
  prefix: string;
  log: Logger;
  queueName?: string;
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
  private publisher: Redis | null = null;
  private readonly active = new Map<string, AbortController>();

  constructor(private readonly options: BullmqRunQueueOptions) {
    this.queueName = options.queueName ?? 'runs';
    this.cancelChannel = `${options.prefix}:${this.queueName}:cancel`;
    this.queue = new Queue<RunMessage>(this.queueName, { connection: this.connect(), prefix: options.prefix });
    this.queue.on('error', (error) => options.log.warn({ err: error }, 'queue connection error'));
  }

  async enqueue(message: RunMessage): Promise<void> {
    await this.queue.add(jobName, runMessageSchema.parse(message), {
      jobId: message.runId,
      attempts: 20,
      backoff: { type: retryBackoffType, delay: retryBaseDelayMs },
      // Finished jobs live on in the run store; Redis keeps only a short tail for debugging.
      removeOnComplete: { count: 100 },
      removeOnFail: { count: 1000 },
    });
  }

  async consume(handler: RunHandler, options: { concurrency: number }): Promise<void> {
    if (this.worker) throw new Error('this queue is already consuming');
    this.subscriber = this.connect();
    this.subscriber.on('message', (_channel: string, runId: string) => {
      this.active.get(runId)?.abort(new Error('cancelled'));
    });
    await this.subscriber.subscribe(this.cancelChannel);
    this.worker = new Worker<RunMessage>(
      this.queueName,
      async (job: Job<RunMessage>, token?: string, signal?: AbortSignal) => {
        const message = runMessageSchema.parse(job.data);
        const controller = new AbortController();
        const onAbort = () => controller.abort(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        this.active.set(message.runId, controller);
        try {
          await handler(message, { signal: controller.signal });
        } catch (error) {
          if (error instanceof DeferredError) {
            // Waiting for a free slot is not an attempt: park the job and tell BullMQ so.
            await job.moveToDelayed(Date.now() + error.retryAfterMs, token);
            throw new DelayedError();
          }
          if (error instanceof RetryableError) throw error;
          // The handler records permanent failures on the run itself; the job is done.
          this.options.log.error({ err: error, runId: message.runId }, 'run handler failed');
        } finally {
          signal?.removeEventListener('abort', onAbort);
          this.active.delete(message.runId);
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
    this.publisher ??= this.connect();
    await this.publisher.publish(this.cancelChannel, runId);
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

  private connect(): Redis {
    // BullMQ needs maxRetriesPerRequest: null on worker connections so commands wait out a Redis restart.
    const connection = new Redis(this.options.url, { maxRetriesPerRequest: null });
    connection.on('error', (error) => this.options.log.debug({ err: error }, 'redis connection error'));
    this.connections.push(connection);
    return connection;
  }
}

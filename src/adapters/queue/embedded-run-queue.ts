/**
 * The zero-setup queue: no server, the run store is the backlog. Queued runs are read from the
 * store oldest first, so pending runs survive a restart, and a worker process sharing DATA_DIR
 * finds them by polling. Taking a run is the store's atomic `claim` move (queued → running), so two
 * dispatchers never run the same run.
 */
import type { Logger } from 'pino';
import { DeferredError, RetryableError } from '../../ports/errors.js';
import type { RunMessage } from '../../core/runs/run.js';
import type { RunHandler, RunQueue } from '../../ports/run-queue.js';
import type { RunRecords } from '../../ports/run-store.js';

export interface EmbeddedRunQueueOptions {
  store: RunRecords;
  log: Logger;
  /** How often to look for runs enqueued by another process. */
  pollIntervalMs?: number;
  /** Delay before a run whose handler failed with a retryable error is offered again. */
  retryDelayMs?: number;
}

export class EmbeddedRunQueue implements RunQueue {
  private readonly store: RunRecords;
  private readonly log: Logger;
  private readonly pollIntervalMs: number;
  private readonly retryDelayMs: number;
  private readonly active = new Map<string, { controller: AbortController; done: Promise<void> }>();
  /** Runs to leave alone until the time given (retry back-off). */
  private readonly notBefore = new Map<string, number>();
  private handler: RunHandler | null = null;
  private concurrency = 0;
  private timer: NodeJS.Timeout | null = null;
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  private closed = false;

  constructor(options: EmbeddedRunQueueOptions) {
    this.store = options.store;
    this.log = options.log;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.retryDelayMs = options.retryDelayMs ?? 5000;
  }

  async enqueue(_message: RunMessage): Promise<void> {
    // The run is already recorded as queued: that record is the message. Just look now.
    this.wake();
  }

  async consume(handler: RunHandler, options: { concurrency: number }): Promise<void> {
    if (this.handler) throw new Error('this queue is already consuming');
    this.handler = handler;
    this.concurrency = options.concurrency;
    this.timer = setInterval(() => this.wake(), this.pollIntervalMs);
    this.wake();
  }

  async cancel(runId: string): Promise<void> {
    this.active.get(runId)?.controller.abort(new Error('cancelled'));
  }

  async depth(): Promise<number> {
    return this.store.countQueued();
  }

  /** The queue is the run store in this process: there is no connection to lose. */
  connected(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.pumping;
    await Promise.allSettled([...this.active.values()].map((entry) => entry.done));
  }

  private wake(): void {
    if (!this.handler || this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = this.pump()
      .catch((error: unknown) => this.log.error({ err: error }, 'embedded queue could not read the backlog'))
      .finally(() => {
        this.pumping = null;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.wake();
        }
      });
  }

  private async pump(): Promise<void> {
    const free = this.concurrency - this.active.size;
    if (free <= 0) return;
    const now = Date.now();
    const backlog = await this.store.listQueued(free + this.active.size + this.notBefore.size);
    for (const run of backlog) {
      if (this.active.size >= this.concurrency || this.closed) break;
      if (this.active.has(run.id)) continue;
      const waitUntil = this.notBefore.get(run.id);
      if (waitUntil !== undefined && waitUntil > now) continue;
      this.notBefore.delete(run.id);
      this.start(run.id);
    }
  }

  private start(runId: string): void {
    const controller = new AbortController();
    const handler = this.handler!;
    const done = handler({ runId }, { signal: controller.signal })
      .catch((error: unknown) => {
        if (error instanceof DeferredError) {
          this.notBefore.set(runId, Date.now() + error.retryAfterMs);
          this.log.debug({ runId, retryInMs: error.retryAfterMs, reason: error.message }, 'run deferred');
          return;
        }
        const delay = error instanceof RetryableError ? (error.retryAfterMs ?? this.retryDelayMs) : this.retryDelayMs;
        this.notBefore.set(runId, Date.now() + delay);
        this.log.warn({ err: error, runId, retryInMs: delay }, 'run handler failed; the run stays queued');
      })
      .finally(() => {
        this.active.delete(runId);
        this.wake();
      });
    this.active.set(runId, { controller, done });
  }
}

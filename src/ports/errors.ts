/**
 * The failures that cross the ports: adapters and task types throw them, the worker and the
 * queues branch on them. They live with the port interfaces (not in core) because they are part
 * of those contracts, and because task types may import only src/ports/.
 *
 * Two kinds of failure the worker and the queues branch on: a retryable one (GitHub 5xx, a
 * restarted Redis) gives the run back to the queue; a permanent one ends it with its message.
 */
export class RetryableError extends Error {
  override readonly name: string = 'RetryableError';
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, { cause: options?.cause });
    this.retryAfterMs = options?.retryAfterMs;
  }
  readonly retryAfterMs: number | undefined;
}

/**
 * The worker is shutting down (SIGTERM, past SHUTDOWN_GRACE): the runs it still holds are stopped
 * and handed back to the queue for another worker, not cancelled. The abort reason of their signal.
 */
export class WorkerStoppingError extends RetryableError {
  override readonly name: string = 'WorkerStoppingError';
  constructor() {
    super('the worker is shutting down', { retryAfterMs: 0 });
  }
}

/**
 * The queue's server (Redis, RabbitMQ) does not answer: nothing was queued. Producers get it at
 * once instead of waiting for the server to come back, so a request can say so; the message
 * names the server.
 */
export class QueueUnavailableError extends RetryableError {
  override readonly name: string = 'QueueUnavailableError';
}

/**
 * Not now, but not a failure either: the run waits its turn (e.g. its repository already has
 * as many runs going as it may). Queues put it back without counting an attempt.
 */
export class DeferredError extends Error {
  override readonly name: string = 'DeferredError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

export class PermanentError extends Error {
  override readonly name: string = 'PermanentError';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

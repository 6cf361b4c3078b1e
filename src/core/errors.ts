/**
 * Two kinds of failure the worker and the queues branch on: a retryable one (GitHub 5xx, a
 * restarted Redis) gives the run back to the queue; a permanent one ends it with its message.
 */
export class RetryableError extends Error {
  override readonly name = 'RetryableError';
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, { cause: options?.cause });
    this.retryAfterMs = options?.retryAfterMs;
  }
  readonly retryAfterMs: number | undefined;
}

export class PermanentError extends Error {
  override readonly name = 'PermanentError';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

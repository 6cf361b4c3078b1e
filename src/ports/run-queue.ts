/** Carries run ids from the app to workers. Runs themselves live in the RunStore. */
import type { RunMessage } from '../core/runs/run.js';

export interface RunJobContext {
  /** Aborted when the run is cancelled elsewhere or the worker shuts down. */
  signal: AbortSignal;
}

export type RunHandler = (message: RunMessage, context: RunJobContext) => Promise<void>;

export interface RunQueue {
  /** Adds a run; adding the same run id twice is a no-op. */
  enqueue(message: RunMessage): Promise<void>;
  /**
   * Starts taking runs with at most `concurrency` at once. A handler that throws a
   * retryable error gets the message back later; other errors are recorded by the handler.
   */
  consume(handler: RunHandler, options: { concurrency: number }): Promise<void>;
  /** Asks whichever worker holds the run to abort it. */
  cancel(runId: string): Promise<void>;
  /** Stops consuming, waits for running handlers to settle (up to a bound), releases connections. */
  close(): Promise<void>;
  /** Runs waiting to be taken (delayed retries included), for the metrics. */
  depth?(): Promise<number>;
  /** Whether the connection to the queue's backend is up, for a worker's `/healthz`. */
  connected?(): boolean;
}

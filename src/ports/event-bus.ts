/**
 * Tells other services what happened to runs (README "JSON API, JSON-RPC, events and metrics"). Each event
 * carries the run record as JSON; publishing must not lose an event the caller saw succeed.
 */
export type RunEventName =
  | 'run.queued'
  | 'run.started'
  | 'run.progress'
  | 'run.succeeded'
  | 'run.failed'
  | 'run.cancelled'
  | 'run.timed_out';

export interface EventBus {
  /** Resolves once the event is stored by the bus (for AMQP: confirmed by the broker). */
  publish(event: RunEventName, run: unknown): Promise<void>;
  /** Waits for publishes under way and releases connections. */
  close(): Promise<void>;
}

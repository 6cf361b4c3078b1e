/**
 * Ends a queued or running run as cancelled, with the reason, and stops its container: the
 * queue tells whichever worker holds it, and a worker that misses the message loses its lease
 * at the next heartbeat (the store no longer says running) and stops then.
 */
import type { CheckReporter } from '../../ports/check-reporter.js';
import type { RunQueue } from '../../ports/run-queue.js';
import type { RunStore } from '../../ports/run-store.js';
import { finishedReport } from './check-text.js';
import type { Run } from './run.js';

export interface CancelDeps {
  store: RunStore;
  queue: RunQueue;
  checks: CheckReporter;
  now: () => Date;
  gatewayUrl: string;
}

/** True when this call cancelled the run; false when it had already ended. */
export async function cancelRun(deps: CancelDeps, run: Run, reason: string): Promise<boolean> {
  const cancelled = await deps.store.transition(run.id, 'cancel', deps.now(), { error: reason });
  if (!cancelled) return false;
  await deps.queue.cancel(run.id);
  if (cancelled.checkRunId !== null) await deps.checks.update(cancelled, finishedReport(cancelled, deps.gatewayUrl));
  return true;
}

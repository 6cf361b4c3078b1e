/**
 * A bounded stop for `serve` and `worker`. On SIGTERM (or SIGINT) the process stops taking
 * webhooks and runs at once, gives the runs going and the deliveries accepted SHUTDOWN_GRACE to
 * finish, then stops the runs still going and hands them back to the queue, and releases its
 * connections — giving that at most HAND_BACK_MS more. Whatever is still waiting then (a GitHub
 * that does not answer, say) is left behind: the caller exits. A delivery cut short stays in the
 * inbox and is handled at the next start; a run whose hand-back was cut short is queued again
 * when its lease runs out, as if its worker had died.
 */
import type { Logger } from 'pino';

/** How long the hand-back of runs still going after the grace, and the release of connections, may take. */
export const HAND_BACK_MS = 5000;

export interface StopSteps {
  /** Called at once: stop taking work. Resolves when the runs going and the deliveries accepted are done. */
  drain: () => Promise<void>;
  /** Stops the runs still going at the end of the grace; they go back to the queue. */
  handBack: () => void;
  /** Closes connections and stores. */
  release: () => Promise<void>;
}

/** Runs the steps within SHUTDOWN_GRACE + HAND_BACK_MS; true when everything finished in time. */
export async function stopWithin(steps: StopSteps, options: { graceMs: number; log: Logger; handBackMs?: number }): Promise<boolean> {
  const { log } = options;
  const drained = steps.drain().catch((error: unknown) => log.warn({ err: error }, 'stopping: could not wait for the work going'));
  const clean = await settlesWithin(drained, options.graceMs);
  const end = Date.now() + (options.handBackMs ?? HAND_BACK_MS);
  if (!clean) {
    log.warn({ graceMs: options.graceMs }, 'stopping: work still going after SHUTDOWN_GRACE; runs still going go back to the queue');
    steps.handBack();
    await settlesWithin(drained, end - Date.now());
  }
  const released = await settlesWithin(
    steps.release().catch((error: unknown) => log.warn({ err: error }, 'stopping: could not close every connection')),
    end - Date.now(),
  );
  if (!released) log.warn('stopping: connections still closing; exiting anyway');
  return clean && released;
}

/** Calls `stop` once, on the first SIGTERM or SIGINT. */
export function onStopSignal(stop: (signal: NodeJS.Signals) => void): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stop(signal);
  };
  process.once('SIGTERM', handle);
  process.once('SIGINT', handle);
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms))));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A job one replica at a time does, once every interval: the pin collector, the pruner of old
 * records. A round takes the named lease for an interval and renews it as it goes, so the replica
 * that works keeps working and another takes over only once it stops renewing. A call while a
 * round runs waits for that round instead of starting another; `stop` lets the round end after
 * its current step, then gives the lease back.
 */
import type { NamedLeases } from '../ports/run-store.js';

export interface LeasedJobOptions<T> {
  /** The lease's name, one per kind of job. */
  lease: string;
  /** Who holds it: this process. */
  holder: string;
  intervalMs: number;
  store: NamedLeases;
  now: () => Date;
  /** One round of the work; it asks `holdLease` before each step that only the holder may do. */
  round: () => Promise<T>;
}

export class LeasedJob<T> {
  private running: Promise<T> | null = null;
  private stopping = false;

  constructor(private readonly options: LeasedJobOptions<T>) {}

  /** Set by `stop`: a round under way ends after its current step. */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Takes or renews the lease for one interval; false while another replica holds it. */
  holdLease(): Promise<boolean> {
    const now = this.options.now();
    return this.options.store.takeLease(this.options.lease, this.options.holder, new Date(now.getTime() + this.options.intervalMs), now);
  }

  /** One round; a call while one runs waits for that one. */
  once(): Promise<T> {
    this.running ??= this.options.round().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** A round now and every interval, each ending in `done` or `failed`; `stop` waits for the round under way, then gives the lease back. */
  start(report: { done: (result: T) => void; failed: (error: unknown) => void }): { stop(): Promise<void> } {
    const run = () => void this.once().then(report.done, report.failed);
    const timer = setInterval(run, this.options.intervalMs);
    timer.unref();
    run();
    return {
      stop: async () => {
        clearInterval(timer);
        this.stopping = true;
        await this.running?.catch(() => undefined);
        await this.options.store.releaseLease(this.options.lease, this.options.holder);
      },
    };
  }
}

/**
 * Retention (README "Configuration", RETENTION): every interval, handled webhook deliveries, audit
 * entries and the logs of runs that ended longer ago than RETENTION are deleted. The app runs it
 * in every replica; a lease row in the run store lets one of them prune at a time. Each round
 * deletes a bounded batch and the next waits for the event loop to turn, so a large backlog
 * neither holds the database nor the process for long.
 */
import type { Logger } from 'pino';
import type { NamedLeases, Pruned, Retention } from '../ports/run-store.js';

/** The lease row that makes one replica at a time prune. */
export const RETENTION_LEASE = 'retention';
/** Rows of each kind deleted per round. */
export const PRUNE_BATCH = 500;

export interface PrunerDeps {
  store: Retention & NamedLeases;
  /** RETENTION: how old what is pruned must be. */
  retentionMs: number;
  /** Time between two prunings, and how long the lease lasts without one. */
  intervalMs: number;
  /** Names this pruner in the lease (host, pid and a random part). */
  holder: string;
  log: Logger;
  now?: () => Date;
  /** Rows of each kind per round; PRUNE_BATCH unless given. */
  batch?: number;
}

export class Pruner {
  private readonly now: () => Date;
  private running: Promise<Pruned & { pruned: boolean }> | null = null;
  private stopped = false;

  constructor(private readonly deps: PrunerDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  /** One pruning, until nothing older is left or another replica holds the lease; a call while one runs waits for it. */
  prune(): Promise<Pruned & { pruned: boolean }> {
    this.running ??= this.pruneOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Prunes now and every `intervalMs`; `stop` waits for the round under way, then gives the lease back. */
  start(): { stop(): Promise<void> } {
    const run = () =>
      void this.prune().then(
        (done) => {
          if (done.deliveries + done.audit + done.logChunks > 0) this.deps.log.info(done, 'old webhook deliveries, audit entries and logs pruned');
        },
        (error: unknown) => this.deps.log.error({ err: error }, 'pruning failed; it is tried again at the next interval'),
      );
    const timer = setInterval(run, this.deps.intervalMs);
    timer.unref();
    run();
    return {
      stop: async () => {
        clearInterval(timer);
        this.stopped = true;
        await this.running?.catch(() => undefined);
        await this.deps.store.releaseLease(RETENTION_LEASE, this.deps.holder);
      },
    };
  }

  private async pruneOnce(): Promise<Pruned & { pruned: boolean }> {
    const done = { pruned: false, deliveries: 0, audit: 0, logChunks: 0 };
    const batch = this.deps.batch ?? PRUNE_BATCH;
    for (;;) {
      if (this.stopped || !(await this.holdLease())) return done;
      done.pruned = true;
      const round = await this.deps.store.pruneBefore(new Date(this.now().getTime() - this.deps.retentionMs), batch);
      done.deliveries += round.deliveries;
      done.audit += round.audit;
      done.logChunks += round.logChunks;
      if (round.deliveries < batch && round.audit < batch && round.logChunks < batch) return done;
      // Let requests in between two batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private holdLease(): Promise<boolean> {
    const now = this.now();
    return this.deps.store.takeLease(RETENTION_LEASE, this.deps.holder, new Date(now.getTime() + this.deps.intervalMs), now);
  }
}

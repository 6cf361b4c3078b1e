/**
 * Retention (README "Configuration", RETENTION): every interval, handled webhook deliveries, audit
 * entries and the logs of runs that ended longer ago than RETENTION are deleted. The app runs it
 * in every replica; a lease row in the run store lets one of them prune at a time. Each round
 * deletes a bounded batch and the next waits for the event loop to turn, so a large backlog
 * neither holds the database nor the process for long.
 */
import type { Logger } from 'pino';
import type { NamedLeases, Pruned, Retention } from '../ports/run-store.js';
import { LeasedJob } from './leased-job.js';
import { pruneOldLogFiles } from './old-log-files.js';

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
  /** Folders of log files on this machine pruned too (their `.log` files, by last write). */
  logDirs?: readonly string[];
}

export type PruneRound = Pruned & { pruned: boolean; logFiles: number };

export class Pruner {
  private readonly now: () => Date;
  private readonly job: LeasedJob<PruneRound>;

  constructor(private readonly deps: PrunerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.job = new LeasedJob({ lease: RETENTION_LEASE, holder: deps.holder, intervalMs: deps.intervalMs, store: deps.store, now: this.now, round: () => this.pruneOnce() });
  }

  /** One pruning, until nothing older is left or another replica holds the lease; a call while one runs waits for it. */
  prune(): Promise<PruneRound> {
    return this.job.once();
  }

  /** Prunes now and every `intervalMs`; `stop` waits for the round under way, then gives the lease back. */
  start(): { stop(): Promise<void> } {
    return this.job.start({
      done: (done) => {
        if (done.deliveries + done.audit + done.logChunks + done.logFiles > 0) this.deps.log.info(done, 'old webhook deliveries, audit entries and logs pruned');
      },
      failed: (error) => this.deps.log.error({ err: error }, 'pruning failed; it is tried again at the next interval'),
    });
  }

  private async pruneOnce(): Promise<PruneRound> {
    const done = { pruned: false, deliveries: 0, audit: 0, logChunks: 0, logFiles: 0 };
    const batch = this.deps.batch ?? PRUNE_BATCH;
    for (;;) {
      if (this.job.stopped || !(await this.job.holdLease())) return done;
      done.pruned = true;
      const before = new Date(this.now().getTime() - this.deps.retentionMs);
      const round = await this.deps.store.pruneBefore(before, batch);
      done.deliveries += round.deliveries;
      done.audit += round.audit;
      done.logChunks += round.logChunks;
      let files = 0;
      for (const dir of this.deps.logDirs ?? []) files += await pruneOldLogFiles(dir, before, batch);
      done.logFiles += files;
      if (round.deliveries < batch && round.audit < batch && round.logChunks < batch && files < batch) return done;
      // Let requests in between two batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

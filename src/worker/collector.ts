/**
 * The pin collector (README "Pins"): every GC_INTERVAL it ends the pins whose time is up, lets
 * the IPFS backend go of what no live pin holds any more, and removes a run's output folder once
 * nothing needs it. The app runs one, and so may a worker (`task-mgmt worker`), in any number of
 * replicas: a lease row in the run store lets one of them collect the pins at a time, while each
 * process cleans the output folders of its own DATA_DIR.
 *
 * Blocks go in two steps, a grace apart. A collection marks the blocks of a released root that no
 * other pin's index lists; a later one deletes those still unlisted. An add that stores a block
 * already on disk skips writing it and indexes it in its next batch, seconds later: the grace
 * keeps such a block from being deleted between the two.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { finalStates, type Run } from '../core/runs/run.js';
import type { IpfsGarbage } from '../ports/ipfs-store.js';
import type { NamedLeases, Pins, RunRecords } from '../ports/run-store.js';
import { LeasedJob } from './leased-job.js';
import { outputDir } from './run-worker.js';

/** The lease row that makes one replica at a time collect pins. */
export const COLLECTOR_LEASE = 'pin-collector';
/** How long a block found unheld waits before it is deleted. */
export const DEFAULT_GARBAGE_GRACE_MS = 10 * 60_000;
/** Pins removed, and blocks deleted, per store round trip. */
const PINS_PER_ROUND = 500;
const BLOCKS_PER_ROUND = 1000;

export interface CollectorDeps {
  store: Pick<Pins, 'removeExpiredPins' | 'garbageBlocks' | 'forgetGarbage'> & NamedLeases & Pick<RunRecords, 'getRun' | 'listRuns'>;
  ipfs: IpfsGarbage;
  /** DATA_DIR: this process's output folders are under `outputs/`. */
  dataDir: string;
  /** Names this collector in the lease (a worker id, or host and pid). */
  holder: string;
  /** GC_INTERVAL: time between two collections, and how long the lease lasts without one. */
  intervalMs: number;
  log: Logger;
  now?: () => Date;
  /** How long a block found unheld waits before it is deleted; 10 minutes unless given. */
  graceMs?: number;
  /**
   * False: only this process's output folders are cleaned. A worker on another machine with the
   * embedded store keeps blocks the app's gateway never serves; the app collects the pins.
   */
  collectPins?: boolean;
}

export interface Collection {
  /** False when another replica holds the lease: this one only cleaned its output folders. */
  collectedPins: boolean;
  /** Pins that ended and were removed. */
  removedPins: number;
  /** Roots that lost their last pin (unpinned on a backend that pins). */
  releasedRoots: number;
  /** Blocks deleted from the embedded store. */
  deletedBlocks: number;
  /** Runs whose output folder was removed. */
  removedOutputs: string[];
}

export class Collector {
  private readonly now: () => Date;
  private readonly job: LeasedJob<Collection>;

  constructor(private readonly deps: CollectorDeps) {
    this.now = deps.now ?? (() => new Date());
    this.job = new LeasedJob({ lease: COLLECTOR_LEASE, holder: deps.holder, intervalMs: deps.intervalMs, store: deps.store, now: this.now, round: () => this.collectOnce() });
  }

  /** One collection; a call while one runs waits for that one instead of starting another. */
  collect(): Promise<Collection> {
    return this.job.once();
  }

  /** Collects now and every `intervalMs`; `stop` waits for a collection under way, then gives the lease back. */
  start(): { stop(): Promise<void> } {
    return this.job.start({
      done: (done) => {
        if (done.removedPins > 0 || done.deletedBlocks > 0 || done.removedOutputs.length > 0) this.deps.log.info(done, 'pins collected');
      },
      failed: (error) => this.deps.log.error({ err: error }, 'pin collection failed; it is tried again at the next interval'),
    });
  }

  private async collectOnce(): Promise<Collection> {
    const done: Collection = { collectedPins: false, removedPins: 0, releasedRoots: 0, deletedBlocks: 0, removedOutputs: [] };
    // Held for a whole interval, and kept by renewing it: the replica that collects keeps collecting
    // once an interval, and another takes over only when it stopped renewing.
    if (this.deps.collectPins !== false && (await this.job.holdLease())) {
      done.collectedPins = true;
      await this.removeExpiredPins(done);
      await this.deleteGarbage(done);
    }
    done.removedOutputs = await this.removeUnneededOutputs();
    return done;
  }

  private async removeExpiredPins(done: Collection): Promise<void> {
    for (;;) {
      const { removed, released } = await this.deps.store.removeExpiredPins(this.now(), PINS_PER_ROUND);
      done.removedPins += removed.length;
      for (const root of released) {
        try {
          await this.deps.ipfs.unpin(root);
          done.releasedRoots += 1;
        } catch (error) {
          // The run store has forgotten the pin: say which root, so it can be unpinned by hand.
          this.deps.log.error({ err: error, root }, `could not unpin ${root}; unpin it on the IPFS node by hand`);
        }
      }
      if (removed.length < PINS_PER_ROUND || this.job.stopped || !(await this.job.holdLease())) return;
    }
  }

  private async deleteGarbage(done: Collection): Promise<void> {
    const markedBefore = new Date(this.now().getTime() - (this.deps.graceMs ?? DEFAULT_GARBAGE_GRACE_MS));
    for (;;) {
      const blocks = await this.deps.store.garbageBlocks(markedBefore, BLOCKS_PER_ROUND);
      if (blocks.length === 0) return;
      done.deletedBlocks += await this.deps.ipfs.deleteBlocks(blocks);
      await this.deps.store.forgetGarbage(blocks);
      if (blocks.length < BLOCKS_PER_ROUND || this.job.stopped || !(await this.job.holdLease())) return;
    }
  }

  /**
   * A run's output folder stays while the run may still add it, or a queued or running run of
   * the same request needs it (it is mounted at `/in/<task>`). Folders of runs this store does
   * not know are left alone.
   */
  private async removeUnneededOutputs(): Promise<string[]> {
    const root = join(this.deps.dataDir, 'outputs');
    const names = await readdir(root).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[];
      throw error;
    });
    const removed: string[] = [];
    for (const name of names) {
      const run = await this.deps.store.getRun(name);
      if (!run || !finalStates.has(run.state) || (await this.neededByPendingRun(run))) continue;
      await rm(outputDir(this.deps.dataDir, run.id), { recursive: true, force: true });
      removed.push(run.id);
    }
    return removed;
  }

  private async neededByPendingRun(run: Run): Promise<boolean> {
    const pending = await this.deps.store.listRuns({
      repo: `${run.repo.owner}/${run.repo.name}`,
      ...(run.number !== null ? { number: run.number } : {}),
      states: ['queued', 'running'],
      limit: 500,
    });
    return pending.some((other) => other.needs.includes(run.id));
  }
}

/**
 * Every run's changes, as `GET /api/events` streams them: the store is polled for the runs that
 * are queued or running and for the newest runs, and a run is handed on when it is new or its
 * state or record changed since the last look. A run that left the active list is read once more,
 * so its final state is never missed however many runs were created meanwhile. A run that changed
 * more than once between two looks is handed on once, as it is at the second.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Run } from '../../core/runs/run.js';
import type { RunRecords } from '../../ports/run-store.js';

export interface RunsFeed {
  store: RunRecords;
  pollMs: number;
  signal: AbortSignal;
  /** Runs that changed since the last look, oldest first; a returned promise is waited for. */
  onRuns(runs: Run[]): void | Promise<void>;
  /** Called once the first look is done: every change after this is handed on. */
  onReady?(): void;
}

/** How many of the newest runs each look reads besides the active ones. */
const newestWindow = 50;
/** How many active runs each look reads at most (the run store's cap per query). */
const activeWindow = 500;

/** Resolves when the signal aborts. The runs as they are when it starts are not handed on: only changes. */
export async function watchAllRuns(feed: RunsFeed): Promise<void> {
  const seen = new Map<string, number>();
  let active = new Set<string>();
  const look = async (): Promise<Run[]> => {
    const [running, newest] = await Promise.all([
      feed.store.listRuns({ states: ['queued', 'running'], limit: activeWindow }),
      feed.store.listRuns({ limit: newestWindow }),
    ]);
    const found = new Map<string, Run>();
    for (const run of [...running, ...newest]) found.set(run.id, run);
    for (const id of active) {
      if (found.has(id)) continue;
      const ended = await feed.store.getRun(id);
      if (ended) found.set(id, ended);
    }
    active = new Set(running.map((run) => run.id));
    const changed: Run[] = [];
    for (const run of found.values()) {
      const stamp = run.updatedAt.getTime();
      if (seen.get(run.id) !== stamp) changed.push(run);
      seen.set(run.id, stamp);
    }
    // Forget what no look will find again, so a long stream holds a bounded map.
    if (seen.size > 4 * (activeWindow + newestWindow)) {
      for (const id of seen.keys()) if (!found.has(id)) seen.delete(id);
    }
    return changed.sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime());
  };
  await look();
  feed.onReady?.();
  while (!feed.signal.aborted) {
    try {
      await sleep(feed.pollMs, undefined, { signal: feed.signal });
    } catch {
      return;
    }
    const changed = await look();
    if (feed.signal.aborted) return;
    if (changed.length > 0) await feed.onRuns(changed);
  }
}

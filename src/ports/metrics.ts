/**
 * What the worker tells the deployment's metrics (README "JSON API, JSON-RPC, events and
 * metrics"). The adapter behind it keeps Prometheus metrics; core and the worker never name the
 * metrics library.
 */
import type { Run } from '../core/runs/run.js';

export interface RunMetrics {
  /** A run this process ended, once its end is recorded: its duration is observed by final state. */
  runFinished(run: Pick<Run, 'state' | 'startedAt' | 'finishedAt'>): void;
  /** Bytes of a run's outputs added to IPFS. */
  outputsAdded(bytes: number): void;
  /** A run this process started working on (`+1`) or stopped working on (`-1`), whatever its end. */
  activeRuns(delta: 1 | -1): void;
}

/** Shows a run's progress to people: on GitHub, a check run on the pinned commit. */
import type { Run } from '../core/runs/run.js';

export type CheckConclusion = 'success' | 'failure' | 'cancelled' | 'timed_out' | 'action_required' | 'neutral';

export interface CheckReport {
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: CheckConclusion;
  title: string;
  summary: string;
  text?: string;
}

export interface CheckReporter {
  /** Creates the check run for a run and returns its id. */
  create(run: Run, report: CheckReport): Promise<number>;
  update(run: Run, report: CheckReport): Promise<void>;
}

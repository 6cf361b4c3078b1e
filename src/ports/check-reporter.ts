/** Shows a run's progress to people: on GitHub, a check run on the pinned commit. */
import type { RepoRef } from '../core/runs/run.js';

export type CheckConclusion = 'success' | 'failure' | 'cancelled' | 'timed_out' | 'action_required' | 'neutral';

/** A button on the check run; GitHub sends `check_run.requested_action` with its identifier. */
export interface CheckAction {
  label: string;
  description: string;
  identifier: string;
}

export interface CheckReport {
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: CheckConclusion;
  title: string;
  summary: string;
  text?: string;
  /** Notes on lines of files (e.g. a manifest error), shown in the pull request's diff. */
  annotations?: { path: string; line: number; column?: number; title: string; message: string }[];
  /** Buttons to show; an empty list removes them. */
  actions?: CheckAction[];
}

/** What a check run is about: a task at a commit, and the run id when there is a run. */
export interface CheckTarget {
  repo: RepoRef;
  sha: string;
  task: string;
  id?: string;
}

export interface CheckReporter {
  /** Creates the check run and returns its id. */
  create(target: CheckTarget, report: CheckReport): Promise<number>;
  update(target: { repo: RepoRef; checkRunId: number | null; id?: string }, report: CheckReport): Promise<void>;
}

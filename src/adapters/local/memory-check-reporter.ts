/**
 * CheckReporter in this process: keeps every check run and every report it was given, for fast
 * tests of the command flow and for anything that wants to show checks without GitHub. It keeps
 * to GitHub's rules where they change what a reader sees: ids are positive and never reused,
 * updating an unknown check run fails (GitHub answers 404), `summary` and `text` are cut to
 * 65,535 characters and annotations to 50 per report, and buttons stay until a report replaces them.
 * https://docs.github.com/en/rest/checks/runs#update-a-check-run
 */
import type { CheckReport, CheckReporter, CheckTarget } from '../../ports/check-reporter.js';
import { truncateEnd, truncateStart } from '../../core/runs/check-text.js';
import type { RepoRef } from '../../core/runs/run.js';

/** GitHub takes at most 50 annotations per request. */
const annotationsPerReport = 50;

export interface MemoryCheckRun {
  id: number;
  repo: RepoRef;
  sha: string;
  task: string;
  /** The run's id, when the check run belongs to a run. */
  runId: string | undefined;
  /** What the check run shows now. */
  current: CheckReport;
  /** Every report as stored (after cutting), the creating one first. */
  history: CheckReport[];
}

export class MemoryCheckReporter implements CheckReporter {
  readonly #checkRuns = new Map<number, MemoryCheckRun>();
  #nextId = 1;

  async create(target: CheckTarget, report: CheckReport): Promise<number> {
    const id = this.#nextId++;
    const stored = fitToGithub(report);
    this.#checkRuns.set(id, {
      id,
      repo: { ...target.repo },
      sha: target.sha,
      task: target.task,
      runId: target.id,
      current: stored,
      history: [stored],
    });
    return id;
  }

  async update(target: { repo: RepoRef; checkRunId: number | null; id?: string }, report: CheckReport): Promise<void> {
    if (target.checkRunId === null) throw new Error(`run ${target.id ?? '?'} has no check run to update`);
    const checkRun = this.#checkRuns.get(target.checkRunId);
    if (!checkRun || !sameRepo(checkRun.repo, target.repo)) {
      throw new Error(`no check run ${target.checkRunId} in ${target.repo.owner}/${target.repo.name}`);
    }
    const stored = fitToGithub(report);
    checkRun.history.push(stored);
    // A report without `actions` leaves the buttons as they were, as GitHub does.
    checkRun.current = stored.actions === undefined && checkRun.current.actions !== undefined ? { ...stored, actions: checkRun.current.actions } : stored;
  }

  /** The check run with this id, or undefined. The result is a copy. */
  get(checkRunId: number): MemoryCheckRun | undefined {
    const checkRun = this.#checkRuns.get(checkRunId);
    return checkRun && structuredClone(checkRun);
  }

  /** Check runs in the order they were created, optionally only those of one commit, task or run. Copies. */
  list(filter: { sha?: string; task?: string; runId?: string } = {}): MemoryCheckRun[] {
    return [...this.#checkRuns.values()]
      .filter(
        (checkRun) =>
          (filter.sha === undefined || checkRun.sha === filter.sha) &&
          (filter.task === undefined || checkRun.task === filter.task) &&
          (filter.runId === undefined || checkRun.runId === filter.runId),
      )
      .map((checkRun) => structuredClone(checkRun));
  }
}

/**
 * The report as GitHub would keep it. A summary keeps its start (it opens with the outcome); a
 * text keeps its end (it holds a log's tail), as core/runs/check-text.ts cuts them.
 */
function fitToGithub(report: CheckReport): CheckReport {
  const stored: CheckReport = structuredClone(report);
  stored.summary = truncateEnd(report.summary);
  if (report.text !== undefined) stored.text = truncateStart(report.text);
  if (report.annotations !== undefined) stored.annotations = report.annotations.slice(0, annotationsPerReport);
  return stored;
}

function sameRepo(a: RepoRef, b: RepoRef): boolean {
  return a.owner.toLowerCase() === b.owner.toLowerCase() && a.name.toLowerCase() === b.name.toLowerCase();
}

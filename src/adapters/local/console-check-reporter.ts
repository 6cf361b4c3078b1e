/** CheckReporter for the terminal: what would be a check run is printed as it changes. */
import type { CheckReport, CheckReporter, CheckTarget } from '../../ports/check-reporter.js';
import type { RepoRef } from '../../core/runs/run.js';

export class ConsoleCheckReporter implements CheckReporter {
  private next = 1;
  private readonly names = new Map<number, string>();

  constructor(private readonly write: (line: string) => void) {}

  async create(target: CheckTarget, report: CheckReport): Promise<number> {
    const id = this.next++;
    this.names.set(id, target.task);
    this.print(target.task, report);
    return id;
  }

  async update(target: { repo: RepoRef; checkRunId: number | null }, report: CheckReport): Promise<void> {
    this.print(this.names.get(target.checkRunId ?? 0) ?? '?', report);
  }

  private print(task: string, report: CheckReport): void {
    const progress = /\*\*Progress:\*\* (.*)$/m.exec(report.summary)?.[1];
    const state = report.status === 'completed' ? `${report.conclusion}` : report.status.replace('_', ' ');
    this.write(`[${task}] ${state}${progress ? `: ${progress}` : ''}`);
  }
}

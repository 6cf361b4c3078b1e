/**
 * CheckReporter for the terminal: what would be a check run is shown as it changes. On a plain
 * output (a file, a pipe, CI) each report is one line, printed only when it differs from the
 * task's previous one. On a terminal, a running task's progress is a bar on the last line,
 * redrawn in place, with the task's own lines printed above it.
 */
import type { CheckReport, CheckReporter, CheckTarget } from '../../ports/check-reporter.js';
import type { RepoRef } from '../../core/runs/run.js';

/** Where lines go; `status`, on a terminal, is the line redrawn in place below them. */
export interface ConsoleOutput {
  line(text: string): void;
  status?(text: string | null): void;
}

export class ConsoleCheckReporter implements CheckReporter {
  private next = 1;
  private readonly names = new Map<number, string>();
  private readonly last = new Map<string, string>();
  private readonly output: ConsoleOutput;

  constructor(output: ((line: string) => void) | ConsoleOutput) {
    this.output = typeof output === 'function' ? { line: output } : output;
  }

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
    if (this.output.status && report.status === 'in_progress' && progress) {
      this.output.status(`[${task}] ${bar(progress)} ${progress}`);
      return;
    }
    const text = `[${task}] ${state}${progress ? `: ${progress}` : ''}`;
    if (this.last.get(task) === text) return;
    this.last.set(task, text);
    if (report.status === 'completed') this.output.status?.(null);
    this.output.line(text);
  }
}

/** A 20-cell bar for "3 of 4 (75%)"; an unknown total gives an empty bar. */
export function bar(progress: string): string {
  const percent = Number(/\((\d+(?:\.\d+)?)%\)/.exec(progress)?.[1] ?? 0);
  const filled = Math.max(0, Math.min(20, Math.round(percent / 5)));
  return `▕${'█'.repeat(filled)}${'░'.repeat(20 - filled)}▏`;
}

/**
 * Lines and a status line on a terminal: the status line is cleared before each line is
 * printed and drawn again after it, so the task's own output scrolls above the bar.
 */
export function terminalOutput(write: (text: string) => void, columns: () => number | undefined): Required<ConsoleOutput> {
  let shown: string | null = null;
  const clear = () => {
    if (shown !== null) write('\r\x1b[2K');
  };
  const draw = () => {
    if (shown !== null) write(shown.slice(0, Math.max(10, (columns() ?? 80) - 1)));
  };
  return {
    line(text) {
      clear();
      write(`${text}\n`);
      draw();
    },
    status(text) {
      clear();
      shown = text;
      draw();
    },
  };
}

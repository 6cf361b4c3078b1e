/**
 * ConsoleCheckReporter against the CheckReporter contract. It prints each report and keeps
 * nothing to read back, so the contract runs without read-back; what it prints is checked here.
 */
import { describe, expect, it } from 'vitest';
import { ConsoleCheckReporter, terminalOutput } from '../../src/adapters/local/console-check-reporter.js';
import { checkReporterContract } from './check-reporter.contract.js';

const repo = { owner: 'local', name: 'folder', installationId: 0 };

checkReporterContract(
  'ConsoleCheckReporter',
  async () => ({ reporter: new ConsoleCheckReporter(() => undefined), repo, sha: '0'.repeat(40), readBack: null, cleanup: async () => undefined }),
  { readBack: false },
);

describe('ConsoleCheckReporter', () => {
  it('prints one line per report, naming the task and its state', async () => {
    const lines: string[] = [];
    const reporter = new ConsoleCheckReporter((line) => lines.push(line));
    const id = await reporter.create({ repo, sha: '0'.repeat(40), task: 'snapshot' }, { status: 'queued', title: 'Queued', summary: 'q' });
    await reporter.update({ repo, checkRunId: id }, { status: 'in_progress', title: 'Running', summary: 'Running\n\n**Progress:** 3 of 4 (75%)' });
    await reporter.update({ repo, checkRunId: id }, { status: 'completed', conclusion: 'success', title: 'Succeeded', summary: 's' });
    expect(lines).toStrictEqual(['[snapshot] queued', '[snapshot] in progress: 3 of 4 (75%)', '[snapshot] success']);
  });

  it('prints a report only when it differs from the task\'s previous one', async () => {
    const lines: string[] = [];
    const reporter = new ConsoleCheckReporter((line) => lines.push(line));
    const id = await reporter.create({ repo, sha: '0'.repeat(40), task: 'snapshot' }, { status: 'in_progress', title: 'Running', summary: 'r' });
    for (const done of [1, 1, 1, 2, 2]) {
      await reporter.update({ repo, checkRunId: id }, { status: 'in_progress', title: 'Running', summary: `r\n\n**Progress:** ${done} of 4 (${done * 25}%)` });
    }
    expect(lines).toStrictEqual(['[snapshot] in progress', '[snapshot] in progress: 1 of 4 (25%)', '[snapshot] in progress: 2 of 4 (50%)']);
  });

  it('on a terminal, draws progress as a bar redrawn in place, with other lines printed above it', async () => {
    let screen = '';
    const terminal = terminalOutput((text) => (screen += text), () => 80);
    const reporter = new ConsoleCheckReporter(terminal);
    const id = await reporter.create({ repo, sha: '0'.repeat(40), task: 'snapshot' }, { status: 'queued', title: 'Queued', summary: 'q' });
    await reporter.update({ repo, checkRunId: id }, { status: 'in_progress', title: 'Running', summary: 'r\n\n**Progress:** 1 of 4 (25%)' });
    terminal.line('[snapshot] a line the task wrote');
    await reporter.update({ repo, checkRunId: id }, { status: 'in_progress', title: 'Running', summary: 'r\n\n**Progress:** 3 of 4 (75%)' });
    await reporter.update({ repo, checkRunId: id }, { status: 'completed', conclusion: 'success', title: 'Succeeded', summary: 's' });
    const quarter = `[snapshot] ▕${'█'.repeat(5)}${'░'.repeat(15)}▏ 1 of 4 (25%)`;
    const threeQuarters = `[snapshot] ▕${'█'.repeat(15)}${'░'.repeat(5)}▏ 3 of 4 (75%)`;
    expect(screen).toBe(
      '[snapshot] queued\n' +
        quarter +
        `\r\x1b[2K[snapshot] a line the task wrote\n${quarter}` +
        `\r\x1b[2K${threeQuarters}` +
        '\r\x1b[2K[snapshot] success\n',
    );
  });
});

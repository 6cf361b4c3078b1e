/**
 * ConsoleCheckReporter against the CheckReporter contract. It prints each report and keeps
 * nothing to read back, so the contract runs without read-back; what it prints is checked here.
 */
import { describe, expect, it } from 'vitest';
import { ConsoleCheckReporter } from '../../src/adapters/local/console-check-reporter.js';
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
});

/** MemoryCheckReporter against the CheckReporter contract, plus the history tests read from it. */
import { describe, expect, it } from 'vitest';
import { MemoryCheckReporter } from '../../src/adapters/local/memory-check-reporter.js';
import { checkReporterContract } from './check-reporter.contract.js';

const repo = { owner: 'octo-org', name: 'archive', installationId: 4242 };
const sha = 'a'.repeat(40);

checkReporterContract(
  'MemoryCheckReporter',
  async () => {
    const reporter = new MemoryCheckReporter();
    return {
      reporter,
      repo,
      sha,
      readBack: async (checkRunId) => {
        const checkRun = reporter.get(checkRunId);
        if (!checkRun) return undefined;
        const { current } = checkRun;
        return {
          sha: checkRun.sha,
          name: checkRun.task,
          status: current.status,
          conclusion: current.conclusion ?? null,
          title: current.title,
          summary: current.summary,
          text: current.text ?? null,
          actions: current.actions ?? [],
        };
      },
      cleanup: async () => undefined,
    };
  },
  { readBack: true },
);

describe('MemoryCheckReporter', () => {
  it('keeps every report of a check run in order, and lists check runs by commit, task and run', async () => {
    const reporter = new MemoryCheckReporter();
    const id = await reporter.create({ repo, sha, task: 'snapshot', id: 'run-1' }, { status: 'queued', title: 'Queued', summary: 'q' });
    await reporter.create({ repo, sha: 'b'.repeat(40), task: 'snapshot', id: 'run-2' }, { status: 'queued', title: 'Queued', summary: 'q' });
    await reporter.update({ repo, checkRunId: id, id: 'run-1' }, { status: 'in_progress', title: 'Running', summary: 'r' });
    await reporter.update({ repo, checkRunId: id, id: 'run-1' }, { status: 'completed', conclusion: 'success', title: 'Succeeded', summary: 's' });

    expect(reporter.get(id)?.history.map((report) => report.status)).toStrictEqual(['queued', 'in_progress', 'completed']);
    expect(reporter.list({ sha }).map((checkRun) => checkRun.id)).toStrictEqual([id]);
    expect(reporter.list({ task: 'snapshot' })).toHaveLength(2);
    expect(reporter.list({ runId: 'run-2' }).map((checkRun) => checkRun.sha)).toStrictEqual(['b'.repeat(40)]);
  });

  it('keeps the buttons when a report leaves them out, as GitHub does', async () => {
    const reporter = new MemoryCheckReporter();
    const cancel = { label: 'Cancel', description: 'Stop this run', identifier: 'cancel' };
    const id = await reporter.create({ repo, sha, task: 'snapshot' }, { status: 'queued', title: 'Queued', summary: 'q', actions: [cancel] });
    await reporter.update({ repo, checkRunId: id }, { status: 'in_progress', title: 'Running', summary: 'r' });
    expect(reporter.get(id)?.current.actions).toStrictEqual([cancel]);
  });

  it('hands out copies, so a test cannot change what was reported', async () => {
    const reporter = new MemoryCheckReporter();
    const id = await reporter.create({ repo, sha, task: 'snapshot' }, { status: 'queued', title: 'Queued', summary: 'q' });
    reporter.get(id)!.current.title = 'changed';
    expect(reporter.get(id)?.current.title).toBe('Queued');
  });

  it('refuses to update a check run of another repository', async () => {
    const reporter = new MemoryCheckReporter();
    const id = await reporter.create({ repo, sha, task: 'snapshot' }, { status: 'queued', title: 'Queued', summary: 'q' });
    await expect(reporter.update({ repo: { ...repo, name: 'other' }, checkRunId: id }, { status: 'in_progress', title: 'Running', summary: 'r' })).rejects.toThrow(/no check run/);
  });
});

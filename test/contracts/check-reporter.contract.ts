/**
 * What every CheckReporter adapter must do (src/ports/check-reporter.ts): create a check run for a
 * task at a commit and return its id; update it by that id; take summaries and texts longer than
 * GitHub's 65,535 characters, and more annotations than GitHub's 50 a request, by cutting them
 * instead of failing the run (https://docs.github.com/en/rest/checks/runs#create-a-check-run).
 *
 * An adapter that keeps its check runs somewhere they can be read back says how (`readBack`);
 * the console reporter prints and forgets, so it passes `readBack: null` and only the behaviours
 * visible through the port itself are checked for it. The suite's name says which it is.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CheckAction, CheckReport, CheckReporter, CheckTarget } from '../../src/ports/check-reporter.js';
import type { RepoRef } from '../../src/core/runs/run.js';

/** GitHub's cap on `output.summary` and `output.text`. */
export const githubTextLimit = 65_535;

/** A check run as a reader of the adapter's store (GitHub, memory) sees it. */
export interface CheckRunView {
  /** The commit it is on. */
  sha: string;
  /** The name shown; it must name the task. */
  name: string;
  status: string;
  conclusion: string | null;
  title: string | null;
  summary: string | null;
  text: string | null;
  actions: CheckAction[];
}

export interface OpenedCheckReporter {
  reporter: CheckReporter;
  /** A repository and a commit in it that check runs may be created on. */
  repo: RepoRef;
  sha: string;
  /** How to read a check run back, or null for an adapter that keeps nothing to read. */
  readBack: ((checkRunId: number) => Promise<CheckRunView | undefined>) | null;
  cleanup(): Promise<void>;
}

const cancel: CheckAction = { label: 'Cancel', description: 'Stop this run', identifier: 'cancel' };

export function checkReporterContract(name: string, open: () => Promise<OpenedCheckReporter>, options: { readBack: boolean }): void {
  describe(`CheckReporter contract: ${name}${options.readBack ? '' : ' (no read-back: only what the port itself shows)'}`, () => {
    let opened: OpenedCheckReporter;
    let reporter: CheckReporter;
    let target: CheckTarget;

    beforeEach(async () => {
      opened = await open();
      expect(opened.readBack !== null, 'readBack matches the declared capability').toBe(options.readBack);
      reporter = opened.reporter;
      target = { repo: opened.repo, sha: opened.sha, task: 'snapshot', id: 'run-1' };
    });

    afterEach(async () => {
      await opened.cleanup();
    });

    async function view(checkRunId: number): Promise<CheckRunView> {
      const found = await opened.readBack!(checkRunId);
      expect(found, `check run ${checkRunId}`).toBeDefined();
      return found!;
    }

    const queued: CheckReport = { status: 'queued', title: 'Queued', summary: 'Queued by @mona', actions: [cancel] };

    it('returns a new positive integer id for each check run it creates', async () => {
      const first = await reporter.create(target, queued);
      const second = await reporter.create({ ...target, task: 'other', id: 'run-2' }, queued);
      const third = await reporter.create(target, queued);
      for (const id of [first, second, third]) expect(Number.isSafeInteger(id) && id > 0, `id ${id}`).toBe(true);
      expect(new Set([first, second, third]).size).toBe(3);
    });

    it('updates a check run by its id through running to completed', async () => {
      const id = await reporter.create(target, queued);
      const checkRun = { repo: target.repo, checkRunId: id, id: target.id! };
      await expect(reporter.update(checkRun, { status: 'in_progress', title: 'Running', summary: 'Running at abc', actions: [cancel] })).resolves.toBeUndefined();
      await expect(reporter.update(checkRun, { status: 'completed', conclusion: 'failure', title: 'Failed', summary: 'exit code 3', text: 'log tail', actions: [] })).resolves.toBeUndefined();
    });

    it('takes a summary and a text longer than GitHub allows, and an annotation per line of a long file', async () => {
      const long: CheckReport = {
        status: 'completed',
        conclusion: 'failure',
        title: 'Failed',
        summary: `**Failed**\n${'s'.repeat(githubTextLimit * 2)}\nlast summary line`,
        text: `first log line\n${'t'.repeat(githubTextLimit * 3)}\nlast log line`,
        annotations: Array.from({ length: 120 }, (_, index) => ({ path: 'task-mgmt.yml', line: index + 1, title: 'bad', message: `line ${index + 1}` })),
        actions: [],
      };
      const id = await reporter.create(target, long);
      await expect(reporter.update({ repo: target.repo, checkRunId: id, id: target.id! }, long)).resolves.toBeUndefined();
    });

    if (!options.readBack) return;

    it('creates the check run on the target commit, named for the task, with the report shown', async () => {
      const id = await reporter.create(target, queued);
      expect(await view(id)).toMatchObject({
        sha: target.sha,
        name: expect.stringContaining(target.task),
        status: 'queued',
        conclusion: null,
        title: 'Queued',
        summary: 'Queued by @mona',
        actions: [cancel],
      });
    });

    it('changes status, conclusion, title, summary and text on update, and only on the check run named', async () => {
      const id = await reporter.create(target, queued);
      const other = await reporter.create({ ...target, task: 'other', id: 'run-2' }, queued);
      const checkRun = { repo: target.repo, checkRunId: id, id: target.id! };

      await reporter.update(checkRun, { status: 'in_progress', title: 'Running', summary: 'Running at abc', actions: [cancel] });
      expect(await view(id)).toMatchObject({ status: 'in_progress', conclusion: null, title: 'Running', summary: 'Running at abc' });

      await reporter.update(checkRun, { status: 'completed', conclusion: 'timed_out', title: 'Timed out', summary: 'after 6h', text: 'log tail' });
      expect(await view(id)).toMatchObject({ status: 'completed', conclusion: 'timed_out', title: 'Timed out', summary: 'after 6h', text: 'log tail' });
      expect(await view(other)).toMatchObject({ status: 'queued', title: 'Queued', summary: 'Queued by @mona' });
    });

    it.each(['success', 'failure', 'cancelled', 'timed_out', 'action_required', 'neutral'] as const)('records the conclusion %s', async (conclusion) => {
      const id = await reporter.create(target, { status: 'completed', conclusion, title: conclusion, summary: conclusion, actions: [] });
      expect(await view(id)).toMatchObject({ status: 'completed', conclusion });
    });

    it('shows the buttons a report gives, and removes them on an empty list', async () => {
      const id = await reporter.create(target, queued);
      expect((await view(id)).actions).toStrictEqual([cancel]);
      await reporter.update({ repo: target.repo, checkRunId: id, id: target.id! }, { status: 'completed', conclusion: 'cancelled', title: 'Cancelled', summary: 'by @mona', actions: [] });
      expect((await view(id)).actions).toStrictEqual([]);
    });

    it('cuts a summary or text longer than GitHub allows, keeping the summary’s start and the text’s end', async () => {
      const summary = `**Failed** in 3s\n${'s'.repeat(githubTextLimit * 2)}`;
      const text = `${'t'.repeat(githubTextLimit * 3)}\nthe last log line`;
      const id = await reporter.create(target, { status: 'completed', conclusion: 'failure', title: 'Failed', summary, text, actions: [] });
      const shown = await view(id);
      expect(shown.summary!.length).toBeLessThanOrEqual(githubTextLimit);
      expect(shown.summary!.startsWith('**Failed** in 3s\n')).toBe(true);
      expect(shown.text!.length).toBeLessThanOrEqual(githubTextLimit);
      expect(shown.text!.endsWith('\nthe last log line')).toBe(true);

      await reporter.update({ repo: target.repo, checkRunId: id, id: target.id! }, { status: 'completed', conclusion: 'failure', title: 'Failed', summary: `again ${summary}`, text: `${text} again`, actions: [] });
      const updated = await view(id);
      expect(updated.summary!.length).toBeLessThanOrEqual(githubTextLimit);
      expect(updated.summary!.startsWith('again **Failed**')).toBe(true);
      expect(updated.text!.endsWith('the last log line again')).toBe(true);
    });

    it('keeps texts that fit exactly as given', async () => {
      const summary = 's'.repeat(githubTextLimit);
      const text = 't'.repeat(githubTextLimit);
      const id = await reporter.create(target, { status: 'completed', conclusion: 'success', title: 'Succeeded', summary, text, actions: [] });
      expect(await view(id)).toMatchObject({ summary, text });
    });

    it('fails to update a check run it never created', async () => {
      const id = await reporter.create(target, queued);
      await expect(reporter.update({ repo: target.repo, checkRunId: id + 1_000_000, id: 'run-unknown' }, queued)).rejects.toThrow();
      await expect(reporter.update({ repo: target.repo, checkRunId: null, id: 'run-without-check' }, queued)).rejects.toThrow();
    });
  });
}

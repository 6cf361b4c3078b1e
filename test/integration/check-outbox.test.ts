/**
 * A run's final check-run state reaches GitHub though GitHub refused it when the run ended, and
 * though the app restarted in between: the update is kept in the run store's outbox (on disk) and
 * sent by the next process once GitHub answers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGithubClient } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { GithubCheckReporter } from '../../src/adapters/github/github-check-reporter.js';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import { KeptCheckReporter } from '../../src/core/runs/kept-check-reporter.js';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { newRun } from '../contracts/run-store.contract.js';

let gh: FakeGitHub;
let repo: Repo;
let dir: string;

beforeAll(async () => {
  gh = await FakeGitHub.start();
  repo = await gh.createRepo({ owner: 'octo-org', name: 'outbox', files: { 'README.md': 'hi\n' } });
  dir = await mkdtemp(join(tmpdir(), 'task-mgmt-outbox-'));
});

afterAll(async () => {
  await gh?.close();
  await rm(dir, { recursive: true, force: true });
});

const silent = pino({ level: 'silent' });

function keptReporter(store: SqliteRunStore): KeptCheckReporter {
  const { octokitFor } = createGithubClient(loadConfig({ ...gh.appEnv(), LOG_LEVEL: 'silent' }, { takesWebhooks: false }), silent);
  return new KeptCheckReporter({ checks: new GithubCheckReporter({ octokitFor }), store, log: silent, now: () => new Date() });
}

describe('a check-run update GitHub refuses', () => {
  it('is kept in the store and sent after a restart, once GitHub answers', async () => {
    const file = join(dir, 'task-mgmt.sqlite');
    const repoRef = { owner: repo.owner, name: repo.name, installationId: gh.installationIdOf(repo) };
    const sha = gh.headOf(repo, 'main');

    let store = await SqliteRunStore.open(file);
    let checks = keptReporter(store);
    const checkRunId = await checks.create({ repo: repoRef, sha, task: 'kept', id: 'run-kept' }, { status: 'queued', title: 'Queued', summary: 'queued' });
    const run = await store.createRun(newRun({ id: 'run-kept', repo: repoRef, sha, task: 'kept', checkRunId }), new Date());

    // The installation's hourly quota is spent: too long a wait to hold the update for.
    const reset = String(Math.floor(Date.now() / 1000) + 3600);
    gh.failNext({
      method: 'PATCH',
      path: /\/check-runs\/\d+$/,
      status: 403,
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset, 'content-type': 'application/json' },
      body: { message: 'API rate limit exceeded for installation.' },
      times: 2,
    });
    await checks.update(run, { status: 'in_progress', title: 'Running', summary: 'running' });
    await checks.update(run, { status: 'completed', conclusion: 'success', title: 'Succeeded', summary: 'ipfs://done' });
    expect(gh.checkRuns(repo, { name: 'task-mgmt / kept' })[0]).toMatchObject({ status: 'queued' });
    expect((await store.listCheckUpdates(10)).map((kept) => [kept.runId, (kept.report as { status: string }).status])).toEqual([['run-kept', 'completed']]);
    await store.close();

    // The next process: same store on disk, GitHub answering again.
    store = await SqliteRunStore.open(file);
    checks = keptReporter(store);
    expect(await checks.sendKept()).toBe(1);
    expect(gh.checkRuns(repo, { name: 'task-mgmt / kept' })[0]).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(await store.listCheckUpdates(10)).toEqual([]);
    // Only the newest state was kept: the stale in_progress was never sent after the end.
    expect(gh.checkRuns(repo, { name: 'task-mgmt / kept' })[0]!.history.map((body) => body.status)).toEqual(['queued', 'completed']);
    await store.close();
  }, 60_000);
});

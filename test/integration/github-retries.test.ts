/**
 * GitHub answering 502, or 403 for a secondary rate limit, for a while: the app's Octokit waits
 * and tries again (throttling and retry plugins, configured in github-octokit.ts), so the check
 * run still reaches its final state. Probot's default gave up on the first secondary limit.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGithubClient } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { GithubCheckReporter } from '../../src/adapters/github/github-check-reporter.js';
import { FakeGitHub, type Repo } from '../fake-github/index.js';

let gh: FakeGitHub;
let repo: Repo;

beforeAll(async () => {
  gh = await FakeGitHub.start();
  repo = await gh.createRepo({ owner: 'octo-org', name: 'retries', files: { 'README.md': 'hi\n' } });
});

afterAll(async () => {
  await gh?.close();
});

function reporter(): GithubCheckReporter {
  const config = loadConfig({ ...gh.appEnv(), LOG_LEVEL: 'silent' }, { takesWebhooks: false });
  const { octokitFor } = createGithubClient(config, pino({ level: 'silent' }));
  return new GithubCheckReporter({ octokitFor });
}

const checkRunPath = /\/repos\/octo-org\/retries\/check-runs(\/\d+)?$/;
const secondaryLimit = {
  status: 403,
  headers: { 'retry-after': '1', 'content-type': 'application/json' },
  body: { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', documentation_url: 'https://docs.github.com/rest' },
};

describe('check runs while GitHub answers 502 or a secondary rate limit', () => {
  it('creates and completes the check run once GitHub answers again', async () => {
    const checks = reporter();
    const sha = gh.headOf(repo, 'main');
    const target = { repo: { owner: repo.owner, name: repo.name, installationId: gh.installationIdOf(repo) }, sha, task: 'retried', id: 'run-retried' };

    gh.failNext({ method: 'POST', path: checkRunPath, status: 502, body: { message: 'Server Error' }, times: 2 });
    const checkRunId = await checks.create(target, { status: 'queued', title: 'Queued', summary: 'queued' });

    gh.failNext({ method: 'PATCH', path: checkRunPath, ...secondaryLimit, times: 2 });
    await checks.update({ ...target, checkRunId }, { status: 'completed', conclusion: 'success', title: 'Succeeded', summary: 'done' });

    const [run] = gh.checkRuns(repo, { name: 'task-mgmt / retried' });
    expect(run).toMatchObject({ id: checkRunId, status: 'completed', conclusion: 'success' });
    const tries = gh.requests.filter((request) => checkRunPath.test(request.path));
    expect(tries.filter((request) => request.method === 'POST').map((request) => request.status)).toEqual([502, 502, 201]);
    expect(tries.filter((request) => request.method === 'PATCH').map((request) => request.status)).toEqual([403, 403, 200]);
  }, 60_000);

  it('gives up on a 502 that lasts, with the error GitHub gave', async () => {
    const checks = reporter();
    const sha = gh.headOf(repo, 'main');
    const target = { repo: { owner: repo.owner, name: repo.name, installationId: gh.installationIdOf(repo) }, sha, task: 'down', id: 'run-down' };
    gh.failNext({ method: 'POST', path: checkRunPath, status: 502, body: { message: 'Server Error' }, times: 10 });
    await expect(checks.create(target, { status: 'queued', title: 'Queued', summary: 'queued' })).rejects.toMatchObject({ status: 502 });
    // One try and three retries, then the failure is the caller's to handle.
    expect(gh.requests.filter((request) => request.method === 'POST' && checkRunPath.test(request.path) && request.status === 502)).toHaveLength(2 + 4);
  }, 60_000);
});

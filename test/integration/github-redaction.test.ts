/**
 * Secrets never show on GitHub (README "Security model"): a log line carrying an installation
 * token, an API token, the webhook secret, the OAuth client secret and a private key reaches the
 * fake GitHub's check run and replies redacted, with the secrets the composition root hands in.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { Probot } from 'probot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubRedactor } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { GithubCheckReporter } from '../../src/adapters/github/github-check-reporter.js';
import { GithubConversation } from '../../src/adapters/github/github-conversation.js';
import type { Octokit } from '../../src/adapters/github/octokit.js';
import { probotFor } from '../support/fake-github-probot.js';
import { FakeGitHub, type Repo } from '../fake-github/index.js';

const apiToken = `api-${randomUUID()}`;
const clientSecret = `client-${randomUUID()}`;
const installationToken = `ghs_${'A1b2C3d4'.repeat(4)}xyzw`;
const personalToken = `github_pat_11ABCDEFG0${'x'.repeat(60)}`;
const pem = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

let gh: FakeGitHub;
let probot: Probot;
let repo: Repo;

beforeAll(async () => {
  gh = await FakeGitHub.start();
  probot = probotFor(gh);
  repo = await gh.createRepo({ owner: 'octo-org', name: `redact-${randomUUID().slice(0, 8)}`, files: { Dockerfile: 'FROM busybox\n' } });
});

afterAll(async () => {
  await gh?.close();
});

describe('text bound for GitHub', () => {
  const config = () =>
    loadConfig({ ...gh.appEnv(), API_TOKENS: `${apiToken},another-token-of-16-chars`, GITHUB_CLIENT_SECRET: clientSecret, DATA_DIR: '/tmp/task-mgmt-unused' });
  const logWithSecrets = () =>
    [
      'Step 3/4 : RUN env',
      `GITHUB_TOKEN=${installationToken}`,
      `curl -H "Authorization: token ${personalToken}"`,
      `API_TOKEN=${apiToken}`,
      `webhook secret: ${gh.webhookSecret}; client secret: ${clientSecret}`,
      `app key: ${gh.privateKey.trim()}`,
      `found on disk:\n${pem.trim()}`,
      'done',
    ].join('\n');
  const secrets = () => [installationToken, personalToken, apiToken, gh.webhookSecret, clientSecret, 'PRIVATE KEY', ...pem.split('\n').slice(1, -2), ...gh.privateKey.split('\n').slice(1, -2)];

  it('reaches the check run redacted: title, summary, text and annotations', async () => {
    const reporter = new GithubCheckReporter({
      octokitFor: async (installationId) => (await probot.auth(installationId)) as Octokit,
      redact: githubRedactor(config()),
    });
    const target = { repo: { owner: repo.owner, name: repo.name, installationId: gh.installationId }, sha: gh.headOf(repo, repo.defaultBranch), task: 'leak', id: randomUUID() };
    const checkRunId = await reporter.create(target, { status: 'in_progress', title: `running with ${installationToken}`, summary: 'started', text: logWithSecrets() });
    await reporter.update(
      { repo: target.repo, checkRunId, id: target.id },
      {
        status: 'completed',
        conclusion: 'failure',
        title: 'failed',
        summary: `the task failed: ${apiToken}`,
        text: logWithSecrets(),
        annotations: [{ path: 'Dockerfile', line: 1, title: `token ${installationToken}`, message: logWithSecrets() }],
      },
    );
    const requests = gh.requests.filter((request) => request.path.includes('/check-runs'));
    expect(requests.length).toBeGreaterThanOrEqual(2);
    const sent = JSON.stringify(requests.map((request) => request.body));
    for (const secret of secrets()) expect(sent, 'sent to GitHub').not.toContain(secret);
    const [record] = gh.checkRuns(repo).filter((checkRun) => checkRun.id === checkRunId);
    expect(record!.output.text).toContain(`GITHUB_TOKEN=[redacted]`);
    expect(record!.output.text).toContain('found on disk:\n[redacted]\ndone');
    expect(record!.output.summary).toBe('the task failed: [redacted]');
  });

  it('reaches a reply redacted', async () => {
    const number = gh.createIssue(repo, { author: 'alice', title: 'leak' });
    const octokit = (await probot.auth(gh.installationId)) as Octokit;
    await new GithubConversation(octokit, repo, githubRedactor(config())).reply(number, `> ${logWithSecrets()}`);
    const [comment] = gh.commentsOn(repo, number);
    for (const secret of secrets()) expect(comment!.body).not.toContain(secret);
    expect(comment!.body).toContain('API_TOKEN=[redacted]');
  });
});

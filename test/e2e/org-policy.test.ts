/**
 * The org policy end to end: the real app process and the fake GitHub, with the org's `.github`
 * repository holding `.github/task-mgmt.yml`. Refusals happen before anything is queued, so no
 * container runs here.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { startApp, type AppProcess } from '../support/app-process.js';

const orgFile = [
  'version: 1',
  'allow:',
  '  types: [container, procfile]',
  'limits: { memory: 1g, timeout: 1h }',
  'roles: { run: write }',
  '',
].join('\n');

describe('org policy from the org .github repository', () => {
  let gh: FakeGitHub;
  let app: AppProcess;
  let policyRepo: Repo;

  beforeAll(async () => {
    gh = await FakeGitHub.start();
    policyRepo = await gh.createRepo({ owner: 'octo-org', name: '.github', files: { '.github/task-mgmt.yml': orgFile } });
    app = await startApp(gh);
  });

  afterAll(async () => {
    await app?.stop();
    await gh?.close();
  });

  async function repoWith(owner: string, manifest: string): Promise<Repo> {
    const repo = await gh.createRepo({ owner, name: `r-${randomUUID().slice(0, 8)}`, files: { 'task-mgmt.yml': manifest, Dockerfile: 'FROM busybox\nCMD true\n' } });
    gh.setRole(repo, 'maintainer', 'maintain');
    return repo;
  }

  /** Comments on a new issue and waits for the app's reply. */
  async function ask(repo: Repo, body: string): Promise<string> {
    const number = gh.createIssue(repo, { author: 'maintainer', title: 'run it' });
    await gh.comment(repo, number, 'maintainer', body);
    const reply = await gh.waitFor(() => gh.commentsOn(repo, number).find((c) => c.user.login === gh.botLogin), {
      timeoutMs: 20_000,
      message: `no reply to ${body}\n${app.output().slice(-3000)}`,
    });
    return reply.body;
  }

  it('refuses a task type the org does not allow, naming the rule and the file, and queues nothing', async () => {
    const repo = await repoWith('octo-org', 'version: 1\ntasks:\n  fetch:\n    uses: ipfs/add-url\n    with: { url: "https://example.org/a.txt" }\n');
    const reply = await ask(repo, '/run');
    expect(reply).toContain('`allow.types` of the org policy `octo-org/.github` `.github/task-mgmt.yml`');
    expect(reply).toContain('`ipfs/add-url`');
    expect(gh.checkRuns(repo)).toEqual([]);
  });

  it('refuses memory beyond the org cap, and /help shows the effective limits', async () => {
    const repo = await repoWith('octo-org', 'version: 1\ntasks:\n  build:\n    dockerfile: Dockerfile\n    resources: { memory: 4g }\n');
    const reply = await ask(repo, '/run build');
    expect(reply).toMatch(/asks for 4\.0 GiB of memory; `limits\.memory` of the org policy `octo-org\/\.github` `\.github\/task-mgmt\.yml` allows at most 1\.0 GiB/);
    expect(gh.checkRuns(repo)).toEqual([]);
    const help = await ask(repo, '/help');
    expect(help).toContain('Org policy `octo-org/.github` `.github/task-mgmt.yml`:');
    expect(help).toContain('task types: `container`, `procfile`');
    expect(help).toContain('1.0 GiB memory');
  });

  it('says when an owner has no org policy', async () => {
    const repo = await repoWith('solo-user', 'version: 1\ntasks:\n  build:\n    dockerfile: Dockerfile\n');
    const help = await ask(repo, '/help');
    expect(help).toContain('No org policy: there is no repository solo-user/.github this installation can read');
  });

  it('an invalid org file, pushed to the .github repository, refuses every run of the org saying where the error is', async () => {
    const repo = await repoWith('octo-org', 'version: 1\ntasks:\n  build:\n    dockerfile: Dockerfile\n');
    await gh.push(policyRepo, 'main', { '.github/task-mgmt.yml': 'version: 1\nlimits:\n  memory: plenty\n' });
    // The push is read at once: the next /run sees the new file.
    await gh.waitFor(() => app.output().includes('push to a branch handled'), { timeoutMs: 20_000 });
    const reply = await ask(repo, '/run');
    expect(reply).toContain('the org policy `octo-org/.github` `.github/task-mgmt.yml` is invalid (line 3, `limits.memory`');
    expect(gh.checkRuns(repo)).toEqual([]);
    await ask(repo, '/run build');
    // Logged once, however many runs it refuses.
    expect(app.output().split('is invalid (line 3').length - 1).toBe(1);

    // Fixed: runs are decided by the policy again.
    await gh.push(policyRepo, 'main', { '.github/task-mgmt.yml': orgFile });
    await gh.waitFor(() => app.output().split('push to a branch handled').length - 1 >= 2, { timeoutMs: 20_000 });
    const help = await ask(repo, '/help');
    expect(help).toContain('1.0 GiB memory');
    expect(gh.unhandled).toEqual([]);
  });
});

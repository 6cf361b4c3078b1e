/**
 * The review gate and the command surface, end to end: the real app, the fake GitHub, a real
 * Docker engine. Each test names the rule it proves (see README "Security model").
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub, type CheckRunRecord, type Repo } from '../fake-github/index.js';
import { requireServices } from '../support/services.js';
import { startApp, type AppProcess } from '../support/app-process.js';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';

const quick = 'FROM busybox\nCMD echo TASK STARTED && printf "hello world\\n" > /out/hello.txt\n';
const slow = 'FROM busybox\nCMD echo TASK STARTED && sleep 600\n';
const slowBuild = 'FROM busybox\nRUN sleep 4\nCMD echo TASK STARTED\n';

const dockerReady = await requireServices('docker');

describe.skipIf(!dockerReady)('review gate and commands', () => {
  let gh: FakeGitHub;
  let app: AppProcess;

  beforeAll(async () => {
    gh = await FakeGitHub.start();
    app = await startApp(gh, { COMMANDS_PER_MINUTE: '1000', WORKERS: '2' });
  });

  afterAll(async () => {
    await app?.stop();
    if (gh) {
      expect(gh.unhandled).toEqual([]);
      expect(gh.openapiViolations).toEqual([]);
      await gh.close();
    }
  });

  async function newRepo(dockerfile = quick): Promise<Repo> {
    const repo = await gh.createRepo({ owner: 'octo-org', name: `gate-${randomUUID().slice(0, 8)}`, files: { Dockerfile: dockerfile, 'README.md': 'r\n' } });
    for (const [login, role] of [['maintainer', 'maintain'], ['writer', 'write'], ['admin', 'admin'], ['triager', 'triage'], ['reader', 'read'], ['visitor', 'read']] as const) {
      gh.setRole(repo, login, role);
    }
    return repo;
  }

  async function pullRequest(repo: Repo, author: string, files: Record<string, string>): Promise<{ number: number; branch: string }> {
    const branch = `change-${randomUUID().slice(0, 6)}`;
    await gh.commit(repo, branch, files);
    const { number } = await gh.openPullRequest(repo, { author, head: branch });
    return { number, branch };
  }

  const botReplies = (repo: Repo, number: number) => gh.commentsOn(repo, number).filter((c) => c.user.login === gh.botLogin).map((c) => c.body);

  async function reply(repo: Repo, number: number, count = 1): Promise<string> {
    const bodies = await gh.waitFor(() => (botReplies(repo, number).length >= count ? botReplies(repo, number) : undefined), {
      timeoutMs: 30_000,
      message: `no reply on #${number}\n${app.output().slice(-2000)}`,
    });
    return bodies[count - 1]!;
  }

  async function check(repo: Repo, sha: string, predicate: (c: CheckRunRecord) => boolean = (c) => c.status === 'completed', timeoutMs = 40_000) {
    return gh.waitFor(() => gh.checkRuns(repo, { headSha: sha }).find(predicate), {
      timeoutMs,
      message: `no matching check run on ${sha}\n${app.output().slice(-3000)}`,
    });
  }

  it('outsider PR: refused with action_required, runs once approved at the head, and goes stale after a push', async () => {
    const repo = await newRepo();
    const { number, branch } = await pullRequest(repo, 'visitor', { 'README.md': 'typo fixed\n' });
    const first = gh.headOf(repo, branch);

    await gh.comment(repo, number, 'maintainer', '/run');
    const waiting = await check(repo, first);
    expect(waiting.conclusion).toBe('action_required');
    expect(waiting.output.summary).toContain('@visitor has the read role');
    expect(waiting.output.summary).toContain(`approval by someone with write access of the head commit \`${first}\``);
    expect(await reply(repo, number)).toMatch(/nothing was run yet: pull request #\d+ needs an approving review/);

    await gh.review(repo, number, 'maintainer', 'APPROVED');
    await gh.comment(repo, number, 'maintainer', '/run');
    const ran = await check(repo, first, (c) => c.status === 'completed' && c.conclusion === 'success');
    expect(ran.output.summary).toContain('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o');
    expect(ran.history[0]!.output).toMatchObject({ summary: expect.stringContaining('approving reviews `') });

    const { after } = await gh.pushToPullRequest(repo, number, { 'notes.txt': 'more\n' });
    const stale = await gh.waitFor(() => gh.checkRuns(repo, { headSha: first }).find((c) => c.id === waiting.id && c.output.title?.startsWith('Stale')), {
      timeoutMs: 20_000,
      message: 'the waiting approval was not marked stale',
    });
    expect(stale.output.summary).toContain(after);

    await gh.comment(repo, number, 'maintainer', '/run');
    const again = await check(repo, after);
    expect(again.conclusion).toBe('action_required');
    expect(again.output.summary).toContain(`@maintainer approved \`${first.slice(0, 12)}\`, not the head`);

    // Every decision, allowed or refused, with its reason, is in the audit log.
    const store = SqliteRunStore.openReadOnly(join(app.dataDir, 'task-mgmt.sqlite'));
    try {
      // Each command's admission under the command limit is an entry of its own.
      const audit = (await store.listAudit(repo.fullName)).filter((e) => e.action !== 'command');
      expect(audit.map((e) => [e.actor, e.action, e.allowed])).toEqual([
        ['maintainer', 'run', false],
        ['maintainer', 'run', true],
        ['push', 'push', true],
        ['maintainer', 'run', false],
      ]);
      expect(audit[1]!.reason).toMatch(/@maintainer approved/);
      const [run] = await store.listRuns({ repo: repo.fullName });
      expect(run!.approvals).toHaveLength(1);
      expect(run!.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    } finally {
      await store.close();
    }
  });

  it('a task change approved only by its own author is not counted', async () => {
    const repo = await newRepo();
    const { number, branch } = await pullRequest(repo, 'writer', { Dockerfile: quick.replace('hello world', 'changed') });
    await gh.review(repo, number, 'writer', 'APPROVED');
    await gh.comment(repo, number, 'writer', '/run');
    const waiting = await check(repo, gh.headOf(repo, branch));
    expect(waiting.conclusion).toBe('action_required');
    expect(waiting.output.summary).toContain('it changes the task (`Dockerfile`)');
    expect(waiting.output.summary).toContain('other than @writer');
    expect(waiting.output.summary).toContain('@writer wrote the pull request and cannot approve its own task change');
  });

  it('a change to a file the Dockerfile copies in is a task change too', async () => {
    const repo = await gh.createRepo({ owner: 'octo-org', name: `gate-${randomUUID().slice(0, 8)}`, files: { Dockerfile: 'FROM busybox\nCOPY run.sh /run.sh\nCMD sh /run.sh\n', 'run.sh': 'echo one\n' } });
    gh.setRole(repo, 'maintainer', 'maintain');
    const { number, branch } = await pullRequest(repo, 'maintainer', { 'run.sh': 'echo two\n' });
    await gh.comment(repo, number, 'maintainer', '/run');
    const waiting = await check(repo, gh.headOf(repo, branch));
    expect(waiting.conclusion).toBe('action_required');
    expect(waiting.output.summary).toContain('it changes the task (`run.sh`)');
  });

  it('an approval by a read-only user is not counted', async () => {
    const repo = await newRepo();
    const { number, branch } = await pullRequest(repo, 'visitor', { 'README.md': 'x\n' });
    await gh.review(repo, number, 'reader', 'APPROVED');
    await gh.comment(repo, number, 'maintainer', '/run');
    const waiting = await check(repo, gh.headOf(repo, branch));
    expect(waiting.conclusion).toBe('action_required');
    expect(waiting.output.summary).toContain('@reader does not have write access');
  });

  it('an approval followed by changes requested is withdrawn', async () => {
    const repo = await newRepo();
    const { number, branch } = await pullRequest(repo, 'visitor', { 'README.md': 'x\n' });
    await gh.review(repo, number, 'maintainer', 'APPROVED');
    await gh.review(repo, number, 'maintainer', 'CHANGES_REQUESTED');
    await gh.comment(repo, number, 'maintainer', '/run');
    expect((await check(repo, gh.headOf(repo, branch))).conclusion).toBe('action_required');
  });

  it('a push between /run and the container start cancels the run before anything executes', async () => {
    const repo = await newRepo(slowBuild);
    const { number, branch } = await pullRequest(repo, 'writer', { 'README.md': 'x\n' });
    const pinned = gh.headOf(repo, branch);
    await gh.comment(repo, number, 'maintainer', '/run');
    await check(repo, pinned, (c) => c.status === 'in_progress');
    // A commit that moves the head without a webhook: only the check before start can see it.
    const moved = await gh.commit(repo, branch, { 'README.md': 'sneaky\n' });
    const done = await check(repo, pinned);
    expect(done.conclusion).toBe('cancelled');
    expect(done.output.summary).toContain(`moved from \`${pinned.slice(0, 12)}\` to \`${moved.slice(0, 12)}\` before the task started; nothing ran`);
    expect(done.output.text ?? '').not.toMatch(/^TASK STARTED$/m);
  });

  it('a push (pull_request.synchronize) cancels the running run of the old head', async () => {
    const repo = await newRepo(slow);
    const { number, branch } = await pullRequest(repo, 'writer', { 'README.md': 'x\n' });
    const pinned = gh.headOf(repo, branch);
    await gh.comment(repo, number, 'maintainer', '/run');
    await check(repo, pinned, (c) => c.status === 'in_progress');
    await gh.pushToPullRequest(repo, number, { 'README.md': 'y\n' });
    const done = await check(repo, pinned, undefined, 20_000);
    expect(done.conclusion).toBe('cancelled');
    expect(done.output.summary).toContain('new commits were pushed');
  });

  it('with cancel_on_push: false in the manifest, a push leaves the running run alone', async () => {
    const repo = await gh.createRepo({
      owner: 'octo-org',
      name: `gate-${randomUUID().slice(0, 8)}`,
      files: { 'task-mgmt.yml': 'version: 1\ntasks:\n  main:\n    dockerfile: Dockerfile\ncancel_on_push: false\n', Dockerfile: 'FROM busybox\nCMD sleep 7\n' },
    });
    gh.setRole(repo, 'maintainer', 'maintain');
    gh.setRole(repo, 'writer', 'write');
    const { number, branch } = await pullRequest(repo, 'writer', { 'README.md': 'x\n' });
    const pinned = gh.headOf(repo, branch);
    await gh.comment(repo, number, 'maintainer', '/run');
    await check(repo, pinned, (c) => c.status === 'in_progress');
    await new Promise((r) => setTimeout(r, 3500)); // past the check before start: the container runs
    await gh.pushToPullRequest(repo, number, { 'README.md': 'y\n' });
    const done = await check(repo, pinned);
    expect(done.conclusion).toBe('success');
  });

  it('/cancel stops a running container within seconds', { timeout: 120_000 }, async () => {
    const repo = await newRepo(slow);
    const number = gh.createIssue(repo, { author: 'writer', title: 'archive' });
    const head = gh.headOf(repo, repo.defaultBranch);
    await gh.comment(repo, number, 'maintainer', '/run');
    await check(repo, head, (c) => c.status === 'in_progress');
    await new Promise((r) => setTimeout(r, 2500)); // let the container start
    const started = Date.now();
    const { commentId } = await gh.comment(repo, number, 'writer', '/cancel');
    const done = await check(repo, head, undefined, 15_000);
    console.info(`[measure] /cancel → check run cancelled in ${Date.now() - started} ms`);
    expect(done.conclusion).toBe('cancelled');
    expect(done.output.summary).toContain('cancelled by @writer');
    await gh.waitFor(() => gh.reactionsOn(commentId).some((r) => r.content === '+1'), { timeoutMs: 10_000, message: 'no reaction to /cancel' });
    // The container is gone too: nothing labelled with the run stays on the engine.
    await gh.waitFor(async () => !(await dockerPs()).includes(done.externalId!), { timeoutMs: 15_000, message: 'the container kept running' });
  });

  it('the check run\'s Cancel button cancels for a writer and is refused for a reader', async () => {
    const repo = await newRepo(slow);
    const number = gh.createIssue(repo, { author: 'writer', title: 'archive' });
    const head = gh.headOf(repo, repo.defaultBranch);
    await gh.comment(repo, number, 'maintainer', '/run');
    const running = await check(repo, head, (c) => c.status === 'in_progress');
    expect(running.actions.map((a) => a.identifier)).toEqual(['cancel']);
    await gh.clickAction(repo, running.id, 'reader', 'cancel');
    expect(await reply(repo, number)).toMatch(/@reader nothing was cancelled: @reader has the read role.*cancelling runs needs write/);
    await gh.clickAction(repo, running.id, 'writer', 'cancel');
    const done = await check(repo, head, undefined, 15_000);
    expect(done.conclusion).toBe('cancelled');
    expect(done.actions).toEqual([]);
  });

  it('the Re-run button goes through the same policy: a reader is refused, a maintainer re-runs', async () => {
    const repo = await newRepo();
    const { number, branch } = await pullRequest(repo, 'writer', { 'README.md': 'x\n' });
    const head = gh.headOf(repo, branch);
    await gh.comment(repo, number, 'maintainer', '/run');
    const first = await check(repo, head);
    expect(first.conclusion).toBe('success');

    await gh.clickRerun(repo, first.id, 'reader');
    expect(await reply(repo, number)).toMatch(/@reader nothing was run: @reader has the read role/);
    expect(gh.checkRuns(repo, { headSha: head })).toHaveLength(1);

    await gh.clickRerun(repo, first.id, 'maintainer');
    const second = await check(repo, head, (c) => c.id !== first.id && c.status === 'completed');
    expect(second.conclusion).toBe('success');

    // After a push, re-running the old check run is refused: the SHA is re-validated.
    const moved = await gh.commit(repo, branch, { 'README.md': 'z\n' });
    await gh.clickRerun(repo, first.id, 'maintainer');
    expect(await reply(repo, number, 2)).toContain(`the head is now \`${moved.slice(0, 12)}\``);
  });

  it('/retry runs a failed task again at the same SHA', async () => {
    const repo = await newRepo('FROM busybox\nCMD echo flaky && exit 1\n');
    const number = gh.createIssue(repo, { author: 'writer', title: 'archive' });
    const head = gh.headOf(repo, repo.defaultBranch);
    await gh.comment(repo, number, 'maintainer', '/run');
    const first = await check(repo, head);
    expect(first.conclusion).toBe('failure');
    await gh.comment(repo, number, 'maintainer', '/retry');
    const second = await check(repo, head, (c) => c.id !== first.id && c.status === 'completed');
    expect(second.conclusion).toBe('failure');
    expect(second.externalId).not.toBe(first.externalId);
  });

  it('a permission lookup that fails with 502 refuses and says why', async () => {
    const repo = await newRepo();
    const number = gh.createIssue(repo, { author: 'writer', title: 'archive' });
    gh.failNext({ method: 'GET', path: /\/collaborators\/maintainer\/permission$/, status: 502, times: 20 });
    await gh.comment(repo, number, 'maintainer', '/run');
    expect(await reply(repo, number)).toMatch(/nothing was run: task-mgmt could not check this request with GitHub .*never runs what it could not check/);
    expect(gh.checkRuns(repo)).toEqual([]);
  });

  it('edited comments, quoted commands and bots are never commands', async () => {
    const repo = await newRepo();
    gh.setRole(repo, 'helper[bot]', 'admin');
    const number = gh.createIssue(repo, { author: 'writer', title: 'archive' });
    const { commentId } = await gh.comment(repo, number, 'maintainer', 'looks good');
    await gh.editComment(repo, commentId, '/run');
    await gh.comment(repo, number, 'helper[bot]', '/run');
    await gh.comment(repo, number, 'maintainer', '> /run\nquoting the docs');
    await gh.comment(repo, number, 'maintainer', '```\n/run\n```');
    await new Promise((r) => setTimeout(r, 2000));
    expect(gh.checkRuns(repo)).toEqual([]);
    expect(botReplies(repo, number)).toEqual([]);
  });
});

describe.skipIf(!dockerReady)('limits', () => {
  let gh: FakeGitHub;
  let app: AppProcess;

  beforeAll(async () => {
    gh = await FakeGitHub.start();
    app = await startApp(gh, { COMMANDS_PER_MINUTE: '3', REPO_CONCURRENCY: '1', WORKERS: '2' });
  });

  afterAll(async () => {
    await app?.stop();
    await gh?.close();
  });

  it('runs one run of a repository at a time when REPO_CONCURRENCY=1, and rate-limits a busy commenter', async () => {
    const repo = await gh.createRepo({ owner: 'octo-org', name: `limits-${randomUUID().slice(0, 8)}`, files: { Dockerfile: 'FROM busybox\nCMD sleep 2\n' } });
    gh.setRole(repo, 'maintainer', 'maintain');
    const number = gh.createIssue(repo, { author: 'maintainer', title: 'archive' });
    for (let i = 0; i < 4; i += 1) await gh.comment(repo, number, 'maintainer', '/run');
    const limited = await gh.waitFor(() => gh.commentsOn(repo, number).find((c) => c.user.login === gh.botLogin), { timeoutMs: 30_000 });
    expect(limited.body).toMatch(/gave 3 commands in the last minute, and the limit is 3/);
    const done = await gh.waitFor(
      () => {
        const checks = gh.checkRuns(repo);
        return checks.length === 3 && checks.every((c) => c.status === 'completed') ? checks : undefined;
      },
      { timeoutMs: 60_000, message: `runs did not finish\n${app.output().slice(-2000)}` },
    );
    expect(done.every((c) => c.conclusion === 'success')).toBe(true);
    // The run store keeps milliseconds: no run started before the one before it had finished.
    const store = SqliteRunStore.openReadOnly(join(app.dataDir, 'task-mgmt.sqlite'));
    try {
      const runs = await store.listRuns({ repo: repo.fullName });
      const spans = runs.map((run) => [run.startedAt!.getTime(), run.finishedAt!.getTime()] as const).sort((a, b) => a[0] - b[0]);
      expect(spans).toHaveLength(3);
      for (let i = 1; i < spans.length; i += 1) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    } finally {
      await store.close();
    }
  });
});

async function dockerPs(): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => execFile('docker', ['ps', '--format', '{{.Labels}}'], (_error, stdout) => resolve(stdout ?? '')));
}

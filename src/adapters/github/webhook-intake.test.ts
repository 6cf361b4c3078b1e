/**
 * The webhook adapter in one process: Probot verifying signed deliveries from the fake GitHub
 * (a real HTTP server on 127.0.0.1), the intake, the run service, SQLite in memory and the
 * GitHub check reporter. No worker and no Docker: this proves the way in — parsing, routing,
 * redeliveries, bots, and how each outcome reads on GitHub — in a few seconds.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { createNodeMiddleware } from 'probot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from '../../../test/fake-github/index.js';
import { probotFor } from '../../../test/support/fake-github-probot.js';
import { EmbeddedRunQueue } from '../queue/embedded-run-queue.js';
import { SqliteRunStore } from '../store/sqlite-run-store.js';
import { RunService } from '../../core/run-service/run-service.js';
import type { RepoRef } from '../../core/runs/run.js';
import { GithubCheckReporter } from './github-check-reporter.js';
import { OctokitRepoHost } from './octokit-repo-host.js';
import { createProbotApp } from './probot-app.js';
import { WebhookIntake } from './webhook-intake.js';

const dockerfile = 'FROM busybox\nCMD echo hi > /out/hi\n';

let gh: FakeGitHub;
let store: SqliteRunStore;
let queue: EmbeddedRunQueue;
let intake: WebhookIntake;
let server: Server;

beforeAll(async () => {
  gh = await FakeGitHub.start();
  const log = pino({ level: 'silent' });
  store = await SqliteRunStore.open(':memory:');
  queue = new EmbeddedRunQueue({ store, log });
  const probot = probotFor(gh, { log });
  const octokitFor = (installationId: number) => probot.auth(installationId);
  const runs = new RunService({
    store,
    queue,
    checks: new GithubCheckReporter({ octokitFor }),
    hostFor: async (repo: RepoRef) => new OctokitRepoHost(await octokitFor(repo.installationId), repo),
    newId: () => randomUUID(),
    now: () => new Date(),
    gatewayUrl: 'https://gateway.example',
    commandsPerMinute: 30,
    taskTypes: new Map(),
    defaultImage: 'busybox:latest',
  });
  intake = new WebhookIntake({ store, runs, octokitFor, log, maxRateLimitWaitMs: 0 });
  const middleware = await createNodeMiddleware(createProbotApp({ intake }), { probot, webhooksPath: '/api/github/webhooks' });
  server = createServer((req, res) => void middleware(req, res, () => res.writeHead(404).end()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  gh.setWebhookTarget(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`);
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await intake?.close();
  await queue?.close();
  await store?.close();
  await gh?.close();
});

async function newRepo(files: Record<string, string> = { Dockerfile: dockerfile }): Promise<Repo> {
  const repo = await gh.createRepo({ owner: 'octo-org', name: `intake-${randomUUID().slice(0, 8)}`, files });
  gh.setRole(repo, 'writer', 'write');
  gh.setRole(repo, 'maintainer', 'maintain');
  gh.setRole(repo, 'reader', 'read');
  return repo;
}

async function pullRequest(repo: Repo, author: string, files: Record<string, string> = { 'notes.md': 'more\n' }): Promise<number> {
  const branch = `change-${randomUUID().slice(0, 6)}`;
  await gh.commit(repo, branch, files);
  return (await gh.openPullRequest(repo, { author, head: branch })).number;
}

/** Waits until the intake has handled every delivery it accepted. */
const settled = () => intake.drained();

const repliesOn = (repo: Repo, number: number) => gh.commentsOn(repo, number).filter((c) => c.user.login === gh.botLogin).map((c) => c.body);

describe('webhook intake', () => {
  it('/run by a writer: a queued check run on the head, a rocket, no reply, and one run for a redelivery', async () => {
    const repo = await newRepo();
    const number = await pullRequest(repo, 'writer');
    const { delivery, commentId } = await gh.comment(repo, number, 'writer', '/run');
    expect(delivery.status).toBe(200);
    expect((await gh.deliver('issue_comment', {}, { secret: 'not-the-secret' })).status).toBe(400);
    await settled();
    const runs = await store.listRuns({ repo: `${repo.owner}/${repo.name}` });
    expect(runs).toHaveLength(1);
    expect(gh.checkRuns(repo, { headSha: runs[0]!.sha })).toMatchObject([{ name: 'task-mgmt / default', status: 'queued' }]);
    expect(gh.reactionsOn(commentId).map((r) => r.content)).toEqual(['rocket']);
    expect(repliesOn(repo, number)).toEqual([]);

    const sent = gh.deliveries.find((d) => d.deliveryId === delivery.deliveryId)!;
    const again = await gh.deliver('issue_comment', sent.payload, { deliveryId: delivery.deliveryId });
    expect(again.status).toBe(200);
    await settled();
    expect(await store.listRuns({ repo: `${repo.owner}/${repo.name}` })).toHaveLength(1);
  });

  it('a refusal is a reply that says why, and a confused reaction', async () => {
    const repo = await newRepo();
    const number = await pullRequest(repo, 'writer');
    const { commentId } = await gh.comment(repo, number, 'reader', '/run');
    await settled();
    expect(repliesOn(repo, number)).toEqual(['@reader nothing was run: @reader has the read role on this repository; running tasks needs write or higher.']);
    expect(gh.reactionsOn(commentId).map((r) => r.content)).toEqual(['confused']);
  });

  it("an outsider's pull request: eyes, a reply naming who may approve, and an action_required check run", async () => {
    const repo = await newRepo();
    const number = await pullRequest(repo, 'outsider');
    const { commentId } = await gh.comment(repo, number, 'writer', '/run');
    await settled();
    expect(repliesOn(repo, number)[0]).toMatch(/^@writer nothing was run yet: pull request #\d+ needs an approving review/);
    expect(gh.reactionsOn(commentId).map((r) => r.content)).toEqual(['eyes']);
    expect(gh.checkRuns(repo).map((c) => c.conclusion)).toEqual(['action_required']);
  });

  it('/cancel, /help, a near miss, an edited comment and a bot: each answered as it should be, or not at all', async () => {
    const repo = await newRepo();
    const number = await pullRequest(repo, 'writer');
    await gh.comment(repo, number, 'writer', '/run');
    await settled();
    const { commentId } = await gh.comment(repo, number, 'maintainer', '/cancel');
    await settled();
    expect(gh.reactionsOn(commentId).map((r) => r.content)).toEqual(['+1']);
    expect((await store.listRuns({ repo: `${repo.owner}/${repo.name}` }))[0]).toMatchObject({ state: 'cancelled', error: 'cancelled by @maintainer' });

    await gh.comment(repo, number, 'reader', '/cancel');
    await gh.comment(repo, number, 'writer', '/help');
    await gh.comment(repo, number, 'writer', '/rnu');
    const edited = await gh.comment(repo, number, 'writer', 'looks good');
    await gh.editComment(repo, edited.commentId, '/run');
    await gh.comment(repo, number, 'dependabot[bot]', '/run');
    await settled();
    const replies = repliesOn(repo, number);
    expect(replies[0]).toBe('@reader nothing was cancelled: @reader has the read role on this repository; cancelling runs needs write or higher.');
    expect(replies[1]).toContain('`default` — container');
    expect(replies[2]).toContain('Did you mean `/run`?');
    expect(replies).toHaveLength(3);
    expect(await store.listRuns({ repo: `${repo.owner}/${repo.name}` })).toHaveLength(1);
  });

  it('a push cancels the runs of the old head; Re-run after the push is refused in a reply', async () => {
    const repo = await newRepo();
    const number = await pullRequest(repo, 'writer');
    await gh.comment(repo, number, 'writer', '/run');
    await settled();
    const [run] = await store.listRuns({ repo: `${repo.owner}/${repo.name}` });
    await gh.pushToPullRequest(repo, number, { 'notes.md': 'pushed\n' });
    await settled();
    expect((await store.getRun(run!.id))!.state).toBe('cancelled');
    await gh.clickRerun(repo, run!.checkRunId!, 'writer');
    await settled();
    expect(repliesOn(repo, number).at(-1)).toMatch(/^@writer nothing was run: the head is now `[0-9a-f]{12}`/);
  });

  it('a pull request merged or closed cancels its queued runs, each saying why', async () => {
    const repo = await newRepo();
    const merged = await pullRequest(repo, 'writer');
    const closed = await pullRequest(repo, 'writer');
    await gh.comment(repo, merged, 'writer', '/run');
    await gh.comment(repo, closed, 'writer', '/run');
    await settled();
    const runs = await store.listRuns({ repo: `${repo.owner}/${repo.name}` });
    const runOf = (number: number) => runs.find((run) => run.number === number)!;
    expect(runs.map((run) => run.state)).toEqual(['queued', 'queued']);

    expect((await gh.closePullRequest(repo, merged, { merged: true, by: 'maintainer' })).status).toBe(200);
    expect((await gh.closePullRequest(repo, closed, { by: 'writer' })).status).toBe(200);
    await settled();
    expect(await store.getRun(runOf(merged).id)).toMatchObject({ state: 'cancelled', error: `pull request #${merged} was merged` });
    expect(await store.getRun(runOf(closed).id)).toMatchObject({ state: 'cancelled', error: `pull request #${closed} was closed` });
    expect(gh.checkRuns(repo, { headSha: runOf(merged).sha })).toMatchObject([{ status: 'completed', conclusion: 'cancelled' }]);
    expect(repliesOn(repo, merged)).toEqual([]);
  });

  it('GitHub failing past its retries: nothing runs, the audit log and a reply say why', async () => {
    const repo = await newRepo();
    const number = await pullRequest(repo, 'writer');
    gh.failNext({ path: new RegExp(`/repos/${repo.owner}/${repo.name}/pulls/${number}/reviews$`), status: 404 });
    await gh.comment(repo, number, 'writer', '/run');
    await settled();
    expect(await store.listRuns({ repo: `${repo.owner}/${repo.name}` })).toEqual([]);
    expect(repliesOn(repo, number)[0]).toMatch(/could not check this request with GitHub .*never runs what it could not check/);
    const audit = await store.listAudit(`${repo.owner}/${repo.name}`);
    expect(audit.at(-1)).toMatchObject({ actor: 'writer', allowed: false, reason: expect.stringContaining('could not decide') });
  });
});

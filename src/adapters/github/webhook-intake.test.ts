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
import MarkdownIt from 'markdown-it';
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
/** COMMANDS_PER_MINUTE of this suite; each limit test has a login of its own. */
const commandsPerMinute = 20;

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
    commandsPerMinute,
    taskTypes: new Map(),
    defaultImage: 'busybox:latest',
  });
  intake = new WebhookIntake({ store, runs, octokitFor, log });
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

  it('/pin keeps a finished run’s outputs longer: a +1, and its check run shows the new expiry; refusals say why', async () => {
    const repo = await newRepo();
    const number = await pullRequest(repo, 'writer');
    await gh.comment(repo, number, 'writer', '/run');
    await settled();
    const [run] = await store.listRuns({ repo: `${repo.owner}/${repo.name}` });
    // The worker's part, as it adds the outputs: claimed, pinned for 30 days, succeeded.
    await store.transition(run!.id, 'claim', new Date(), { workerId: 'w' });
    await store.startPin({ runId: run!.id, kind: 'outputs', pinnedUntil: new Date(Date.now() + 30 * 86_400_000) }, new Date());
    await store.completePin({ runId: run!.id, kind: 'outputs', root: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o' }, new Date());
    await store.transition(run!.id, 'succeed', new Date(), { outputCid: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o' });

    const { commentId } = await gh.comment(repo, number, 'writer', `/pin ${run!.id} 90d`);
    await settled();
    expect(gh.reactionsOn(commentId).map((r) => r.content)).toEqual(['+1']);
    const pinnedUntil = (await store.getRun(run!.id))!.pinnedUntil!;
    expect(pinnedUntil.getTime()).toBeGreaterThan(Date.now() + 89 * 86_400_000);
    const until = `${pinnedUntil.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
    expect(repliesOn(repo, number)).toEqual([`@writer the outputs of run \`${run!.id}\` stay pinned until ${until}.`]);
    expect(gh.checkRuns(repo).find((check) => check.externalId === run!.id)!.output?.summary).toContain(`Pinned until ${until}`);

    await gh.comment(repo, number, 'reader', `/pin ${run!.id} 90d`);
    await gh.comment(repo, number, 'writer', `/pin ${run!.id} 400d`);
    await gh.comment(repo, number, 'writer', '/pin soon');
    await settled();
    expect(repliesOn(repo, number).slice(1)).toEqual([
      '@reader nothing was pinned: @reader has the read role on this repository; keeping outputs pinned needs write or higher.',
      '@writer nothing was pinned: `/pin` asks for 400 d, and this deployment pins outputs for at most 365 d (PIN_TTL_MAX).',
      '@writer `/pin` takes a run id and a duration: `/pin <run-id> <duration>`, e.g. `/pin 01hx5k2q 90d`',
    ]);
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
    const merged = await pullRequest(repo, 'writer', { 'notes.md': 'to be merged\n' });
    const closed = await pullRequest(repo, 'writer', { 'notes.md': 'to be closed\n' });
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
    expect(gh.checkRuns(repo).filter((check) => check.externalId === runOf(merged).id)).toMatchObject([{ status: 'completed', conclusion: 'cancelled' }]);
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

/**
 * What a user wrote, built to do harm when shown outside a code span: a team mention, issue
 * references, links (bare, Markdown and autolink), emphasis and HTML, and backticks to break out
 * of the code span it is put in.
 */
const hostile = '`@octo-org/team`#987654`octo-org/other#987654`https://evil.example/x`[y](https://evil.example/y)<https://evil.example/z>`**strong**_em_<b>html</b>';
const hostileMarks = ['octo-org/team', '987654', 'evil.example', '<strong>strong', '<em>', '<b>'];

// GitHub renders comments as CommonMark with autolinks; mentions and references are never made
// inside code. https://github.github.com/gfm/#code-spans
const markdown = new MarkdownIt({ html: true, linkify: true });

/** The HTML GitHub would show, with every `<code>` element taken out. */
function outsideCode(body: string): string {
  return markdown.render(body).replace(/<code>[\s\S]*?<\/code>/g, '');
}

/** Fails when anything from `hostile` is live in `body`, or anyone but `login` is mentioned. */
function expectQuoted(body: string | undefined, login: string): void {
  expect(body).toBeDefined();
  const shown = outsideCode(body!);
  for (const mark of hostileMarks) expect(shown, `"${mark}" outside a code span in:\n${body}`).not.toContain(mark);
  expect(shown).not.toMatch(/<a |<em>|<img /);
  for (const mention of shown.match(/@[\w-]+(\/[\w-]+)?/g) ?? []) expect(mention, body).toBe(`@${login}`);
}

describe('replies quote what users wrote', () => {
  it('a task name that is not one: echoed, but never mentions, links or formats', async () => {
    const repo = await newRepo();
    const number = gh.createIssue(repo, { author: 'stranger', title: 'hello' });
    await gh.comment(repo, number, 'stranger', `/run ${hostile}`);
    await settled();
    const [reply] = repliesOn(repo, number);
    expect(reply).toMatch(/^@stranger .* is not a task name/);
    expectQuoted(reply, 'stranger');
  });

  it('a parameter value: echoed in the refusal, quoted', async () => {
    const repo = await newRepo({ 'task-mgmt.yml': 'version: 1\ntasks:\n  build:\n    dockerfile: Dockerfile\n    params:\n      mode: { enum: [fast, slow] }\n', Dockerfile: dockerfile });
    gh.setRole(repo, 'param-writer', 'write');
    const number = gh.createIssue(repo, { author: 'param-writer', title: 'params' });
    await gh.comment(repo, number, 'param-writer', `/run build "mode=${hostile}"`);
    await settled();
    const [reply] = repliesOn(repo, number);
    expect(reply).toMatch(/^@param-writer nothing was run: parameter .*mode.* must be one of/);
    expectQuoted(reply, 'param-writer');
  });

  it("/help on a stranger's pull request: its task's description, parameters and defaults are quoted", async () => {
    const repo = await newRepo();
    const manifest = [
      'version: 1',
      'tasks:',
      '  build:',
      '    dockerfile: Dockerfile',
      `    description: ${JSON.stringify(`${hostile}\n\n# ${hostile}`)}`,
      '    params:',
      `      mode: { default: ${JSON.stringify(hostile)}, description: ${JSON.stringify(hostile)}, enum: [${JSON.stringify(hostile)}], pattern: ${JSON.stringify('.*|`@octo-org/team`')} }`,
      '',
    ].join('\n');
    const number = await pullRequest(repo, 'stranger', { 'task-mgmt.yml': manifest });
    await gh.comment(repo, number, 'stranger', '/help');
    await settled();
    const [reply] = repliesOn(repo, number);
    expect(reply).toContain('Tasks at');
    expectQuoted(reply, 'stranger');
  });

  it("/help and /run on a pull request whose manifest has errors: the messages quote the YAML's keys, quoted in turn", async () => {
    const repo = await newRepo();
    const manifest = `version: 1\ntasks:\n  build:\n    dockerfile: Dockerfile\n    ${JSON.stringify(hostile)}: 1\n  ${JSON.stringify(`x ${hostile}`)}:\n    dockerfile: Dockerfile\n`;
    const number = await pullRequest(repo, 'stranger', { 'task-mgmt.yml': manifest });
    await gh.comment(repo, number, 'stranger', '/help');
    gh.setRole(repo, 'manifest-writer', 'write');
    await gh.comment(repo, number, 'manifest-writer', '/run');
    await settled();
    const [help, run] = repliesOn(repo, number);
    expect(help).toContain('has errors');
    expectQuoted(help, 'stranger');
    expect(run).toMatch(/^@manifest-writer nothing was run: the task definition at .* has 2 errors/);
    expectQuoted(run, 'manifest-writer');
  });
});

describe('the command limit on GitHub', () => {
  const stamp = /rate-limited until \d\d:\d\d:\d\d UTC/;

  it('past COMMANDS_PER_MINUTE: one "rate-limited until" reply, then silence, with every refusal in the audit log', async () => {
    const repo = await newRepo();
    const login = `flood-${randomUUID().slice(0, 6)}`;
    const number = gh.createIssue(repo, { author: login, title: 'flood' });
    const sent = commandsPerMinute + 5;
    const comments = [];
    for (let i = 0; i < sent; i += 1) comments.push(await gh.comment(repo, number, login, '/run'));
    await settled();
    const replies = repliesOn(repo, number);
    // Each command within the limit is refused for its role, in a reply; past it, one reply says until when.
    expect(replies).toHaveLength(commandsPerMinute + 1);
    expect(replies.slice(0, commandsPerMinute).every((r) => r.includes('has the none role') || r.includes('role on this repository'))).toBe(true);
    expect(replies.at(-1)).toMatch(new RegExp(`^@${login} nothing was run: ${stamp.source}`));
    expect(comments.slice(commandsPerMinute + 1).flatMap((c) => gh.reactionsOn(c.commentId))).toEqual([]);
    const refused = (await store.listAudit(`${repo.owner}/${repo.name}`)).filter((e) => e.actor === login && e.action === 'command' && !e.allowed);
    expect(refused).toHaveLength(sent - commandsPerMinute);
  });

  it('/help and near misses count toward the limit and go silent past it', async () => {
    const repo = await newRepo();
    const login = `chatty-${randomUUID().slice(0, 6)}`;
    const number = gh.createIssue(repo, { author: login, title: 'chatty' });
    const sent = commandsPerMinute + 5;
    for (let i = 0; i < sent; i += 1) await gh.comment(repo, number, login, i % 2 === 0 ? '/help' : '/rnu');
    await settled();
    const replies = repliesOn(repo, number);
    expect(replies).toHaveLength(commandsPerMinute + 1);
    expect(replies.at(-1)).toMatch(stamp);
  });
});

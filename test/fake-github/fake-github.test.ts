import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { verify } from '@octokit/webhooks-methods';
import { Probot, ProbotOctokit } from 'probot';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from './index.js';
import { realExample } from './webhook-payloads.js';

type Octokit = InstanceType<typeof ProbotOctokit>;

let gh: FakeGitHub;
let octokit: Octokit;
let repo: Repo;
let receiver: { server: Server; url: string; received: Array<{ headers: Record<string, unknown>; body: string }> };

beforeAll(async () => {
  gh = await FakeGitHub.start({ appSlug: 'task-mgmt' });
  const received: Array<{ headers: Record<string, unknown>; body: string }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  receiver = { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`, received };
  gh.setWebhookTarget(receiver.url);

  // Exactly how the app authenticates: Probot with the app's key against the fake's API.
  const probot = new Probot({
    appId: gh.appId,
    privateKey: gh.privateKey,
    secret: gh.webhookSecret,
    baseUrl: `${gh.url}/api/v3`,
    logLevel: 'warn',
  });
  octokit = (await probot.auth(gh.installationId)) as Octokit;
  repo = await gh.createRepo({ owner: 'octo-org', name: `r-${Date.now()}`, files: { Dockerfile: 'FROM busybox\nCMD ["true"]\n', 'docs/a.md': 'a\n' } });
});

afterAll(async () => {
  await gh?.close();
  await new Promise((r) => receiver?.server.close(r));
});

describe('app authentication', () => {
  it('exchanges a JWT for an installation token and uses it', async () => {
    const { data } = await octokit.rest.repos.get({ owner: repo.owner, repo: repo.name });
    // The token is fetched lazily, on the first request.
    const exchange = gh.requests.find((r) => r.path === `/api/v3/app/installations/${gh.installationId}/access_tokens`);
    expect(exchange?.status).toBe(201);
    expect(data).toMatchObject({ full_name: repo.fullName, default_branch: 'main', private: false, owner: { login: 'octo-org' } });
  });

  it('answers app endpoints with a JWT only', async () => {
    const probot = new Probot({ appId: gh.appId, privateKey: gh.privateKey, baseUrl: `${gh.url}/api/v3`, logLevel: 'warn' });
    const appOctokit = await probot.auth();
    const app = await appOctokit.rest.apps.getAuthenticated();
    expect(app.data?.slug).toBe('task-mgmt');
    const installation = await appOctokit.rest.apps.getInstallation({ installation_id: gh.installationId });
    expect(installation.data.id).toBe(gh.installationId);
    const token = await appOctokit.rest.apps.createInstallationAccessToken({ installation_id: gh.installationId });
    const expiresIn = Date.parse(token.data.expires_at) - Date.now();
    expect(expiresIn).toBeGreaterThan(59 * 60 * 1000);
    expect(expiresIn).toBeLessThanOrEqual(60 * 60 * 1000);
  });

  it('rejects calls without a valid token with 401', async () => {
    const res = await fetch(`${gh.url}/api/v3/repos/${repo.fullName}`);
    expect(res.status).toBe(401);
    const bad = await fetch(`${gh.url}/api/v3/repos/${repo.fullName}`, { headers: { authorization: 'token ghs_nope' } });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ message: 'Bad credentials' });
    // A JWT signed with another key is refused.
    const forged = await fetch(`${gh.url}/api/v3/app`, { headers: { authorization: `Bearer eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ iss: gh.appId, iat: 1, exp: 9e9 })).toString('base64url')}.c2ln` } });
    expect(forged.status).toBe(401);
  });
});

describe('installations', () => {
  it('keeps each organization\'s repositories to its own installation, as GitHub does', async () => {
    const account = `org-${Date.now()}`;
    const installationId = gh.addInstallation(account);
    expect(installationId).not.toBe(gh.installationId);
    const theirs = await gh.createRepo({ owner: account, name: 'elsewhere' });
    expect(gh.installationIdOf(theirs)).toBe(installationId);
    expect(gh.installationIdOf(repo)).toBe(gh.installationId);

    const appOctokit = await new Probot({ appId: gh.appId, privateKey: gh.privateKey, baseUrl: `${gh.url}/api/v3`, logLevel: 'warn' }).auth();
    const listed = await appOctokit.rest.apps.listInstallations();
    expect(listed.data.map((i) => [i.id, i.account?.login])).toEqual(expect.arrayContaining([[gh.installationId, 'octo-org'], [installationId, account]]));
    expect((await appOctokit.rest.apps.getRepoInstallation({ owner: account, repo: 'elsewhere' })).data.id).toBe(installationId);

    const probot = new Probot({ appId: gh.appId, privateKey: gh.privateKey, baseUrl: `${gh.url}/api/v3`, logLevel: 'warn' });
    const other = (await probot.auth(installationId)) as Octokit;
    expect((await other.rest.repos.get({ owner: account, repo: 'elsewhere' })).data.full_name).toBe(`${account}/elsewhere`);
    // A token reaches only its installation's repositories: 404 elsewhere, both ways.
    await expect(other.rest.repos.get({ owner: repo.owner, repo: repo.name })).rejects.toMatchObject({ status: 404 });
    await expect(octokit.rest.repos.get({ owner: account, repo: 'elsewhere' })).rejects.toMatchObject({ status: 404 });
    const visible = await other.rest.apps.listReposAccessibleToInstallation();
    expect(visible.data.repositories.map((r) => r.full_name)).toEqual([`${account}/elsewhere`]);

    gh.setRole(theirs, 'alice', 'write');
    const issue = gh.createIssue(theirs, { author: 'alice', title: 'hello' });
    const before = receiver.received.length;
    await gh.comment(theirs, issue, 'alice', 'hi');
    const payload = JSON.parse(receiver.received[before]!.body) as { installation: { id: number } };
    expect(payload.installation.id).toBe(installationId);
  });
});

describe('repository content', () => {
  it('serves commits, branches, files and directory listings from git', async () => {
    const sha = gh.headOf(repo, 'main');
    expect((await octokit.rest.repos.getCommit({ owner: repo.owner, repo: repo.name, ref: 'main' })).data.sha).toBe(sha);
    expect((await octokit.rest.repos.getBranch({ owner: repo.owner, repo: repo.name, branch: 'main' })).data.commit.sha).toBe(sha);

    const file = await octokit.rest.repos.getContent({ owner: repo.owner, repo: repo.name, path: 'Dockerfile', ref: sha });
    expect(Array.isArray(file.data)).toBe(false);
    const f = file.data as { type: string; encoding: string; content: string; sha: string };
    expect(f.type).toBe('file');
    expect(f.encoding).toBe('base64');
    expect(Buffer.from(f.content, 'base64').toString()).toBe('FROM busybox\nCMD ["true"]\n');
    const blob = 'FROM busybox\nCMD ["true"]\n';
    expect(f.sha).toBe(createHash('sha1').update(`blob ${blob.length}\0${blob}`).digest('hex'));

    const root = await octokit.rest.repos.getContent({ owner: repo.owner, repo: repo.name, path: '' });
    expect((root.data as Array<{ name: string; type: string }>).map((e) => [e.name, e.type])).toEqual([
      ['Dockerfile', 'file'],
      ['docs', 'dir'],
    ]);
    const rawRoot = await fetch(`${gh.url}/api/v3/repos/${repo.fullName}/contents`, { headers: { authorization: authOf() } });
    expect(rawRoot.status).toBe(200);

    await expect(octokit.rest.repos.getContent({ owner: repo.owner, repo: repo.name, path: 'task-mgmt.yml' })).rejects.toMatchObject({
      status: 404,
      response: { data: { message: 'Not Found' } },
    });
  });

  it('redirects the tarball API to a codeload link whose archive equals the commit', async () => {
    const sha = await gh.commit(repo, 'main', { 'out/x.txt': 'hello\n' });
    const api = await fetch(`${gh.url}/api/v3/repos/${repo.fullName}/tarball/${sha}`, { headers: { authorization: authOf() }, redirect: 'manual' });
    expect(api.status).toBe(302);
    const location = api.headers.get('location')!;
    expect(location).toMatch(new RegExp(`^${gh.url}/_codeload/`));
    // codeload needs no Authorization header
    const download = await fetch(location);
    expect(download.status).toBe(200);
    const dir = await mkdtemp(join(tmpdir(), 'tarball-'));
    try {
      await pipeline(Readable.fromWeb(download.body as import('node:stream/web').ReadableStream), tar.x({ cwd: dir }));
      const prefix = `${repo.owner}-${repo.name}-${sha.slice(0, 7)}`;
      expect(await readFile(join(dir, prefix, 'out/x.txt'), 'utf8')).toBe('hello\n');
      expect(await readFile(join(dir, prefix, 'Dockerfile'), 'utf8')).toBe('FROM busybox\nCMD ["true"]\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // octokit follows the redirect itself
    const viaOctokit = await octokit.rest.repos.downloadTarballArchive({ owner: repo.owner, repo: repo.name, ref: sha });
    expect(viaOctokit.status).toBe(200);
    expect(await fetch(`${gh.url}/_codeload/x?token=nope`).then((r) => r.status)).toBe(404);
  });
});

describe('collaborator permission', () => {
  it.each([
    ['admin', 'admin', { admin: true, maintain: true, push: true, triage: true, pull: true }],
    ['maintain', 'write', { admin: false, maintain: true, push: true, triage: true, pull: true }],
    ['write', 'write', { admin: false, maintain: false, push: true, triage: true, pull: true }],
    ['triage', 'read', { admin: false, maintain: false, push: false, triage: true, pull: true }],
    ['read', 'read', { admin: false, maintain: false, push: false, triage: false, pull: true }],
    ['none', 'none', { admin: false, maintain: false, push: false, triage: false, pull: false }],
  ] as const)('%s is reported as permission %s', async (role, permission, permissions) => {
    const login = `user-${role}`;
    gh.setRole(repo, login, role);
    const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: repo.owner, repo: repo.name, username: login });
    expect(data.permission).toBe(permission);
    expect(data.role_name).toBe(role);
    expect(data.user?.permissions).toEqual(permissions);
  });

  it('gives an unknown user read on a public repository and none on a private one', async () => {
    const priv = await gh.createRepo({ owner: 'octo-org', name: `p-${Date.now()}`, private: true });
    await gh.comment(priv, gh.createIssue(priv, { author: 'octo-org', title: 't' }), 'stranger', 'hi');
    const pub = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: repo.owner, repo: repo.name, username: 'stranger' });
    expect(pub.data.permission).toBe('read');
    const pri = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: priv.owner, repo: priv.name, username: 'stranger' });
    expect(pri.data.permission).toBe('none');
  });
});

describe('pull requests, reviews and comments', () => {
  it('tracks the head, reviews, files and comments of a pull request', async () => {
    gh.setRole(repo, 'alice', 'write');
    await gh.commit(repo, 'feature', { Dockerfile: 'FROM alpine\n', 'docs/a.md': null, 'new.txt': 'n\n' });
    const { number, delivery } = await gh.openPullRequest(repo, { author: 'bob', head: 'feature' });
    expect(delivery.status).toBe(200);

    const pr = await octokit.rest.pulls.get({ owner: repo.owner, repo: repo.name, pull_number: number });
    expect(pr.data).toMatchObject({ number, state: 'open', head: { ref: 'feature', sha: gh.headOf(repo, 'feature') }, base: { ref: 'main' }, user: { login: 'bob' } });
    expect(pr.data.head.repo?.full_name).toBe(repo.fullName);

    const files = await octokit.rest.pulls.listFiles({ owner: repo.owner, repo: repo.name, pull_number: number });
    expect(files.data.map((f) => [f.filename, f.status]).sort()).toEqual([
      ['Dockerfile', 'modified'],
      ['docs/a.md', 'removed'],
      ['new.txt', 'added'],
    ]);

    const first = await gh.review(repo, number, 'alice', 'APPROVED');
    const push = await gh.pushToPullRequest(repo, number, { 'new.txt': 'n2\n' });
    expect(push.after).toBe(gh.headOf(repo, 'feature'));
    await gh.review(repo, number, 'alice', 'CHANGES_REQUESTED');
    await gh.dismissReview(repo, number, first.reviewId, 'octo-org');
    const reviews = await octokit.rest.pulls.listReviews({ owner: repo.owner, repo: repo.name, pull_number: number });
    expect(reviews.data.map((r) => [r.state, r.commit_id, r.user?.login])).toEqual([
      ['DISMISSED', push.before, 'alice'],
      ['CHANGES_REQUESTED', push.after, 'alice'],
    ]);

    const asIssue = await octokit.rest.issues.get({ owner: repo.owner, repo: repo.name, issue_number: number });
    expect(asIssue.data.pull_request).toBeDefined();
    const issueNumber = gh.createIssue(repo, { author: 'alice', title: 'an issue' });
    expect(issueNumber).toBe(number + 1);
    expect((await octokit.rest.issues.get({ owner: repo.owner, repo: repo.name, issue_number: issueNumber })).data.pull_request).toBeUndefined();

    const { commentId } = await gh.comment(repo, number, 'alice', '/run');
    const reply = await octokit.rest.issues.createComment({ owner: repo.owner, repo: repo.name, issue_number: number, body: 'Queued.' });
    expect(reply.data.user?.login).toBe('task-mgmt[bot]');
    expect(reply.data.user?.type).toBe('Bot');
    const listed = await octokit.rest.issues.listComments({ owner: repo.owner, repo: repo.name, issue_number: number });
    expect(listed.data.map((c) => [c.user?.login, c.body, c.author_association])).toEqual([
      ['alice', '/run', 'COLLABORATOR'],
      ['task-mgmt[bot]', 'Queued.', 'NONE'],
    ]);

    const created = await octokit.rest.reactions.createForIssueComment({ owner: repo.owner, repo: repo.name, comment_id: commentId, content: 'rocket' });
    expect(created.status).toBe(201);
    const again = await octokit.rest.reactions.createForIssueComment({ owner: repo.owner, repo: repo.name, comment_id: commentId, content: 'rocket' });
    expect(again.status).toBe(200);
    expect(gh.reactionsOn(commentId).map((r) => r.content)).toEqual(['rocket']);
  });
});

describe('check runs', () => {
  it('keeps every body sent and sets timestamps like GitHub', async () => {
    const sha = gh.headOf(repo, 'main');
    const created = await octokit.rest.checks.create({ owner: repo.owner, repo: repo.name, name: 'task-mgmt / default', head_sha: sha, status: 'queued', external_id: 'run-1' });
    expect(created.data).toMatchObject({ status: 'queued', conclusion: null, head_sha: sha, external_id: 'run-1' });
    expect(created.data.started_at).toBeTruthy();
    const id = created.data.id;
    await octokit.rest.checks.update({ owner: repo.owner, repo: repo.name, check_run_id: id, status: 'in_progress', output: { title: 'Running', summary: 'building' } });
    const done = await octokit.rest.checks.update({
      owner: repo.owner, repo: repo.name, check_run_id: id, conclusion: 'success',
      output: { title: 'Done', summary: 'ipfs://Qm', annotations: [{ path: 'Dockerfile', start_line: 1, end_line: 1, annotation_level: 'notice', message: 'm' }] },
      actions: [{ label: 'Cancel', description: 'Cancel this run', identifier: 'cancel' }],
    });
    expect(done.data).toMatchObject({ status: 'completed', conclusion: 'success', output: { title: 'Done', annotations_count: 1 } });
    expect(done.data.completed_at).toBeTruthy();

    const [run] = gh.checkRuns(repo, { headSha: sha, name: 'task-mgmt / default' });
    expect(run?.history.map((h) => h.status ?? h.conclusion)).toEqual(['queued', 'in_progress', 'success']);
    expect((await octokit.rest.checks.get({ owner: repo.owner, repo: repo.name, check_run_id: id })).data.status).toBe('completed');
    const list = await octokit.rest.checks.listForRef({ owner: repo.owner, repo: repo.name, ref: sha });
    expect(list.data.check_runs.map((r) => r.id)).toContain(id);

    const rerun = await gh.clickRerun(repo, id, 'alice');
    expect(rerun.status).toBe(200);
    const action = await gh.clickAction(repo, id, 'alice', 'cancel');
    const payload = gh.deliveries.at(-1)!.payload as { action: string; requested_action: { identifier: string }; check_run: { head_sha: string } };
    expect(action.status).toBe(200);
    expect(payload).toMatchObject({ action: 'requested_action', requested_action: { identifier: 'cancel' }, check_run: { head_sha: sha } });
  });

  it.each([
    ['no name', { head_sha: 'HEAD' }, 'name'],
    ['no head_sha', { name: 'x' }, 'head_sha'],
    ['unknown head_sha', { name: 'x', head_sha: 'f'.repeat(40) }, 'head_sha'],
    ['completed without conclusion', { name: 'x', head_sha: 'HEAD', status: 'completed' }, 'conclusion'],
    ['output without summary', { name: 'x', head_sha: 'HEAD', output: { title: 't' } }, 'output.summary'],
    ['summary too long', { name: 'x', head_sha: 'HEAD', output: { title: 't', summary: 'x'.repeat(65536) } }, 'output.summary'],
    ['text too long', { name: 'x', head_sha: 'HEAD', output: { title: 't', summary: 's', text: 'x'.repeat(65536) } }, 'output.text'],
    ['51 annotations', { name: 'x', head_sha: 'HEAD', output: { title: 't', summary: 's', annotations: Array.from({ length: 51 }, () => ({ path: 'a', start_line: 1, end_line: 1, annotation_level: 'notice', message: 'm' })) } }, 'output.annotations'],
    ['4 actions', { name: 'x', head_sha: 'HEAD', actions: Array.from({ length: 4 }, (_, i) => ({ label: `a${i}`, description: 'd', identifier: `i${i}` })) }, 'actions'],
    ['long action label', { name: 'x', head_sha: 'HEAD', actions: [{ label: 'x'.repeat(21), description: 'd', identifier: 'i' }] }, 'actions[0].label'],
    ['long action description', { name: 'x', head_sha: 'HEAD', actions: [{ label: 'l', description: 'x'.repeat(41), identifier: 'i' }] }, 'actions[0].description'],
    ['long action identifier', { name: 'x', head_sha: 'HEAD', actions: [{ label: 'l', description: 'd', identifier: 'x'.repeat(21) }] }, 'actions[0].identifier'],
  ])('rejects %s with 422', async (_case, body, field) => {
    const violationsBefore = gh.openapiViolations.length;
    const withSha = { ...body, ...('head_sha' in body && body.head_sha === 'HEAD' ? { head_sha: gh.headOf(repo, 'main') } : {}) };
    const res = await fetch(`${gh.url}/api/v3/repos/${repo.fullName}/check-runs`, {
      method: 'POST',
      headers: { authorization: authOf(), 'content-type': 'application/json' },
      body: JSON.stringify(withSha),
    });
    expect(res.status).toBe(422);
    const json = (await res.json()) as { message: string; errors: Array<{ field: string }> };
    expect(json.message).toBe('Validation Failed');
    expect(json.errors.map((e) => e.field)).toContain(field);
    // Bodies that break the spec's own limits are also reported; these ones are on purpose.
    gh.openapiViolations.splice(violationsBefore);
  });
});

describe('webhooks', () => {
  it('signs deliveries as GitHub does and builds payloads from the real examples', async () => {
    receiver.received.length = 0;
    const number = gh.createIssue(repo, { author: 'alice', title: 'Run it' });
    const { delivery, commentId } = await gh.comment(repo, number, 'alice', '/run fetch');
    expect(delivery.status).toBe(200);
    const [sent] = receiver.received;
    expect(sent).toBeDefined();
    const signature = String(sent!.headers['x-hub-signature-256']);
    expect(await verify(gh.webhookSecret, sent!.body, signature)).toBe(true);
    expect(await verify('wrong', sent!.body, signature)).toBe(false);
    expect(sent!.headers).toMatchObject({
      'x-github-event': 'issue_comment',
      'x-github-delivery': delivery.deliveryId,
      'x-github-hook-installation-target-type': 'integration',
      'x-github-hook-installation-target-id': String(gh.appId),
      'content-type': 'application/json',
    });
    expect(String(sent!.headers['user-agent'])).toMatch(/^GitHub-Hookshot\/[0-9a-f]+$/);
    expect(String(sent!.headers['x-hub-signature'])).toMatch(/^sha1=[0-9a-f]{40}$/);

    const payload = JSON.parse(sent!.body) as Record<string, Record<string, unknown>>;
    const example = realExample('issue_comment', 'created');
    for (const key of ['issue', 'comment', 'repository', 'sender']) {
      expect(Object.keys(payload[key]!)).toEqual(expect.arrayContaining(Object.keys(example[key] as object)));
    }
    expect(payload.repository).toMatchObject({ id: expect.any(Number), name: repo.name, full_name: repo.fullName, default_branch: 'main', private: false, owner: { login: repo.owner } });
    expect(payload.installation).toEqual({ id: gh.installationId, node_id: expect.any(String) });
    expect(payload.comment).toMatchObject({ id: commentId, body: '/run fetch', user: { login: 'alice' }, author_association: 'COLLABORATOR' });
    expect(payload.issue).not.toHaveProperty('pull_request');

    const redelivery = await gh.deliver('issue_comment', payload, { deliveryId: delivery.deliveryId });
    expect(redelivery.deliveryId).toBe(delivery.deliveryId);
    await gh.deliver('issue_comment', payload, { secret: 'wrong' });
    expect(await verify(gh.webhookSecret, receiver.received.at(-1)!.body, String(receiver.received.at(-1)!.headers['x-hub-signature-256']))).toBe(false);
    await gh.deliver('issue_comment', payload, { unsigned: true });
    expect(receiver.received.at(-1)!.headers).not.toHaveProperty('x-hub-signature-256');

    await gh.editComment(repo, commentId, '/run process');
    const edited = gh.deliveries.at(-1)!.payload as { action: string; changes: { body: { from: string } } };
    expect(edited).toMatchObject({ action: 'edited', changes: { body: { from: '/run fetch' } } });
  });

  it('marks comments on a pull request with issue.pull_request', async () => {
    await gh.commit(repo, 'pr-comment', { 'x.txt': 'x\n' });
    const { number } = await gh.openPullRequest(repo, { author: 'alice', head: 'pr-comment' });
    await gh.comment(repo, number, 'alice', '/run');
    const payload = gh.deliveries.at(-1)!.payload as { issue: Record<string, unknown> };
    expect(payload.issue.pull_request).toMatchObject({ url: expect.stringContaining(`/pulls/${number}`) });
  });
});

describe('recording and faults', () => {
  it('records unknown endpoints and OpenAPI violations', async () => {
    const before = gh.openapiViolations.length;
    await expect(octokit.request('GET /repos/{owner}/{repo}/hooks', { owner: repo.owner, repo: repo.name })).rejects.toMatchObject({ status: 404 });
    expect(gh.unhandled.at(-1)).toMatchObject({ method: 'GET', path: `/api/v3/repos/${repo.fullName}/hooks` });

    const res = await fetch(`${gh.url}/api/v3/repos/${repo.fullName}/check-runs`, {
      method: 'POST',
      headers: { authorization: authOf(), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', head_sha: gh.headOf(repo, 'main'), status: 'done' }),
    });
    expect(res.status).toBe(422);
    expect(gh.openapiViolations.slice(before)).toEqual([expect.objectContaining({ operation: 'checks/create', error: expect.stringContaining('/status') })]);
    gh.openapiViolations.splice(before);
  });

  it('fails matching requests as told', async () => {
    gh.failNext({ method: 'GET', path: /\/pulls\/\d+$/, status: 502, times: 2 });
    gh.failNext({ method: 'POST', path: /\/reactions$/, status: 403, headers: { 'retry-after': '1' } });
    const res = await fetch(`${gh.url}/api/v3/repos/${repo.fullName}/pulls/1`, { headers: { authorization: authOf() } });
    expect(res.status).toBe(502);
    const second = await fetch(`${gh.url}/api/v3/repos/${repo.fullName}/pulls/1`, { headers: { authorization: authOf() } });
    expect(second.status).toBe(502);
    const third = await fetch(`${gh.url}/api/v3/repos/${repo.fullName}/pulls/1`, { headers: { authorization: authOf() } });
    expect(third.status).not.toBe(502);
    const limited = await fetch(`${gh.url}/api/v3/repos/${repo.fullName}/issues/comments/1/reactions`, { method: 'POST', headers: { authorization: authOf() }, body: '{"content":"eyes"}' });
    expect(limited.status).toBe(403);
    expect(limited.headers.get('retry-after')).toBe('1');
  });

  it('saw no unknown calls or invalid bodies from the real client', () => {
    expect(gh.unhandled.filter((r) => !r.path.endsWith('/hooks'))).toEqual([]);
    expect(gh.openapiViolations).toEqual([]);
  });

  it('delays every request by the latency set, and records when each started and ended', async () => {
    gh.setLatency(60);
    try {
      const sent = performance.timeOrigin + performance.now();
      const [a, b] = await Promise.all([
        octokit.rest.repos.get({ owner: repo.owner, repo: repo.name }),
        octokit.rest.pulls.get({ owner: repo.owner, repo: repo.name, pull_number: 1 }).catch((error: { status: number }) => error),
      ]);
      expect(a.status).toBe(200);
      expect(b.status).toBeDefined();
      expect(performance.timeOrigin + performance.now() - sent).toBeGreaterThanOrEqual(60);
      const [first, second] = gh.requests.slice(-2);
      for (const r of [first!, second!]) {
        expect(r.startedAt).toBeGreaterThanOrEqual(sent - 1);
        expect(r.endedAt! - r.startedAt).toBeGreaterThanOrEqual(59);
      }
      // Sent together, so they overlap: neither waited for the other.
      expect(second!.startedAt).toBeLessThan(first!.endedAt!);
    } finally {
      gh.setLatency(0);
    }
    expect(() => gh.setLatency(-1)).toThrow('latency');
  });

  it('waitFor polls until the predicate holds, or fails with the message', async () => {
    let n = 0;
    await expect(gh.waitFor(() => ++n >= 3, { timeoutMs: 1000 })).resolves.toBe(true);
    await expect(gh.waitFor(() => false, { timeoutMs: 50, message: 'never' })).rejects.toThrow('never');
  });
});

/** The installation token the Probot client obtained, for raw fetch calls. */
function authOf(): string {
  const call = [...gh.requests].reverse().find((r) => typeof r.headers.authorization === 'string' && r.headers.authorization.startsWith('token '));
  return String(call?.headers.authorization);
}

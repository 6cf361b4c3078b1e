/**
 * The JSON API, JSON-RPC, server-sent events and metrics of the real app, against the fake
 * GitHub and a real Docker engine: an API request goes through the same policy and makes the
 * same check runs as a comment.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { requireServices } from '../support/services.js';
import { startApp, type AppProcess } from '../support/app-process.js';

const dockerReady = await requireServices('docker');
const token = `svc-${randomUUID()}`;

describe.skipIf(!dockerReady)('JSON API and RPC', () => {
  let gh: FakeGitHub;
  let app: AppProcess;

  beforeAll(async () => {
    gh = await FakeGitHub.start();
    app = await startApp(gh, { API_TOKENS: `${token},other-token-0123456789`, WORKERS: '2' });
  });

  afterAll(async () => {
    await app?.stop();
    if (gh) {
      expect(app?.output() ?? '').not.toContain(token);
      expect(gh.openapiViolations).toEqual([]);
      await gh.close();
    }
  });

  const api = (path: string, init: RequestInit = {}, auth = token) =>
    fetch(`${app.url}${path}`, { ...init, headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

  async function newRepo(dockerfile: string): Promise<Repo> {
    return gh.createRepo({ owner: 'octo-org', name: `api-${randomUUID().slice(0, 8)}`, files: { Dockerfile: dockerfile } });
  }

  it('POST /api/runs queues a run with a check run, and GET, list, logs, RPC and events report it', async () => {
    const repo = await newRepo('FROM busybox\nCMD echo from-the-api && printf "hello world\\n" > /out/hello.txt\n');
    const created = await api('/api/runs', { method: 'POST', body: JSON.stringify({ repo: repo.fullName }) });
    expect(created.status).toBe(201);
    const body = (await created.json()) as { status: string; runs: { id: string; state: string; sha: string }[] };
    expect(body.status).toBe('queued');
    const [run] = body.runs;
    expect(run!.sha).toBe(gh.headOf(repo, repo.defaultBranch));

    const events = await fetch(`${app.url}/api/runs/${run!.id}/events`, { headers: { authorization: `Bearer ${token}` } });
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    const stream = await events.text(); // ends after the final state
    expect(stream).toContain('event: run.snapshot');
    expect(stream, stream.slice(0, 3000)).toContain('event: run.succeeded');

    const check = await gh.waitFor(() => gh.checkRuns(repo).find((c) => c.status === 'completed'), { timeoutMs: 30_000 });
    expect(check.conclusion).toBe('success');
    expect(check.externalId).toBe(run!.id);

    const got = (await (await api(`/api/runs/${run!.id}`)).json()) as { state: string; output_cid: string; trigger: string };
    expect(got).toMatchObject({ state: 'succeeded', trigger: 'api' });
    expect(got.output_cid).toMatch(/^Qm/);
    const list = (await (await api(`/api/runs?repo=${repo.fullName}`)).json()) as { runs: { id: string }[] };
    expect(list.runs.map((r) => r.id)).toEqual([run!.id]);
    expect(await (await api(`/api/runs/${run!.id}/logs`)).text()).toContain('from-the-api');

    const rpc = (await (await api('/rpc', { method: 'POST', body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'runs.get', params: { id: run!.id } }, { jsonrpc: '2.0', id: 2, method: 'runs.nope' }]) })).json()) as { id: number; result?: { state: string }; error?: { code: number } }[];
    expect(rpc.find((r) => r.id === 1)!.result!.state).toBe('succeeded');
    expect(rpc.find((r) => r.id === 2)!.error!.code).toBe(-32601);

    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(/^task_mgmt_runs_total\{(?=[^}]*state="succeeded")[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^task_mgmt_run_duration_seconds_count\{(?=[^}]*state="succeeded")[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^task_mgmt_github_requests_total\{(?=[^}]*status="20[01]")[^}]*\} [1-9]/m);
    const openapi = (await (await fetch(`${app.url}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths)).toContain('/api/runs');
  });

  it('refuses without a token, and cancels a running run through the API', async () => {
    expect((await api('/api/runs', {}, 'wrong-token-wrong-token')).status).toBe(401);
    const repo = await newRepo('FROM busybox\nCMD echo started && sleep 600\n');
    const created = (await (await api('/api/runs', { method: 'POST', body: JSON.stringify({ repo: repo.fullName }) })).json()) as { runs: { id: string }[] };
    const id = created.runs[0]!.id;
    await gh.waitFor(() => gh.checkRuns(repo).find((c) => c.status === 'in_progress'), { timeoutMs: 30_000 });
    const cancelled = await api(`/api/runs/${id}/cancel`, { method: 'POST' });
    expect(cancelled.status).toBe(200);
    const check = await gh.waitFor(() => gh.checkRuns(repo).find((c) => c.status === 'completed'), { timeoutMs: 15_000 });
    expect(check.conclusion).toBe('cancelled');
    expect(check.output.summary).toContain('through the API');
    expect((await api(`/api/runs/${id}/cancel`, { method: 'POST' })).status).toBe(409);
  });

  it('an API request for an outsider\'s pull request waits for the same approval as a comment', async () => {
    const repo = await newRepo('FROM busybox\nCMD true\n');
    gh.setRole(repo, 'visitor', 'read');
    await gh.commit(repo, 'outside', { 'README.md': 'hi\n' });
    const { number } = await gh.openPullRequest(repo, { author: 'visitor', head: 'outside' });
    const response = await api('/api/runs', { method: 'POST', body: JSON.stringify({ repo: repo.fullName, ref: `pull/${number}` }) });
    expect(response.status).toBe(202);
    const body = (await response.json()) as { status: string; reason: string };
    expect(body.status).toBe('waiting');
    expect(body.reason).toContain('needs an approving review');
    expect(gh.commentsOn(repo, number)).toEqual([]);
  });

  it('a GitHub user token gets exactly that user\'s rights: a reader is refused, a maintainer runs', async () => {
    const repo = await newRepo('FROM busybox\nCMD printf "hello world\\n" > /out/hello.txt\n');
    gh.setRole(repo, 'reader', 'read');
    gh.setRole(repo, 'maintainer', 'maintain');
    const asReader = await api('/api/runs', { method: 'POST', body: JSON.stringify({ repo: repo.fullName }) }, gh.userToken('reader'));
    expect(asReader.status).toBe(422);
    expect(((await asReader.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'refused',
      message: expect.stringContaining('@reader has the read role on this repository; running tasks needs write or higher.'),
    });
    expect(gh.checkRuns(repo)).toEqual([]);

    const asMaintainer = await api('/api/runs', { method: 'POST', body: JSON.stringify({ repo: repo.fullName }) }, gh.userToken('maintainer'));
    expect(asMaintainer.status).toBe(201);
    const [run] = ((await asMaintainer.json()) as { runs: { id: string; requested_by: string }[] }).runs;
    expect(run!.requested_by).toBe('maintainer');
    const check = await gh.waitFor(() => gh.checkRuns(repo).find((c) => c.status === 'completed'), { timeoutMs: 30_000 });
    expect(check.conclusion).toBe('success');
    expect((await api(`/api/runs/${run!.id}/cancel`, { method: 'POST' }, gh.userToken('reader'))).status).toBe(409);
    expect((await api('/api/runs', {}, 'ghu_not-a-token-anyone-has')).status).toBe(401);

    // The decisions are in the audit log, for operators.
    const audit = (await (await api(`/api/audit?repo=${repo.fullName}`)).json()) as { entries: { actor: string; action: string; allowed: boolean; reason: string }[] };
    expect(audit.entries.map((e) => [e.actor, e.action, e.allowed])).toEqual([
      ['reader', 'command', true],
      ['reader', 'run', false],
      ['maintainer', 'command', true],
      ['maintainer', 'run', true],
      // The reader's cancel of the ended run counts toward the command limit; it decided nothing.
      ['reader', 'command', true],
    ]);
    expect((await api(`/api/audit?repo=${repo.fullName}`, {}, gh.userToken('maintainer'))).status).toBe(403);
  });

  it('a stranger\'s user token does not see a private repository\'s run anywhere; its reader and anyone for a public repository do', async () => {
    const secret = await gh.createRepo({ owner: 'octo-org', name: `api-secret-${randomUUID().slice(0, 8)}`, private: true, files: { Dockerfile: 'FROM busybox\nCMD echo secret-output\n' } });
    const open = await newRepo('FROM busybox\nCMD echo open-output\n');
    gh.setRole(secret, 'insider', 'read');
    const runIn = async (repo: Repo) => {
      const created = await api('/api/runs', { method: 'POST', body: JSON.stringify({ repo: repo.fullName }) });
      expect(created.status).toBe(201);
      return ((await created.json()) as { runs: { id: string }[] }).runs[0]!.id;
    };
    const secretRun = await runIn(secret);
    const openRun = await runIn(open);
    await gh.waitFor(() => gh.checkRuns(secret).find((c) => c.status === 'completed'), { timeoutMs: 30_000 });
    await gh.waitFor(() => gh.checkRuns(open).find((c) => c.status === 'completed'), { timeoutMs: 30_000 });

    const stranger = gh.userToken('stranger');
    const readPaths = (id: string) => [`/api/runs/${id}`, `/api/runs/${id}/logs`, `/api/runs/${id}/logs?follow=1`, `/api/runs/${id}/events`];
    const statuses = async (id: string, token: string) => Object.fromEntries(await Promise.all(readPaths(id).map(async (path) => [path.replace(id, ':id'), (await api(path, {}, token)).status])));
    const listed = async (token: string, query = '') => ((await (await api(`/api/runs?limit=100${query}`, {}, token)).json()) as { runs: { id: string }[] }).runs.map((r) => r.id);
    const rpcGet = async (id: string, token: string) =>
      (await (await api('/rpc', { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'runs.get', params: { id } }) }, token)).json()) as { result?: { id: string }; error?: { code: number; message: string } };
    const rpcList = async (token: string) =>
      ((await (await api('/rpc', { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'runs.list', params: { limit: 100 } }) }, token)).json()) as { result: { runs: { id: string }[] } }).result.runs.map((r) => r.id);

    const notFound = { '/api/runs/:id': 404, '/api/runs/:id/logs': 404, '/api/runs/:id/logs?follow=1': 404, '/api/runs/:id/events': 404 };
    const found = { '/api/runs/:id': 200, '/api/runs/:id/logs': 200, '/api/runs/:id/logs?follow=1': 200, '/api/runs/:id/events': 200 };
    expect(await statuses(secretRun, stranger)).toStrictEqual(notFound);
    expect(await listed(stranger)).not.toContain(secretRun);
    expect(await listed(stranger, `&repo=${secret.fullName}`)).toStrictEqual([]);
    expect(await rpcList(stranger)).not.toContain(secretRun);
    expect((await rpcGet(secretRun, stranger)).error).toStrictEqual({ code: -32004, message: `there is no run \`${secretRun}\``, data: { code: 'not_found' } });

    expect(await statuses(secretRun, gh.userToken('insider'))).toStrictEqual(found);
    expect(await (await api(`/api/runs/${secretRun}/logs`, {}, gh.userToken('insider'))).text()).toContain('secret-output');
    expect(await listed(gh.userToken('insider'))).toContain(secretRun);
    expect((await rpcGet(secretRun, gh.userToken('insider'))).result?.id).toBe(secretRun);

    expect(await statuses(openRun, stranger)).toStrictEqual(found);
    expect(await listed(stranger)).toContain(openRun);
    expect(await rpcList(stranger)).toContain(openRun);
    expect(await statuses(secretRun, token)).toStrictEqual(found);
    expect(await listed(token)).toEqual(expect.arrayContaining([secretRun, openRun]));
  });
});

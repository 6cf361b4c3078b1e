/**
 * Reads follow GitHub, through every read of the JSON API and JSON-RPC: the real HTTP handler and
 * the real run service on in-memory adapters (SQLite, a code host per repository). A GitHub user
 * token sees a private repository's runs only when that user can read the repository; anyone
 * signed in sees a public one's; a service token sees all. What a caller may not see is left out
 * of listings and answered exactly like a run that does not exist.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, newRun } from '../../../test/contracts/run-store.contract.js';
import { RunService } from '../../core/run-service/run-service.js';
import type { TaskTypeCatalog } from '../../core/manifest/load-manifest.js';
import type { RepoRef, Run } from '../../core/runs/run.js';
import { MemoryCheckReporter } from '../local/memory-check-reporter.js';
import { MemoryRepoHost } from '../local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../queue/embedded-run-queue.js';
import { SqliteRunStore } from '../store/sqlite-run-store.js';
import { createHttpApi } from './http-api.js';
import { RunRequests } from './run-requests.js';

const serviceToken = 'service-token-for-read-tests';
/** The stand-in for GitHub's `GET /user`: `user-<login>` is that login's token. */
const tokenOf = (login: string) => `user-${login}`;
const secret: RepoRef = { owner: 'octo-org', name: 'secret', installationId: 7 };
const open: RepoRef = { owner: 'octo-org', name: 'open', installationId: 7 };
const silent = pino({ level: 'silent' });

interface RunListBody {
  runs: { id: string; repo: string }[];
  next_cursor: string | null;
}
type RpcAnswer = { id: number; result?: unknown; error?: { code: number; message: string; data?: { code: string } } };

describe('reads follow GitHub: who sees which runs', () => {
  let store: SqliteRunStore;
  let queue: EmbeddedRunQueue;
  let hosts: Map<string, MemoryRepoHost>;
  let server: Server;
  let base: string;
  /** Newest first, as listings answer. */
  let secretRuns: Run[];
  let openRuns: Run[];

  beforeEach(async () => {
    store = await SqliteRunStore.open(':memory:');
    queue = new EmbeddedRunQueue({ store, log: silent });
    hosts = new Map([
      [secret.name, new MemoryRepoHost().setRole('reader', 'read').setRole('writer', 'write')],
      [open.name, new MemoryRepoHost().setVisibility('public')],
    ]);
    const runs = new RunService({
      store,
      queue,
      checks: new MemoryCheckReporter(),
      hostFor: async (repo) => hosts.get(repo.name)!,
      newId: () => 'unused',
      now: () => new Date(),
      gatewayUrl: 'https://gateway.example',
      commandsPerMinute: 100,
      taskTypes: new Map() as unknown as TaskTypeCatalog,
      defaultImage: 'busybox:latest',
    });
    const handler = createHttpApi({
      store,
      tokens: [serviceToken],
      runs: new RunRequests({ runs, installationOf: async () => 7 }),
      reads: runs,
      resolveUser: async (token) => (token.startsWith('user-') ? token.slice('user-'.length) : null),
      log: silent,
      pollMs: 20,
      heartbeatMs: 50,
    });
    server = createServer((req, res) => {
      void handler(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    // Interleaved, so that pages cut before filtering would hold the private repository's runs.
    secretRuns = [];
    openRuns = [];
    for (let i = 0; i < 10; i += 1) {
      const repo = i % 2 === 0 ? secret : open;
      const run = await store.createRun(newRun({ repo, requestedBy: 'writer' }), at(i));
      (repo === secret ? secretRuns : openRuns).unshift(run);
    }
    for (const run of [...secretRuns, ...openRuns]) await store.appendLog(run.id, { offset: 0, bytes: Buffer.from(`log of ${run.repo.name}\n`) }, 1024 * 1024);
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await queue.close();
    await store.close();
  });

  const get = (path: string, token: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  const rpc = async (token: string, calls: unknown[]): Promise<RpcAnswer[]> => {
    const response = await fetch(`${base}/rpc`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(calls) });
    expect(response.status).toBe(200);
    return (await response.json()) as RpcAnswer[];
  };

  /** Every page of `GET /api/runs?limit=<limit>` as `token` sees it. */
  async function allPages(token: string, limit: number, query = ''): Promise<{ ids: string[]; sizes: number[] }> {
    const ids: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const response = await get(`/api/runs?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, token);
      expect(response.status).toBe(200);
      const page = (await response.json()) as RunListBody;
      ids.push(...page.runs.map((run) => run.id));
      sizes.push(page.runs.length);
      cursor = page.next_cursor;
    } while (cursor !== null && sizes.length < 20);
    return { ids, sizes };
  }

  /** Each read route of one run, with what it answers. */
  async function readRoutes(id: string, token: string): Promise<Record<string, { status: number; body: string }>> {
    const answers: Record<string, { status: number; body: string }> = {};
    for (const path of [`/api/runs/${id}`, `/api/runs/${id}/logs`, `/api/runs/${id}/logs?follow=1`, `/api/runs/${id}/events`]) {
      const response = await get(path, token);
      // A run the caller may see is queued, so its followed log and events would stream on: the
      // status and the first bytes tell enough.
      const body = response.status === 200 && !path.endsWith(`/${id}`) && !path.endsWith('/logs') ? await firstChunk(response) : await response.text();
      answers[path.replace(id, ':id')] = { status: response.status, body };
    }
    return answers;
  }

  it('a stranger’s user token: the private repository’s runs are left out of every page, and each page is still full', async () => {
    const stranger = tokenOf('stranger');
    const { ids, sizes } = await allPages(stranger, 2);
    expect(ids).toStrictEqual(openRuns.map((run) => run.id));
    expect(sizes).toStrictEqual([2, 2, 1]);
    const named = (await (await get(`/api/runs?repo=${secret.owner}/${secret.name}`, stranger)).json()) as RunListBody;
    expect(named).toStrictEqual({ runs: [], next_cursor: null });
  });

  it('a stranger’s user token: each read route of a private repository’s run answers 404, exactly as for a run that does not exist', async () => {
    const run = secretRuns[0]!;
    const seen = await readRoutes(run.id, tokenOf('stranger'));
    const missing = await readRoutes('no-such-run', tokenOf('stranger'));
    const statuses = (answers: typeof seen) => Object.fromEntries(Object.entries(answers).map(([route, answer]) => [route, answer.status]));
    expect(statuses(seen)).toStrictEqual({ '/api/runs/:id': 404, '/api/runs/:id/logs': 404, '/api/runs/:id/logs?follow=1': 404, '/api/runs/:id/events': 404 });
    expect(statuses(missing)).toStrictEqual(statuses(seen));
    for (const [route, answer] of Object.entries(seen)) expect(answer.body.replace(run.id, 'no-such-run'), route).toBe(missing[route]!.body);
    expect(JSON.parse(seen['/api/runs/:id']!.body)).toStrictEqual({ error: { code: 'not_found', message: `there is no run \`${run.id}\`` } });
  });

  it('a stranger’s user token over JSON-RPC: runs.list leaves the private runs out, runs.get answers not found as for a missing run', async () => {
    const run = secretRuns[0]!;
    const answers = await rpc(tokenOf('stranger'), [
      { jsonrpc: '2.0', id: 1, method: 'runs.list', params: { limit: 100 } },
      { jsonrpc: '2.0', id: 2, method: 'runs.get', params: { id: run.id } },
      { jsonrpc: '2.0', id: 3, method: 'runs.get', params: { id: 'no-such-run' } },
      { jsonrpc: '2.0', id: 4, method: 'runs.list', params: { limit: 3 } },
    ]);
    const byId = new Map(answers.map((answer) => [answer.id, answer]));
    expect((byId.get(1)!.result as RunListBody).runs.map((r) => r.id)).toStrictEqual(openRuns.map((r) => r.id));
    expect(byId.get(2)!.result).toBeUndefined();
    expect(byId.get(2)!.error).toStrictEqual({ code: -32004, message: `there is no run \`${run.id}\``, data: { code: 'not_found' } });
    expect(byId.get(3)!.error).toStrictEqual({ code: -32004, message: 'there is no run `no-such-run`', data: { code: 'not_found' } });
    const page = byId.get(4)!.result as RunListBody;
    expect(page.runs.map((r) => r.id)).toStrictEqual(openRuns.slice(0, 3).map((r) => r.id));
    const next = await rpc(tokenOf('stranger'), [{ jsonrpc: '2.0', id: 5, method: 'runs.list', params: { limit: 3, cursor: page.next_cursor } }]);
    expect((next[0]!.result as RunListBody).runs.map((r) => r.id)).toStrictEqual(openRuns.slice(3).map((r) => r.id));
  });

  it('a reader of the private repository sees its runs through every read route and RPC', async () => {
    for (const login of ['reader', 'writer', 'READER']) {
      const { ids } = await allPages(tokenOf(login), 3);
      expect(ids, login).toStrictEqual([...secretRuns, ...openRuns].sort(newestFirst).map((run) => run.id));
    }
    const run = secretRuns[0]!;
    const seen = await readRoutes(run.id, tokenOf('reader'));
    for (const [route, answer] of Object.entries(seen)) expect(answer.status, route).toBe(200);
    expect(JSON.parse(seen['/api/runs/:id']!.body)).toMatchObject({ id: run.id, repo: 'octo-org/secret' });
    expect(seen['/api/runs/:id/logs']!.body).toBe('log of secret\n');
    expect(seen['/api/runs/:id/logs?follow=1']!.body).toBe('log of secret\n');
    expect(seen['/api/runs/:id/events']!.body).toContain('event: run.snapshot');
    const [got] = await rpc(tokenOf('reader'), [{ jsonrpc: '2.0', id: 1, method: 'runs.get', params: { id: run.id } }]);
    expect(got!.result).toMatchObject({ id: run.id });
  });

  it('anyone signed in sees a public repository’s runs; a service token sees every run', async () => {
    const run = openRuns[0]!;
    const seen = await readRoutes(run.id, tokenOf('stranger'));
    for (const [route, answer] of Object.entries(seen)) expect(answer.status, route).toBe(200);
    expect(seen['/api/runs/:id/logs']!.body).toBe('log of open\n');

    const { ids, sizes } = await allPages(serviceToken, 4);
    expect(ids).toStrictEqual([...secretRuns, ...openRuns].sort(newestFirst).map((r) => r.id));
    expect(sizes).toStrictEqual([4, 4, 2]);
    for (const [route, answer] of Object.entries(await readRoutes(secretRuns[0]!.id, serviceToken))) expect(answer.status, route).toBe(200);
    const [got] = await rpc(serviceToken, [{ jsonrpc: '2.0', id: 1, method: 'runs.get', params: { id: secretRuns[0]!.id } }]);
    expect(got!.result).toMatchObject({ id: secretRuns[0]!.id });
  });

  it('asks GitHub once per user and repository while a listing is polled', async () => {
    for (let i = 0; i < 5; i += 1) await allPages(tokenOf('stranger'), 2);
    for (let i = 0; i < 3; i += 1) await get(`/api/runs/${secretRuns[0]!.id}`, tokenOf('stranger'));
    const secretCalls = hosts.get(secret.name)!.calls.map((call) => call.what);
    expect(secretCalls).toStrictEqual(['getVisibility', 'getPermission stranger']);
    expect(hosts.get(open.name)!.calls.map((call) => call.what)).toStrictEqual(['getVisibility']);
  });

  it('GET /api/events streams every change of every run the caller may read, and nothing of the others', async () => {
    /** The events of one stream until `until` says enough, as (event, id, state). */
    const collect = async (token: string, act: () => Promise<void>, until: (seen: string[]) => boolean): Promise<string[]> => {
      const response = await get('/api/events', token);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      const seen: string[] = [];
      let buffer = '';
      // The stream begins with a comment line once it watches: what changes after it is sent.
      buffer += decoder.decode((await reader.read()).value, { stream: true });
      expect(buffer).toBe(': every run you may read, from now on\n\n');
      buffer = '';
      await act();
      while (!until(seen)) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(':')) continue;
          const data = JSON.parse(/^data: (.*)$/m.exec(block)![1]!) as { id: string; state: string; repo: string };
          seen.push(`${/^event: (.*)$/m.exec(block)![1]} ${data.repo} ${data.state}`);
        }
      }
      await reader.cancel();
      return seen;
    };
    const move = async () => {
      await store.transition(secretRuns[0]!.id, 'claim', new Date(), { workerId: 'w' });
      await store.transition(openRuns[0]!.id, 'claim', new Date(), { workerId: 'w' });
      await new Promise((resolve) => setTimeout(resolve, 60));
      await store.transition(secretRuns[0]!.id, 'succeed', new Date(), { exitCode: 0 });
      await store.transition(openRuns[0]!.id, 'succeed', new Date(), { exitCode: 0 });
    };
    const everything = await collect(serviceToken, move, (seen) => seen.filter((line) => line.includes('succeeded')).length === 2);
    // A run that changed twice between two looks is sent once, as it is now (a busy machine may
    // look less often than the 60 ms between the moves): the final events always come, in order.
    const expected = ['run.started octo-org/secret running', 'run.started octo-org/open running', 'run.succeeded octo-org/secret succeeded', 'run.succeeded octo-org/open succeeded'];
    expect(everything.filter((line) => line.includes('succeeded')).sort()).toStrictEqual(expected.slice(2).sort());
    expect(everything.every((line) => expected.includes(line))).toBe(true);
    for (const repo of ['secret', 'open']) {
      const started = everything.indexOf(`run.started octo-org/${repo} running`);
      if (started !== -1) expect(started).toBeLessThan(everything.indexOf(`run.succeeded octo-org/${repo} succeeded`));
    }
    // A stranger: the public repository's changes only. A new run there ends the wait.
    const strangers = await collect(
      tokenOf('stranger'),
      async () => {
        await store.transition(secretRuns[1]!.id, 'claim', new Date(), { workerId: 'w' });
        await store.transition(openRuns[1]!.id, 'claim', new Date(), { workerId: 'w' });
        await new Promise((resolve) => setTimeout(resolve, 60));
        await store.createRun(newRun({ repo: open, requestedBy: 'writer' }), new Date());
      },
      (seen) => seen.some((line) => line.startsWith('run.queued')),
    );
    expect(strangers).toStrictEqual(['run.started octo-org/open running', 'run.queued octo-org/open queued']);
    expect((await get('/api/events', 'nobody-knows-this')).status).toBe(401);
  });

  it('/api/audit stays for service tokens, whatever the user can read', async () => {
    const audit = await get('/api/audit?repo=octo-org/secret', tokenOf('reader'));
    expect(audit.status).toBe(403);
    expect((await get('/api/audit?repo=octo-org/secret', serviceToken)).status).toBe(200);
  });
});

function newestFirst(a: Run, b: Run): number {
  return b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1);
}

/** The first bytes of a streamed body; then the stream is dropped. */
async function firstChunk(response: Response): Promise<string> {
  const reader = response.body!.getReader();
  const { value } = await reader.read();
  await reader.cancel();
  return new TextDecoder().decode(value);
}

/**
 * The dashboard's pages and buttons on a real HTTP server, with the real run service on in-memory
 * adapters (SQLite, a code host per repository): what repositories and tasks put on a page is
 * escaped, every button needs the session's CSRF token from this origin, the buttons and their
 * use cases follow the policy, a forged or altered cookie signs nobody in, and the API takes the
 * session cookie for reads only.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, newRun } from '../../../test/contracts/run-store.contract.js';
import type { TaskTypeCatalog } from '../../core/manifest/load-manifest.js';
import { RunService } from '../../core/run-service/run-service.js';
import { RunViews } from '../../core/run-service/run-views.js';
import type { RepoRef, Run } from '../../core/runs/run.js';
import { createApiHandler } from '../http/api-handler.js';
import { RunRequests } from '../http/run-requests.js';
import { MemoryCheckReporter } from '../local/memory-check-reporter.js';
import { MemoryRepoHost } from '../local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../queue/embedded-run-queue.js';
import { SqliteRunStore } from '../store/sqlite-run-store.js';
import { createDashboard } from './dashboard.js';
import { CookieJar } from './session.js';

const silent = pino({ level: 'silent' });
const secret: RepoRef = { owner: 'octo-org', name: 'secret', installationId: 7 };
const open: RepoRef = { owner: 'octo-org', name: 'open', installationId: 7 };
const key = Buffer.alloc(32, 3);

describe('dashboard pages and buttons', () => {
  let store: SqliteRunStore;
  let queue: EmbeddedRunQueue;
  let server: Server;
  let base: string;
  let hostile: Run;
  let openRun: Run;
  const jar = new CookieJar(key, false);
  const sessions = { writer: jar.newSession('writer'), reader: jar.newSession('reader'), stranger: jar.newSession('stranger') };
  const cookieOf = (who: keyof typeof sessions) => jar.sessionCookie(sessions[who]).split(';')[0]!;

  beforeEach(async () => {
    store = await SqliteRunStore.open(':memory:');
    queue = new EmbeddedRunQueue({ store, log: silent });
    const hosts = new Map([
      [secret.name, new MemoryRepoHost().setRole('reader', 'read').setRole('writer', 'write')],
      [open.name, new MemoryRepoHost().setVisibility('public').setRole('writer', 'write')],
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
    const starts = new RunRequests({ runs, installationOf: async () => 7 });
    const dashboard = createDashboard({
      store,
      reads: runs,
      views: new RunViews({ hostFor: async (repo) => hosts.get(repo.name)!, taskTypes: new Map() as unknown as TaskTypeCatalog, defaultImage: 'busybox:latest', canRead: (who, repo) => runs.canRead(who, repo) }),
      starts,
      service: runs,
      repositories: async () => [secret, open],
      visibility: async (repo) => hosts.get(repo.name)!.getVisibility(),
      sessionKey: key,
      publicUrl: 'http://dashboard.test',
      gatewayUrl: 'https://gateway.example',
      githubWebUrl: 'https://github.com',
      log: silent,
    });
    const api = createApiHandler({ store, tokens: [], runs: starts, reads: runs, sessionActor: dashboard.sessionActor, log: silent, pollMs: 20 });
    server = createServer((req, res) => {
      void (async () => (await api(req, res)) || (await dashboard.handler(req, res)) || res.writeHead(404).end('not the dashboard'))();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    hostile = await store.createRun(
      newRun({ repo: secret, task: '<script>alert(1)</script>', params: { x: '"><img src=x onerror=alert(2)>' }, requestedBy: '<b>mallory</b>' }),
      at(1),
    );
    await store.updateRun(hostile.id, { error: '<iframe src=javascript:alert(3)>' }, at(2));
    openRun = await store.createRun(newRun({ repo: open, task: 'snapshot' }), at(3));
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await queue.close();
    await store.close();
  });

  const get = (path: string, cookie?: string) => fetch(`${base}${path}`, { headers: cookie ? { cookie } : {}, redirect: 'manual' });
  const post = (path: string, cookie: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields), redirect: 'manual' });

  it('escapes every name, parameter, requester and error a repository or task puts on the runs list and the run page', async () => {
    for (const path of ['/', `/runs/${hostile.id}`]) {
      const response = await get(path, cookieOf('writer'));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
      const page = await response.text();
      expect(page).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
      for (const raw of ['<script>alert', '<img src=x', '<b>mallory', '<iframe']) expect(page, path).not.toContain(raw);
    }
  });

  it('shows a running run’s progress as the task last reported it, on the runs list and the run page, escaped', async () => {
    await store.transition(openRun.id, 'claim', at(4), { workerId: 'w1', leaseUntil: new Date(Date.now() + 60_000) });
    await store.updateRun(openRun.id, { progress: { done: 3, total: 4, message: 'page <3>' } }, at(5));
    for (const path of ['/', `/runs/${openRun.id}`]) {
      const page = await (await get(path, cookieOf('writer'))).text();
      expect(page, path).toMatch(/<progress data-progress aria-label="snapshot is running: 3 of 4 — page &#60;3&#62;" value="3" max="4"><\/progress> <span data-progress-words>3 of 4 — page &#60;3&#62;<\/span>/);
    }
  });

  it('cancels only with the session’s CSRF token from this origin, and only for a role the policy allows', async () => {
    const path = `/runs/${hostile.id}/cancel`;
    expect((await post(path, cookieOf('writer'), {})).status).toBe(403);
    expect((await post(path, cookieOf('writer'), { csrf: sessions.reader.csrf })).status).toBe(403);
    expect((await post(path, cookieOf('writer'), { csrf: sessions.writer.csrf }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await store.getRun(hostile.id))!.state).toBe('queued');

    // A reader sees no Cancel button, and pressing it anyway is refused with the policy's reason.
    expect(await (await get(`/runs/${hostile.id}`, cookieOf('reader'))).text()).not.toContain('>Cancel</button>');
    const refused = await post(path, cookieOf('reader'), { csrf: sessions.reader.csrf });
    expect(refused.status).toBe(422);
    expect(await refused.text()).toContain('has the read role on this repository; cancelling runs needs write or higher.');
    expect((await store.getRun(hostile.id))!.state).toBe('queued');

    expect(await (await get(`/runs/${hostile.id}`, cookieOf('writer'))).text()).toContain('>Cancel</button>');
    const done = await post(path, cookieOf('writer'), { csrf: sessions.writer.csrf }, { origin: base });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`/runs/${hostile.id}?done=cancelled`);
    expect((await store.getRun(hostile.id))!).toMatchObject({ state: 'cancelled', error: 'cancelled by @writer' });
  });

  it('follows the read rule: a stranger gets 404 for a private run and its badge, and sees only public runs', async () => {
    expect((await get(`/runs/${hostile.id}`, cookieOf('stranger'))).status).toBe(404);
    const list = await (await get('/', cookieOf('stranger'))).text();
    expect(list).toContain(`id="run-${openRun.id}"`);
    expect(list).not.toContain(`id="run-${hostile.id}"`);
    expect((await get('/badge/octo-org/secret/snapshot.svg')).status).toBe(404);
    expect((await get('/badge/octo-org/secret/snapshot.svg', cookieOf('stranger'))).status).toBe(404);
    expect((await get('/badge/octo-org/secret/snapshot.svg', cookieOf('reader'))).status).toBe(200);
    const badge = await get('/badge/octo-org/open/snapshot.svg');
    expect(badge.status).toBe(200);
    expect(badge.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
    expect(await badge.text()).toContain('snapshot: queued');
  });

  it('draws a run’s pipeline: its request’s tasks in needs order, each with its state and what it needs', async () => {
    const fetchRun = await store.createRun(newRun({ repo: open, task: 'fetch', number: 40 }), at(10));
    const packRun = await store.createRun(newRun({ repo: open, task: 'pack', number: 40, needs: [fetchRun.id] }), at(10));
    const publishRun = await store.createRun(newRun({ repo: open, task: 'publish', number: 40, needs: [packRun.id] }), at(10));
    await store.createRun(newRun({ repo: open, task: 'other', number: 40, sha: 'b'.repeat(40) }), at(11));
    const page = await (await get(`/runs/${packRun.id}`, cookieOf('stranger'))).text();
    const graph = /<ol class="pipeline">(.*?)<\/ol>/s.exec(page)![1]!;
    const tasks = [...graph.matchAll(/<a href="\/runs\/[^"]+"[^>]*>([^<]+)<\/a>/g)].map((m) => m[1]);
    expect(tasks).toStrictEqual(['fetch', 'pack', 'publish']);
    expect(graph).toContain('needs fetch');
    expect(graph).toContain('needs pack');
    expect(graph).toContain('aria-current="page">pack</a>');
    expect(graph).not.toContain('other');
  });

  it('signs nobody in with an altered, forged or expired cookie', async () => {
    const good = cookieOf('writer');
    const [name, value] = good.split('=') as [string, string];
    const altered = `${name}=${value.slice(0, -2)}${value.at(-2) === 'A' ? 'B' : 'A'}${value.slice(-1)}`;
    expect(altered).not.toBe(good);
    const forged = `${name}=${new CookieJar(Buffer.alloc(32, 9), false).sessionCookie(sessions.writer).split(';')[0]!.split('=')[1]}`;
    const expired = new CookieJar(key, false).sessionCookie({ ...sessions.writer, expires: Date.now() - 1 }).split(';')[0]!;
    for (const cookie of [altered, forged, expired]) {
      const page = await (await get('/', cookie)).text();
      expect(page).toContain('Sign in with GitHub');
      expect(page).not.toContain('@writer');
    }
    expect(jar.sessionCookie(sessions.writer)).toMatch(/; HttpOnly; SameSite=Lax$/);
    expect(new CookieJar(key, true).sessionCookie(sessions.writer)).toMatch(/^__Host-task-mgmt-session=.*; Path=\/; .*HttpOnly; SameSite=Lax; Secure$/);
  });

  it('the API reads with the session cookie, but nothing that changes a run is done on it', async () => {
    expect((await get(`/api/runs/${hostile.id}`, cookieOf('reader'))).status).toBe(200);
    expect((await get(`/api/runs/${hostile.id}`, cookieOf('stranger'))).status).toBe(404);
    const cancel = await fetch(`${base}/api/runs/${hostile.id}/cancel`, { method: 'POST', headers: { cookie: cookieOf('writer') } });
    expect(cancel.status).toBe(401);
    expect((await store.getRun(hostile.id))!.state).toBe('queued');
  });
});

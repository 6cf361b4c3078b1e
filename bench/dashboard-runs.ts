/**
 * The dashboard's runs page with 10,000 runs in the store (BENCH_DASHBOARD_RUNS), beside its
 * baseline: the JSON API's list of the same page (`GET /api/runs?limit=100`) on the same server,
 * store and signed-in reader. Both read the store's newest 500 runs and pass them through the read
 * rule; the page also counts them by state, lists what is running and renders (and escapes) the
 * HTML. Requests alternate between the two, one at a time; each side's median time is kept.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { createDashboard } from '../src/adapters/dashboard/dashboard.js';
import { CookieJar } from '../src/adapters/dashboard/session.js';
import { createApiHandler } from '../src/adapters/http/api-handler.js';
import { MemoryRepoHost } from '../src/adapters/local/memory-repo-host.js';
import { SqliteRunStore } from '../src/adapters/store/sqlite-run-store.js';
import { ReadAccess } from '../src/core/run-service/run-service.js';
import { runStates, type RepoRef } from '../src/core/runs/run.js';
import { newRun } from '../test/contracts/run-store.contract.js';
import { perSecond, ratio, withTempDir, type Benchmark, type BenchmarkResult } from './report.js';

const RUNS = Number(process.env.BENCH_DASHBOARD_RUNS ?? 10_000);
const ROUNDS = 30;

function unused(): never {
  throw new Error('not used by the runs page');
}

export const dashboardRuns: Benchmark = {
  name: 'dashboard-runs',
  async run(): Promise<BenchmarkResult> {
    return withTempDir('dashboard', async (dir) => {
      const store = await SqliteRunStore.open(join(dir, 'runs.sqlite'));
      const server = createServer();
      try {
        const repos: RepoRef[] = Array.from({ length: 20 }, (_, i) => ({ owner: 'octo-org', name: `repo-${i}`, installationId: 7 }));
        const host = new MemoryRepoHost().setRole('alice', 'read');
        const reads = new ReadAccess({ hostFor: async () => host, now: () => new Date() });
        const base = Date.now() - RUNS * 1000;
        for (let i = 0; i < RUNS; i += 1) {
          const run = await store.createRun(newRun({ repo: repos[i % repos.length]!, task: i % 3 === 0 ? 'snapshot' : `task <${i % 7}>` }), new Date(base + i * 1000));
          const state = runStates[i % runStates.length]!;
          if (state !== 'queued') await store.transition(run.id, 'claim', new Date(base + i * 1000 + 1));
          if (state !== 'queued' && state !== 'running') await store.transition(run.id, state === 'succeeded' ? 'succeed' : state === 'failed' ? 'fail' : state === 'timed_out' ? 'time_out' : 'cancel', new Date(base + i * 1000 + 2));
        }
        const key = Buffer.alloc(32, 7);
        const dashboard = createDashboard({
          store,
          reads,
          views: { buttons: unused, tasks: unused },
          starts: { create: unused },
          service: { cancel: unused, rerun: unused, pin: unused },
          repositories: async () => repos,
          visibility: async () => 'private',
          sessionKey: key,
          publicUrl: 'http://127.0.0.1',
          gatewayUrl: 'https://gateway.example',
          githubWebUrl: 'https://github.com',
          log: pino({ level: 'silent' }),
        });
        const api = createApiHandler({ store, tokens: [], runs: { create: unused, cancel: unused, pin: unused }, reads, resolveUser: async () => 'alice', log: pino({ level: 'silent' }) });
        server.on('request', (req, res) => {
          void (async () => (await api(req, res)) || (await dashboard.handler(req, res)) || res.writeHead(404).end())();
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const jar = new CookieJar(key, false);
        const cookie = jar.sessionCookie(jar.newSession('alice')).split(';')[0]!;

        const time = async (path: string, headers: Record<string, string>): Promise<{ ms: number; bytes: number }> => {
          const began = performance.now();
          const response = await fetch(`${url}${path}`, { headers });
          const body = await response.arrayBuffer();
          if (!response.ok) throw new Error(`${path} answered ${response.status}`);
          return { ms: performance.now() - began, bytes: body.byteLength };
        };
        const page = { path: '/', headers: { cookie } };
        const list = { path: '/api/runs?limit=100', headers: { authorization: 'Bearer user-token' } };
        // Warm both (the read rule's answers are kept for a minute, as in the app).
        await time(page.path, page.headers);
        await time(list.path, list.headers);
        const pageMs: number[] = [];
        const listMs: number[] = [];
        let pageBytes = 0;
        let listBytes = 0;
        for (let i = 0; i < ROUNDS; i += 1) {
          const p = await time(page.path, page.headers);
          const l = await time(list.path, list.headers);
          pageMs.push(p.ms);
          listMs.push(l.ms);
          pageBytes = p.bytes;
          listBytes = l.bytes;
        }
        const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
        const rows = [
          { case: 'GET /api/runs?limit=100 (baseline)', median: median(listMs), max: Math.max(...listMs), kib: listBytes / 1024, perSecond: perSecond(1, median(listMs)) },
          { case: 'GET / (runs page)', median: median(pageMs), max: Math.max(...pageMs), kib: pageBytes / 1024, perSecond: perSecond(1, median(pageMs)) },
        ];
        return {
          name: 'dashboard-runs',
          title: `the runs page and the API's list of the same page, ${RUNS} runs in the store, ${ROUNDS} requests each, one at a time`,
          columns: [
            { key: 'case', header: 'case', align: 'left' },
            { key: 'median', header: 'median ms', digits: 1 },
            { key: 'max', header: 'max ms', digits: 1 },
            { key: 'kib', header: 'KiB', digits: 1 },
            { key: 'perSecond', header: 'pages/s', digits: 1 },
          ],
          rows,
          ratios: [{ case: 'runs page vs API list', ratio: ratio(rows[1]!.perSecond, rows[0]!.perSecond) }],
          notes: ['both read the newest 500 runs and apply the read rule; the page shows 100 rows, counts by state and what is running'],
        };
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await store.close();
      }
    });
  },
};

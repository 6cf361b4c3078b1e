/**
 * Nothing is lost when something restarts: the app mid-run (SIGTERM hands the run back, its check
 * run says so, the next start finishes it), Redis mid-way through a batch of runs on BullMQ, and
 * RabbitMQ's vhost mid-way through a batch. Each test has servers of its own (a redis-server on
 * its own port with AOF, a vhost of its own), so no other suite sees the restarts.
 *
 * The task is `ipfs/add-url` from a local HTTP server that answers after a pause: no Docker
 * needed, and the server counts how often each run's task really started.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { startApp, type AppProcess } from '../support/app-process.js';
import { requireServices } from '../support/services.js';
import { canRunOwn, createOwnVhost, startOwnRedis } from '../support/own-servers.js';

interface Download {
  url: string;
  /** Requests started, in order. */
  started: number;
  /** Requests answered in full. */
  answered: number;
  /** While true, requests wait without an answer. */
  hold: boolean;
  close(): Promise<void>;
}

/** Answers `hello <n>\n` after `delayMs`, or never while `hold` is set. */
async function slowDownload(delayMs: number): Promise<Download> {
  const state = { started: 0, answered: 0, hold: false };
  const server: Server = createServer((_req, res) => {
    state.started += 1;
    const n = state.started;
    if (state.hold) return;
    setTimeout(() => {
      res.end(`hello ${n}\n`);
      state.answered += 1;
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/file.txt`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

async function until(predicate: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function setUp(delayMs: number): Promise<{ gh: FakeGitHub; repo: Repo; number: number; download: Download; dataDir: string }> {
  const gh = await FakeGitHub.start();
  cleanups.push(() => gh.close());
  const download = await slowDownload(delayMs);
  cleanups.push(() => download.close());
  const dataDir = await mkdtemp(join(tmpdir(), 'task-mgmt-restart-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const repo = await gh.createRepo({
    owner: 'octo-org',
    name: `restart-${randomUUID().slice(0, 8)}`,
    files: { 'task-mgmt.yml': `version: 1\ntasks:\n  fetch:\n    uses: ipfs/add-url\n    with: { url: "${download.url}" }\n` },
  });
  gh.setRole(repo, 'maintainer', 'maintain');
  const number = gh.createIssue(repo, { author: 'maintainer', title: 'archive' });
  return { gh, repo, number, download, dataDir };
}

function started(app: AppProcess): Promise<AppProcess> {
  cleanups.push(() => app.stop());
  return Promise.resolve(app);
}

const common = { ALLOW_PRIVATE_ADDRESSES: 'true', COMMANDS_PER_MINUTE: '100' };

/** Every check run of the repository completed with success, and as many as runs asked for. */
function allSucceeded(gh: FakeGitHub, repo: Repo, runs: number): boolean {
  const checks = gh.checkRuns(repo);
  return checks.length === runs && checks.every((check) => check.status === 'completed' && check.conclusion === 'success');
}

function summary(gh: FakeGitHub, repo: Repo): string {
  return JSON.stringify(gh.checkRuns(repo).map((check) => [check.status, check.conclusion]));
}

describe('an app restarted mid-run', () => {
  it('hands the run back on SIGTERM, shows its check run queued again with the reason, and finishes it at the next start', { timeout: 90_000 }, async () => {
    const { gh, repo, number, download, dataDir } = await setUp(200);
    download.hold = true;
    const first = await started(await startApp(gh, { ...common, DATA_DIR: dataDir, WORKERS: '1', SHUTDOWN_GRACE: '1s' }));
    await gh.comment(repo, number, 'maintainer', '/run');
    await until(() => download.started === 1, () => `the task to start\n${first.output().slice(-2000)}`, 30_000);
    await until(() => gh.checkRuns(repo)[0]?.status === 'in_progress', () => summary(gh, repo), 10_000);

    first.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    // Nothing is left in progress on GitHub: the check run is queued again and says why.
    const [handedBack] = gh.checkRuns(repo);
    expect(handedBack).toMatchObject({ status: 'queued', conclusion: null });
    expect(handedBack!.output.summary).toMatch(/Queued again: the worker is shutting down; it starts over when a worker takes it\./);

    download.hold = false;
    const second = await started(await startApp(gh, { ...common, DATA_DIR: dataDir, WORKERS: '1' }));
    await until(() => allSucceeded(gh, repo, 1), () => `the run to succeed after the restart: ${summary(gh, repo)}\n${second.output().slice(-2000)}`, 30_000);
    // Started once before the stop and once after it: handed back by design, never twice at once.
    expect(download.started).toBe(2);
    expect(download.answered).toBe(1);
  });
});

const runs = 6;

describe('BullMQ while its Redis restarts', async () => {
  const ready = (await requireServices('redis')) && (await canRunOwn('redis-server'));
  it.skipIf(!ready)(`brings ${runs} runs to a final state, each task started once`, { timeout: 90_000 }, async () => {
    const redis = await startOwnRedis();
    cleanups.push(() => redis.close());
    const { gh, repo, number, download, dataDir } = await setUp(1500);
    const app = await started(
      await startApp(gh, { ...common, DATA_DIR: dataDir, WORKERS: '2', QUEUE_URL: redis.url, QUEUE_PREFIX: `restart-${randomUUID().slice(0, 8)}` }),
    );
    for (let i = 0; i < runs; i += 1) await gh.comment(repo, number, 'maintainer', '/run');
    await until(() => gh.checkRuns(repo).length === runs && download.started >= 2, () => `${runs} runs queued and two started: ${summary(gh, repo)}`, 30_000);

    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await redis.start();

    await until(() => allSucceeded(gh, repo, runs), () => `every run to succeed: ${summary(gh, repo)}\n${app.output().slice(-3000)}`, 45_000);
    expect(download.started).toBe(runs);
    expect(app.output()).toMatch(/lost the Redis connection; reconnecting/);
  });
});

describe('RabbitMQ while its vhost restarts', async () => {
  const ready = (await requireServices('rabbitmq')) && (await canRunOwn('rabbitmqctl'));
  it.skipIf(!ready)(`brings ${runs} runs to a final state, each task started once`, { timeout: 90_000 }, async () => {
    const vhost = await createOwnVhost();
    cleanups.push(() => vhost.close());
    const { gh, repo, number, download, dataDir } = await setUp(1500);
    const app = await started(await startApp(gh, { ...common, DATA_DIR: dataDir, WORKERS: '2', QUEUE_URL: vhost.url }));
    for (let i = 0; i < runs; i += 1) await gh.comment(repo, number, 'maintainer', '/run');
    await until(() => gh.checkRuns(repo).length === runs && download.started >= 2, () => `${runs} runs queued and two started: ${summary(gh, repo)}`, 30_000);

    await vhost.restart();

    await until(() => allSucceeded(gh, repo, runs), () => `every run to succeed: ${summary(gh, repo)}\n${app.output().slice(-3000)}`, 45_000);
    expect(download.started).toBe(runs);
    expect(app.output()).toMatch(/lost the RabbitMQ connection; reconnecting/);
  });
});

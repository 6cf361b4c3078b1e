/**
 * Run logs end to end (README "Security model", Logs): the app serves the log of a run that a
 * worker on another machine ran — its own DATA_DIR, sharing only PostgreSQL and Redis — while it
 * runs and after; a task printing far more than LOG_MAX_BYTES leaves about the cap in the store;
 * and serving a log of hundreds of MiB streams it with the app's memory flat.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import { LogSink } from '../../src/worker/log-sink.js';
import { newRun } from '../contracts/run-store.contract.js';
import { FakeGitHub } from '../fake-github/index.js';
import { createTestDatabase } from '../support/postgres.js';
import { startApp, type AppProcess } from '../support/app-process.js';
import { requireServices } from '../support/services.js';

const MiB = 1024 * 1024;
const token = `svc-${randomUUID()}`;

/** Resident memory of a process, and its peak so far, in MiB. */
function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) / 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

/** Reads a response to its end without keeping it: byte count, the first and last bytes, and lines matching `keep`. */
async function drain(response: Response, keep?: RegExp): Promise<{ bytes: number; head: string; tail: string; kept: string[] }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let bytes = 0;
  let head = '';
  let tail = '';
  const kept: string[] = [];
  let partial = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    const text = decoder.decode(value, { stream: true });
    if (head.length < 4096) head += text.slice(0, 4096 - head.length);
    tail = (tail + text).slice(-4096);
    if (!keep) continue;
    const lines = (partial + text).split('\n');
    partial = lines.pop()!.slice(-4096);
    for (const line of lines) if (keep.test(line)) kept.push(line);
  }
  if (keep?.test(partial)) kept.push(partial);
  return { bytes, head, tail, kept };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

const dockerReady = await requireServices('docker');
const scaleOutReady = dockerReady && (await requireServices('redis', 'postgres'));

describe('run logs', () => {
  let gh: FakeGitHub | undefined;
  const processes: AppProcess[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.stop()));
    await gh?.close();
    gh = undefined;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const api = (app: AppProcess, path: string, init: RequestInit = {}) =>
    fetch(`${app.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

  it.skipIf(!scaleOutReady)('the app serves, live and after, the log of a run a worker with its own DATA_DIR ran', { timeout: 120_000 }, async () => {
    gh = await FakeGitHub.start();
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const shared = { QUEUE_URL: 'redis://127.0.0.1:6379', QUEUE_PREFIX: `task-mgmt-test-${randomUUID()}`, DATABASE_URL: database.url, API_TOKENS: token };
    // startApp gives each process a DATA_DIR of its own: nothing on disk is shared.
    const app = await startApp(gh, { ...shared, WORKERS: '0' });
    processes.push(app);
    const worker = await startApp(gh, { ...shared, WORKERS: '1' }, ['worker']);
    processes.push(worker);
    expect(worker.dataDir).not.toBe(app.dataDir);

    const repo = await gh.createRepo({
      owner: 'octo-org',
      name: `logs-${randomUUID().slice(0, 8)}`,
      files: { Dockerfile: 'FROM busybox\nCMD for i in $(seq 1 60); do echo "line $i of the task"; sleep 0.05; done; printf "hello world\\n" > /out/hello.txt\n' },
    });
    const created = await api(app, '/api/runs', { method: 'POST', body: JSON.stringify({ repo: repo.fullName }) });
    expect(created.status, await created.clone().text()).toBe(201);
    const runId = ((await created.json()) as { runs: { id: string }[] }).runs[0]!.id;

    // Followed from the app while the worker runs it: the stream ends when the run does.
    const followed = drain(await api(app, `/api/runs/${runId}/logs?follow=1`), /^line \d+ of the task$/);
    const check = await gh
      .waitFor(() => gh!.checkRuns(repo).find((c) => c.status === 'completed'), { timeoutMs: 90_000 })
      .catch((error: Error) => {
        throw new Error(`${error.message}\napp:\n${app.output().slice(-3000)}\nworker:\n${worker.output().slice(-3000)}`);
      });
    expect(check.conclusion).toBe('success');
    const lines = Array.from({ length: 60 }, (_, i) => `line ${i + 1} of the task`);
    expect((await followed).kept).toStrictEqual(lines);

    const response = await api(app, `/api/runs/${runId}/logs`);
    expect(response.status).toBe(200);
    const log = await response.text();
    expect(log.split('\n').filter((line) => line.endsWith('of the task'))).toStrictEqual(lines);
    expect(log).toMatch(/task-mgmt: default ended succeeded after/);
    expect(Number(response.headers.get('x-log-size'))).toBe(Buffer.byteLength(log));
    // From an offset, as a client that read part of it goes on.
    const offset = Buffer.from(log).indexOf('line 31 of the task');
    expect(await (await api(app, `/api/runs/${runId}/logs?offset=${offset}`)).text()).toBe(Buffer.from(log).subarray(offset).toString());
    // Neither process wrote a log file.
    for (const dir of [app.dataDir, worker.dataDir]) expect(filesUnder(dir).filter((file) => file.endsWith('.log'))).toStrictEqual([]);
  });

  it.skipIf(!dockerReady)('a task printing 200 MiB leaves about LOG_MAX_BYTES in the store, its head and its tail', { timeout: 240_000 }, async () => {
    gh = await FakeGitHub.start();
    const app = await startApp(gh, { API_TOKENS: token, WORKERS: '1', LOG_MAX_BYTES: '1m', TASK_TIMEOUT: '4m' });
    processes.push(app);
    const repo = await gh.createRepo({
      owner: 'octo-org',
      name: `flood-${randomUUID().slice(0, 8)}`,
      // 2,100,000 numbered lines of 101 bytes: over 200 MiB.
      files: { Dockerfile: 'FROM busybox\nCMD seq -w 1 2100000 | sed "s/$/ $(printf "%092d" 0)/"\n' },
    });
    const before = memoryMiB(app.pid);
    const created = await api(app, '/api/runs', { method: 'POST', body: JSON.stringify({ repo: repo.fullName }) });
    const runId = ((await created.json()) as { runs: { id: string }[] }).runs[0]!.id;
    const check = await gh.waitFor(() => gh!.checkRuns(repo).find((c) => c.status === 'completed'), { timeoutMs: 220_000, message: `the flood did not finish\n${app.output().slice(-3000)}` });
    expect(check.conclusion, check.output.summary ?? '').toBe('success');
    const during = memoryMiB(app.pid);

    const response = await api(app, `/api/runs/${runId}/logs`);
    expect(Number(response.headers.get('x-log-size'))).toBeGreaterThan(200 * MiB);
    const served = await drain(response, /bytes of log cut here/);
    // About the cap, with the line saying what was cut between the head and the tail.
    expect(served.bytes).toBeGreaterThan(MiB - 128 * 1024);
    expect(served.bytes).toBeLessThan(MiB + 128 * 1024);
    expect(served.head, served.head).toContain('FROM busybox');
    expect(served.kept).toHaveLength(1);
    expect(served.kept[0]).toMatch(/^task-mgmt: … \d{9} bytes of log cut here \(LOG_MAX_BYTES\)$/);
    expect(served.tail).toMatch(/2100000 0{92}\ntask-mgmt: default ended succeeded after .*\n$/);
    // The store holds about the cap too: the SQLite file does not grow with the log.
    const store = filesUnder(app.dataDir).filter((file) => /task-mgmt\.sqlite(-wal)?$/.test(file));
    expect(store.reduce((sum, file) => sum + statSync(file).size, 0)).toBeLessThan(32 * MiB);
    // The worker held lines back instead of buffering them: its memory grew by far less than the log.
    console.log(`200 MiB of output, LOG_MAX_BYTES=1m: app RSS ${before.rss.toFixed(0)} MiB before, peak ${during.peak.toFixed(0)} MiB; served ${served.bytes} bytes`);
    expect(during.peak - before.rss).toBeLessThan(120);
  });

  it('serving a 256 MiB log streams it: the app grows by a few tens of MiB, and /healthz answers meanwhile', { timeout: 180_000 }, async () => {
    gh = await FakeGitHub.start();
    const app = await startApp(gh, { API_TOKENS: token, WORKERS: '0' });
    processes.push(app);
    // A worker's sink in this process writes to the app's store file (SQLite allows one writer at a time, and readers beside it).
    const store = await SqliteRunStore.open(join(app.dataDir, 'task-mgmt.sqlite'));
    cleanups.push(() => store.close());
    const run = await store.createRun(newRun(), new Date());
    const sink = new LogSink({ store, runId: run.id, maxBytes: 512 * MiB });
    const line = `${'x'.repeat(1000)}`;
    const lines = 256 * 1024; // 1001 bytes each: 250 MiB
    for (let n = 0; n < lines; n += 1) await sink.line(line);
    await sink.close();

    const before = memoryMiB(app.pid);
    let peak = before.rss;
    let healthy = 0;
    let unhealthy = 0;
    const probe = setInterval(() => {
      peak = Math.max(peak, memoryMiB(app.pid).rss);
      fetch(`${app.url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => (r.ok ? (healthy += 1) : (unhealthy += 1)),
        () => (unhealthy += 1),
      );
    }, 100);
    try {
      const served = await drain(await api(app, `/api/runs/${run.id}/logs`));
      expect(served.bytes).toBe(lines * (line.length + 1));
    } finally {
      clearInterval(probe);
    }
    console.log(`serving ${lines * (line.length + 1)} bytes: app RSS ${before.rss.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB at most; /healthz ${healthy} ok, ${unhealthy} failed`);
    expect(peak - before.rss).toBeLessThan(64);
    expect(healthy).toBeGreaterThan(0);
    expect(unhealthy).toBe(0);
  });
});

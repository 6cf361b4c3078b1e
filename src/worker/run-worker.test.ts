/**
 * The worker's use case on in-memory adapters: SQLite in memory, a code host, check runs and an
 * event bus in memory, the embedded IPFS store in a temporary folder, and small task types
 * written here. Claiming, the re-check before start, needed tasks, retries, failures, cancels,
 * timeouts, the repository limit and progress, in a few seconds with no Docker, Redis or network.
 */
import { execFileSync } from 'node:child_process';
import { constants, closeSync, openSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dagJson from '@ipld/dag-json';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EmbeddedIpfsStore } from '../adapters/ipfs/embedded-ipfs-store.js';
import { LocalSourceFetcher } from '../adapters/local/local-source-fetcher.js';
import { MemoryCheckReporter } from '../adapters/local/memory-check-reporter.js';
import { MemoryEventBus } from '../adapters/local/memory-event-bus.js';
import { MemoryRepoHost } from '../adapters/local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../adapters/queue/embedded-run-queue.js';
import { SqliteRunStore } from '../adapters/store/sqlite-run-store.js';
import { RunService } from '../core/run-service/run-service.js';
import { queuedReport } from '../core/runs/check-text.js';
import type { RepoRef, Run } from '../core/runs/run.js';
import type { CheckReport } from '../ports/check-reporter.js';
import { DeferredError, PermanentError, RetryableError } from '../ports/errors.js';
import type { Executor } from '../ports/executor.js';
import type { NewRun } from '../ports/run-store.js';
import type { AnyTaskType, TaskContext, TaskResult } from '../ports/task-type.js';
import { createRunHandler, outputDir, type WorkerDeps } from './run-worker.js';

const repo: RepoRef = { owner: 'octo-org', name: 'archive', installationId: 7 };
const otherRepo: RepoRef = { owner: 'octo-org', name: 'other', installationId: 7 };
const gatewayUrl = 'https://gateway.example';
const silent = pino({ level: 'silent' });
const t0 = Date.parse('2026-12-01T10:00:00Z');

/** No task type of these tests starts a container; one that tried would fail loudly. */
const noContainers: Executor = {
  execute: async () => {
    throw new Error('no task type in these tests starts a container');
  },
};

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await sleep(5);
  }
}

/** The outputs of `test/write`, also written by the tests to compute the CID they expect. */
async function writeSample(dir: string): Promise<void> {
  await mkdir(join(dir, 'pages'), { recursive: true });
  await writeFile(join(dir, 'hello.txt'), 'hello, archive\n');
  await writeFile(join(dir, 'pages', 'index.html'), '<h1>archived</h1>\n');
}

/** What the task types of one test saw: which ran, their contexts, and why they were aborted. */
interface Seen {
  ran: string[];
  contexts: Map<string, TaskContext>;
  abortReasons: unknown[];
}

function testTaskTypes(seen: Seen): Map<string, AnyTaskType> {
  const type = (name: string, run: (ctx: TaskContext, params: Record<string, unknown>) => Promise<TaskResult>, more: Partial<AnyTaskType> = {}): [string, AnyTaskType] => [
    name,
    {
      name,
      description: `${name}, a task type of the worker's tests`,
      params: z.record(z.string(), z.unknown()),
      network: false,
      ...more,
      run: async (ctx, params) => {
        seen.ran.push(name);
        seen.contexts.set(ctx.runId, ctx);
        return run(ctx, params);
      },
    },
  ];
  /** Waits for its abort signal, then rejects with its reason (as fetch does) or returns. */
  const waitForAbort = (ctx: TaskContext, params: Record<string, unknown>) =>
    new Promise<TaskResult>((resolve, reject) => {
      ctx.signal.addEventListener(
        'abort',
        () => {
          seen.abortReasons.push(ctx.signal.reason);
          if (params.onAbort === 'return') resolve({ exitCode: 137 });
          else reject(ctx.signal.reason);
        },
        { once: true },
      );
    });
  /** Waits until aborted (then returns, as a killed container does) or until `ms` passed. */
  const waitOrAbort = (ctx: TaskContext, ms: number) =>
    new Promise<void>((resolve) => {
      if (ctx.signal.aborted) {
        seen.abortReasons.push(ctx.signal.reason);
        resolve();
        return;
      }
      const timer = setTimeout(resolve, ms);
      ctx.signal.addEventListener(
        'abort',
        () => {
          seen.abortReasons.push(ctx.signal.reason);
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  return new Map([
    type('test/write', async (ctx) => {
      ctx.log('writing two files');
      await writeSample(ctx.outDir);
      return { metadata: { title: 'An archived page' } };
    }),
    type(
      'test/copy-readme',
      async (ctx) => {
        await writeFile(join(ctx.outDir, 'README.md'), await readFile(join(ctx.sourceDir, 'README.md')));
        return {};
      },
      { needsSource: true },
    ),
    type('test/wait', waitForAbort),
    type('test/permanent', async () => {
      throw new PermanentError('https://example.org/a answered 410 Gone');
    }),
    type('test/progress', async (ctx, params) => {
      const steps = Number(params.steps);
      for (let done = 1; done <= steps; done += 1) {
        ctx.progress({ done, total: steps, message: `page ${done}` });
        await sleep(Number(params.stepMs));
      }
      return {};
    }),
    type('test/progress-once', async (ctx, params) => {
      ctx.progress({ done: 1, total: 2 });
      await sleep(Number(params.waitMs));
      return {};
    }),
    // As a container reports progress: a file in its output folder.
    type('test/progress-file', async (ctx, params) => {
      await writeFile(join(ctx.outDir, '.progress.json'), JSON.stringify({ done: 3, total: 4, message: 'page 3' }));
      await sleep(Number(params.waitMs));
      return {};
    }),
    // A hostile container: its progress file is a FIFO nobody ever writes to.
    type('test/progress-fifo', async (ctx, params) => {
      execFileSync('mkfifo', [join(ctx.outDir, '.progress.json')]);
      await sleep(Number(params.waitMs));
      return {};
    }),
    // A sparse file: almost no disk, but `bytes` of apparent size to read and hash.
    type('test/sparse', async (ctx, params) => {
      await writeFile(join(ctx.outDir, 'visible.txt'), 'a little\n');
      await truncate(join(ctx.outDir, 'visible.txt'), Number(params.bytes));
      if (params.then === 'wait') await waitOrAbort(ctx, Number(params.waitMs));
      return {};
    }),
    type('test/many-files', async (ctx, params) => {
      for (let i = 0; i < Number(params.files); i += 1) await writeFile(join(ctx.outDir, `f${i}.txt`), `${i}\n`);
      if (params.then === 'wait') await waitOrAbort(ctx, Number(params.waitMs));
      return {};
    }),
    type('test/list-inputs', async (ctx) => {
      await writeFile(join(ctx.outDir, 'inputs.json'), JSON.stringify(Object.keys(ctx.inputs)));
      return {};
    }),
  ]);
}

async function world(options: { maxRunningPerRepo?: number; progressIntervalMs?: number; outputLimits?: { maxBytes: number; maxFiles: number } } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-worker-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const checkout = join(dir, 'checkout');
  await mkdir(checkout);
  await writeFile(join(checkout, 'README.md'), 'the archive at the pinned commit\n');

  const store = await SqliteRunStore.open(':memory:');
  const ipfs = new EmbeddedIpfsStore({ dataDir });
  cleanups.push(() => store.close(), () => ipfs.close());
  const host = new MemoryRepoHost().setRole('alice', 'write').setRole('mara', 'maintain').setRole('wendy', 'write');
  const manifest = 'version: 1\ntasks:\n  snapshot:\n    uses: test/write\n';
  const head = host.commit({ 'task-mgmt.yml': manifest, 'README.md': 'the archive\n', 'notes.md': 'more\n' });
  host.openPullRequest({ number: 1, author: 'wendy', headSha: head, changedFiles: ['notes.md'] });
  const checks = new MemoryCheckReporter();
  const events = new MemoryEventBus();
  const seen: Seen = { ran: [], contexts: new Map(), abortReasons: [] };
  const taskTypes = testTaskTypes(seen);
  const started = Date.now();
  const now = () => new Date(t0 + (Date.now() - started));
  const finished: Run[] = [];

  const deps: WorkerDeps = {
    store,
    hostFor: async () => host,
    maxRunningPerRepo: options.maxRunningPerRepo ?? 2,
    checks,
    source: new LocalSourceFetcher(checkout, dataDir),
    executor: noContainers,
    ipfs,
    taskTypes,
    settings: { allowPrivateAddresses: false, gatewayUrl },
    events,
    log: silent,
    dataDir,
    gatewayUrl,
    limits: { memoryBytes: 256 * 1024 ** 2, nanoCpus: 1e9, pidsLimit: 64, timeoutMs: 10_000 },
    workerId: 'worker-1',
    now,
    leaseMs: 300,
    progressIntervalMs: options.progressIntervalMs ?? 50,
    ...(options.outputLimits ? { outputLimits: options.outputLimits, outputCheckIntervalMs: 50 } : {}),
    onRunFinished: (run) => finished.push(run),
  };
  const handler = createRunHandler(deps);
  const handle = (runId: string, signal: AbortSignal = new AbortController().signal) => handler({ runId }, { signal });

  let next = 0;
  /** Records a queued run with its check run, as the run service does. */
  const queue = async (more: Partial<NewRun> = {}): Promise<Run> => {
    const draft: NewRun = {
      id: `run-${++next}`,
      repo,
      number: 1,
      isPullRequest: true,
      sha: head,
      task: 'snapshot',
      taskType: 'test/write',
      dockerfile: '',
      spec: { with: {}, network: false },
      needs: [],
      params: {},
      requestedBy: 'alice',
      requesterKind: 'user',
      requiredRole: 'write',
      trigger: 'comment',
      commentId: null,
      approvals: [],
      manifestDigest: 'sha256:' + 'd'.repeat(64),
      ...more,
    };
    const checkRunId = await checks.create({ repo: draft.repo, sha: draft.sha, task: draft.task, id: draft.id }, queuedReport(draft));
    return store.createRun({ ...draft, checkRunId }, now());
  };

  /** The run service on the same adapters, as the app builds it. */
  const service = () => {
    const runQueue = new EmbeddedRunQueue({ store, log: silent });
    cleanups.push(() => runQueue.close());
    return new RunService({
      store,
      queue: runQueue,
      checks,
      hostFor: async () => host,
      newId: () => `run-${++next}`,
      now,
      gatewayUrl,
      commandsPerMinute: 100,
      taskTypes,
      defaultImage: 'busybox:latest',
    });
  };

  const run = async (id: string): Promise<Run> => (await store.getRun(id))!;
  const reports = (checkRun: Run): CheckReport[] => checks.get(checkRun.checkRunId!)!.history;
  /** The run's whole log, as the store holds it. */
  const log = async (id: string): Promise<string> => {
    let text = '';
    for (let offset = 0; ; ) {
      const read = await store.readLog(id, offset);
      if (read.bytes.byteLength === 0) return text;
      text += Buffer.from(read.bytes).toString('utf8');
      offset = read.offset + read.bytes.byteLength;
    }
  };
  return { store, host, checks, events, ipfs, seen, dataDir, head, deps, handle, queue, service, run, reports, log, finished, now };
}

const statuses = (reports: CheckReport[]) => reports.map((report) => (report.conclusion ? `${report.status}:${report.conclusion}` : report.status));

describe('a run that may run', () => {
  it('pins its outputs for the TTL its request was granted, indexing every block under the run', async () => {
    const w = await world();
    const short = await w.queue({ spec: { with: {}, network: false, pinTtlMs: 5000 } });
    const plain = await w.queue();
    await w.handle(short.id);
    await w.handle(plain.id);

    const run = await w.run(short.id);
    expect(run.pinnedUntil!.getTime()).toBeGreaterThanOrEqual(run.startedAt!.getTime() + 5000);
    expect(run.pinnedUntil!.getTime()).toBeLessThanOrEqual(run.finishedAt!.getTime() + 5000);
    expect(await w.store.listPins(run.id)).toStrictEqual([
      { runId: run.id, kind: 'outputs', root: run.outputCid, pinnedUntil: run.pinnedUntil },
      { runId: run.id, kind: 'provenance', root: run.provenanceCid, pinnedUntil: run.pinnedUntil },
    ]);
    for (const file of [{ cid: run.outputCid! }, ...run.outputFiles]) {
      expect((await w.store.livePinsHolding(file.cid, w.now())).map((holder) => holder.runId).sort()).toStrictEqual([plain.id, run.id].sort());
    }
    expect(w.reports(run).at(-1)!.summary).toContain(`Pinned until ${run.pinnedUntil!.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
    // A run recorded without a TTL gets PIN_TTL_DEFAULT, 30 days unless configured.
    const other = await w.run(plain.id);
    expect(other.pinnedUntil!.getTime() - other.finishedAt!.getTime()).toBeGreaterThan(29 * 86_400_000);
  });

  it('is claimed, shows in_progress, then success with the CID of its outputs and each file, and keeps its log', async () => {
    const w = await world();
    const outcome = await w.service().request({ requester: { kind: 'user', login: 'alice' }, repo, target: { kind: 'pull_request', number: 1 }, task: null, params: {}, trigger: 'comment' });
    if (outcome.kind !== 'queued') throw new Error(`expected the request to be queued: ${JSON.stringify(outcome)}`);
    const [queued] = outcome.runs;

    await w.handle(queued!.id);

    const run = await w.run(queued!.id);
    expect(run).toMatchObject({ state: 'succeeded', exitCode: null, error: null, workerId: null, leaseUntil: null, metadata: { title: 'An archived page' } });
    expect(run.startedAt!.getTime()).toBeGreaterThanOrEqual(t0);
    expect(run.finishedAt!.getTime()).toBeGreaterThanOrEqual(run.startedAt!.getTime());

    // The same files added by a store of their own give the same CIDs.
    const elsewhere = await mkdtemp(join(tmpdir(), 'task-mgmt-worker-expected-'));
    cleanups.push(() => rm(elsewhere, { recursive: true, force: true }));
    await writeSample(join(elsewhere, 'out'));
    const reference = new EmbeddedIpfsStore({ dataDir: join(elsewhere, 'data') });
    cleanups.push(() => reference.close());
    const expected = await reference.addPath(join(elsewhere, 'out'));
    expect(run.outputCid).toBe(expected.cid);
    expect(run.outputFiles).toEqual(expected.entries);
    expect(run.outputFiles.map((file) => file.name)).toEqual(['hello.txt', 'pages']);

    const reports = w.reports(run);
    expect(statuses(reports)).toEqual(['queued', 'in_progress', 'completed:success']);
    const done = reports.at(-1)!;
    expect(done.summary).toContain(`ipfs://${expected.cid}`);
    for (const file of expected.entries) expect(done.summary).toContain(file.cid);
    expect(done.text).toContain('writing two files');
    expect(done.actions).toEqual([]);

    const log = await w.log(run.id);
    expect(log).toContain('writing two files');
    expect(log).toContain(`checked again before starting: \`${w.head.slice(0, 12)}\` is still the head and @alice has the write role`);
    expect(log).toMatch(/snapshot ended succeeded after/);
    expect(w.finished.map((r) => [r.id, r.state])).toEqual([[run.id, 'succeeded']]);
    // Outputs stay for the tasks that need them; the work folder goes.
    expect(await readFile(join(outputDir(w.dataDir, run.id), 'hello.txt'), 'utf8')).toBe('hello, archive\n');
    await expect(stat(join(w.dataDir, 'work', run.id))).rejects.toThrow(/ENOENT/);
  });

  it('gets the source at the pinned SHA only when its type needs it', async () => {
    const w = await world();
    const withSource = await w.queue({ taskType: 'test/copy-readme' });
    const without = await w.queue({ taskType: 'test/write' });
    await w.handle(withSource.id);
    await w.handle(without.id);
    expect(await readFile(join(outputDir(w.dataDir, withSource.id), 'README.md'), 'utf8')).toBe('the archive at the pinned commit\n');
    expect(await w.log(withSource.id)).toContain(`fetching octo-org/archive at ${w.head}`);
    expect(await w.log(without.id)).not.toContain('fetching');
  });

  it('leaves alone a run that is no longer queued', async () => {
    const w = await world();
    const queued = await w.queue();
    await w.store.transition(queued.id, 'cancel', w.now(), { error: 'cancelled by @alice' });
    await w.handle(queued.id);
    expect(await w.run(queued.id)).toMatchObject({ state: 'cancelled', error: 'cancelled by @alice', startedAt: null });
    expect(w.seen.ran).toEqual([]);
    expect(statuses(w.reports(queued))).toEqual(['queued']);
  });

  it('fails a run whose type this worker does not know, saying so', async () => {
    const w = await world();
    const queued = await w.queue({ taskType: 'test/unknown' });
    await w.handle(queued.id);
    expect(await w.run(queued.id)).toMatchObject({ state: 'failed', error: '`test/unknown` is not a task type this worker knows' });
    expect(statuses(w.reports(queued))).toEqual(['queued', 'in_progress', 'completed:failure']);
  });

  it('says which DATABASE_URL to share when the run is not in its store, and asks to be tried again', async () => {
    const w = await world();
    const attempt = w.handle('run-from-another-store');
    await expect(attempt).rejects.toBeInstanceOf(RetryableError);
    await expect(attempt).rejects.toThrow(/run run-from-another-store is not in this worker's run store: .*the same DATABASE_URL as the app/);
  });
});

describe('the re-check just before the task starts', () => {
  const refusals: [string, (w: Awaited<ReturnType<typeof world>>) => Partial<NewRun>, (w: Awaited<ReturnType<typeof world>>) => string][] = [
    [
      "the pull request's head moved",
      (w) => {
        w.host.push(1, w.host.commit({ 'notes.md': 'newer\n' }));
        return {};
      },
      (w) => `the head of #1 moved from \`${w.head.slice(0, 12)}\``,
    ],
    [
      'the pull request was closed',
      (w) => {
        w.host.openPullRequest({ number: 1, author: 'wendy', headSha: w.head, changedFiles: ['notes.md'], state: 'closed' });
        return {};
      },
      () => 'pull request #1 was closed before the task started; nothing ran',
    ],
    [
      'the requester lost the role',
      (w) => {
        w.host.setRole('alice', 'read');
        return {};
      },
      () => 'checked again before the task started: @alice has the read role on this repository; running tasks needs write or higher. Nothing ran.',
    ],
    [
      'the run needs maintain and the requester now has only write',
      () => ({ requiredRole: 'maintain' }),
      () => 'checked again before the task started: @alice has the write role on this repository; running tasks needs maintain or higher. Nothing ran.',
    ],
  ];

  it.each(refusals)('ends the run cancelled and unrun when %s', async (_, change, reason) => {
    const w = await world();
    const queued = await w.queue(change(w));
    await w.handle(queued.id);

    const run = await w.run(queued.id);
    expect(run.state).toBe('cancelled');
    expect(run.error).toContain(reason(w));
    expect(w.seen.ran).toEqual([]);
    expect(run.outputCid).toBeNull();
    const reports = w.reports(run);
    expect(statuses(reports)).toEqual(['queued', 'in_progress', 'completed:cancelled']);
    expect(reports.at(-1)!.summary).toContain(reason(w));
    expect(await w.log(run.id)).toContain(reason(w));
  });

  it('re-checks a service token without asking GitHub for its role, and still refuses a moved head', async () => {
    const w = await world();
    const service = { requestedBy: 'service:0123456789ab', requesterKind: 'service', requiredRole: 'maintain' } as const;
    const allowed = await w.queue(service);
    await w.handle(allowed.id);
    expect(await w.run(allowed.id)).toMatchObject({ state: 'succeeded' });
    expect(await w.log(allowed.id)).toContain('service:0123456789ab has the admin role');
    const asked = w.host.calls.map((call) => call.what);
    expect(asked).toEqual(['getPullRequest 1']);

    w.host.push(1, w.host.commit({ 'notes.md': 'newer\n' }));
    const moved = await w.queue(service);
    await w.handle(moved.id);
    expect(await w.run(moved.id)).toMatchObject({ state: 'cancelled', error: expect.stringContaining('the head of #1 moved') });
    expect(w.host.calls.map((call) => call.what).filter((what) => what.startsWith('getPermission'))).toEqual([]);
  });
});

describe('tasks it needs', () => {
  it('a needed task that failed cancels the run, unrun, with a reason naming that task', async () => {
    const w = await world();
    const fetch = await w.queue({ task: 'fetch', taskType: 'test/permanent' });
    const process = await w.queue({ task: 'process', needs: [fetch.id] });
    await w.handle(fetch.id);
    await w.handle(process.id);

    const run = await w.run(process.id);
    expect(run).toMatchObject({ state: 'cancelled', error: 'the task `fetch` it needs ended failed, so it did not run', startedAt: null });
    expect(w.seen.ran).toEqual(['test/permanent']);
    const reports = w.reports(run);
    expect(statuses(reports)).toEqual(['queued', 'completed:cancelled']);
    expect(reports.at(-1)!.summary).toContain('the task `fetch` it needs ended failed');
  });

  it.each(['queued', 'running'] as const)('a needed task still %s defers the run, which stays queued', async (state) => {
    const w = await world();
    const fetch = await w.queue({ task: 'fetch' });
    if (state === 'running') await w.store.claimRun(fetch.id, { workerId: 'worker-2', leaseUntil: new Date(t0 + 60_000), maxRunningInRepo: 5 }, w.now());
    const process = await w.queue({ task: 'process', needs: [fetch.id] });

    const attempt = w.handle(process.id);
    await expect(attempt).rejects.toBeInstanceOf(DeferredError);
    await expect(attempt).rejects.toThrow('waiting for the tasks it needs');
    expect(await w.run(process.id)).toMatchObject({ state: 'queued', workerId: null, startedAt: null });
    expect(statuses(w.reports(process))).toEqual(['queued']);
  });

  it('a needed task that succeeded hands its outputs to the run', async () => {
    const w = await world();
    const fetch = await w.queue({ task: 'fetch' });
    const process = await w.queue({ task: 'process', taskType: 'test/list-inputs', needs: [fetch.id] });
    await w.handle(fetch.id);
    await w.handle(process.id);

    expect(await w.run(process.id)).toMatchObject({ state: 'succeeded' });
    const fetched = await w.run(fetch.id);
    const input = w.seen.contexts.get(process.id)!.inputs.fetch!;
    expect(input).toEqual({ dir: outputDir(w.dataDir, fetch.id), cid: fetched.outputCid, files: fetched.outputFiles, metadata: { title: 'An archived page' } });
    expect(await readFile(join(input.dir, 'hello.txt'), 'utf8')).toBe('hello, archive\n');
  });
});

describe('failures', () => {
  it('a retryable error before the task starts gives the run back to the queue and is rethrown', async () => {
    const w = await world();
    const queued = await w.queue();
    w.host.failNext('getPullRequest', new RetryableError('GitHub answered 502'));

    const attempt = w.handle(queued.id);
    await expect(attempt).rejects.toBeInstanceOf(RetryableError);
    await expect(attempt).rejects.toThrow('GitHub answered 502');
    expect(await w.run(queued.id)).toMatchObject({ state: 'queued', workerId: null, leaseUntil: null, startedAt: null, finishedAt: null });
    expect(w.seen.ran).toEqual([]);
    expect(w.finished).toEqual([]);
    expect(await w.log(queued.id)).toContain('task-mgmt: GitHub answered 502; the run will be tried again');
    // Its check run is queued again too, not left saying it runs.
    expect(statuses(w.reports(await w.run(queued.id)))).toEqual(['queued', 'in_progress', 'queued']);

    // Taken again later, it runs.
    await w.handle(queued.id);
    expect(await w.run(queued.id)).toMatchObject({ state: 'succeeded' });
  });

  it('a permanent error fails the run with its message', async () => {
    const w = await world();
    const queued = await w.queue({ taskType: 'test/permanent' });
    await w.handle(queued.id);

    const run = await w.run(queued.id);
    expect(run).toMatchObject({ state: 'failed', error: 'https://example.org/a answered 410 Gone', outputCid: null });
    const reports = w.reports(run);
    expect(statuses(reports)).toEqual(['queued', 'in_progress', 'completed:failure']);
    expect(reports.at(-1)!.summary).toContain('https://example.org/a answered 410 Gone');
    expect(w.finished.map((r) => r.state)).toEqual(['failed']);
  });
});

describe('stopping a run', () => {
  it('a cancel recorded in the store while it runs aborts the task through ctx.signal, and the run ends cancelled', async () => {
    const w = await world();
    const queued = await w.queue({ taskType: 'test/wait' });
    const handling = w.handle(queued.id);
    await until(() => w.seen.contexts.has(queued.id), 'the task started');
    expect((await w.run(queued.id)).state).toBe('running');

    await w.store.transition(queued.id, 'cancel', w.now(), { error: 'cancelled by @alice' });
    await handling;

    expect(w.seen.contexts.get(queued.id)!.signal.aborted).toBe(true);
    expect(w.seen.abortReasons).toHaveLength(1);
    expect(await w.run(queued.id)).toMatchObject({ state: 'cancelled', error: 'cancelled by @alice' });
    expect(await w.log(queued.id)).toContain('task-mgmt: the run was cancelled');
  });

  it("a cancel through the queue (the handler's signal) aborts the task, and the worker reports it cancelled", async () => {
    const w = await world();
    const queued = await w.queue({ taskType: 'test/wait' });
    const queue = new AbortController();
    const handling = w.handle(queued.id, queue.signal);
    await until(() => w.seen.contexts.has(queued.id), 'the task started');
    queue.abort(new Error('cancelled'));
    await handling;

    expect(w.seen.contexts.get(queued.id)!.signal.aborted).toBe(true);
    const run = await w.run(queued.id);
    expect(run).toMatchObject({ state: 'cancelled', error: 'the run was cancelled' });
    expect(statuses(w.reports(run))).toEqual(['queued', 'in_progress', 'completed:cancelled']);
  });

  it.each(['throws', 'returns'])('a type that starts no container and %s when aborted ends timed_out at its timeout', async (onAbort) => {
    const w = await world();
    const queued = await w.queue({ taskType: 'test/wait', spec: { with: { onAbort: onAbort === 'returns' ? 'return' : 'throw' }, network: false, timeoutMs: 100 } });
    const began = Date.now();
    await w.handle(queued.id);

    expect(Date.now() - began).toBeLessThan(3000);
    expect(w.seen.abortReasons).toHaveLength(1);
    const run = await w.run(queued.id);
    expect(run.state).toBe('timed_out');
    expect(run.error).toMatch(/^the task ran longer than its .* timeout and was stopped$/);
    // A task that returned still has its outputs (none here) added; one that threw has none.
    expect(run.outputCid === null).toBe(onAbort === 'throws');
    expect(statuses(w.reports(run))).toEqual(['queued', 'in_progress', 'completed:timed_out']);
  });
});

describe('runs going at once in a repository', () => {
  it('a repository at its limit defers the run, which stays queued; another repository is not held back', async () => {
    const w = await world({ maxRunningPerRepo: 1 });
    const first = await w.queue({ taskType: 'test/wait' });
    const queue = new AbortController();
    const handling = w.handle(first.id, queue.signal);
    await until(() => w.seen.contexts.has(first.id), 'the first run started');

    const second = await w.queue();
    const attempt = w.handle(second.id);
    await expect(attempt).rejects.toBeInstanceOf(DeferredError);
    await expect(attempt).rejects.toThrow('octo-org/archive already has 1 runs going');
    expect(await w.run(second.id)).toMatchObject({ state: 'queued', workerId: null, startedAt: null });
    expect(statuses(w.reports(second))).toEqual(['queued']);

    const elsewhere = await w.queue({ repo: otherRepo, number: null, isPullRequest: false });
    await w.handle(elsewhere.id);
    expect((await w.run(elsewhere.id)).state).toBe('succeeded');

    queue.abort(new Error('cancelled'));
    await handling;
    await w.handle(second.id);
    expect((await w.run(second.id)).state).toBe('succeeded');
  });
});

describe('progress', () => {
  const progressReports = (reports: CheckReport[]) => reports.filter((report) => report.status === 'in_progress' && report.summary.includes('**Progress:**'));

  it('is shown in the check run at most once per interval, the latest each time, and published as run.progress', async () => {
    const intervalMs = 60;
    const w = await world({ progressIntervalMs: intervalMs });
    const queued = await w.queue({ taskType: 'test/progress', spec: { with: { steps: 40, stepMs: 10 }, network: false } });
    const began = Date.now();
    await w.handle(queued.id);
    const tookMs = Date.now() - began;

    const shown = progressReports(w.reports(await w.run(queued.id)));
    expect(shown.length).toBeGreaterThanOrEqual(2);
    expect(shown.length).toBeLessThanOrEqual(Math.floor(tookMs / intervalMs) + 1);
    expect(shown.at(-1)!.summary).toMatch(/\*\*Progress:\*\* \d+ of 40 \(\d+%\) — `page \d+`/);

    const published = w.events.events.filter((event) => event.name === 'run.progress');
    expect(published).toHaveLength(shown.length);
    const times = published.map((event) => event.at.getTime());
    for (let i = 1; i < times.length; i += 1) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(intervalMs - 10);
    expect(published.at(-1)!.run).toMatchObject({ id: queued.id, progress: { total: 40 } });
  });

  it('is not shown again while nothing new was reported', async () => {
    const w = await world({ progressIntervalMs: 40 });
    const queued = await w.queue({ taskType: 'test/progress-once', spec: { with: { waitMs: 250 }, network: false } });
    await w.handle(queued.id);
    const shown = progressReports(w.reports(await w.run(queued.id)));
    expect(shown.map((report) => report.summary.split('**Progress:** ')[1])).toEqual(['1 of 2 (50%)']);
  });

  it('is read from .progress.json in the output folder, which is not among the outputs', async () => {
    const w = await world({ progressIntervalMs: 40 });
    const queued = await w.queue({ taskType: 'test/progress-file', spec: { with: { waitMs: 200 }, network: false } });
    await w.handle(queued.id);
    const run = await w.run(queued.id);
    expect(progressReports(w.reports(run)).at(-1)!.summary).toContain('**Progress:** 3 of 4 (75%) — `page 3`');
    expect(run.outputFiles).toEqual([]);
    // …and kept on the run, for the dashboard and the API.
    expect(run.progress).toEqual({ done: 3, total: 4, message: 'page 3' });
  });
});

describe('what a task leaves in its output folder', () => {
  /** How long one fs.stat and one DNS lookup of localhost take (both run on libuv's pool); null when they hang. */
  async function poolProbe(dir: string, timeoutMs: number): Promise<number | null> {
    const began = performance.now();
    const probe = Promise.all([stat(dir), lookup('localhost')]).then(() => performance.now() - began);
    return Promise.race([probe, sleep(timeoutMs).then(() => null)]);
  }

  it('a FIFO as .progress.json is not opened: the event loop and the thread pool keep going, and the log says so once', async () => {
    const w = await world({ progressIntervalMs: 20 });
    const queued = await w.queue({ taskType: 'test/progress-fifo', spec: { with: { waitMs: 1500 }, network: false } });
    const fifo = join(outputDir(w.dataDir, queued.id), '.progress.json');
    // Whatever happens, let blocked readers go: opening the FIFO for writing releases them.
    cleanups.push(async () => {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // no reader waiting (ENXIO), or no FIFO: nothing to release
      }
    });
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const handling = w.handle(queued.id);
    await until(() => w.seen.contexts.has(queued.id), 'the task started');
    await sleep(400); // about twenty polls of the progress file

    const probes: (number | null)[] = [];
    for (let i = 0; i < 3; i += 1) probes.push(await poolProbe(w.dataDir, 2000));
    const finished = await Promise.race([handling.then(() => true), sleep(5000).then(() => false)]);
    loop.disable();
    const blockMs = loop.max / 1e6;
    console.log(`FIFO as .progress.json: longest event-loop block ${blockMs.toFixed(0)} ms; fs.stat + dns.lookup took ${probes.map((ms) => (ms === null ? 'frozen (over 2 s)' : `${ms.toFixed(1)} ms`)).join(', ')}; run finished: ${finished}`);

    expect(probes).not.toContain(null);
    expect(blockMs).toBeLessThan(1000);
    expect(finished).toBe(true);
    const run = await w.run(queued.id);
    expect(run.state).toBe('succeeded');
    const log = await w.log(queued.id);
    expect(log.match(/\.progress\.json .*not read/g)).toEqual([expect.stringContaining('FIFO (named pipe)')]);
  }, 15_000);

  it('a sparse file past OUTPUT_MAX_BYTES stops the task while it runs, and the run fails naming the cap and the size', async () => {
    const w = await world({ outputLimits: { maxBytes: 1024 ** 2, maxFiles: 1000 } });
    const queued = await w.queue({ taskType: 'test/sparse', spec: { with: { bytes: 1024 ** 4, then: 'wait', waitMs: 5000 }, network: false } });
    const began = Date.now();
    await Promise.race([w.handle(queued.id), sleep(8000).then(() => Promise.reject(new Error('the run did not end within 8 s')))]);

    expect(Date.now() - began).toBeLessThan(3000);
    expect(w.seen.abortReasons).toHaveLength(1);
    const run = await w.run(queued.id);
    expect(run).toMatchObject({ state: 'failed', outputCid: null });
    expect(run.error).toBe('the outputs are larger than OUTPUT_MAX_BYTES (1.0 MiB): at least 1.0 TiB (1099511627776 bytes; a sparse file counts at its full size) found');
    expect(statuses(w.reports(run))).toEqual(['queued', 'in_progress', 'completed:failure']);
  }, 15_000);

  it('a sparse file past OUTPUT_MAX_BYTES written just before the task ends is refused before the IPFS add', async () => {
    const w = await world({ outputLimits: { maxBytes: 1024 ** 2, maxFiles: 1000 } });
    const queued = await w.queue({ taskType: 'test/sparse', spec: { with: { bytes: 1024 ** 4 }, network: false } });
    await Promise.race([w.handle(queued.id), sleep(8000).then(() => Promise.reject(new Error('the run did not end within 8 s')))]);
    const run = await w.run(queued.id);
    expect(run).toMatchObject({ state: 'failed', outputCid: null });
    expect(run.error).toMatch(/^the outputs are larger than OUTPUT_MAX_BYTES \(1\.0 MiB\): at least 1\.0 TiB/);
  }, 15_000);

  it('more files than OUTPUT_MAX_FILES stop the task, and the run fails naming the cap and the count', async () => {
    const w = await world({ outputLimits: { maxBytes: 1024 ** 3, maxFiles: 20 } });
    const queued = await w.queue({ taskType: 'test/many-files', spec: { with: { files: 50, then: 'wait', waitMs: 5000 }, network: false } });
    const began = Date.now();
    await Promise.race([w.handle(queued.id), sleep(8000).then(() => Promise.reject(new Error('the run did not end within 8 s')))]);

    expect(Date.now() - began).toBeLessThan(3000);
    const run = await w.run(queued.id);
    expect(run).toMatchObject({ state: 'failed', outputCid: null });
    expect(run.error).toMatch(/^the outputs hold more than OUTPUT_MAX_FILES \(20\) files and folders: at least \d+ found$/);
  }, 15_000);

  it('outputs within both caps are added as before', async () => {
    const w = await world({ outputLimits: { maxBytes: 1024 ** 2, maxFiles: 50 } });
    const queued = await w.queue({ taskType: 'test/many-files', spec: { with: { files: 50 }, network: false } });
    await w.handle(queued.id);
    const run = await w.run(queued.id);
    expect(run.state).toBe('succeeded');
    expect(run.outputFiles).toHaveLength(50);
  });
});

describe('the provenance record', () => {
  /** The record a run's provenance CID names, as the store holds it. */
  async function recordOf(w: Awaited<ReturnType<typeof world>>, run: Run): Promise<Record<string, unknown>> {
    const bytes = await w.ipfs.getBlock(run.provenanceCid!);
    return dagJson.decode(bytes!);
  }

  it('a run that succeeded has one, beside its outputs and pinned as long, named in the run and on the check run', async () => {
    const w = await world();
    const fetch = await w.queue({ task: 'fetch' });
    const queued = await w.queue({
      needs: [fetch.id],
      params: { depth: '2' },
      approvals: [{ reviewId: 88, reviewer: 'mara', commit: w.head }],
      spec: { with: {}, network: false, pinTtlMs: 86_400_000 },
    });
    await w.handle(fetch.id);
    await w.handle(queued.id);

    const run = await w.run(queued.id);
    const before = await w.run(fetch.id);
    expect(run.provenanceCid).toMatch(/^baguqeera[a-z2-7]+$/);
    expect(await recordOf(w, run)).toStrictEqual({
      type: 'task-mgmt/provenance',
      version: 1,
      repository: 'octo-org/archive',
      number: 1,
      sha: w.head,
      manifestDigest: 'sha256:' + 'd'.repeat(64),
      task: 'snapshot',
      taskType: 'test/write',
      params: { depth: '2' },
      requester: { login: 'alice', how: 'comment' },
      approvals: [{ reviewId: 88, reviewer: 'mara', commit: w.head }],
      image: null,
      inputs: { fetch: before.outputCid },
      outputs: { root: run.outputCid, files: Object.fromEntries(run.outputFiles.map((file) => [file.name, file.cid])) },
      exitCode: null,
      conclusion: 'success',
      queuedAt: run.queuedAt.toISOString(),
      startedAt: run.startedAt!.toISOString(),
      finishedAt: run.finishedAt!.toISOString(),
      pinnedUntil: run.pinnedUntil!.toISOString(),
      taskMgmtVersion: JSON.parse(await readFile(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')).version,
    });
    // Pinned like the outputs, until the same time, so the app's gateway serves it as long.
    expect((await w.store.listPins(run.id)).find((pin) => pin.kind === 'provenance')).toStrictEqual({ runId: run.id, kind: 'provenance', root: run.provenanceCid, pinnedUntil: run.pinnedUntil });
    expect((await w.store.livePinsHolding(run.provenanceCid!, w.now())).map((holder) => holder.runId)).toStrictEqual([run.id]);

    const summary = w.reports(run).at(-1)!.summary;
    expect(summary.split('\n')).toContain(
      `Provenance: \`${run.provenanceCid}\` ([record](${gatewayUrl}/ipfs/${run.provenanceCid})) · \`task-mgmt verify ${run.provenanceCid}\` checks it and the outputs against their bytes`,
    );
    // Whoever learns that the run ended learns its record with it.
    expect(w.finished.find((ended) => ended.id === run.id)!.provenanceCid).toBe(run.provenanceCid);
  });

  it('a run that failed before adding outputs has one too, with no outputs, pinned for its TTL', async () => {
    const w = await world();
    const queued = await w.queue({ taskType: 'test/permanent' });
    await w.handle(queued.id);

    const run = await w.run(queued.id);
    expect(run).toMatchObject({ state: 'failed', outputCid: null });
    const record = await recordOf(w, run);
    expect(record).toMatchObject({ conclusion: 'failure', outputs: null, exitCode: null, finishedAt: run.finishedAt!.toISOString() });
    const [pin] = await w.store.listPins(run.id);
    expect(pin).toMatchObject({ kind: 'provenance', root: run.provenanceCid });
    expect(record.pinnedUntil).toBe(pin!.pinnedUntil.toISOString());
    expect(pin!.pinnedUntil.getTime() - run.finishedAt!.getTime()).toBeGreaterThan(29 * 86_400_000);
    expect(w.reports(run).at(-1)!.summary).toMatch(/^Provenance: `baguqeera/m);
  });

  it('a run cancelled elsewhere while it ran gets one once its task stopped, and its check run shows it', async () => {
    const w = await world();
    const queued = await w.queue({ taskType: 'test/wait' });
    const handling = w.handle(queued.id);
    await until(() => w.seen.contexts.has(queued.id), 'the task started');
    await w.store.transition(queued.id, 'cancel', w.now(), { error: 'cancelled by @alice' });
    await handling;

    const run = await w.run(queued.id);
    expect(run).toMatchObject({ state: 'cancelled', error: 'cancelled by @alice' });
    expect(await recordOf(w, run)).toMatchObject({ conclusion: 'cancelled', outputs: null, finishedAt: run.finishedAt!.toISOString() });
    expect(w.reports(run).at(-1)).toMatchObject({ conclusion: 'cancelled' });
    expect(w.reports(run).at(-1)!.summary).toContain(`Provenance: \`${run.provenanceCid}\``);
  });

  it('a run cancelled before it started has none', async () => {
    const w = await world();
    const queued = await w.queue();
    await w.store.transition(queued.id, 'cancel', w.now(), { error: 'cancelled by @alice' });
    await w.handle(queued.id);
    expect(await w.run(queued.id)).toMatchObject({ state: 'cancelled', provenanceCid: null });
    expect(await w.store.listPins(queued.id)).toStrictEqual([]);
  });

  it('a record that cannot be written is logged, and the run ends as it would without one', async () => {
    const w = await world();
    const broken = Object.assign(Object.create(w.ipfs) as EmbeddedIpfsStore, {
      putDagJson: async () => {
        throw new Error('the disk is full');
      },
    });
    const queued = await w.queue();
    await createRunHandler({ ...w.deps, ipfs: broken })({ runId: queued.id }, { signal: new AbortController().signal });
    const run = await w.run(queued.id);
    expect(run).toMatchObject({ state: 'succeeded', provenanceCid: null });
    expect(run.outputCid).not.toBeNull();
    expect(w.reports(run).at(-1)!.summary).not.toContain('Provenance');
  });
});

describe("the org policy's bounds recorded with the run", () => {
  it('cap what the task leaves to the deployment, and leave what it asked for (already checked against them)', async () => {
    const w = await world();
    const capped = await w.queue({ spec: { with: {}, network: false, caps: { memoryBytes: 64 * 1024 ** 2, timeoutMs: 5000, cpus: 4 } } });
    await w.handle(capped.id);
    expect(w.seen.contexts.get(capped.id)!.limits).toEqual({ memoryBytes: 64 * 1024 ** 2, nanoCpus: 1e9, pidsLimit: 64, timeoutMs: 5000 });
    const asked = await w.queue({ spec: { with: {}, network: false, memoryBytes: 32 * 1024 ** 2, caps: { memoryBytes: 64 * 1024 ** 2 } } });
    await w.handle(asked.id);
    expect(w.seen.contexts.get(asked.id)!.limits.memoryBytes).toBe(32 * 1024 ** 2);
  });

  it("runs at once per repository: the smaller of REPO_CONCURRENCY and the org's concurrency", async () => {
    const w = await world({ maxRunningPerRepo: 5 });
    const first = await w.queue({ taskType: 'test/wait', spec: { with: {}, network: false, concurrency: 1 } });
    const queue = new AbortController();
    const handling = w.handle(first.id, queue.signal);
    await until(() => w.seen.contexts.has(first.id), 'the first run started');
    const second = await w.queue({ spec: { with: {}, network: false, concurrency: 1 } });
    await expect(w.handle(second.id)).rejects.toThrow('octo-org/archive already has 1 runs going');
    queue.abort(new Error('cancelled'));
    await handling;
  });

  it("an output cap below OUTPUT_MAX_BYTES stops the task, naming the org policy's rule", async () => {
    const w = await world({ outputLimits: { maxBytes: 1024 ** 4, maxFiles: 1000 } });
    const queued = await w.queue({ taskType: 'test/sparse', spec: { with: { bytes: 1024 ** 3, then: 'wait', waitMs: 5000 }, network: false, caps: { outputBytes: 1024 ** 2 } } });
    await w.handle(queued.id);
    expect((await w.run(queued.id)).error).toMatch(/^the outputs are larger than the org policy's `limits.output` \(1\.0 MiB\): at least 1\.0 GiB/);
  }, 15_000);
});

/** EmbeddedRunQueue against the RunQueue contract, with its backlog in a SqliteRunStore file. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EmbeddedRunQueue } from '../../src/adapters/queue/embedded-run-queue.js';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import type { RunHandler } from '../../src/ports/run-queue.js';
import { runQueueContract } from './run-queue.contract.js';
import { newRun } from './run-store.contract.js';

const log = pino({ level: 'silent' });
const timing = { pollIntervalMs: 50, retryDelayMs: 100 };

runQueueContract('EmbeddedRunQueue on SqliteRunStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-queue-'));
  const store = await SqliteRunStore.open(join(dir, 'task-mgmt.sqlite'));
  const queue = new EmbeddedRunQueue({ store, log, ...timing });
  return {
    queue,
    store,
    cleanup: async () => {
      await queue.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('EmbeddedRunQueue across restarts', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('handles runs a previous process left queued', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-queue-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'task-mgmt.sqlite');

    // The previous process recorded and enqueued two runs, then stopped before consuming.
    const before = await SqliteRunStore.open(file);
    const previousQueue = new EmbeddedRunQueue({ store: before, log, ...timing });
    const ids = [newRun(), newRun()].map((run) => run.id);
    for (const [index, id] of ids.entries()) {
      await before.createRun({ ...newRun(), id }, new Date(Date.now() - 60_000 + index * 1000));
      await previousQueue.enqueue({ runId: id });
    }
    await previousQueue.close();
    await before.close();

    const store = await SqliteRunStore.open(file);
    const queue = new EmbeddedRunQueue({ store, log, ...timing });
    cleanups.push(() => store.close());
    cleanups.push(() => queue.close());
    const seen: string[] = [];
    const handler: RunHandler = async ({ runId }) => {
      if (!(await store.transition(runId, 'claim', new Date()))) return;
      seen.push(runId);
      await store.transition(runId, 'succeed', new Date());
    };
    await queue.consume(handler, { concurrency: 1 });

    await vi.waitFor(async () => {
      for (const id of ids) expect((await store.getRun(id))?.state).toBe('succeeded');
    }, { timeout: 5000, interval: 20 });
    // Oldest first, one at a time.
    expect(seen).toStrictEqual(ids);
  });

  it('finds runs another process records in the same file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-queue-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'task-mgmt.sqlite');
    const appStore = await SqliteRunStore.open(file);
    cleanups.push(() => appStore.close());
    const workerStore = await SqliteRunStore.open(file);
    cleanups.push(() => workerStore.close());
    const workerQueue = new EmbeddedRunQueue({ store: workerStore, log, ...timing });
    cleanups.push(() => workerQueue.close());

    await workerQueue.consume(async ({ runId }) => {
      if (!(await workerStore.transition(runId, 'claim', new Date()))) return;
      await workerStore.transition(runId, 'succeed', new Date());
    }, { concurrency: 1 });
    // The app's own queue object would only wake itself; the worker must find the run by polling.
    const run = await appStore.createRun(newRun(), new Date());
    await vi.waitFor(async () => expect((await appStore.getRun(run.id))?.state).toBe('succeeded'), { timeout: 5000, interval: 20 });
  });
});
